"""The exception family of the application package."""

from __future__ import annotations

from sampler.errors import SamplerError
from simulators.errors import SimulatorError


class ScynetError(Exception):
    """Root of every error raised by the application package."""


class ConfigError(ScynetError, ValueError):
    """Raised when a campaign config is invalid; names the file, key and value."""


class StoreError(ScynetError):
    """Raised when a campaign store is foreign, of an unknown version or damaged."""


class ModelError(ScynetError):
    """Raised when a surrogate checkpoint or exported model cannot be used."""


class CheckpointReadError(ModelError):
    """Raised when a checkpoint file exists but cannot be read (damaged or foreign)."""


class FileWriteError(ScynetError, OSError):
    """Raised when a checkpoint or model file cannot be written; names the file."""


class CampaignError(ScynetError):
    """Raised when a campaign cannot start or continue."""


class InputError(ScynetError, ValueError):
    """Raised when a user file (CSV of points) is malformed; names row and column."""


#: Errors that stem from user input or environment and end the CLI with exit code 2.
USER_ERRORS: tuple[type[Exception], ...] = (ScynetError, SamplerError, SimulatorError)
