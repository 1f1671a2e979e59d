"""Formula-injection neutralisation, its exact reversal, and COPY-identical CSV lines."""

import pytest

from inventory.csvio.cells import csv_line, neutralise, restore, text


@pytest.mark.parametrize("value", ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"])
def test_formula_starts_are_prefixed_and_restored(value):
    assert neutralise(value) == "'" + value
    assert restore(neutralise(value)) == value


@pytest.mark.parametrize("value", ["'=quoted", "''+x", "'-neg", "'\tx"])
def test_text_that_already_looks_neutralised_survives_the_round_trip(value):
    assert neutralise(value) == "'" + value
    assert restore(neutralise(value)) == value


@pytest.mark.parametrize("value", ["plain", "", "'quoted", "a=b", "'plain", "''"])
def test_other_text_is_untouched(value):
    assert neutralise(value) == value
    assert restore(value) == value


def test_cells_of_other_types():
    assert text(True) == "true"
    assert text(False) == "false"
    assert text(-3) == "-3"  # a number is not a formula
    assert text("-3") == "'-3"


@pytest.mark.parametrize(
    ("cells", "line"),
    [
        (["a", "b"], "a,b\n"),
        ([None, ""], ',""\n'),
        (['say "hi"', "x,y"], '"say ""hi""","x,y"\n'),
        (["line\nbreak", "carriage\rreturn"], '"line\nbreak","carriage\rreturn"\n'),
    ],
)
def test_lines_are_written_as_postgresql_copy_writes_them(cells, line):
    assert csv_line(cells) == line
