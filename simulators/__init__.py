"""Turning one SUSY parameter point into LHC labels: spectra, events, chi-square."""

from __future__ import annotations

from simulators.errors import SimulatorError
from simulators.result import SimulationResult

__all__ = ["SimulationResult", "SimulatorError"]
