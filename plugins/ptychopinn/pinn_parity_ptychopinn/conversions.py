"""What both PtychoPINN adapters share: canonical <-> PtychoPINN names, layouts and signs, its global
state (ptycho.params.cfg), and the stitching both of its workflows call. No numerics of the harness.

PtychoPINN is imported inside the functions: importing this module loads no framework.
"""

from __future__ import annotations

import contextlib
import io
import subprocess
import zipfile
from pathlib import Path

import numpy as np

SUPPORTED_N = (64, 128, 256)
"""ptycho.config.config.ModelConfig.N is Literal[64, 128, 256]; its TF model refuses N = 32."""

# canonical loss name -> the TF TrainingConfig weights that select it (nll_weight, mae_weight)
TF_LOSS = {"poisson": {"nll_weight": 1.0, "mae_weight": 0.0}, "mae": {"nll_weight": 0.0, "mae_weight": 1.0}}
# canonical loss name -> torch factory overrides (ModelConfig.loss_function, TrainingConfig.torch_loss_mode)
TORCH_LOSS = {
    "poisson": {"loss_function": "Poisson", "torch_loss_mode": "poisson"},
    "mae": {"loss_function": "MAE", "torch_loss_mode": "mae"},
}
# PtychoPINN's amp_activation names -> canonical ones (the bridge normalises torch's silu to swish)
ACTIVATION_TO_TORCH = {"swish": "silu"}  # canonical -> ptycho_torch's name, where they differ
ACTIVATION_TO_CANONICAL = {
    "sigmoid": "sigmoid",
    "softplus": "softplus",
    "swish": "swish",
    "silu": "swish",
    "relu": "relu",
}


def require_n(n: int, what: str) -> None:
    if n not in SUPPORTED_N:
        raise ValueError(f"{what}: PtychoPINN supports patch size N in {SUPPORTED_N}, got N = {n}")


def diffraction_size(data_path) -> int:
    """N of the case's file (its diffraction patterns are (M, N, N))."""
    with np.load(data_path) as f:
        return int(f["diffraction"].shape[-1])


def tf_loss_name(nll_weight: float, mae_weight: float) -> str:
    """Canonical loss name for the TF weights; 'mixed' where both are on (no canonical counterpart)."""
    if nll_weight > 0 and mae_weight == 0:
        return "poisson"
    if mae_weight > 0 and nll_weight == 0:
        return "mae"
    return f"mixed(nll={nll_weight},mae={mae_weight})"


def canonical_from_tf_training_config(cfg) -> dict:
    """The canonical fields a ptycho.config.config.TrainingConfig holds, by canonical name."""
    model = cfg.model
    return {
        "gridsize": int(model.gridsize),
        "neighbor_count": int(cfg.neighbor_count),
        "n_groups": None if cfg.n_groups is None else int(cfg.n_groups),
        "n_filters_scale": int(model.n_filters_scale),
        "amp_activation": ACTIVATION_TO_CANONICAL.get(model.amp_activation, model.amp_activation),
        "batch_size": int(cfg.batch_size),
        "epochs": int(cfg.nepochs),
        "loss": tf_loss_name(cfg.nll_weight, cfg.mae_weight),
        "object_big": bool(model.object_big),
    }


def own_fields(obj, names) -> dict:
    return {f"x.{name}": plain(getattr(obj, name)) for name in names}


def plain(value):
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return list(value)
    return value


def _take_fields(fields: dict, pairs) -> dict:
    """Pop each canonical name of `pairs` ((ours, theirs), ...) present in `fields`, under their name."""
    return {theirs: fields.pop(ours) for ours, theirs in pairs if ours in fields}


def _take_rest(fields: dict, loss_table: dict, backend: str, what: str) -> dict:
    """Their settings for the canonical loss, if given; any field still left has no counterpart: an error."""
    settings = {}
    if "loss" in fields:
        loss = fields.pop("loss")
        if loss not in loss_table:
            raise ValueError(f"{backend}: no loss setting for {loss!r} (known: {sorted(loss_table)})")
        settings = loss_table[loss]
    if fields:
        raise ValueError(f"{backend}: no {what} for override(s) {sorted(fields)}")
    return dict(settings)


def tf_config_fields(overrides: dict) -> tuple[dict, dict]:
    """Canonical overrides as (ModelConfig kwargs, TrainingConfig kwargs) of ptycho.config.config.

    A canonical field with no counterpart there (seed, learning_rate, adam_epsilon) is an error."""
    o = dict(overrides)
    model_kw = _take_fields(
        o, [(name, name) for name in ("gridsize", "n_filters_scale", "amp_activation", "object_big")]
    )
    train_kw = _take_fields(
        o,
        [
            ("neighbor_count", "neighbor_count"),
            ("n_groups", "n_groups"),
            ("batch_size", "batch_size"),
            ("epochs", "nepochs"),
        ],
    )
    train_kw.update(_take_rest(o, TF_LOSS, "ptychopinn-tf", "TrainingConfig/ModelConfig field"))
    return model_kw, train_kw


TORCH_DEFAULT_N_GROUPS = 512
"""create_training_payload has no default for n_groups; ptycho_torch/train.py's cli_main passes its --n_images
flag, whose default is 512."""


def torch_factory_overrides(overrides: dict) -> dict:
    """Canonical overrides as the overrides dict of ptycho_torch.config_factory.create_training_payload
    (the factory maps neighbor_count to K and max_epochs to epochs itself)."""
    o = dict(overrides)
    factory = _take_fields(
        o,
        [
            ("gridsize", "gridsize"),
            ("neighbor_count", "neighbor_count"),
            ("n_groups", "n_groups"),
            ("batch_size", "batch_size"),
            ("epochs", "max_epochs"),
            ("n_filters_scale", "n_filters_scale"),
            ("amp_activation", "amp_activation"),
            ("object_big", "object_big"),
        ],
    )
    factory.update(_take_rest(o, TORCH_LOSS, "ptychopinn-torch", "factory field"))
    factory.setdefault("n_groups", TORCH_DEFAULT_N_GROUPS)
    return factory


TF_OWN = ("nphotons", "intensity_scale_trainable", "probe_trainable", "nll_weight", "mae_weight")
TF_MODEL_OWN = ("N", "model_type", "architecture", "probe_big", "probe_mask", "pad_object", "probe_scale")


def grouping_inputs(xcoords, ycoords, config: dict, inference: bool):
    """Positions, gridsize, K, nsamples and seed for generate_grouped_data from the canonical config."""
    x = np.asarray(xcoords, np.float64).ravel()
    y = np.asarray(ycoords, np.float64).ravel()
    m = x.size
    gridsize = int(config.get("gridsize", 1))
    k = int(config.get("neighbor_count", 4))
    n_groups = config.get("n_groups")
    nsamples = m if (inference or n_groups is None) else int(n_groups)
    seed = config.get("seed", 42)
    return x, y, gridsize, k, nsamples, None if seed is None else int(seed)


# generate_grouped_data indexes diffraction patterns too; grouping never reads their values.
DUMMY_N = 4


def dummy_arrays(m: int):
    return (np.ones((m, DUMMY_N, DUMMY_N), np.float32), np.ones((DUMMY_N, DUMMY_N), np.complex64), np.arange(m))


def canonical_groups(grouped: dict, xcoords, ycoords) -> dict:
    """PtychoPINN's grouped dict -> canonical groups.

    Theirs: nn_indices (B, C) int32; coords_nn (B, 1, 2, C) with row 0 = x, row 1 = y;
    coords_offsets (B, 1, 2, 1) the group centre (mean); coords_relative (B, 1, 2, C) =
    local_offset_sign * (coords_nn - centre), local_offset_sign = -1 (centre - position).
    Ours: (B, C, 2) as (x, y), offsets = position - centre."""
    from ptycho import raw_data

    idx = np.ascontiguousarray(grouped["nn_indices"], np.int64)
    coords = np.moveaxis(np.asarray(grouped["coords_nn"], np.float64)[:, 0], 1, 2)  # (B, 2, C) -> (B, C, 2)
    center = np.asarray(grouped["coords_offsets"], np.float64)[:, 0, :, 0]  # (B, 2)
    relative = np.moveaxis(np.asarray(grouped["coords_relative"], np.float64)[:, 0], 1, 2)
    offsets = relative / raw_data.local_offset_sign  # their sign -> position - centre
    return {"nn_indices": idx, "coords_px": coords, "center_px": center, "offsets_px": offsets}


def their_offsets(offsets_px) -> np.ndarray:
    """Canonical offsets (B, C, 2), position - centre, -> PtychoPINN's coords_relative sign,
    centre - position (ptycho.raw_data.local_offset_sign = -1), float32, still (B, C, 2)."""
    return (np.asarray(offsets_px, np.float64) * raw_data_sign()).astype(np.float32)


def raw_data_sign() -> int:
    from ptycho import raw_data

    return int(raw_data.local_offset_sign)


STITCH_M = 20
"""M of ptycho.tf_helper.reassemble_position (the central M x M of each patch is stitched): the default of
the stitching both workflows call (ptycho.workflows.components.reassemble_cdi_image and
ptycho_torch.workflows.components._reassemble_cdi_image_torch, M = 20)."""


def set_legacy_params(n: int, gridsize: int, object_big: bool) -> None:
    """Set PtychoPINN's global ptycho.params.cfg for one call, through its own update_legacy_dict.

    Their TF layers and helpers read N, gridsize, object.big, the padded size and probe settings from
    that global dict, which create_training_payload (the torch config factory) also writes: set it
    explicitly before every call so one case's values never leak into the next."""
    from ptycho import params
    from ptycho.config.config import ModelConfig, TrainingConfig, update_legacy_dict

    update_legacy_dict(params.cfg, TrainingConfig(model=ModelConfig(N=n, gridsize=gridsize, object_big=object_big)))


def torch_configs(n: int, gridsize: int, object_big: bool, **model_fields):
    """(ModelConfig, DataConfig) of ptycho_torch.config_params with the fields create_training_payload sets
    from its overrides (N, grid_size, C, object_big, C_forward = C_model = C, and `model_fields` such as
    n_filters_scale, amp_activation, or a switched physics_forward_mode); every other field keeps its
    dataclass default, as there."""
    from ptycho_torch.config_params import DataConfig, ModelConfig

    c = gridsize * gridsize
    return (
        ModelConfig(object_big=bool(object_big), C_forward=c, C_model=c, **model_fields),
        DataConfig(N=n, grid_size=(gridsize, gridsize), C=c),
    )


def torch_forward_scale(b: int, model_config) -> tuple:
    """ForwardModel's trailing arguments for a batch of `b` at output scale 1: (output_scale_factor,) in
    'amplitude' mode; in 'rectangular_scaled' mode RectangularScaledDiffraction indexes s1, s2 by experiment and
    broadcasts the scale per sample, as PtychoPINN_Lightning.compute_loss passes them: a (B, 1, 1, 1) scale and
    experiment ids (one dataset: zeros)."""
    import torch

    if model_config.physics_forward_mode != "rectangular_scaled":
        return (torch.tensor(1.0),)
    return torch.ones((b, 1, 1, 1)), torch.zeros(b, dtype=torch.long)


def torch_amplitude(out, model_config) -> np.ndarray:
    """ForwardModel's output as the canonical amplitude (B, C, N, N) float32: itself in 'amplitude' mode; in
    'rectangular_scaled' mode it is an intensity sum_p |F{P O}|^2 (RectangularScaledDiffraction), so its square
    root (a change of unit, like a sign or a layout)."""
    values = out.numpy().astype(np.float32)
    if model_config.physics_forward_mode == "rectangular_scaled":
        values = np.sqrt(values)
    return np.ascontiguousarray(values)


def shape_entry(shape, dtype) -> list:
    return [[int(d) for d in shape], str(np.dtype(dtype))]


def stitch_with_reassemble_position(patches, xcoords, ycoords) -> dict:
    """ptycho.tf_helper.reassemble_position on (P, N, N) patches at their scan positions.

    Its canvas is centred on the mean position (com) with side S = M + 2 * even(ceil(max |p - com|)); canvas
    pixel i is scan coordinate com + i - S/2, so origin_px (x, y) = com - S/2 (fractional).

    USE_XLA_TRANSLATE (tf_helper.should_use_xla) picks its translation, but shift_and_sum is a tf.function
    that reads it when traced, once per signature: a trace made with XLA on would serve a later call with
    XLA off. Glue: where XLA is off, the call runs with tf.functions executed eagerly (the same operations,
    read at the call; no trace is left behind for the calls with XLA on)."""
    from ptycho import tf_helper

    patches = np.asarray(patches, np.complex64)
    n = patches.shape[-1]
    require_n(n, "stitch")
    set_legacy_params(n, 1, False)
    positions = np.stack([np.asarray(xcoords, np.float64), np.asarray(ycoords, np.float64)], -1)  # (P, 2) x, y
    with contextlib.redirect_stdout(io.StringIO()), _eager_unless(tf_helper.should_use_xla()):
        obj = np.asarray(tf_helper.reassemble_position(patches[..., None], positions[:, None, None, :], M=STITCH_M))
    side = obj.shape[0]
    com = positions.astype(np.float32).mean(0).astype(np.float64)  # reassemble_position centres in float32
    return {"object": obj[..., 0].astype(np.complex64), "origin_px": com - side / 2}


@contextlib.contextmanager
def _eager_unless(traced: bool):
    """tf.functions run eagerly inside, unless `traced` (then nothing changes); restored after."""
    import tensorflow as tf

    if traced:
        yield
        return
    before = tf.config.functions_run_eagerly()
    tf.config.run_functions_eagerly(True)
    try:
        yield
    finally:
        tf.config.run_functions_eagerly(before)


def raw_data_arrays(raw) -> dict:
    """A ptycho.raw_data.RawData as the canonical dataset: diff3d is already (M, N, N)."""
    return {
        "diffraction": np.asarray(raw.diff3d, np.float32),
        "xcoords": np.asarray(raw.xcoords, np.float64),
        "ycoords": np.asarray(raw.ycoords, np.float64),
        "probe": np.asarray(raw.probeGuess, np.complex64),
    }


def with_diff3d_key(path, folder) -> Path:
    """`path` itself when it holds the key 'diff3d', else a copy in `folder` with 'diffraction' renamed to it:
    ptycho.raw_data.RawData.from_file (which the torch CLI and loader call) reads 'diff3d' only."""
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    if "diff3d" in arrays:
        return Path(path)
    arrays["diff3d"] = arrays.pop("diffraction")
    renamed = Path(folder) / Path(path).name
    np.savez(renamed, **arrays)
    return renamed


def harness_cli_args(argv) -> tuple[Path, Path, dict]:
    """(train data file, output dir, {canonical field: value text}) of the harness's train command line:
    `--train-data-file F --output-dir D --<field> VALUE ...` (parity.stages.cli)."""
    args = list(argv)
    if len(args) % 2:
        raise ValueError(f"train CLI arguments must be flag/value pairs, got {args}")
    given = {flag[2:].replace("-", "_"): value for flag, value in zip(args[::2], args[1::2])}
    # absolute: the command lines run in their output folder (run_command)
    return Path(given.pop("train_data_file")).resolve(), Path(given.pop("output_dir")).resolve(), given


def their_flags(given: dict, flag_of: dict, backend: str) -> list:
    """Their command-line flags for the canonical fields `given`; a field with no flag of theirs is an error."""
    missing = sorted(set(given) - set(flag_of))
    if missing:
        raise ValueError(f"{backend}: its train command line has no flag for {missing}")
    argv = []
    for field, value in sorted(given.items()):
        flag = flag_of[field]
        argv += flag(value) if callable(flag) else [flag, value]
    return argv


def their_script(relative: str, backend: str) -> Path:
    """scripts/<relative> of the PtychoPINN source tree ptycho was installed from (their command lines live
    there, not in the package)."""
    import ptycho

    script = Path(ptycho.__file__).resolve().parents[1] / "scripts" / relative
    if not script.is_file():
        raise FileNotFoundError(
            f"{backend}: no {script}: PtychoPINN's command lines ship with its source checkout (make upstream "
            "installs one)"
        )
    return script


def written_files(folder) -> list[str]:
    """The files an inference command line wrote into `folder`, sorted: its results (the reconstruction images).
    Logs and working folders are left out (torch's barycentric route keeps a memory-mapped copy of the scan
    under barycentric_workspace/)."""
    return sorted(p.name for p in Path(folder).iterdir() if p.is_file() and p.suffix != ".log")


def run_command(command: list, what: str, cwd) -> None:
    """Run one of PtychoPINN's command lines in `cwd` (they write logs such as train_debug.log into the working
    folder: the run's own output folder, never the caller's); a non-zero exit raises with the end of what
    it printed."""
    Path(cwd).mkdir(parents=True, exist_ok=True)
    done = subprocess.run(command, capture_output=True, text=True, cwd=cwd)
    if done.returncode != 0:
        tail = (done.stdout + done.stderr)[-3000:]
        raise RuntimeError(f"{what} exited {done.returncode}: {' '.join(map(str, command))}\n{tail}")


BUNDLE_PARAMS = "diffraction_to_obj/params.dill"
"""The params.cfg snapshot inside the wts.h5.zip both train command lines write (ptycho.model_manager's
format; ptycho_torch's bundle writer keeps it): their effective configuration."""


def bundle_params(output_dir) -> dict:
    import dill

    with zipfile.ZipFile(Path(output_dir) / "wts.h5.zip") as bundle:
        return dill.loads(bundle.read(BUNDLE_PARAMS))


def canonical_from_legacy_params(params: dict) -> dict:
    """Canonical fields (and own fields under x.) of a legacy ptycho.params.cfg dict (update_legacy_dict's
    names: nepochs, object.big, intensity_scale.trainable, ...)."""
    out = {
        "gridsize": int(params["gridsize"]),
        "neighbor_count": int(params["neighbor_count"]),
        "n_groups": None if params.get("n_groups") is None else int(params["n_groups"]),
        "n_filters_scale": int(params["n_filters_scale"]),
        "amp_activation": ACTIVATION_TO_CANONICAL.get(params["amp_activation"], params["amp_activation"]),
        "batch_size": int(params["batch_size"]),
        "epochs": int(params["nepochs"]),
        "loss": tf_loss_name(params["nll_weight"], params["mae_weight"]),
        "object_big": bool(params["object.big"]),
    }
    out.update(
        {
            "x.N": int(params["N"]),
            "x.intensity_scale_trainable": bool(params["intensity_scale.trainable"]),
            "x.nphotons": float(params["nphotons"]),
        }
    )
    return out


def normalized_scan(diffraction) -> tuple[np.ndarray, float]:
    """ptycho.raw_data.normalize_data on a scan's amplitudes (M, N, N): the normalised amplitudes and the
    factor it applied (both sides' inputs go through it)."""
    from ptycho.raw_data import normalize_data

    x = np.asarray(diffraction, np.float32)
    normalized = normalize_data({"diffraction": x}, x.shape[-1])
    return normalized, float(np.sum(normalized, dtype=np.float64) / np.sum(x, dtype=np.float64))


def default_nphotons() -> float:
    """ptycho.config.config.TrainingConfig's nphotons, which both factories start from (1e9)."""
    from ptycho.config.config import ModelConfig, TrainingConfig

    return float(TrainingConfig(model=ModelConfig()).nphotons)
