"""Signal-region selections of the paper's searches, one module per analysis.

:data:`ANALYSES` lists the implemented analyses by their CheckMATE name; a run's
signal-region catalogue should be cut down to :func:`implemented` so that no
analysis is counted whose selection does not exist here.
"""

from __future__ import annotations

import importlib

from simulators.analyses.common import Analysis

_MODULES = (
    "atlas_1605_03814",
    "atlas_1604_07773",
    "atlas_conf_2015_076",
    "atlas_conf_2015_067",
    "atlas_1602_09058",
    "cms_pas_sus_15_011",
    "atlas_1405_7875",
    "atlas_1407_0583",
    "atlas_1502_01518",
    "atlas_1402_7029",
)

#: Analysis name to its definition.
ANALYSES: dict[str, Analysis] = {
    name: importlib.import_module(f"simulators.analyses.{name}").ANALYSIS
    for name in _MODULES
}


def implemented(energy_tev: float | None = None) -> list[str]:
    """Names of the implemented analyses, optionally at one energy (TeV)."""
    return [
        name
        for name, analysis in ANALYSES.items()
        if energy_tev is None or abs(analysis.energy_tev - energy_tev) < 0.01
    ]


def analyses_at(energy_tev: float) -> list[Analysis]:
    """The implemented analyses at one centre-of-mass energy (TeV)."""
    return [ANALYSES[name] for name in implemented(energy_tev)]


__all__ = ["ANALYSES", "Analysis", "analyses_at", "implemented"]
