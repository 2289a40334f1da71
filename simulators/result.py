"""The record one simulation returns (DESIGN.md "Simulator contract")."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Status = Literal["ok", "rejected", "failed"]
STATUSES: tuple[str, ...] = ("ok", "rejected", "failed")

#: Number of reparametrized features (paper Sect. 4.1-4.2): 14 categories x 4.
N_FEATURES = 56


@dataclass
class SimulationResult:
    """Everything a simulator learned about one parameter point.

    Attributes:
        status: ``ok`` (labels computed), ``rejected`` (fails pre-selection; final)
            or ``failed`` (a tool crashed, timed out or wrote garbage; retried by a
            campaign unless ``extra["retryable"]`` is ``False``).
        reason: Why a point was rejected or failed, in words; empty when ok.
        chi2: Total capped chi-square per centre-of-mass energy in TeV, ``{13: 54.2}``.
        chi2_analysis: Per energy, chi-square per analysis name.
        signal: Per energy, per ``"analysis/SR"``: ``[n_signal, n_signal_error]``
            expected events.
        chosen_regions: Per energy, per analysis: the SR names chosen by the
            combination (one per disjoint group).
        masses: Key masses by PDG code (GeV, SLHA signs), e.g. ``{1000021: 1510.0}``.
        features: The 56 reparametrized features in their documented order, or
            ``None`` when not computed.
        timings: Wall time per stage in seconds, ``{"spectrum": 0.01, ...}``.
        simulator: Backend name, e.g. ``"builtin"``.
        version: Backend version string.
        extra: Free-form details (e.g. stdout tail of a failed tool).
    """

    status: Status
    reason: str = ""
    chi2: dict[int, float] = field(default_factory=dict)
    chi2_analysis: dict[int, dict[str, float]] = field(default_factory=dict)
    signal: dict[int, dict[str, list[float]]] = field(default_factory=dict)
    chosen_regions: dict[int, dict[str, list[str]]] = field(default_factory=dict)
    masses: dict[int, float] = field(default_factory=dict)
    features: list[float] | None = None
    timings: dict[str, float] = field(default_factory=dict)
    simulator: str = ""
    version: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")

    @classmethod
    def rejected(cls, reason: str, **kwargs: Any) -> SimulationResult:
        """A point that fails pre-selection."""
        return cls(status="rejected", reason=reason, **kwargs)

    @classmethod
    def failed(cls, reason: str, **kwargs: Any) -> SimulationResult:
        """A point whose simulation broke."""
        return cls(status="failed", reason=reason, **kwargs)

    def to_json(self) -> dict[str, Any]:
        """JSON-friendly dict: integer keys (energies, PDG codes) become strings."""
        data = asdict(self)
        for key in ("chi2", "chi2_analysis", "signal", "chosen_regions", "masses"):
            data[key] = {str(k): v for k, v in data[key].items()}
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SimulationResult:
        """Inverse of :meth:`to_json`."""
        data = dict(data)
        for key in ("chi2", "chi2_analysis", "signal", "chosen_regions", "masses"):
            data[key] = {int(k): v for k, v in data.get(key, {}).items()}
        return cls(**data)
