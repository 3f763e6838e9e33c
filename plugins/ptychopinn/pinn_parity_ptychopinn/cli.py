"""The cli stage: each side's training command line, run as its users run it, read back from its bundle.

TF:    python scripts/training/train.py --train_data_file F --output_dir D [flags]   (PtychoPINN's source
       folder; the script is not part of the installed package)
torch: python -m ptycho_torch.train --train_data_file F --output_dir D --disable_mlflow [flags]

Both write D/wts.h5.zip, whose diffraction_to_obj/params.dill is the params.cfg snapshot the run
trained with (ptycho.model_manager / ptycho_torch.model_manager.save_torch_bundle): the effective
configuration is read from there, so what is compared is what each command line used.

The harness hands over its canonical flags (--gridsize 2 --epochs 0 ...). Each is translated to the
command line's own flag; a canonical field that command line has no flag for is left out, and the
value it used instead shows in the effective configuration (ptycho_torch.train has no flag for
neighbor_count, n_filters_scale, amp_activation or object_big: its configs' defaults apply).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

# canonical field -> TF train.py flag (ptycho.workflows.components.parse_arguments, from the dataclasses)
TF_FLAGS = {"gridsize": "--gridsize", "neighbor_count": "--neighbor_count", "n_groups": "--n_groups",
            "n_filters_scale": "--n_filters_scale", "amp_activation": "--amp_activation",
            "batch_size": "--batch_size", "epochs": "--nepochs", "object_big": "--object_big"}
# canonical field -> ptycho_torch.train cli_main flag
TORCH_FLAGS = {"gridsize": "--gridsize", "n_groups": "--n_images", "batch_size": "--batch_size",
               "epochs": "--max_epochs", "learning_rate": "--learning-rate"}
TF_LOSS_FLAGS = {"poisson": ["--nll_weight", "1.0", "--mae_weight", "0.0"],
                 "mae": ["--nll_weight", "0.0", "--mae_weight", "1.0"]}
TORCH_LOSS_FLAGS = {"poisson": ["--torch-loss-mode", "poisson"], "mae": ["--torch-loss-mode", "mae"]}
# ptycho_torch.train logs to MLflow unless told not to: an operational switch, not a configuration flag.
TORCH_OPERATIONAL_FLAGS = ["--disable_mlflow"]
BUNDLE = "wts.h5.zip"
PARAMS_MEMBER = "diffraction_to_obj/params.dill"
_OUTPUT_TAIL = 2000  # characters of a failed run's output quoted in its error


def parse_canonical_argv(argv: list) -> tuple[Path, Path, dict]:
    """The harness's train-CLI argv (--train-data-file F --output-dir D --field value ...) as
    (data file, output folder, canonical field -> value as given on the command line)."""
    if len(argv) % 2:
        raise ValueError(f"train CLI argv must be --flag value pairs, got {argv!r}")
    given = {}
    for flag, value in zip(argv[::2], argv[1::2]):
        if not flag.startswith("--"):
            raise ValueError(f"train CLI argv: expected a --flag, got {flag!r}")
        given[flag[2:].replace("-", "_")] = value
    try:
        return Path(given.pop("train_data_file")), Path(given.pop("output_dir")), given
    except KeyError as missing:
        raise ValueError(f"train CLI argv lacks --{str(missing.args[0]).replace('_', '-')}") from None


def translate_flags(given: dict, flags: dict, loss_flags: dict) -> list:
    """Their flags for the canonical `given`; fields with no flag there are left out (see the module doc)."""
    out = []
    for field, value in sorted(given.items()):
        if field == "loss":
            out += loss_flags[value]
        elif field in flags:
            # The harness writes booleans as JSON (true/false); they go over in Python's spelling, as a
            # user would type them. (train.py parses them with argparse type=bool, which reads every
            # non-empty string, "False" too, as True: that shows in the effective configuration.)
            out += [flags[field], {"true": "True", "false": "False"}.get(value, value)]
    return out


def source_folder() -> Path:
    """PtychoPINN's source folder (installed editable: `make upstream` does), which holds scripts/."""
    import ptycho

    folder = Path(ptycho.__file__).resolve().parent.parent
    if not (folder / "scripts" / "training" / "train.py").is_file():
        raise RuntimeError(f"ptychopinn-tf cli: no scripts/training/train.py beside the ptycho package in {folder}; "
                           "install PtychoPINN editable from its source folder (make upstream does)")
    return folder


def run_command(command: list, output_dir: Path, what: str) -> dict:
    """Run `command` in a scratch folder (train.py writes train_debug.log into its working folder) and
    return the params snapshot of the bundle it wrote in `output_dir`."""
    output_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ptychopinn-cli-") as scratch:
        done = subprocess.run(command, cwd=scratch, env=dict(os.environ), capture_output=True, text=True)
    if done.returncode != 0:
        tail = (done.stdout + done.stderr)[-_OUTPUT_TAIL:]
        raise RuntimeError(f"{what} exited {done.returncode}: {' '.join(command)}\n{tail}")
    return read_bundle_params(output_dir / BUNDLE)


def read_bundle_params(bundle: Path) -> dict:
    """The params.cfg snapshot inside a wts.h5.zip (dill, as both sides write it)."""
    import dill

    if not bundle.is_file():
        raise RuntimeError(f"the train command line wrote no bundle at {bundle}")
    with zipfile.ZipFile(bundle) as archive:
        return dill.loads(archive.read(PARAMS_MEMBER))


def canonical_from_params(params: dict) -> dict:
    """A params.cfg snapshot (legacy keys: 'object.big', 'nepochs', ...) as canonical fields plus the
    same own ("x.") fields the config stage reports."""
    from pinn_parity_ptychopinn.adapters import _ACTIVATION_TO_CANONICAL, tf_loss_name

    def number(key):
        value = params.get(key)
        return None if value is None else int(value)

    out = {"gridsize": number("gridsize"), "neighbor_count": number("neighbor_count"),
           "n_groups": number("n_groups"), "n_filters_scale": number("n_filters_scale"),
           "amp_activation": _ACTIVATION_TO_CANONICAL.get(params.get("amp_activation"), params.get("amp_activation")),
           "batch_size": number("batch_size"), "epochs": number("nepochs"),
           "loss": tf_loss_name(float(params.get("nll_weight", 0.0)), float(params.get("mae_weight", 0.0))),
           "object_big": bool(params.get("object.big"))}
    own = {"nphotons": "nphotons", "intensity_scale_trainable": "intensity_scale.trainable",
           "probe_trainable": "probe.trainable", "nll_weight": "nll_weight", "mae_weight": "mae_weight",
           "N": "N", "model_type": "model_type", "architecture": "architecture", "probe_big": "probe.big",
           "probe_mask": "probe.mask", "pad_object": "pad_object", "probe_scale": "probe_scale"}
    out.update({f"x.{ours}": _json_plain(params[theirs]) for ours, theirs in own.items() if theirs in params})
    return out


def _json_plain(value):
    """numpy scalars to Python ones, so the effective config is JSON like the config stage's."""
    return value.item() if isinstance(value, np.generic) else value


def run_tf_train_cli(argv: list) -> dict:
    data, output_dir, given = parse_canonical_argv(argv)
    script = source_folder() / "scripts" / "training" / "train.py"
    command = [sys.executable, str(script), "--train_data_file", str(data.resolve()),
               "--output_dir", str(output_dir.resolve()), *translate_flags(given, TF_FLAGS, TF_LOSS_FLAGS)]
    return canonical_from_params(run_command(command, output_dir, "ptychopinn-tf train command line"))


def run_torch_train_cli(argv: list) -> dict:
    from pinn_parity_ptychopinn.adapters import with_diff3d_key

    data, output_dir, given = parse_canonical_argv(argv)
    with tempfile.TemporaryDirectory(prefix="ptychopinn-torch-cli-data-") as folder:
        renamed = with_diff3d_key(data, Path(folder))
        command = [sys.executable, "-m", "ptycho_torch.train", "--train_data_file", str(renamed),
                   "--output_dir", str(output_dir.resolve()), *TORCH_OPERATIONAL_FLAGS,
                   *translate_flags(given, TORCH_FLAGS, TORCH_LOSS_FLAGS)]
        params = run_command(command, output_dir, "ptychopinn-torch train command line")
    return canonical_from_params(params)
