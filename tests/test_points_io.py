"""Tests of the points CSV reader: which model a header names, how it differs from
a model's parameters, and which cells count as numbers."""

from __future__ import annotations

from pathlib import Path

import pytest

from sampler.space import PMSSM11_NAMES, pmssm11
from scynet_al.errors import InputError
from scynet_al.points_io import (
    closest_model,
    header_columns,
    model_of_header,
    read_points_csv,
)

#: The pMSSM19 names that pMSSM11 lacks and the pMSSM11 name that pMSSM19 lacks,
#: read off the two lists of canonical names.
ONLY_19 = ["Ab", "At", "Atau", "mD12", "mD3", "mE12", "mE3", "mU12", "mU3"]
ONLY_11 = ["A"]


@pytest.mark.parametrize(
    ("header", "others", "missing"),
    [
        (list(PMSSM11_NAMES), [], []),
        (list(reversed(PMSSM11_NAMES)), [], []),
        (["id", *PMSSM11_NAMES, "note"], ["id", "note"], []),
        (["M_1", *PMSSM11_NAMES[1:]], ["M_1"], ["M1"]),
        (list(PMSSM11_NAMES[:-1]), [], ["tanb"]),
    ],
)
def test_header_columns_against_pmssm11(header, others, missing):
    assert header_columns(header, "pmssm11") == (others, missing)


def test_a_pmssm11_header_differs_from_pmssm19_in_the_extra_parameters():
    assert header_columns(list(PMSSM11_NAMES), "pmssm19") == (ONLY_11, ONLY_19)


@pytest.mark.parametrize(
    ("header", "model"),
    [
        (list(PMSSM11_NAMES), "pmssm11"),
        # 1 column off pmssm11 (id); 11 off pmssm19 (id, A and the nine missing).
        (["id", *PMSSM11_NAMES], "pmssm11"),
        # 10 off pmssm11 (the nine, tanb missing); 2 off pmssm19 (A, tanb missing).
        ([*PMSSM11_NAMES[:-1], *ONLY_19], "pmssm19"),
    ],
)
def test_closest_model(header, model):
    assert closest_model(header) == model


def test_model_of_header_takes_any_order(tmp_path: Path):
    path = tmp_path / "p.csv"
    path.write_text(",".join(reversed(PMSSM11_NAMES)) + "\n")

    assert model_of_header(path) == "pmssm11"


def test_model_of_header_names_the_columns_of_the_closest_model(tmp_path: Path):
    path = tmp_path / "p.csv"
    path.write_text(",".join(["id", *PMSSM11_NAMES]) + "\n")

    with pytest.raises(InputError) as info:
        model_of_header(path)

    assert str(info.value) == (
        f"{path}: header matches no model; closest is pmssm11 with unknown columns"
        " ['id'] and missing columns []"
    )


def _one_row_csv(path: Path, m1: str) -> Path:
    """A pMSSM-11 points CSV of one row whose M1 cell is ``m1``, the rest 100."""
    path.write_text(",".join(PMSSM11_NAMES) + "\n" + ",".join([m1] + ["100"] * 10))
    return path


@pytest.mark.parametrize("cell", ["1_0", "1__0", "\u0661\u0662", "0x10", "1e", "."])
def test_a_cell_that_float_would_stretch_to_a_number_is_refused(
    tmp_path: Path, cell: str
):
    # float() reads "1_0" as 10 and the Arabic-Indic digits "\u0661\u0662" as 12.
    path = _one_row_csv(tmp_path / "p.csv", cell)

    with pytest.raises(InputError) as info:
        read_points_csv(path, pmssm11(), check_ranges=False)

    assert str(info.value) == f"{path}: line 2, column M1: {cell!r} is not a number"


@pytest.mark.parametrize(
    ("cell", "value"),
    [("250", 250.0), (" -2.5e2 ", -250.0), ("+.25E3", 250.0), ("250.", 250.0)],
)
def test_decimal_numbers_are_read(tmp_path: Path, cell: str, value: float):
    path = _one_row_csv(tmp_path / "p.csv", cell)

    X = read_points_csv(path, pmssm11(), check_ranges=False)

    assert X[0, 0] == value


@pytest.mark.parametrize("cell", ["inf", "-Infinity", "nan"])
def test_infinite_or_nan_cells_are_named_as_such(tmp_path: Path, cell: str):
    path = _one_row_csv(tmp_path / "p.csv", cell)

    with pytest.raises(InputError) as info:
        read_points_csv(path, pmssm11(), check_ranges=False)

    assert str(info.value) == f"{path}: line 2, column M1: {cell!r} is not finite"
