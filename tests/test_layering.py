"""Who may import whom, read from the source with ast (lazy imports inside functions count too).

Every package of the project (docs/design.md, "Layout and boundaries"):
- nothing under backends/ imports the harness (`parity`, `adapters`) or the benchmarks;
- backends/tf_pinn never imports backends.torch_pinn, torch or Lightning;
- backends/torch_pinn never imports backends.tf_pinn, TensorFlow or Keras;
- backends/common imports no framework at all;
- adapters/ never imports parity/, bench/ or a plugin;
- parity/ never imports a framework, a backend's own package (only through adapters), bench/ or a plugin;
- bench/ never imports a plugin;
- a plugin imports of this project only the public API a team's adapter may use (PLUGIN_API).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
HARNESS = ("parity", "adapters")
TF = ("tensorflow", "keras", "tf_keras")
TORCH = ("torch", "lightning", "pytorch_lightning", "torchvision")
BENCH, PLUGINS = ("bench",), ("pinn_parity_ptychopinn",)
BACKEND_PACKAGES = ("backends.tf_pinn", "backends.torch_pinn")
PLUGIN_API = ("adapters.base", "adapters.registry", "adapters.referee", "backends.common")
"""What a plugin may import of this project: the adapter interface, the registry, the float64 referee and the
contract's shared code. Nothing of the engine's insides, the benchmarks or the bundled backends."""
FORBIDDEN = {
    "backends/common": HARNESS + BENCH + TF + TORCH + ("jax",) + BACKEND_PACKAGES,
    "backends/tf_pinn": HARNESS + BENCH + TORCH + ("backends.torch_pinn",),
    "backends/torch_pinn": HARNESS + BENCH + TF + ("backends.tf_pinn",),
    "adapters": ("parity",) + BENCH + PLUGINS,
    "parity": TF + TORCH + ("jax",) + BACKEND_PACKAGES + BENCH + PLUGINS,
    "bench": PLUGINS,
    "plugins": tuple(f"{root}.<not {', '.join(PLUGIN_API)}>" for root in ("parity", "adapters", "backends", "bench")),
}


def imports(source: str, package: str) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in `source`, a module of `package` (dotted)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the module's package
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.append((node.lineno, module))
            found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", "")) in ("import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.append((node.lineno, node.args[0].value))
    return found


def _matches(module: str, forbidden: str) -> bool:
    if ".<not " in forbidden:  # "root.<not a, b>": anything under root but the allowed modules
        root = forbidden.partition(".<")[0]  # (`from root import x` is checked as root.x, not as root)
        return module != root and _matches(module, root) and not any(_matches(module, a) for a in PLUGIN_API)
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
    source = (
        "import torch.nn\nfrom lightning import Trainer\nfrom .. import parity\n"
        "def f():\n    import keras\n    importlib.import_module('backends.tf_pinn.model')\n"
    )
    assert imports(source, "backends.torch_pinn") == [
        (1, "torch.nn"),
        (2, "lightning"),
        (2, "lightning.Trainer"),
        (3, "backends"),
        (3, "backends.parity"),
        (5, "keras"),
        (6, "backends.tf_pinn.model"),
    ]


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
        "(backends/tf_pinn must not import backends.torch_pinn)",
    ]


def test_a_plugin_importing_the_engine_or_the_benchmarks_is_reported(tmp_path):
    bad = tmp_path / "plugins" / "team" / "adapter.py"
    bad.parent.mkdir(parents=True)
    bad.write_text("from adapters import base\nfrom parity.stages import kit\n\n\ndef f():\n    import bench.proc\n")
    found = violations(tmp_path, "plugins")
    assert [line.split(" (")[0] for line in found] == [
        "plugins/team/adapter.py:2 imports parity.stages",
        "plugins/team/adapter.py:2 imports parity.stages.kit",
        "plugins/team/adapter.py:6 imports bench.proc",
    ]
