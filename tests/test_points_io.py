"""Tests of the points CSV header checks: which model a header names, and how it
differs from a model's parameters."""

from __future__ import annotations

from pathlib import Path

import pytest

from sampler.space import PMSSM11_NAMES
from scynet_al.errors import InputError
from scynet_al.points_io import closest_model, header_columns, model_of_header

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
