"""The embedded ``builtin`` backend: spectrum → decays → Pythia → detector → χ².

The chain of paper Fig. 2 with pip-installable physics only. Per point: the
built-in spectrum and pre-selection (rejected with the reason), decay tables, an
SLHA card, Pythia 8 events per production group and energy, the parameterised
detector, the signal-region selections, and the combination of the signal
regions' χ² (Appendix A, Sect. 2.2). No exception leaves :meth:`simulate`: a
broken tool, a bad spectrum or a timeout becomes a ``failed`` result.
"""

from __future__ import annotations

import logging
import math
import time
import traceback
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np

from simulators.analyses import ANALYSES, analyses_at
from simulators.errors import SimulatorConfigError
from simulators.events import GenerationSettings, GroupSample, generate
from simulators.result import N_FEATURES, SimulationResult
from simulators.tally import SignalTally

logger = logging.getLogger(__name__)

#: Energies (TeV) with implemented analyses.
SUPPORTED_ENERGIES_TEV = (8.0, 13.0)
#: Version of this backend's physics; bump when its labels change (0.3: adaptive
#: statistics near the exclusion boundary by default).
VERSION = "0.3.0"
#: Default detector replicas per generated event (see :class:`BuiltinSimulator`).
DETECTOR_REPLICAS = 4
#: Refinement generates at most this many first passes' worth of events at once
#: (memory stays a few times that of the first pass).
REFINE_CHUNK_PASSES = 4.0
#: Most growth of a refined point's statistics between two estimates of its error.
REFINE_GROWTH = 4.0
#: Added to a group's seed for its refinement events, so they are independent of
#: the first pass (Pythia takes seeds below 900 000 000).
REFINE_SEED_OFFSET = 450_000_000
#: Sparticle and Higgs masses reported with every result (PDG codes).
REPORTED_MASSES = (
    1000021, 1000001, 1000002, 1000003, 1000004, 2000001, 2000002, 2000003, 2000004,
    1000005, 2000005, 1000006, 2000006, 1000011, 2000011, 1000013, 2000013, 1000015,
    2000015, 1000012, 1000014, 1000016, 1000022, 1000023, 1000025, 1000035, 1000024,
    1000037, 25, 35, 36, 37,
)  # fmt: skip


@dataclass
class EnergySignal:
    """Expected signal of one point at one energy.

    Attributes:
        signal: Analysis name to SR name to ``(n_signal, mc_error)`` expected events.
        cross_sections_fb: Production group to its cross section (fb).
        process_cross_sections_fb: Outgoing hard-process pair ``(pdg1, pdg2)`` to
            its cross section (fb), from the event fractions within each group.
        n_events: Production group to the number of generated events.
        timings: Stage name (events, detector, analysis) to wall time (s).
        cpu_timings: The same stages' CPU time (s).
    """

    signal: dict[str, dict[str, tuple[float, float]]]
    cross_sections_fb: dict[str, float] = field(default_factory=dict)
    process_cross_sections_fb: dict[tuple[int, int], float] = field(
        default_factory=dict
    )
    n_events: dict[str, int] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    cpu_timings: dict[str, float] = field(default_factory=dict)
    tally: SignalTally | None = None

    def update_from_tally(self) -> None:
        """Refresh signal, cross sections and event counts from :attr:`tally`."""
        if self.tally is None:
            return
        self.signal.update(self.tally.as_mapping())
        self.cross_sections_fb = self.tally.cross_sections_fb()
        self.n_events = {g: self.tally.n_events(g) for g in self.tally.groups}


def signal_from_card(
    card: Path,
    masses: Mapping[int, float],
    energy_tev: float,
    *,
    seed: int,
    settings: GenerationSettings | None = None,
    deadline: float | None = None,
    detector_replicas: int = 1,
) -> EnergySignal:
    """Expected signal in every implemented SR at one energy, from an SLHA card.

    Args:
        card: SLHA file with spectrum and complete DECAY blocks.
        masses: PDG code to mass (GeV).
        energy_tev: Centre-of-mass energy (TeV).
        seed: Random seed for events and detector.
        settings: Event statistics.
        deadline: ``time.monotonic()`` value after which generation stops.
        detector_replicas: Detector draws per generated event, averaged (see
            :func:`simulators.detector.reconstruct`).

    Returns:
        The :class:`EnergySignal`; every implemented SR is present (zero signal
        with zero error when nothing was generated).
    """
    analyses = analyses_at(energy_tev)
    luminosity = max((a.luminosity_fb for a in analyses), default=0.0)
    timings: dict[str, float] = {}
    cpu: dict[str, float] = {}
    with _timed(timings, "events", cpu):
        samples = generate(
            card,
            energy_tev,
            luminosity,
            masses,
            seed=seed,
            settings=settings,
            deadline=deadline,
        )
    signal = {a.name: {sr: (0.0, 0.0) for sr in a.signal_regions} for a in analyses}
    tally = SignalTally(analyses, seed=seed)
    if samples:
        events = ak.concatenate([s.events for s in samples])
        fractions = _pass_fractions(
            events, analyses, [seed, 7], timings, cpu, detector_replicas
        )
        start = 0
        for sample in samples:
            stop = start + sample.n_events
            tally.add_events(sample.group, fractions[:, start:stop])
            tally.set_cross_section(
                sample.group, 0, sample.n_events, sample.sigma_fb, sample.sigma_error_fb
            )
            start = stop
    energy_signal = EnergySignal(
        signal=signal,
        process_cross_sections_fb=_process_cross_sections(samples),
        timings=timings,
        cpu_timings=cpu,
        tally=tally,
    )
    energy_signal.update_from_tally()
    return energy_signal


def _pass_fractions(
    events: ak.Array,
    analyses: Sequence[Any],
    seed: Sequence[int],
    timings: dict[str, float],
    cpu: dict[str, float],
    detector_replicas: int = 1,
) -> np.ndarray:
    """Reconstruct events and apply every SR's cuts.

    Returns:
        Share of each event's detector replicas passing each SR, shape
        ``(n_SR, n_events)``, SRs in the order of ``analyses`` and their
        ``signal_regions``. The replicas of one event are not independent
        samples of the generator, so the Monte Carlo error counts each event
        once, weighted by this share.
    """
    from simulators.detector import reconstruct

    with _timed(timings, "detector", cpu):
        objects = reconstruct(
            events, np.random.default_rng(list(seed)), replicas=detector_replicas
        )
    rows = []
    with _timed(timings, "analysis", cpu):
        for analysis in analyses:
            masks = analysis.select(objects)
            for sr in analysis.signal_regions:
                mask = np.asarray(masks[sr], dtype=float)
                rows.append(mask.reshape(objects.replicas, -1).mean(axis=0))
    if not rows:
        return np.zeros((0, len(events)))
    return np.stack(rows)


def _process_cross_sections(
    samples: Sequence[GroupSample],
) -> dict[tuple[int, int], float]:
    result: dict[tuple[int, int], float] = {}
    for sample in samples:
        pairs, counts = np.unique(sample.hard_pairs, axis=0, return_counts=True)
        for (first, second), n in zip(pairs.tolist(), counts.tolist(), strict=True):
            key = (int(first), int(second))
            result[key] = result.get(key, 0.0) + sample.sigma_fb * n / sample.n_events
    return result


@contextmanager
def _timed(
    timings: dict[str, float], stage: str, cpu: dict[str, float] | None = None
) -> Iterator[None]:
    """Add the block's wall time to ``timings[stage]`` and, when given, its CPU
    time to ``cpu[stage]`` (seconds)."""
    start, start_cpu = time.perf_counter(), time.process_time()
    try:
        yield
    finally:
        timings[stage] = timings.get(stage, 0.0) + time.perf_counter() - start
        if cpu is not None:
            cpu[stage] = cpu.get(stage, 0.0) + time.process_time() - start_cpu


def _require(
    name: str,
    value: Any,
    *,
    above: float | None = None,
    least: float | None = None,
    whole: bool = False,
    bound: str | None = None,
) -> None:
    """Refuse a setting unless it is a finite number ``> above`` and ``>= least``.

    Args:
        name: The setting, for the message.
        value: Its value.
        above: Exclusive lower bound, if any.
        least: Inclusive lower bound, if any.
        whole: Require a whole number (``1e3`` counts as one).
        bound: Name of the setting ``least`` comes from, for the message.

    Raises:
        SimulatorConfigError: Names the setting, its value and what it must be.
    """
    number = (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and not (whole and not float(value).is_integer())
    )
    if (
        number
        and (above is None or value > above)
        and (least is None or value >= least)
    ):
        return
    kind = "a whole number" if whole else "a finite number"
    limit = f" > {above:g}" if above is not None else ""
    if least is not None:
        limit = f" >= {bound} ({least:g})" if bound else f" >= {least:g}"
    raise SimulatorConfigError(
        f"builtin simulator: {name} = {value!r}: must be {kind}{limit}"
    )


class BuiltinSimulator:
    """The embedded default backend (see the module docstring).

    Args:
        energies_tev: Centre-of-mass energies (TeV) to simulate, from {8, 13}.
        model: ``"pmssm11"`` or ``"pmssm19"``.
        min_events: Fewest events per generated production group.
        max_events: Most events per production group (default 4000).
        event_factor: Events per group as a multiple of its expected number. The
            paper generates 5 times; the default 8 (with at most 4000 events)
            spends the time the 1 GeV shower cutoff saves on statistics, for
            about 20 % less Monte Carlo noise on χ² near the exclusion boundary
            within 10 s of CPU per point at 13 TeV.
        hadronisation: Run Pythia's hadron level (about 5x slower).
        k_factors: Production group to a K-factor on its LO cross section.
        signal_systematic: Relative signal systematic uncertainty (0.1 = 10 %),
            added in quadrature to the Monte Carlo error. The paper (Appendix A)
            names a total signal systematic without giving its size; 10 % is a
            typical acceptance uncertainty. It matters: with the log-normal
            nuisance a large signal's χ² saturates at roughly (ln(s/n))²/r² for a
            total relative error r, so an 800 GeV gluino reaches the cap of 100
            with 10 % but stays near 95 with 20 %.
        electroweak_threshold_gev: Electroweak production only below this m(χ̃⁰₁).
        electroweak_energies_tev: Energies at which electroweak production runs.
        skip_below_events: Groups expecting fewer events are not generated.
        timeout_s: Wall-time limit of one point's event generation (s).
        compute_features: Compute the 56 reparametrized features.
        catalogue: Signal-region catalogue file; default the shipped one.
        cap: Cap on each energy's total χ² (paper: 100).
        detector_replicas: Draws of jet smearing, b/τ-tagging and the missing-E_T
            soft term per generated event, averaged: the same expectation with
            less detector noise on χ², at the cost of running the selections on
            that many copies of the events.
        refine_target_error: Adaptive statistics: a point whose first χ² lies in
            ``refine_chi2_window`` gets more events until the Monte Carlo error
            of its χ² (estimated by bootstrapping the generated events) is below
            this (χ² units); ``None`` or 0 switches it off. Near the exclusion
            boundary the first pass leaves an error of about 5 at 13 TeV, so 0.5
            needs about 100 times the events: several minutes for those points,
            a few per cent of a prior scan, while the others keep their cost.
        refine_chi2_window: ``(low, high)`` first-pass χ² range that is refined.
        refine_max_factor: Most events of a refined point, as a multiple of its
            first pass.
        refine_max_seconds: Wall-time budget of the refinement per point and
            energy (s); when it runs out the events so far are kept and the
            error reached is reported.
    """

    name = "builtin"
    version = VERSION

    def __init__(
        self,
        energies_tev: Sequence[float] = (13.0,),
        model: str = "pmssm11",
        min_events: int = 500,
        max_events: int = 4000,
        event_factor: float = 8.0,
        hadronisation: bool = False,
        k_factors: Mapping[str, float] | None = None,
        signal_systematic: float = 0.1,
        electroweak_threshold_gev: float = 500.0,
        electroweak_energies_tev: Sequence[float] = (8.0,),
        skip_below_events: float = 0.05,
        timeout_s: float = 600.0,
        compute_features: bool = True,
        catalogue: str | None = None,
        cap: float = 100.0,
        detector_replicas: int = DETECTOR_REPLICAS,
        refine_target_error: float | None = 0.5,
        refine_chi2_window: Sequence[float] = (60.0, 95.0),
        refine_max_factor: float = 200.0,
        refine_max_seconds: float = 1200.0,
    ) -> None:
        self.energies_tev = tuple(float(e) for e in energies_tev)
        self.model = model
        self.min_events = min_events
        self.max_events = max_events
        self.event_factor = event_factor
        self.hadronisation = hadronisation
        self.k_factors = dict(k_factors or {})
        self.signal_systematic = signal_systematic
        self.electroweak_threshold_gev = electroweak_threshold_gev
        self.electroweak_energies_tev = tuple(
            float(e) for e in electroweak_energies_tev
        )
        self.skip_below_events = skip_below_events
        self.timeout_s = timeout_s
        self.compute_features = compute_features
        self.catalogue = catalogue
        self.cap = cap
        self.detector_replicas = detector_replicas
        self.refine_target_error = refine_target_error
        self.refine_chi2_window = tuple(float(v) for v in refine_chi2_window)
        self.refine_max_factor = refine_max_factor
        self.refine_max_seconds = refine_max_seconds

    @property
    def max_seconds_per_point(self) -> float:
        """Longest wall time one point may take: the event-generation limit plus
        the refinement budget of every energy (s)."""
        refine = self.refine_max_seconds if self.refine_target_error else 0.0
        return self.timeout_s + len(self.energies_tev) * refine

    def generation_settings(self) -> GenerationSettings:
        """The event-generation settings these options describe."""
        return GenerationSettings(
            event_factor=self.event_factor,
            min_events=self.min_events,
            max_events=self.max_events,
            skip_below_events=self.skip_below_events,
            hadronisation=self.hadronisation,
            electroweak_threshold_gev=self.electroweak_threshold_gev,
            electroweak_energies_tev=self.electroweak_energies_tev,
            k_factors=self.k_factors,
        )

    def check(self) -> None:
        """Fail early when this backend cannot run with these settings.

        Raises:
            SimulatorConfigError: An unsupported energy or model, a bad number, an
                unreadable catalogue, or Pythia/fastjet missing.
        """
        unsupported = [e for e in self.energies_tev if e not in SUPPORTED_ENERGIES_TEV]
        if not self.energies_tev or unsupported:
            raise SimulatorConfigError(
                f"builtin simulator: energies_tev {list(self.energies_tev)} must be a "
                f"non-empty subset of {list(SUPPORTED_ENERGIES_TEV)}"
            )
        if self.model not in ("pmssm11", "pmssm19"):
            raise SimulatorConfigError(
                f"builtin simulator: unknown model {self.model!r}"
            )
        self._check_numbers()
        self._check_refinement()
        try:
            import fastjet  # noqa: F401
            import pythia8mc  # noqa: F401
        except ImportError as exc:
            raise SimulatorConfigError(
                f"builtin simulator needs {exc.name}: {exc}"
            ) from exc
        for energy in self.energies_tev:
            self._catalogue(energy)

    def _check_numbers(self) -> None:
        """Refuse event counts, factors, uncertainties and times that make no sense."""
        _require("event_factor", self.event_factor, above=0)
        _require("min_events", self.min_events, least=1, whole=True)
        _require(
            "max_events", self.max_events, least=self.min_events, whole=True,
            bound="min_events",
        )  # fmt: skip
        _require("skip_below_events", self.skip_below_events, least=0)
        _require("signal_systematic", self.signal_systematic, least=0)
        _require("electroweak_threshold_gev", self.electroweak_threshold_gev, least=0)
        for energy in self.electroweak_energies_tev:
            _require("electroweak_energies_tev", energy, above=0)
        for group, factor in self.k_factors.items():
            _require(f"k_factors.{group}", factor, above=0)
        _require("timeout_s", self.timeout_s, above=0)
        _require("cap", self.cap, above=0)
        if not (
            isinstance(self.detector_replicas, int)
            and not isinstance(self.detector_replicas, bool)
            and self.detector_replicas >= 1
        ):
            raise SimulatorConfigError(
                f"builtin simulator: detector_replicas = {self.detector_replicas!r}: "
                f"must be an integer >= 1"
            )

    def _check_refinement(self) -> None:
        if self.refine_target_error is not None:
            _require("refine_target_error", self.refine_target_error, least=0)
        window = self.refine_chi2_window
        if (
            len(window) != 2
            or not all(map(math.isfinite, window))
            or window[0] >= window[1]
        ):
            raise SimulatorConfigError(
                f"builtin simulator: refine_chi2_window = {list(window)}: must be "
                f"[low, high] with low < high"
            )
        _require("refine_max_factor", self.refine_max_factor, least=1)
        _require("refine_max_seconds", self.refine_max_seconds, above=0)

    def describe(self) -> dict[str, Any]:
        """Energies, analyses per energy and the number of features."""
        return {
            "energies": [_energy_key(e) for e in self.energies_tev],
            "analyses": {
                _energy_key(e): list(self._catalogue(e).analyses)
                for e in self.energies_tev
            },
            "n_features": N_FEATURES,
        }

    def simulate(
        self, point: Mapping[str, float], *, seed: int, workdir: Path
    ) -> SimulationResult:
        """Labels of one point; never raises.

        Args:
            point: Canonical parameter names to values (GeV).
            seed: Random seed of this point.
            workdir: Private scratch directory (the SLHA card is written there).

        Returns:
            ``ok`` with χ² per energy, ``rejected`` when pre-selection fails, or
            ``failed`` with the reason when any stage breaks or times out.
        """
        timings: dict[str, float] = {}
        masses: dict[int, float] = {}
        start = time.perf_counter()
        try:
            result = self._simulate(point, seed, Path(workdir), timings, masses)
            result.timings["total"] = time.perf_counter() - start
            return result
        except Exception as exc:
            timings["total"] = time.perf_counter() - start
            logger.warning("builtin simulation of %s failed: %s", dict(point), exc)
            return SimulationResult.failed(
                f"{type(exc).__name__}: {exc}",
                masses=masses,
                timings=timings,
                simulator=self.name,
                version=self.version,
                extra={"traceback": traceback.format_exc()[-4000:]},
            )

    def _simulate(
        self,
        point: Mapping[str, float],
        seed: int,
        workdir: Path,
        timings: dict[str, float],
        masses: dict[int, float],
    ) -> SimulationResult:
        from simulators.decays import compute_decays
        from simulators.preselection import preselect
        from simulators.slha import write_card
        from simulators.spectrum import compute_spectrum

        deadline = time.monotonic() + self.timeout_s
        with _timed(timings, "spectrum"):
            spectrum = compute_spectrum(point, self.model)
        masses.update(_reported_masses(spectrum.masses))
        with _timed(timings, "preselection"):
            reason = preselect(spectrum)
        if reason is not None:
            return SimulationResult.rejected(
                reason,
                masses=masses,
                timings=timings,
                simulator=self.name,
                version=self.version,
            )
        with _timed(timings, "decays"):
            decays = compute_decays(spectrum)
            workdir.mkdir(parents=True, exist_ok=True)
            card = write_card(workdir / "point.slha", spectrum, decays)

        result = SimulationResult(
            status="ok",
            masses=masses,
            timings=timings,
            simulator=self.name,
            version=self.version,
        )
        energy_signals = {}
        for index, energy in enumerate(self.energies_tev):
            energy_signal = signal_from_card(
                card,
                spectrum.masses,
                energy,
                seed=seed * 4 + index,
                settings=self.generation_settings(),
                deadline=deadline,
                detector_replicas=self.detector_replicas,
            )
            energy_signals[energy] = energy_signal
            refinement = self._refine(card, energy, energy_signal, seed * 4 + index)
            result.extra[f"refinement_{_energy_key(energy)}"] = refinement
            self._label(result, energy, energy_signal)
        with _timed(timings, "features"):
            result.features = self._features(spectrum, decays, energy_signals)
        return result

    def _chi2_and_error(
        self, catalogue: Any, tally: SignalTally
    ) -> tuple[float, float]:
        """χ² of the tally's signal and its Monte Carlo error: the standard
        deviation of χ² over the bootstrap replicas of the generated events."""
        from simulators.combination import combine_many

        s, error = tally.signal()
        options = dict(cap=self.cap, signal_systematic=self.signal_systematic)
        nominal = combine_many(
            catalogue, tally.arrays_by_analysis(catalogue, s, error), **options
        )
        replicas = combine_many(
            catalogue,
            tally.arrays_by_analysis(catalogue, tally.bootstrap_signal(), error),
            **options,
        )
        return float(nominal.total[0]), float(np.std(replicas.total, ddof=1))

    def _refine(
        self, card: Path, energy: float, energy_signal: EnergySignal, seed: int
    ) -> dict[str, Any]:
        """Adaptive statistics: add events until χ²'s Monte Carlo error is small.

        Only points whose first χ² lies in :attr:`refine_chi2_window` are refined;
        groups that kept only their probe events (below one expected event) are
        not. Events are generated, reconstructed and tallied in chunks, so memory
        stays a few times that of the first pass. The error is re-estimated after
        at most a fourfold growth of the statistics, and the events still needed
        are extrapolated from ``error² ∝ 1/N``.

        A refinement cut short by ``refine_max_seconds`` depends on the machine's
        speed, so that point's label is not exactly reproducible from its seed;
        one that reaches its target is.

        Returns:
            What happened: first χ² and error, the final error, the statistics
            reached as a multiple of the first pass, the seconds spent and why it
            stopped. ``energy_signal`` is updated in place.
        """
        from simulators.events import (
            EventGenerationError,
            EventGenerationTimeoutError,
            GroupStream,
        )

        tally = energy_signal.tally
        catalogue = self._catalogue(energy)
        chi2, error = self._chi2_and_error(catalogue, tally)
        info: dict[str, Any] = {
            "first_chi2": chi2,
            "first_mc_error": error,
            "mc_error": error,
            "factor": 1.0,
            "seconds": 0.0,
            "stopped": "not refined",
        }
        target = self.refine_target_error
        low, high = self.refine_chi2_window
        if not target or not low <= chi2 <= high or error <= target:
            return info
        settings = self.generation_settings()
        base = {
            g: tally.n_events(g)
            for g in tally.groups
            if tally.n_events(g) > settings.probe_events
        }
        if not base:
            return info
        analyses = analyses_at(energy)
        timings, cpu = energy_signal.timings, energy_signal.cpu_timings
        started = time.monotonic()
        stop_at = started + self.refine_max_seconds
        streams: dict[str, GroupStream] = {}
        done, chunk = 1.0, 0
        stopped = "target reached"
        while error > target:
            if done >= self.refine_max_factor - 1e-9:
                stopped = "most events reached"
                break
            # error² ∝ 1/N would ask for (error/target)² the events; early on the
            # error falls faster (the best-SR choice settles), so grow at most
            # REFINE_GROWTH-fold before estimating again.
            wanted = min(
                self.refine_max_factor,
                done * (error / target) ** 2 * 1.1,
                done * REFINE_GROWTH,
            )
            try:
                while done < wanted - 1e-9:
                    step = min(wanted - done, REFINE_CHUNK_PASSES)
                    chunk += 1
                    batches = []
                    with _timed(timings, "events", cpu):
                        for index, (group, n_first) in enumerate(base.items()):
                            if group not in streams:
                                streams[group] = GroupStream(
                                    card,
                                    energy,
                                    group,
                                    seed=REFINE_SEED_OFFSET + seed * 16 + index,
                                    settings=settings,
                                )
                            n = max(1, round(n_first * step))
                            batches.append(streams[group].next_events(n, stop_at)[0])
                    fractions = _pass_fractions(
                        ak.concatenate(batches),
                        analyses,
                        [seed, 7, chunk],
                        timings,
                        cpu,
                        self.detector_replicas,
                    )
                    start = 0
                    for group, events in zip(base, batches, strict=True):
                        stream = streams[group]
                        stop = start + len(events)
                        tally.add_events(group, fractions[:, start:stop])
                        tally.set_cross_section(
                            group,
                            "refine",
                            stream.n_events,
                            stream.sigma_fb(),
                            stream.sigma_error_fb(),
                        )
                        start = stop
                    done += step
            except EventGenerationTimeoutError:
                stopped = "time budget spent"
                break
            except EventGenerationError as exc:
                # The first pass stands; a generator failure only ends the extra
                # statistics early.
                stopped = f"generator failed: {exc}"
                break
            finally:
                chi2, error = self._chi2_and_error(catalogue, tally)
        for stream in streams.values():
            stream.log_messages()
        energy_signal.update_from_tally()
        info.update(
            mc_error=error,
            factor=round(done, 3),
            seconds=time.monotonic() - started,
            stopped=stopped,
            refined_chi2=chi2,
        )
        logger.info(
            "refined a point at %s TeV: chi2 %.2f +- %.2f -> %.2f +- %.2f with %.1fx "
            "the events in %.0f s (%s)",
            energy,
            info["first_chi2"],
            info["first_mc_error"],
            chi2,
            error,
            done,
            info["seconds"],
            stopped,
        )
        return info

    def _label(
        self, result: SimulationResult, energy: float, energy_signal: EnergySignal
    ) -> None:
        from simulators.combination import combine

        key = _energy_key(energy)
        for stage, seconds in energy_signal.timings.items():
            result.timings[stage] = result.timings.get(stage, 0.0) + seconds
        result.extra[f"timings_{key}"] = dict(energy_signal.timings)
        result.extra[f"cpu_timings_{key}"] = dict(energy_signal.cpu_timings)
        catalogue = self._catalogue(energy)
        signal = {name: energy_signal.signal[name] for name in catalogue.analyses}
        with _timed(result.timings, "statistics"):
            combined = combine(
                catalogue,
                signal,
                cap=self.cap,
                signal_systematic=self.signal_systematic,
            )
        result.chi2[key] = combined.total
        result.chi2_analysis[key] = combined.per_analysis
        result.chosen_regions[key] = combined.chosen
        result.signal[key] = {
            f"{name}/{sr}": [n, error]
            for name, regions in signal.items()
            for sr, (n, error) in regions.items()
        }
        result.extra[f"cross_sections_fb_{key}"] = energy_signal.cross_sections_fb
        result.extra[f"n_events_{key}"] = energy_signal.n_events

    def _features(
        self, spectrum: Any, decays: Any, energy_signals: Mapping[float, EnergySignal]
    ) -> list[float] | None:
        """The 56 features, from the first energy's per-process cross sections."""
        if not self.compute_features:
            return None
        try:
            from simulators.features import compute_features
        except ImportError:
            logger.debug("simulators.features not available; features left out")
            return None
        first = energy_signals[self.energies_tev[0]]
        values = np.asarray(
            compute_features(spectrum, decays, first.process_cross_sections_fb),
            dtype=float,
        )
        return [float(v) for v in values]

    def _catalogue(self, energy: float) -> Any:
        from simulators.catalogue import load_catalogue

        catalogue = load_catalogue(self.catalogue, energy_tev=energy)
        names = [name for name in ANALYSES if name in catalogue.analyses]
        names = [n for n in names if math.isclose(ANALYSES[n].energy_tev, energy)]
        if not names:
            raise SimulatorConfigError(
                f"builtin simulator: no implemented analysis at {energy} TeV in the catalogue"
            )
        return catalogue.subset(names)


def _energy_key(energy: float) -> int:
    return round(energy)


def _reported_masses(masses: Mapping[int, float]) -> dict[int, float]:
    return {pdg: float(masses[pdg]) for pdg in REPORTED_MASSES if pdg in masses}
