"""The command registry: one module per verb, imported only when its verb is used.

Every module ``scynet_al/commands/<verb>.py`` offers
``add_arguments(parser: argparse.ArgumentParser) -> None`` and
``main(args: argparse.Namespace) -> int`` (the exit code). Heavy packages (torch,
dask) are imported inside ``main``, so ``scynet-al --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
from types import ModuleType

#: Verb to the one-line help shown by ``scynet-al --help``, in display order.
VERBS: dict[str, str] = {
    "run": "start a campaign from a config, or continue it in an existing store",
    "resume": "continue a campaign from its store after a stop or crash",
    "status": "show how far a campaign is (safe while it runs)",
    "plot": "draw a campaign's learning curves, chi2 distribution and mass plane",
    "predict": "evaluate a trained surrogate on points from a CSV file",
    "export": "export a trained surrogate (torch.export and ONNX)",
    "simulate": "simulate single points with a backend, outside any campaign",
}


def load_command(verb: str) -> ModuleType | None:
    """The module implementing ``verb``, or None when this build does not have it.

    Raises:
        KeyError: ``verb`` is not a known verb.
        ImportError: The module exists but one of its own imports fails.
    """
    if verb not in VERBS:
        raise KeyError(verb)
    name = f"{__name__}.{verb}"
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name == name:
            return None
        raise


def whole_number(text: str) -> int:
    """An option's whole number of at least zero (a count, a seed), for argparse.

    Raises:
        argparse.ArgumentTypeError: Not a whole number, or negative; argparse
            reports it with the option's name.
    """
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative; give a number >= 0")
    return value
