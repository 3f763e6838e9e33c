"""Check labels are data: code reads their fields, only messages and reports print them."""

import pytest

from parity.verdict import Check, Comparison, check_of

from .factories import make_comparison

LABELS = [
    (Check("torch", "tf"), "torch~tf", "torch-tf"),
    (Check("tf", "spec", "inference"), "tf~spec[inference]", "tf-spec-inference"),
    (Check("torch", "tf", via="tf"), "torch(tf bundle)~tf", "torch-tf-tf"),
    (Check("tf", "referee"), "tf~referee", "tf-referee"),
    (Check("tf", "golden"), "tf~golden", "tf-golden"),
    (Check("ledger"), "ledger", "ledger"),
]


@pytest.mark.parametrize(("check", "text", "slug"), LABELS, ids=[text for _, text, _ in LABELS])
def test_a_check_prints_as_the_familiar_label_and_reads_back(check, text, slug):
    assert str(check) == text and check.slug == slug
    assert Check.from_dict(check.to_dict()) == check
    assert Check.from_text(text) == check  # records written before "check_parts" existed


def test_the_sides_printed_beside_the_values():
    assert (Check("torch", "tf", via="tf").side_a, Check("torch", "tf").side_b) == ("torch(tf bundle)", "tf")
    assert Check("raises").side_b == "reference"


def test_renamed_replaces_whole_names_only():
    check = Check("mutant", "tf", via="mutant")
    assert check.renamed("mutant", "<sut>") == Check("<sut>", "tf", via="<sut>")
    assert Check("mutant_2", "tf").renamed("mutant", "<sut>") == Check("mutant_2", "tf")


def test_a_record_keeps_the_printed_label_and_the_parts():
    record = make_comparison("gs1", "forward", True, check=Check("tf", "spec", "inference")).to_dict()
    assert record["check"] == "tf~spec[inference]"
    assert record["check_parts"] == {"left": "tf", "right": "spec", "variant": "inference", "via": ""}
    assert Comparison.from_dict(record).check == Check("tf", "spec", "inference")
    old = {key: value for key, value in record.items() if key != "check_parts"}
    assert check_of(old) == Check("tf", "spec", "inference")


def test_a_label_string_is_refused_where_a_check_belongs():
    with pytest.raises(ValueError, match="Comparison.check must be a Check, got 'tf~torch'"):
        make_comparison("gs1", "forward", True, check="tf~torch")
    with pytest.raises(ValueError, match="not a check label"):
        Check.from_text("a~b~c")
