"""Find adapters by name: the bundled ones, then entry points of other packages.

A team adds its own backend without editing this project by declaring, in its
own package metadata:

    [project.entry-points."pinn_parity.adapters"]
    mybackend = "my_package.parity_adapter:MyBackend"

where `MyBackend` is a subclass of `adapters.base.Adapter` (or a callable
returning an instance). See docs/adding_a_backend.md.
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import entry_points

from adapters.base import Adapter

ENTRY_POINT_GROUP = "pinn_parity.adapters"

# name -> "module:attribute"; explicit, so a typo is an error, not a silent miss.
BUILTIN = {
    "tf_pinn": "adapters.bundled:TfPinnAdapter",
    "torch_pinn": "adapters.bundled:TorchPinnAdapter",
    "referee": "adapters.referee:Float64Referee",  # float64 numpy, deterministic stages only
}


class AdapterError(LookupError):
    """No adapter of that name, or it does not build an Adapter."""


def _load(spec: str):
    module, _, attr = spec.partition(":")
    return getattr(import_module(module), attr)


def available() -> dict:
    """name -> "module:attribute" of every adapter, bundled first."""
    found = dict(BUILTIN)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, ep.value)
    return found


def get_adapter(name: str) -> Adapter:
    """A fresh adapter instance for `name` (tf_pinn, torch_pinn, referee, or an entry point's name); its
    `name` is set to `name`."""
    table = available()
    if name not in table:
        raise AdapterError(
            f"no backend adapter named {name!r}; available: {', '.join(sorted(table))} "
            f"(others register under the entry point group '{ENTRY_POINT_GROUP}')"
        )
    factory = _load(table[name])
    backend = factory()
    if not isinstance(backend, Adapter):
        raise AdapterError(
            f"adapter {name!r} ({table[name]}) built a {type(backend).__name__}, not an adapters.base.Adapter"
        )
    # The registered name is the adapter's name from here on: the harness keys runs, bundle paths and
    # labels by it, so two adapters whose classes share a `name` (or keep the default) stay apart.
    try:
        backend.name = name
    except AttributeError:  # a read-only `name` property
        if backend.name != name:
            raise AdapterError(
                f"adapter {name!r} ({table[name]}) has a read-only name {backend.name!r}; "
                "the harness needs it to be the registered name"
            ) from None
    return backend


def capabilities(name: str) -> str:
    """One line: the stages adapter `name` supports (adapters.base.Adapter.supported_stages), or why
    they could not be read. Building an adapter imports no framework (they load on first use)."""
    try:
        backend = get_adapter(name)
        stages = backend.supported_stages()
    except Exception as exc:  # a broken third-party adapter must not hide the others
        return f"capabilities unknown ({type(exc).__name__}: {exc})"
    reasons = [f"{stage} ({reason})" for stage, reason in backend.unsupported_stages.items()]
    return "stages: " + (", ".join(stages) or "none") + (f"; n/a: {'; '.join(reasons)}" if reasons else "")
