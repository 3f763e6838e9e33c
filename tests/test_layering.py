"""Who may import whom, read from the source with ast (lazy imports inside functions count too).

- nothing under backends/ imports the harness (`parity`, `adapters`);
- backends/tf_pinn never imports backends.torch_pinn, torch or Lightning;
- backends/torch_pinn never imports backends.tf_pinn, TensorFlow or Keras;
- backends/common imports no framework at all.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
HARNESS = ("parity", "adapters")
TF = ("tensorflow", "keras", "tf_keras")
TORCH = ("torch", "lightning", "pytorch_lightning", "torchvision")
FORBIDDEN = {
    "backends/common": HARNESS + TF + TORCH + ("jax", "backends.tf_pinn", "backends.torch_pinn"),
    "backends/tf_pinn": HARNESS + TORCH + ("backends.torch_pinn",),
    "backends/torch_pinn": HARNESS + TF + ("backends.tf_pinn",),
}


def imports(source: str, package: str) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in `source`, a module of `package` (dotted)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the module's package
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.append((node.lineno, module))
            found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", ""))
              in ("import_module", "__import__") and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            found.append((node.lineno, node.args[0].value))
    return found


def _matches(module: str, forbidden: str) -> bool:
    return module == forbidden or module.startswith(forbidden + ".")


def violations(root: Path, layer: str) -> list[str]:
    lines = []
    for path in sorted((root / layer).rglob("*.py")):
        relative = path.relative_to(root)
        package = ".".join(relative.with_suffix("").parts[:-1])
        for line, module in imports(path.read_text(), package):
            for forbidden in FORBIDDEN[layer]:
                if _matches(module, forbidden):
                    lines.append(f"{relative}:{line} imports {module} ({layer} must not import {forbidden})")
    return sorted(set(lines))


def test_the_scan_sees_every_kind_of_import():
    source = ("import torch.nn\nfrom lightning import Trainer\nfrom .. import parity\n"
              "def f():\n    import keras\n    importlib.import_module('backends.tf_pinn.model')\n")
    assert imports(source, "backends.torch_pinn") == [
        (1, "torch.nn"), (2, "lightning"), (2, "lightning.Trainer"), (3, "backends"), (3, "backends.parity"),
        (5, "keras"), (6, "backends.tf_pinn.model")]


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports_only_what_it_may(layer):
    found = violations(REPO, layer)
    assert not found, "forbidden imports:\n" + "\n".join(found)


def test_a_bad_import_is_reported_with_file_and_line(tmp_path):
    bad = tmp_path / "backends" / "tf_pinn" / "bad.py"
    bad.parent.mkdir(parents=True)
    bad.write_text("import numpy\n\n\ndef f():\n    from backends.torch_pinn.model import PinnModel\n")
    assert violations(tmp_path, "backends/tf_pinn") == [
        "backends/tf_pinn/bad.py:5 imports backends.torch_pinn.model "
        "(backends/tf_pinn must not import backends.torch_pinn)",
        "backends/tf_pinn/bad.py:5 imports backends.torch_pinn.model.PinnModel "
        "(backends/tf_pinn must not import backends.torch_pinn)"]
