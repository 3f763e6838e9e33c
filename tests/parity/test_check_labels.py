"""Check labels are data: code reads their fields, only messages and reports print them."""

import pytest

from parity.verdict import Check, Comparison, check_of

from .factories import make_comparison

LABELS = [
    (Check("torch_pinn", "tf_pinn"), "torch_pinn~tf_pinn", "torch_pinn-tf_pinn"),
    (Check("tf_pinn", "spec", "inference"), "tf_pinn~spec[inference]", "tf_pinn-spec-inference"),
    (Check("torch_pinn", "tf_pinn", via="tf_pinn"), "torch_pinn(tf_pinn bundle)~tf_pinn", "torch_pinn-tf_pinn-tf_pinn"),
    (Check("tf_pinn", "referee"), "tf_pinn~referee", "tf_pinn-referee"),
    (Check("tf_pinn", "golden"), "tf_pinn~golden", "tf_pinn-golden"),
    (Check("ledger"), "ledger", "ledger"),
]


@pytest.mark.parametrize(("check", "text", "slug"), LABELS, ids=[text for _, text, _ in LABELS])
def test_a_check_prints_as_the_familiar_label_and_reads_back(check, text, slug):
    assert str(check) == text and check.slug == slug
    assert Check.from_dict(check.to_dict()) == check
    assert Check.from_text(text) == check  # records written before "check_parts" existed


def test_the_sides_printed_beside_the_values():
    assert (Check("torch_pinn", "tf_pinn", via="tf_pinn").side_a, Check("torch_pinn", "tf_pinn").side_b) == (
        "torch_pinn(tf_pinn bundle)",
        "tf_pinn",
    )
    assert Check("raises").side_b == "reference"


def test_renamed_replaces_whole_names_only():
    check = Check("mutant", "tf_pinn", via="mutant")
    assert check.renamed("mutant", "<sut>") == Check("<sut>", "tf_pinn", via="<sut>")
    assert Check("mutant_2", "tf_pinn").renamed("mutant", "<sut>") == Check("mutant_2", "tf_pinn")


def test_a_record_keeps_the_printed_label_and_the_parts():
    record = make_comparison("gs1", "forward", True, check=Check("tf_pinn", "spec", "inference")).to_dict()
    assert record["check"] == "tf_pinn~spec[inference]"
    assert record["check_parts"] == {"left": "tf_pinn", "right": "spec", "variant": "inference", "via": ""}
    assert Comparison.from_dict(record).check == Check("tf_pinn", "spec", "inference")
    old = {key: value for key, value in record.items() if key != "check_parts"}
    assert check_of(old) == Check("tf_pinn", "spec", "inference")


def test_a_label_string_is_refused_where_a_check_belongs():
    with pytest.raises(ValueError, match="Comparison.check must be a Check, got 'tf_pinn~torch_pinn'"):
        make_comparison("gs1", "forward", True, check="tf_pinn~torch_pinn")
    with pytest.raises(ValueError, match="not a check label"):
        Check.from_text("a~b~c")
