"""Profiles: what one family of backends is checked with, bundled in one place.

A profile names the config matrix, the tolerance ledger, the golden folder, which
contract checks apply (backend against backend always; "spec", "referee" and "golden" on
every stage, on some, or on none) and a baseline of known splits (parity/baseline.py).

"bundled" is the bundled tf_pinn/torch_pinn pair: parity/matrix.py's MATRIX, parity/tolerances.json,
golden/, every contract check, no baseline. Any other profile is a folder holding
profile.json (schema "pinn-parity-profile" version 1), kept in the team's own repository:

    {"schema": "pinn-parity-profile", "schema_version": 1, "name": "ptychopinn",
     "cases": [{"id": "gs2-k4-poisson-n64", "data": {"seed": 8, "n_positions": 64, "n": 64},
                "overrides": {"gridsize": 2}, "train_steps": 6, "stage_groups": 16,
                "variants": ["xla_translate"]}],
     "switches": {"xla_translate": {"env": "USE_XLA_TRANSLATE", "backends": ["ptychopinn-tf"],
                                    "stages": ["translation", "reconstruction"], "values": ["0"]}},
     "contract_checks": {"referee": ["translation", "forward"], "spec": [], "golden": false},
     "ledger": "tolerances.json", "golden": "golden", "baseline": "baseline.json"}

"switches" names the flags of the code under test that select another implementation of some stages
(parity.switches.Switch): an environment variable ("env") or an adapter option ("option", which the
adapters list in Adapter.options), the backends it is set for, the stages it can affect and the values it
is checked at. A case's "variants" names some of them: the case is followed by one variant case per value,
id "<case id>+<switch>=<value>" (gs2-k4-poisson-n64+xla_translate=0), running those stages only.

Paths are relative to the folder. Every problem is one ProfileError naming the file and key.
"""

from __future__ import annotations

import fnmatch
import os
import sys
import sysconfig
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from backends.common.fileio import VersionedJsonError, read_versioned_json
from parity.envinfo import REPO_ROOT
from parity.matrix import MATRIX, ParityCase, SimulatedData
from parity.stages import STAGES
from parity.switches import Switch
from parity.tolerances import DEFAULT_LEDGER_PATH
from parity.verdict import GOLDEN, REFEREE, SPEC, Comparison, error_text, headline

PROFILE_SCHEMA = "pinn-parity-profile"
PROFILE_SCHEMA_VERSION = 1
PROFILE_FILE = "profile.json"
CONTRACT_CHECKS = (SPEC, REFEREE, GOLDEN)
MIN_GROUPED_STAGE_GROUPS = 16
"""Foreign profiles feed at least this many groups to isolated stages when gridsize > 1,
so batch-level bugs (a group mixed into another) can show."""
_CASE_KEYS = {
    "id",
    "data",
    "overrides",
    "train_steps",
    "stage_groups",
    "cli_sweep",
    "cli_data",
    "skip_stages",
    "variants",
}
_DATA_KEYS = {"seed", "n_positions", "n", "nphotons", "jitter"}
_KEYS = {
    "schema",
    "schema_version",
    "name",
    "cases",
    "switches",
    "contract_checks",
    "ledger",
    "golden",
    "baseline",
    "refusals",
}
_REFUSAL_KEYS = {"config", "stage", "check", "error", "reason"}
_SWITCH_KEYS = {"env", "option", "backends", "stages", "values"}


@dataclass(frozen=True)
class Refusal:
    """A check that may end in an error, and that error a legitimate answer (profile.json "refusals"): a
    backend that refuses another's bundle with a clear message has answered, not failed. Globs (fnmatch)
    on the comparison's config, stage, printed check and the error's text; a reason is required."""

    stage: str
    check: str
    error: str
    reason: str
    config: str = "*"

    def accepts(self, comparison: Comparison) -> bool:
        text = error_text(comparison.headline)
        return (
            comparison.kind == "error"
            and not comparison.passed
            and all(
                fnmatch.fnmatchcase(value, pattern)
                for value, pattern in (
                    (comparison.config_id, self.config),
                    (comparison.stage, self.stage),
                    (str(comparison.check), self.check),
                    (text, self.error),
                )
            )
        )


class ProfileError(ValueError):
    """A profile cannot be found or its file is malformed."""


@dataclass(frozen=True)
class Profile:
    name: str
    cases: tuple
    ledger: Path
    golden_root: Path
    baseline: Path | None = None
    contract: Mapping = field(default_factory=lambda: {kind: frozenset(STAGES) for kind in CONTRACT_CHECKS})
    """kind (spec, referee, golden) -> the stages where that contract check applies."""
    source: Path | None = None
    """profile.json, None for the bundled profile."""
    refusals: tuple = ()
    """Refusal entries: errors that are legitimate answers here."""

    def accept_refusals(self, comparisons) -> list[Comparison]:
        """Each error a Refusal accepts becomes a passed comparison of kind "refusal" that says why."""
        out = []
        for found in comparisons:
            match = next((r for r in self.refusals if r.accepts(found)), None)
            if match is not None:
                text = error_text(found.headline)
                found = replace(
                    found,
                    passed=True,
                    kind="refusal",
                    message=(
                        f"{headline(found.config_id, found.stage, found.check, found.metric, 'refused')}\n"
                        f"  {text}\n  accepted by the profile: {match.reason}"
                    ),
                )
            out.append(found)
        return out

    def applies(self, kind: str, stage: str) -> bool:
        """Whether a contract check (Check.right: spec, referee, golden) counts at `stage`; any other
        right side is a backend, and backend-against-backend checks always count."""
        return kind not in CONTRACT_CHECKS or stage in self.contract.get(kind, ())


def bundled_golden_root() -> Path:
    """golden/ of the clone the harness runs from, else the copy an installed wheel put under the
    environment's data folder (<prefix>/share/pinn-parity/golden; pyproject.toml's data-files)."""
    clone = REPO_ROOT / "golden"
    return clone if clone.is_dir() else Path(sysconfig.get_path("data")) / "share" / "pinn-parity" / "golden"


BUNDLED = Profile(name="bundled", cases=MATRIX, ledger=DEFAULT_LEDGER_PATH, golden_root=bundled_golden_root())
NAMED = {"bundled": BUNDLED}


def _fail(path, key, text) -> ProfileError:
    return ProfileError(f"{path}: key {key!r}: {text}")


def _check_entry(path, where: str, entry, known, expected: str) -> None:
    """`entry` (at `where`) is an object whose keys are among `known`; else the ProfileError naming the first
    stray key, or saying an object (`expected`) was expected."""
    if not isinstance(entry, Mapping):
        raise _fail(path, where, f"{expected}, got {entry!r}")
    unknown = sorted(set(entry) - known)
    if unknown:
        raise _fail(path, f"{where}.{unknown[0]}", f"unknown key; known: {sorted(known)}")


def _switches(raw, path) -> dict[str, Switch]:
    """profile.json "switches": name -> {"env" | "option", "backends", "stages", "values"}."""
    if not isinstance(raw, Mapping):
        raise _fail(
            path, "switches", f"an object: switch name -> {{env or option, backends, stages, values}}, got {raw!r}"
        )
    found = {}
    for name, entry in raw.items():
        where = f"switches.{name}"
        _check_entry(path, where, entry, _SWITCH_KEYS, f"an object with keys among {sorted(_SWITCH_KEYS)}")
        for key in ("backends", "stages", "values"):
            if not isinstance(entry.get(key), list):
                raise _fail(path, f"{where}.{key}", f"a list, got {entry.get(key)!r}")
        unknown = [stage for stage in entry["stages"] if stage not in STAGES]
        if unknown:
            raise _fail(path, f"{where}.stages", f"unknown stage(s) {unknown}; stages: {', '.join(STAGES)}")
        try:
            found[name] = Switch(name=name, **{key: entry[key] for key in _SWITCH_KEYS if key in entry})
        except (TypeError, ValueError) as error:
            raise _fail(path, where, str(error)) from None
    return found


def _case(raw, path, index, switches: Mapping[str, Switch]) -> tuple[ParityCase, ...]:
    """The case at cases[index], followed by its variant cases (one per value of each switch it names)."""
    key = f"cases[{index}]"
    if not isinstance(raw, Mapping):
        raise _fail(path, key, "a case is a JSON object")
    unknown = sorted(set(raw) - _CASE_KEYS)
    if unknown:
        raise _fail(path, key, f"unknown field(s) {unknown}; known: {sorted(_CASE_KEYS)}")
    named = raw.get("variants", [])
    if not isinstance(named, list) or not all(isinstance(name, str) for name in named):
        raise _fail(path, f"{key}.variants", f'a list of switch names (the profile\'s "switches"), got {named!r}')
    unknown = [name for name in named if name not in switches]
    if unknown or len(set(named)) != len(named):
        raise _fail(
            path,
            f"{key}.variants",
            f"switch(es) {unknown or named} unknown or repeated; the profile's switches: {sorted(switches) or 'none'}",
        )
    data = raw.get("data", {})
    if not isinstance(data, Mapping) or set(data) - _DATA_KEYS:
        raise _fail(path, f"{key}.data", f"an object with fields among {sorted(_DATA_KEYS)}")
    cli_data = raw.get("cli_data")
    if cli_data is not None and (not isinstance(cli_data, Mapping) or set(cli_data) - _DATA_KEYS):
        raise _fail(path, f"{key}.cli_data", f"an object with fields among {sorted(_DATA_KEYS)}")
    skip = raw.get("skip_stages", [])
    if not isinstance(skip, list) or not all(isinstance(stage, str) for stage in skip):
        raise _fail(path, f"{key}.skip_stages", "a list of stage names")
    overrides = raw.get("overrides", {})
    if not isinstance(overrides, Mapping):
        raise _fail(path, f"{key}.overrides", "an object of config fields")
    for name in ("train_steps", "stage_groups"):
        value = raw.get(name, 1)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise _fail(path, f"{key}.{name}", f"a positive integer, got {value!r}")
    try:
        case = ParityCase(
            raw.get("id"),
            SimulatedData(**data),
            dict(overrides),
            cli_data=None if cli_data is None else SimulatedData(**cli_data),
            skip_stages=tuple(skip),
            **{k: raw[k] for k in ("train_steps", "stage_groups", "cli_sweep") if k in raw},
        )
    except (TypeError, ValueError) as error:
        raise _fail(path, key, str(error)) from None
    if case.config.gridsize > 1 and case.stage_groups < MIN_GROUPED_STAGE_GROUPS:
        raise _fail(
            path,
            f"{key}.stage_groups",
            f"gridsize {case.config.gridsize} needs at least "
            f"{MIN_GROUPED_STAGE_GROUPS} groups fed to isolated stages, got {case.stage_groups}",
        )
    return (case, *case.variants(switches[name] for name in named))


def _contract(raw, path) -> dict:
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping) or set(raw) - set(CONTRACT_CHECKS):
        raise _fail(path, "contract_checks", f"an object with keys among {list(CONTRACT_CHECKS)}")
    out = {}
    for kind in CONTRACT_CHECKS:
        value = raw.get(kind, False)
        if value is True:
            out[kind] = frozenset(STAGES)
        elif value is False:
            out[kind] = frozenset()
        elif isinstance(value, list) and all(stage in STAGES for stage in value):
            out[kind] = frozenset(value)
        else:
            raise _fail(
                path, f"contract_checks.{kind}", f"true, false or a list of stages ({', '.join(STAGES)}); got {value!r}"
            )
    return out


def _refusals(raw, path) -> tuple[Refusal, ...]:
    if not isinstance(raw, list):
        raise _fail(path, "refusals", f"a list of {{stage, check, error, reason[, config]}}, got {raw!r}")
    found = []
    for index, entry in enumerate(raw):
        where = f"refusals[{index}]"
        _check_entry(path, where, entry, _REFUSAL_KEYS, "an object")
        for key in ("stage", "check", "error", "reason"):
            if not isinstance(entry.get(key), str) or not entry[key].strip():
                raise _fail(path, f"{where}.{key}", f"a non-empty string, got {entry.get(key)!r}")
        if not any(fnmatch.fnmatchcase(stage, entry["stage"]) for stage in STAGES):
            raise _fail(path, f"{where}.stage", f"{entry['stage']!r} names no stage; stages: {', '.join(STAGES)}")
        found.append(Refusal(**{key: entry[key] for key in _REFUSAL_KEYS if key in entry}))
    return tuple(found)


def _path(document, key, folder, path, *, required=True) -> Path | None:
    value = document.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise _fail(path, key, f"a path relative to {folder}, got {value!r}")
    return (folder / value).resolve()


def load_profile_file(path: str | os.PathLike) -> Profile:
    """The profile in `path` (profile.json, or the folder holding one), validated."""
    path = Path(path)
    if path.is_dir():
        path = path / PROFILE_FILE
    try:
        document = read_versioned_json(path, kind=PROFILE_SCHEMA, version=PROFILE_SCHEMA_VERSION, what="profile")
    except VersionedJsonError as error:
        raise ProfileError(str(error)) from None
    unknown = sorted(set(document) - _KEYS)
    if unknown:
        raise _fail(path, unknown[0], f"unknown key; known: {sorted(_KEYS)}")
    name = document.get("name")
    if not isinstance(name, str) or not name:
        raise _fail(path, "name", f"a non-empty string, got {name!r}")
    raw_cases = document.get("cases")
    if not isinstance(raw_cases, list) or not raw_cases:
        raise _fail(path, "cases", "a non-empty list of cases")
    switches = _switches(document.get("switches", {}), path)
    cases = tuple(case for index, raw in enumerate(raw_cases) for case in _case(raw, path, index, switches))
    ids = [case.id for case in cases]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise _fail(path, "cases", f"case id(s) {repeated} appear more than once")
    folder = path.parent.resolve()
    profile = Profile(
        name=name,
        cases=cases,
        ledger=_path(document, "ledger", folder, path),
        golden_root=_path(document, "golden", folder, path),
        baseline=_path(document, "baseline", folder, path, required=False),
        contract=_contract(document.get("contract_checks"), path),
        source=path.resolve(),
        refusals=_refusals(document.get("refusals", []), path),
    )
    if not profile.ledger.is_file():
        raise _fail(path, "ledger", f"no ledger file at {profile.ledger}")
    if profile.baseline is not None and not profile.baseline.is_file():
        raise _fail(path, "baseline", f"no baseline file at {profile.baseline}")
    return profile


def load_profile(spec: str | os.PathLike, *, relative_to: Path | None = None) -> Profile:
    """A profile by name ("bundled") or path (a folder with profile.json, or the file)."""
    if isinstance(spec, str) and spec in NAMED:
        return NAMED[spec]
    path = Path(spec)
    if relative_to is not None and not path.is_absolute():
        path = relative_to / path
    if not path.exists():
        raise ProfileError(
            f"--parity-profile: no profile {str(spec)!r}: not a known name ({', '.join(NAMED)}) "
            f"and no folder or file at {path}"
        )
    return load_profile_file(path)


def adapter_default(backend) -> str | None:
    """An adapter's `default_profile` (a name, or a path relative to its module's folder), if it names one."""
    named = getattr(backend, "default_profile", None)
    if named is None:
        return None
    if not isinstance(named, str) or not named:
        raise ProfileError(
            f"adapter {getattr(backend, 'name', backend)!r}: default_profile must be a profile "
            f"name or path, got {named!r}"
        )
    if named in NAMED or Path(named).is_absolute():
        return named
    module = sys.modules.get(type(backend).__module__)
    where = Path(getattr(module, "__file__", "") or ".").resolve().parent
    return str(where / named)


def resolve(option: str | None, backends=()) -> Profile:
    """--parity-profile when given; else the profile the adapters name (they must agree); else bundled."""
    if option:
        return load_profile(option)
    named = {}
    for backend in backends:
        default = adapter_default(backend)
        if default is not None:
            named.setdefault(default, backend.name)
    if len(named) > 1:
        raise ProfileError(
            "the adapters name different default profiles ("
            + ", ".join(f"{who}: {what}" for what, who in named.items())
            + "); choose one with --parity-profile"
        )
    return load_profile(next(iter(named))) if named else BUNDLED
