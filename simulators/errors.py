"""Exceptions raised by the simulators package.

The simulators must not import the application package, so their errors have their
own root; the command-line interface treats it like the application's own family.
A failure inside one simulation is never raised to the campaign: it becomes a
stored result with status ``failed`` and its reason.
"""

from __future__ import annotations


class SimulatorError(Exception):
    """Root of every error raised by the simulators package."""


class CatalogueError(SimulatorError, ValueError):
    """Raised when a signal-region catalogue is malformed; names analysis and SR."""


class SLHAError(SimulatorError, ValueError):
    """Raised when an SLHA file is missing, unreadable or lacks a needed block."""


class SimulatorConfigError(SimulatorError, ValueError):
    """Raised at start-up when a backend is misconfigured (e.g. a missing binary)."""
