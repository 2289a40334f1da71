"""Exceptions raised by the sampler package.

The sampler must not import the application package, so its errors have their own
root; the command-line interface treats it like the application's own error family.
"""

from __future__ import annotations


class SamplerError(Exception):
    """Root of every error raised by the sampler package."""


class SpaceError(SamplerError, ValueError):
    """Raised when a parameter space is ill-defined or a point lies outside it."""


class ProposalError(SamplerError):
    """Raised when a proposal strategy is misconfigured beyond recovery."""
