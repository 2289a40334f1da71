"""scynet-al: active-learning campaigns for neural-network LHC chi-square surrogates."""

from __future__ import annotations

import logging

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())
