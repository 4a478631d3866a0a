"""Unit tests mirror ``src/``: a package's tests live in the folder of the same name.

So a newcomer changing ``routing/breaker.py`` finds its tests in ``tests/unit/routing/``
without searching. Test folders have no ``__init__.py`` (pytest's default import mode
puts each folder on ``sys.path`` and imports a test file by its bare name), so two test
files with the same name anywhere outside a package would collide: this checks that too.
"""

from __future__ import annotations

from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
UNIT = TESTS / "unit"
SRC = TESTS.parent / "src" / "ridethrough"

PACKAGES = {p.name for p in SRC.iterdir() if (p / "__init__.py").is_file()}
TOP_MODULES = {p.stem for p in SRC.glob("*.py")}
PACKAGE_MODULES = {p.stem: p.parent.name for p in SRC.glob("*/*.py") if p.stem != "__init__"}


def test_every_unit_test_folder_names_a_package_of_src() -> None:
    folders = {p.name for p in UNIT.iterdir() if p.is_dir() and p.name != "__pycache__"}
    strays = sorted(folders - PACKAGES)
    assert not strays, (f"tests/unit/{strays[0]}/ names no package of src/ridethrough "
                        f"(packages: {sorted(PACKAGES)}); fixture folders go inside a package's folder")


def test_a_package_module_is_not_tested_from_the_top_of_tests_unit() -> None:
    misplaced = []
    for f in sorted(UNIT.glob("test_*.py")):
        stem = f.stem.removeprefix("test_")
        for name in (stem, stem.split("_")[0]):
            if name in PACKAGES:
                misplaced.append(f"{f.name} → tests/unit/{name}/")
            elif name in PACKAGE_MODULES and name not in TOP_MODULES:
                misplaced.append(f"{f.name} → tests/unit/{PACKAGE_MODULES[name]}/")
    assert not misplaced, "move to the package's folder: " + ", ".join(sorted(set(misplaced)))


def test_test_file_names_are_unique_outside_packages() -> None:
    seen: dict[str, Path] = {}
    clashes = []
    for f in sorted(TESTS.rglob("test_*.py")):
        if (f.parent / "__init__.py").exists() or ".venv" in f.parts or "node_modules" in f.parts:
            continue
        if f.name in seen:
            clashes.append(f"{seen[f.name].relative_to(TESTS)} and {f.relative_to(TESTS)}")
        seen[f.name] = f
    assert not clashes, "pytest imports these by the same module name: " + "; ".join(clashes)
