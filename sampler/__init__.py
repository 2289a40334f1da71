"""Parameter spaces, priors, chi-square regions and proposal strategies."""

from __future__ import annotations

from sampler.errors import SamplerError, SpaceError
from sampler.priors import GaussianPrior, UniformPrior, make_prior
from sampler.regions import REGION_NAMES, ChiSquareRegions
from sampler.space import (
    PMSSM11_NAMES,
    PMSSM19_NAMES,
    ParameterSpace,
    pmssm11,
    pmssm19,
)

__all__ = [
    "PMSSM11_NAMES",
    "PMSSM19_NAMES",
    "REGION_NAMES",
    "ChiSquareRegions",
    "GaussianPrior",
    "ParameterSpace",
    "SamplerError",
    "SpaceError",
    "UniformPrior",
    "make_prior",
    "pmssm11",
    "pmssm19",
]
