"""Simulator backends by name, imported only when asked for.

Every backend is a class whose ``__init__`` only stores settings (keyword arguments
from the config's ``simulator.settings``) and which offers:

- ``name`` and ``version`` (str attributes);
- ``check()``: raise :class:`~simulators.errors.SimulatorConfigError` when the
  backend cannot run here (a missing binary, a bad setting), before any point is
  stored;
- ``describe()``: ``{"energies": [13, ...], "analyses": {13: [names...]},
  "n_features": 56}``, the fixed shape of the labels it returns;
- ``simulate(point, *, seed, workdir) -> SimulationResult``: a pure function of the
  point (canonical names, GeV), the seed and the settings; never raises for a
  point, a failure becomes ``status="failed"`` with its reason.

Instances must pickle: they travel to Dask workers.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from collections.abc import Mapping
from typing import Any

from simulators.errors import SimulatorConfigError

#: Backend name to ``module:class``.
BACKENDS: dict[str, str] = {
    "builtin": "simulators.builtin:BuiltinSimulator",
    "spheno": "simulators.spheno:SPhenoSimulator",
    "checkmate": "simulators.checkmate:CheckMateSimulator",
    "replay": "simulators.replay:ReplaySimulator",
}


def make_simulator(
    backend: str,
    settings: Mapping[str, Any] | None = None,
    *,
    model: str | None = None,
) -> Any:
    """Instantiate a backend by name with its settings.

    Args:
        backend: A name of :data:`BACKENDS`.
        settings: Its keyword settings.
        model: The parameter space the points come from (``"pmssm11"``,
            ``"pmssm19"``); given to a backend that takes a ``model`` setting, so
            that it reads the points as they are meant. None leaves the settings
            as they are.

    Raises:
        MissingSettingError: A setting the backend needs is not given.
        SimulatorConfigError: Unknown backend, settings the backend rejects, or a
            ``model`` setting other than ``model``.
    """
    if backend not in BACKENDS:
        raise SimulatorConfigError(
            f"unknown simulator backend {backend!r}; expected one of {sorted(BACKENDS)}"
        )
    module_name, class_name = BACKENDS[backend].split(":")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise SimulatorConfigError(
            f"simulator backend {backend!r} is not available: {exc}"
        ) from exc
    settings = dict(settings or {})
    accepted = _keyword_names(cls)
    if model is not None and (accepted is None or "model" in accepted):
        settings["model"] = _same_model(settings.get("model"), model)
    if accepted is not None:
        unknown = sorted(set(settings) - accepted)
        if unknown:
            raise SimulatorConfigError(_unknown_message(backend, unknown, accepted))
    missing = [name for name in _required_names(cls) if name not in settings]
    if missing:
        raise MissingSettingError(backend, missing)
    try:
        return cls(**settings)
    except (TypeError, ValueError) as exc:  # a setting of the wrong kind
        raise SimulatorConfigError(f"simulator backend {backend!r}: {exc}") from exc


def _unknown_message(backend: str, unknown: list[str], accepted: set[str]) -> str:
    """Settings the backend does not take: the likely misspelling of each, or the
    keys it does take when none is close."""
    guesses = {k: difflib.get_close_matches(k, sorted(accepted), n=1) for k in unknown}
    text = f"simulator.settings: unknown key(s) {unknown} for backend {backend!r}"
    if all(guesses.values()):
        meant = "; ".join(f"{k}: a misspelling of {g[0]}?" for k, g in guesses.items())
        return f"{text} ({meant})"
    return f"{text}; it accepts {sorted(accepted)}"


def _same_model(setting: Any, model: str) -> str:
    """``model``, unless the settings name another one (then the two disagree)."""
    if setting is not None and setting != model:
        raise SimulatorConfigError(
            f"simulator.settings.model is {setting!r} but the points come from the "
            f"{model!r} space; drop the setting (the simulator follows space.model)"
        )
    return model


class MissingSettingError(SimulatorConfigError):
    """Raised when a backend is asked for without a setting it cannot do without.

    Attributes:
        backend: The backend's name.
        names: The settings missing, in the order the backend takes them.
    """

    def __init__(self, backend: str, names: list[str]) -> None:
        self.backend, self.names = backend, list(names)
        given = ", ".join(f"simulator.settings.{name}" for name in self.names)
        super().__init__(
            f"simulator backend {backend!r} needs the setting(s) {self.names}; "
            f"give {given} in the config"
        )


def _keyword_names(cls: type) -> set[str] | None:
    """Keyword arguments ``cls(...)`` takes; None if it takes any (``**kwargs``)."""
    parameters = inspect.signature(cls).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    return {p.name for p in parameters if p.kind in _KEYWORD_KINDS}


def _required_names(cls: type) -> list[str]:
    """Keyword arguments ``cls(...)`` cannot do without (they have no default)."""
    return [
        p.name
        for p in inspect.signature(cls).parameters.values()
        if p.kind in _KEYWORD_KINDS and p.default is inspect.Parameter.empty
    ]


_KEYWORD_KINDS = (
    inspect.Parameter.POSITIONAL_OR_KEYWORD,
    inspect.Parameter.KEYWORD_ONLY,
)
