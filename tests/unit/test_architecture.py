"""The import rules of docs/architecture.md hold: the request path only flows down.

The rules live in ``.importlinter`` (import-linter contracts: the layers, and the few
forbidden shortcuts); this runs them, so a new import that reaches back up fails the suite
with the chain of imports that does it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# In a child process: import-linter configures logging (dictConfig), which would silence
# the loggers other tests of this process read.
LINT = ("import sys; from importlinter.cli import lint_imports; "
        "sys.exit(lint_imports(config_filename='.importlinter', no_cache=True, no_logo=True))")


def test_imports_follow_the_layers_of_docs_architecture_md() -> None:
    r = subprocess.run([sys.executable, "-c", LINT], cwd=ROOT, capture_output=True, text=True,
                       timeout=120, check=False)
    assert r.returncode == 0, "an import breaks a contract in .importlinter:\n" + r.stdout + r.stderr


def test_every_layer_of_the_contracts_is_in_the_architecture_doc() -> None:
    doc = (ROOT / "docs" / "architecture.md").read_text()
    contracts = (ROOT / ".importlinter").read_text()
    layers = contracts.split("layers =", 1)[1].split("\n\n", 1)[0].split("ignore_imports", 1)[0]
    names = {n.strip().removeprefix("ridethrough.") for line in layers.splitlines()
             for n in line.replace("|", ":").split(":") if n.strip()}
    missing = {n for n in names if f"`{n}" not in doc}
    assert not missing, f"docs/architecture.md does not name: {sorted(missing)}"
