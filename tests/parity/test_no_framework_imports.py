"""parity/ never imports a framework, not even lazily inside a function."""

import ast
import subprocess
import sys
from pathlib import Path

PARITY = Path(__file__).resolve().parents[2] / "parity"
FORBIDDEN = {"tensorflow", "torch", "keras", "lightning", "pytorch_lightning", "jax"}
# Every module of the engine, the stage modules included (the suite's pytest files aside).
ENGINE_MODULES = tuple(
    ".".join(path.relative_to(PARITY).with_suffix("").parts)
    for path in sorted(PARITY.rglob("*.py"))
    if path.name not in ("__init__.py", "conftest.py", "test_parity.py")
)


def imported_roots(source: str) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            roots.add(node.module.split(".")[0])
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", "")) in ("import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            roots.add(node.args[0].value.split(".")[0])
    return roots


def test_the_scan_sees_lazy_imports():
    assert imported_roots("def f():\n    import torch.nn\n") == {"torch"}
    assert imported_roots("importlib.import_module('tensorflow')") == {"tensorflow"}


def test_no_parity_source_imports_a_framework():
    offenders = {
        str(path.relative_to(PARITY)): sorted(imported_roots(path.read_text()) & FORBIDDEN)
        for path in PARITY.rglob("*.py")
    }
    assert {path: roots for path, roots in offenders.items() if roots} == {}


def test_importing_the_engine_loads_no_framework():
    modules = ", ".join(f"parity.{name}" for name in ENGINE_MODULES)
    code = f"import sys, {modules}\nprint(sorted(m for m in sys.modules if m.split('.')[0] in {sorted(FORBIDDEN)!r}))"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=PARITY.parent, capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"
