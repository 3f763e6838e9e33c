"""The contract's constants (backends/common/contract.py) are the numbers docs/spec.md writes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from backends.common import contract

SPEC = (Path(__file__).resolve().parents[2] / "docs" / "spec.md").read_text()


def _section(number: int) -> str:
    start = SPEC.index(f"\n## {number}. ")
    return SPEC[start : SPEC.index("\n## ", start + 1)]


@pytest.mark.parametrize(
    "name, section, phrase, value",
    [
        ("MERGE_EPSILON", 8, "(Σ_c T(W, +d_c) + {})", "1e-3"),
        ("LOSS_EPSILON", 9, "(I + {})/(X² + {})", "1e-6"),
        ("ADAM_BETA1", 10, "β1 {},", "0.9"),
        ("ADAM_BETA2", 10, "β2 {},", "0.999"),
        ("MASK_FLOOR", 11, "window sum\nis below {} the object is 0", "1e-3"),
    ],
)
def test_each_constant_is_the_number_its_spec_section_writes(name, section, phrase, value):
    assert phrase.format(value, value) in _section(section)
    assert getattr(contract, name) == float(value)
    comment = re.search(rf"^{name} = [^#]*# §(\d+):", Path(contract.__file__).read_text(), re.MULTILINE)
    assert comment and int(comment.group(1)) == section
