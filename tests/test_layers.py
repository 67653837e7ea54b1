"""The house's layers (docs/design.md): each imports only what lies below it."""

import ast
import graphlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "scratchgpt"

# What each part of the package may import from scratchgpt (besides itself).
CORE = {"errors", "files", "config", "device", "settings"}
ALLOWED = {
    "errors": set(),
    "files": set(),
    "device": {"errors"},
    "config": {"errors", "device"},
    "settings": {"errors", "device", "config"},
    "nn": {"errors"},
    "models": {"nn", "errors"},
    "data": {"errors", "files"},
    "rundir": CORE | {"models", "data"},
    "inference": {"nn", "models", "errors", "data"},
    "training": CORE | {"nn", "models", "data", "rundir", "inference"},
    "evaluation": CORE | {"data", "training"},
    "lessons": CORE | {"nn", "models", "data", "inference"},
    "serve": CORE | {"nn", "models", "data", "rundir", "inference", "lessons"},
    "export": CORE | {"nn", "models", "data", "rundir", "inference"},
    "cli": CORE
    | {"nn", "models", "data", "rundir", "inference", "training", "evaluation", "lessons", "serve", "export"},
    "__main__": {"cli"},
    "__init__": set(),
}


def part(path):
    """The layer a module file belongs to: its subpackage, or its own name at the top."""
    relative = path.relative_to(PACKAGE)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def scratchgpt_imports(path):
    """The scratchgpt parts a module imports (relative and absolute imports alike)."""
    package = ["scratchgpt", *path.relative_to(PACKAGE).parent.parts]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            names = [*base, *(node.module.split(".") if node.module else [])]
            targets = [names + [alias.name] for alias in node.names] if len(names) == 1 else [names]
        elif isinstance(node, ast.Import):
            targets = [alias.name.split(".") for alias in node.names]
        else:
            continue
        found |= {t[1] for t in targets if t[0] == "scratchgpt" and len(t) > 1}
    return found


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_every_module_imports_only_the_layers_below_it(path):
    layer = part(path)
    assert layer in ALLOWED, f"{layer} is not in the layer table of this test and docs/design.md"
    outside = scratchgpt_imports(path) - ALLOWED[layer] - {layer}
    assert not outside, f"{path.relative_to(PACKAGE)} imports {sorted(outside)}"


def test_the_layer_table_has_no_cycle():
    graphlib.TopologicalSorter(ALLOWED).static_order()  # raises CycleError on a cycle


def test_the_faces_read_runs_without_the_training_package():
    """serve, export and the CLI read a run through rundir (and score it through evaluation); only
    the commands that train import training/."""
    importers = {
        str(p.relative_to(PACKAGE))
        for p in PACKAGE.rglob("*.py")
        if part(p) in ("serve", "export", "cli") and "training" in scratchgpt_imports(p)
    }
    assert importers == {"cli/training.py"}


def test_nothing_but_the_faces_import_the_lessons():
    importers = {
        str(p.relative_to(PACKAGE))
        for p in PACKAGE.rglob("*.py")
        if "lessons" in scratchgpt_imports(p) and part(p) != "lessons"
    }
    assert importers == {"cli/using.py", "serve/api.py"}


def test_the_building_blocks_load_without_training_or_the_command_line():
    code = (
        "import json, sys, scratchgpt.nn, scratchgpt.models, scratchgpt.models.convert, "
        "scratchgpt.rundir, scratchgpt.inference.generate; "
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('scratchgpt'))))"
    )
    loaded = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    assert "scratchgpt.models.gpt" in loaded and "scratchgpt.rundir" in loaded
    assert not [m for m in loaded if m.startswith(("scratchgpt.training", "scratchgpt.cli", "scratchgpt.lessons"))], (
        loaded
    )


def test_the_public_api_names_resolve():
    import scratchgpt

    for name in scratchgpt.__all__:
        assert getattr(scratchgpt, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'Transformer'"):
        _ = scratchgpt.Transformer
