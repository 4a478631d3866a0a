"""The import rules of docs/architecture.md hold: the request path only flows down.

The rules live in ``.importlinter`` (import-linter contracts: the layers, and the few
forbidden shortcuts); this runs them, so a new import that reaches back up fails the suite
with the chain of imports that does it.
"""

from __future__ import annotations

import os
from pathlib import Path

from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parents[2]


def test_imports_follow_the_layers_of_docs_architecture_md() -> None:
    cwd = os.getcwd()
    os.chdir(ROOT)   # the contracts name ridethrough's modules; the config file is here
    try:
        code = lint_imports(config_filename=str(ROOT / ".importlinter"), no_cache=True,
                            no_logo=True)
    finally:
        os.chdir(cwd)
    assert code == 0, "an import breaks a contract in .importlinter (see the output above)"


def test_every_layer_of_the_contracts_is_in_the_architecture_doc() -> None:
    doc = (ROOT / "docs" / "architecture.md").read_text()
    contracts = (ROOT / ".importlinter").read_text()
    layers = contracts.split("layers =", 1)[1].split("ignore_imports", 1)[0]
    names = {n.strip().removeprefix("ridethrough.") for line in layers.splitlines()
             for n in line.replace("|", ":").split(":") if n.strip()}
    missing = {n for n in names if f"`{n}" not in doc}
    assert not missing, f"docs/architecture.md does not name: {sorted(missing)}"
