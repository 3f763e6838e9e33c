"""The PtychoPINN adapters under the profile's switches (profile.json "switches"): USE_XLA_TRANSLATE on the TF
side, physics_forward_mode on the torch side, set as the harness sets them (Adapter.switched). Run in
.venv-upstream only:

.venv-upstream/bin/python -m pytest plugins/ptychopinn/tests/test_switches.py -p no:cacheprovider
"""

from types import MappingProxyType

import numpy as np
import pytest

pytest.importorskip("ptycho", reason="PtychoPINN (ptycho) is not installed: run in .venv-upstream")

from adapters.base import Switches  # noqa: E402
from pinn_parity_ptychopinn import adapters as a  # noqa: E402

XLA_OFF = Switches(env=MappingProxyType({"USE_XLA_TRANSLATE": "0"}))
RECTANGULAR = Switches(options=MappingProxyType({"physics_forward_mode": "rectangular_scaled"}))


def _dots():
    """Two patches, each a single bright pixel at its centre (N/2, N/2), at (0, 0) and (12, 4)."""
    patches = np.zeros((2, 64, 64), np.complex64)
    patches[:, 32, 32] = (1, 1j)
    return patches, np.array([0.0, 12.0]), np.array([0.0, 4.0])


def _landed(out) -> list:
    """Where each dot lands, in scan coordinates (x, y): the canvas index plus origin_px."""
    obj, origin = out["object"], out["origin_px"]
    found = []
    for part in (obj.real, obj.imag):
        row, col = np.unravel_index(np.argmax(np.abs(part)), obj.shape)
        found.append((float(origin[0] + col), float(origin[1] + row)))
    return found


def test_tf_stitch_reads_use_xla_translate_at_the_call_although_it_was_traced_with_xla_on():
    """shift_and_sum is a tf.function that reads the switch when traced: the adapter runs it eagerly while XLA is
    off, so the switch takes effect after a trace with XLA on, and that trace still serves the calls after.
    With XLA off their stitch places each patch at 2 mean - position (translate_core negates the shift,
    tf_helper.py:798, and _translate_images_simple subtracts it again, :203): the split the variant finds."""
    tf = a.PtychoPINNTF()
    patches, x, y = _dots()
    assert _landed(tf.stitch(patches, x, y)) == [(0.0, 0.0), (12.0, 4.0)]  # traced, XLA on
    with tf.switched(XLA_OFF):
        assert _landed(tf.stitch(patches, x, y)) == [(12.0, 4.0), (0.0, 0.0)]
    assert _landed(tf.stitch(patches, x, y)) == [(0.0, 0.0), (12.0, 4.0)]


def test_tf_translation_layer_ignores_use_xla_translate():
    """Translation forces use_xla = True (tf_helper.py:830): the translation stage is the same bit for bit."""
    rng = np.random.default_rng(1)
    images = (rng.standard_normal((2, 1, 64, 64)) + 1j * rng.standard_normal((2, 1, 64, 64))).astype(np.complex64)
    shifts = rng.uniform(-8, 8, (2, 1, 2)).astype(np.float32)
    tf = a.PtychoPINNTF()
    with tf.switched(XLA_OFF):
        switched = tf.translate(images, shifts)
    np.testing.assert_array_equal(switched, tf.translate(images, shifts))


def test_torch_rectangular_scaled_forward_gives_the_amplitudes_intensity(monkeypatch):
    """rectangular_scaled runs RectangularScaledDiffraction (an intensity); the adapter compares its square root,
    which is amplitude mode's output to float32 rounding."""
    from ptycho_torch import model

    calls = []
    original = model.RectangularScaledDiffraction.forward

    def counted(self, *args, **kwargs):
        calls.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(model.RectangularScaledDiffraction, "forward", counted)
    rng = np.random.default_rng(2)
    patches = np.zeros((3, 1, 64, 64), np.complex64)
    patches[..., 16:48, 16:48] = rng.uniform(0.5, 1, (3, 1, 32, 32)) * np.exp(1j * rng.uniform(-1, 1, (3, 1, 32, 32)))
    yy, xx = np.mgrid[:64, :64]
    probe = np.exp(-((xx - 32) ** 2 + (yy - 32) ** 2) / 128).astype(np.complex64)
    torch = a.PtychoPINNTorch()
    amplitude = torch.forward(patches, probe, np.zeros((3, 1, 2)), False)["amplitude"]
    assert calls == []
    with torch.switched(RECTANGULAR):
        rectangular = torch.forward(patches, probe, np.zeros((3, 1, 2)), False)["amplitude"]
    assert calls == [1] and rectangular.dtype == np.float32 and rectangular.shape == amplitude.shape
    np.testing.assert_allclose(rectangular, amplitude, rtol=0, atol=1e-5 * amplitude.max())


def test_an_option_an_adapter_does_not_honour_is_refused():
    with pytest.raises(ValueError, match=r"ptychopinn-tf: no option switch \['physics_forward_mode'\]"):
        with a.PtychoPINNTF().switched(RECTANGULAR):
            pass
