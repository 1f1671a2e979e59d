"""Formula-injection neutralisation, and its exact reversal on import."""

import pytest

from inventory.csvio.cells import neutralise, restore, text


@pytest.mark.parametrize("value", ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"])
def test_formula_starts_are_prefixed_and_restored(value):
    assert neutralise(value) == "'" + value
    assert restore(neutralise(value)) == value


@pytest.mark.parametrize("value", ["plain", "", "'quoted", "a=b", "'plain"])
def test_other_text_is_untouched(value):
    assert neutralise(value) == value
    assert restore(value) == value


def test_cells_of_other_types():
    assert text(None) == ""
    assert text(True) == "true"
    assert text(False) == "false"
    assert text(-3) == "-3"  # a number is not a formula
    assert text("-3") == "'-3"
