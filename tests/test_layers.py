"""The architecture as tests: one-way layers, no import cycles, no SQL outside the store, no
backend or method switch in the UI, and no heavy or UI library loaded by the lower layers.

Layers and contracts are declared in pyproject.toml ([tool.importlinter]) and drawn in
docs/architecture.md.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("panza_core", "sync", "training", "panza_tui", "themes")


def _modules(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py"))


def test_import_contracts_hold():
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert lint, "import-linter is part of the test extras"
    proc = subprocess.run(
        [lint, "--no-cache", "--no-logo"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "4 kept, 0 broken" in proc.stdout, proc.stdout


def test_lower_layers_load_no_ui_and_no_heavy_library():
    """Every module of the core, sync and training imported in a fresh interpreter: the
    terminal UI and the model libraries stay out until a function asks for them."""
    code = (
        "import importlib, pkgutil, sys\n"
        "for pkg in ('panza_core', 'sync', 'training'):\n"
        "    for m in pkgutil.walk_packages(importlib.import_module(pkg).__path__, pkg + '.'):\n"
        "        importlib.import_module(m.name)\n"
        "print(' '.join(sorted(sys.modules)))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    loaded = {name.split(".")[0] for name in proc.stdout.split()}
    assert {"panza_core", "sync", "training"} <= loaded
    assert "panza_tui" not in loaded  # the app's package sits above all three
    unwanted = {"textual", "typer", "themes", "torch", "transformers", "peft", "llama_cpp",
                "sentence_transformers", "accelerate", "googleapiclient", "imapclient"}  # fmt: skip
    assert not loaded & unwanted, sorted(loaded & unwanted)


def _attribute_uses(path: Path, names: set[str]) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        f"{path.relative_to(ROOT)}:{node.lineno} .{node.attr}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr in names
    ]


def test_no_sql_outside_the_store():
    store = ROOT / "panza_core" / "store"
    found = [
        use
        for path in _modules(*PACKAGES)
        if store not in path.parents
        for use in _attribute_uses(path, {"db", "executescript", "cursor"})
    ]
    assert not found, found
    sqlite_users = [p for p in _modules(*PACKAGES) if "sqlite3.connect" in p.read_text()]
    assert sqlite_users == [store / "database.py"], sqlite_users


def test_the_ui_names_no_backend_and_no_training_method():
    """Adding a mail backend or a training method touches its module and a registry line,
    never a screen or a command: no screen or command compares with their names."""
    from sync.backends import BACKENDS
    from training.methods import METHODS

    names = set(BACKENDS) | set(METHODS)
    assert {"imap", "gmail", "lora", "rosa", "full"} <= names
    switches = []
    for path in _modules("panza_tui/tui", "panza_tui/cli"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Compare):
                parts = [node.left, *node.comparators]
                elements = [e for p in parts if isinstance(p, ast.Tuple | ast.List | ast.Set)
                            for e in p.elts]  # fmt: skip
                for part in parts + elements:
                    if isinstance(part, ast.Constant) and part.value in names:
                        switches.append(f"{path.relative_to(ROOT)}:{node.lineno} {part.value!r}")
            if isinstance(node, ast.Dict):
                for key in node.keys:
                    if isinstance(key, ast.Constant) and key.value in names:
                        switches.append(f"{path.relative_to(ROOT)}:{node.lineno} {key.value!r}")
    assert not switches, switches


def test_registries_hold_what_their_protocols_promise():
    from sync.backend import MailBackend
    from sync.backends import BACKENDS
    from training.methods import METHODS, Method

    for kind, backend in BACKENDS.items():
        assert isinstance(backend, MailBackend) and backend.kind == kind
    for name, method in METHODS.items():
        assert isinstance(method, Method) and method.name == name
        assert method.default_lr > 0
