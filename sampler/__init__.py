"""Parameter spaces, priors, chi-square regions and proposal strategies.

Names are imported on first use, so that importing a light submodule (for example
the error classes, which every command-line verb needs) does not load scipy.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "SamplerError": "sampler.errors",
    "SpaceError": "sampler.errors",
    "GaussianPrior": "sampler.priors",
    "UniformPrior": "sampler.priors",
    "make_prior": "sampler.priors",
    "REGION_NAMES": "sampler.regions",
    "ChiSquareRegions": "sampler.regions",
    "PMSSM11_NAMES": "sampler.space",
    "PMSSM19_NAMES": "sampler.space",
    "ParameterSpace": "sampler.space",
    "pmssm11": "sampler.space",
    "pmssm19": "sampler.space",
    "Proposer": "sampler.proposers",
    "Proposal": "sampler.proposers",
    "light_stop_ordering": "sampler.ordering",
    "OrderedPriorSampler": "sampler.ordering",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'sampler' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
