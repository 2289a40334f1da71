"""LHC signal events from Pythia 8: LO cross sections and parton-level showers.

One SLHA card (spectrum plus complete DECAY blocks) is turned into event samples, one
per production group, each with its LO cross section from Pythia. Groups follow the
paper (Sect. 2.1, footnote 3): gluino pairs, squark-gluino, light-squark pairs,
third-generation squark pairs, and, only when m(χ̃⁰₁) < 500 GeV, electroweak pairs
and electroweak-strong associated production. Each group gets about five times its
expected number of events at the analysis luminosity, clipped to a configurable
minimum and maximum.

By default events stop at parton level after initial- and final-state showers
(``HadronLevel:all = off``, ``PartonLevel:MPI = off``): the searches here select
hard jets, leptons and missing energy, which the hard process and the showers
decide, and this runs about 5x faster than full hadronisation. At parton level the
showers stop at 1 GeV rather than Pythia's 0.5 / 0.2 GeV, which nothing downstream
resolves (see :class:`GenerationSettings`). Tau leptons then
stay undecayed; :mod:`simulators.detector` decays them.

A group whose cross section times luminosity falls below ``skip_below_events``
expected events (default 0.05) is not generated: it could change no signal region
by more than a twentieth of an event. When every group is skipped the point has
zero expected signal with zero error.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import awkward as ak
import numpy as np

from simulators.errors import SimulatorError

logger = logging.getLogger(__name__)

#: Pythia's sigmaGen is in mb; 1 mb = 1e12 fb.
FB_PER_MB = 1.0e12

_LIGHT_SQUARKS = (
    1000001,
    1000002,
    1000003,
    1000004,
    2000001,
    2000002,
    2000003,
    2000004,
)
_THIRD_GEN_SQUARKS = (1000005, 1000006, 2000005, 2000006)
_STRONG_PAIRS = (
    "SUSY:gg2squarkantisquark = on",
    "SUSY:qqbar2squarkantisquark = on",
    "SUSY:qq2squarksquark = on",
)


def _id_vectors(ids: tuple[int, ...]) -> tuple[str, ...]:
    codes = ",".join(str(code) for code in ids)
    return (f"SUSY:idVecA = {codes}", f"SUSY:idVecB = {codes}")


#: Production group to the Pythia settings that switch it on.
PROCESS_GROUPS: dict[str, tuple[str, ...]] = {
    "gluino_gluino": ("SUSY:gg2gluinogluino = on", "SUSY:qqbar2gluinogluino = on"),
    "squark_gluino": ("SUSY:qg2squarkgluino = on",),
    "squark_squark": (*_STRONG_PAIRS, *_id_vectors(_LIGHT_SQUARKS)),
    "third_generation": (*_STRONG_PAIRS, *_id_vectors(_THIRD_GEN_SQUARKS)),
    "electroweak": (
        "SUSY:qqbar2chi0chi0 = on",
        "SUSY:qqbar2chi+-chi0 = on",
        "SUSY:qqbar2chi+chi- = on",
        "SUSY:qqbar2sleptonantislepton = on",
    ),
    "electroweak_strong": (
        "SUSY:qg2chi0squark = on",
        "SUSY:qg2chi+-squark = on",
        "SUSY:qqbar2chi0gluino = on",
        "SUSY:qqbar2chi+-gluino = on",
    ),
}
#: Largest number of events asked of Pythia at once (deadline checks in between).
BATCH_SIZE = 500
#: Events generated first to estimate a group's cross section (about 10 % precision,
#: ample to decide whether the group is worth generating at all).
ESTIMATE_EVENTS = 20
STRONG_GROUPS = ("gluino_gluino", "squark_gluino", "squark_squark", "third_generation")
ELECTROWEAK_GROUPS = ("electroweak", "electroweak_strong")

#: Sparticles whose masses bound each group's threshold (the lightest pair).
_GROUP_PARTICLES: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "gluino_gluino": ((1000021,), (1000021,)),
    "squark_gluino": (_LIGHT_SQUARKS, (1000021,)),
    "squark_squark": (_LIGHT_SQUARKS, _LIGHT_SQUARKS),
    "third_generation": (_THIRD_GEN_SQUARKS, _THIRD_GEN_SQUARKS),
    "electroweak": ((1000022, 1000023, 1000024), (1000022, 1000023, 1000024)),
    "electroweak_strong": ((1000022, 1000023, 1000024), (1000021, *_LIGHT_SQUARKS)),
}

#: Pythia messages that are expected and harmless here: the shower's matrix-element
#: correction overshoot, and SM masses/decays below SLHA:minMassSM that Pythia keeps
#: from its own tables on purpose.
BENIGN_MESSAGES = (
    "ME weight above PS one",
    # A DECAY channel whose daughters' pole masses (Pythia's quark masses) exceed
    # the mother's, e.g. chi+_1 -> chi0_1 s-bar c at a splitting of 1-2 GeV: Pythia
    # keeps it and generates it off shell, which is what the width assumed.
    "adding off shell DECAY mode",
    "ignoring DECAY tables",
    "ignoring MASS entries",
    "importing DECAY tables",
    "importing MASS entries",
)


class EventGenerationError(SimulatorError, RuntimeError):
    """Raised when Pythia refuses a card or a setting, or fails to initialise."""


class EventGenerationTimeoutError(EventGenerationError):
    """Raised when event generation runs past its deadline (checked between batches)."""


@dataclass(frozen=True)
class GenerationSettings:
    """How many events to generate and how far to simulate them.

    Attributes:
        event_factor: Events per group as a multiple of its expected number at the
            analysis luminosity (paper Sect. 2.1: 5).
        min_events: Fewest events per generated group.
        max_events: Most events per group.
        probe_events: Events generated first to measure the cross section; they
            are kept in the sample.
        skip_below_events: Groups expecting fewer events (σ × L) are not generated.
        full_statistics_above_events: Groups expecting fewer events keep only the
            probe sample: their whole contribution is below one event, so a
            hundred events bound its error to a few hundredths of an event.
        hadronisation: Run Pythia's hadron level (about 5x slower).
        multiparton_interactions: Add the underlying event (MPI).
        parton_shower_pt_min_gev: Lower cutoff of the initial- and final-state
            QCD showers at parton level (GeV); ``None`` keeps Pythia's defaults
            (0.5 GeV final, 0.2 GeV initial state). Emissions below about 1 GeV
            reach no jet above 20 GeV and no isolation sum (tracks above 1 GeV)
            and their recoil stays inside the emitting jet, so 1 GeV changes no
            selection beyond Monte Carlo noise while generating about 1.6x more
            events per second. Ignored with hadronisation, whose tune assumes
            the default cutoffs.
        electroweak_threshold_gev: Electroweak groups only when m(χ̃⁰₁) is below.
        electroweak_energies_tev: Energies at which electroweak groups are
            generated at all; the paper's 13 TeV analyses target strong
            production only, so by default electroweak production runs at 8 TeV.
        k_factors: Group name to a K-factor multiplying its LO cross section.
        max_pair_mass_fraction: Groups whose lightest pair is heavier than this
            fraction of √s are not generated (negligible cross section).
    """

    event_factor: float = 5.0
    min_events: int = 500
    max_events: int = 2500
    probe_events: int = 100
    skip_below_events: float = 0.05
    full_statistics_above_events: float = 1.0
    hadronisation: bool = False
    multiparton_interactions: bool = False
    parton_shower_pt_min_gev: float | None = 1.0
    electroweak_threshold_gev: float = 500.0
    electroweak_energies_tev: tuple[float, ...] = (8.0,)
    k_factors: Mapping[str, float] = field(default_factory=dict)
    max_pair_mass_fraction: float = 0.7


@dataclass
class GroupSample:
    """The events of one production group at one energy.

    Attributes:
        group: Group name (a key of :data:`PROCESS_GROUPS`).
        energy_tev: Centre-of-mass energy in TeV.
        sigma_fb: Cross section in fb (LO times the group's K-factor).
        sigma_error_fb: Pythia's statistical error on it, fb.
        events: Awkward array of events, each a list of particles with fields
            ``id``, ``status``, ``px``, ``py``, ``pz``, ``e`` (GeV): final-state
            particles plus the b, c quarks and τ leptons of the history (negative
            status) for flavour tagging.
        messages: Pythia's warning and error lines that are not benign.
    """

    group: str
    energy_tev: float
    sigma_fb: float
    sigma_error_fb: float
    events: ak.Array
    hard_pairs: np.ndarray
    messages: list[str] = field(default_factory=list)

    @property
    def n_events(self) -> int:
        """Number of generated events."""
        return len(self.events)


def groups_for(
    masses: Mapping[int, float], energy_tev: float, settings: GenerationSettings
) -> list[str]:
    """The production groups to simulate for a spectrum at one energy.

    Args:
        masses: PDG code to mass (GeV); signs are ignored.
        energy_tev: Centre-of-mass energy (TeV).

    Returns:
        Strong groups always; electroweak ones when m(χ̃⁰₁) is below the threshold
        and the energy is one of ``settings.electroweak_energies_tev``.
    """
    groups = list(STRONG_GROUPS)
    electroweak_energy = any(
        abs(energy_tev - e) < 0.01 for e in settings.electroweak_energies_tev
    )
    light_lsp = abs(masses.get(1000022, np.inf)) < settings.electroweak_threshold_gev
    if electroweak_energy and light_lsp:
        groups.extend(ELECTROWEAK_GROUPS)
    return groups


def pair_threshold_gev(group: str, masses: Mapping[int, float]) -> float:
    """Lightest final-state mass sum of a group (GeV)."""
    first, second = _GROUP_PARTICLES[group]
    lightest = [
        min(abs(masses.get(pdg, np.inf)) for pdg in ids) for ids in (first, second)
    ]
    return float(sum(lightest))


def expected_events_needed(
    sigma_fb: float, luminosity_fb: float, settings: GenerationSettings
) -> int:
    """Events to generate for a group: factor × σ × L clipped to [min, max].

    A group expecting less than ``full_statistics_above_events`` keeps its probe.
    """
    expected = sigma_fb * luminosity_fb
    if expected < settings.full_statistics_above_events:
        return settings.probe_events
    wanted = settings.event_factor * expected
    return int(np.clip(np.ceil(wanted), settings.min_events, settings.max_events))


def pythia_settings(
    card: Path, energy_tev: float, group: str, seed: int, settings: GenerationSettings
) -> list[str]:
    """Pythia configuration lines for one group at one energy."""
    hadron = "on" if settings.hadronisation else "off"
    mpi = "on" if settings.multiparton_interactions else "off"
    shower = []
    if settings.parton_shower_pt_min_gev is not None and not settings.hadronisation:
        cutoff = settings.parton_shower_pt_min_gev
        shower = [f"TimeShower:pTmin = {cutoff}", f"SpaceShower:pTmin = {cutoff}"]
    return [
        "Print:quiet = on",
        "Init:showProcesses = off",
        "Init:showChangedSettings = off",
        "Next:numberCount = 0",
        f"Beams:eCM = {energy_tev * 1000.0:.1f}",
        f"SLHA:file = {card}",
        "SLHA:verbose = 0",
        # Our DECAY blocks are complete: Pythia must use them, not its own widths,
        # for every sparticle; SM particles below 100 GeV keep Pythia's tables.
        "SLHA:useDecayTable = on",
        "SLHA:allowUserOverride = off",
        "SLHA:minMassSM = 100.0",
        f"HadronLevel:all = {hadron}",
        f"PartonLevel:MPI = {mpi}",
        *shower,
        "Random:setSeed = on",
        f"Random:seed = {seed % 900_000_000}",
        *PROCESS_GROUPS[group],
    ]


def generate(
    card: Path,
    energy_tev: float,
    luminosity_fb: float,
    masses: Mapping[int, float],
    *,
    seed: int,
    settings: GenerationSettings | None = None,
    deadline: float | None = None,
) -> list[GroupSample]:
    """Generate every relevant production group of one point at one energy.

    Args:
        card: SLHA file with MASS, mixing and complete DECAY blocks.
        energy_tev: Centre-of-mass energy (TeV), e.g. 13.
        luminosity_fb: Largest analysis luminosity at this energy (fb⁻¹); sizes the
            samples.
        masses: PDG code to mass (GeV), to choose and pre-screen groups.
        seed: Random seed; each group derives its own from it.
        settings: Statistics and simulation level.
        deadline: ``time.monotonic()`` value after which generation stops.

    Returns:
        One :class:`GroupSample` per generated group; empty when every group
        expects fewer than ``settings.skip_below_events`` events.

    Raises:
        EventGenerationError: Pythia rejects a setting or fails to initialise.
        EventGenerationTimeoutError: The deadline passed.
    """
    settings = settings or GenerationSettings()
    samples = []
    for index, group in enumerate(groups_for(masses, energy_tev, settings)):
        if pair_threshold_gev(group, masses) > settings.max_pair_mass_fraction * (
            energy_tev * 1000.0
        ):
            logger.debug("group %s above threshold at %s TeV", group, energy_tev)
            continue
        sample = generate_group(
            card,
            energy_tev,
            group,
            luminosity_fb,
            seed=seed * 16 + index,
            settings=settings,
            deadline=deadline,
        )
        if sample is not None:
            samples.append(sample)
    return samples


def generate_group(
    card: Path,
    energy_tev: float,
    group: str,
    luminosity_fb: float,
    *,
    seed: int,
    settings: GenerationSettings,
    deadline: float | None = None,
) -> GroupSample | None:
    """Generate one production group; None when it expects too few events.

    Args:
        deadline: ``time.monotonic()`` value after which generation stops with
            :class:`EventGenerationTimeoutError` (checked between batches of events).
    """
    stream = GroupStream(card, energy_tev, group, seed=seed, settings=settings)
    first = min(ESTIMATE_EVENTS, settings.probe_events)
    batches = [stream.next_batch(first, deadline)]
    sigma_fb = stream.sigma_fb()
    if sigma_fb * luminosity_fb < settings.skip_below_events:
        logger.debug("group %s: %.3g fb, skipped", group, sigma_fb)
        return None

    n_wanted = expected_events_needed(sigma_fb, luminosity_fb, settings)
    if n_wanted > first:
        batches.append(stream.next_events(n_wanted - first, deadline))
    events = ak.concatenate([events for events, _ in batches])
    messages = stream.log_messages()
    logger.debug("group %s: %d events, %.4g fb", group, len(events), stream.sigma_fb())
    hard_pairs = np.concatenate([pairs for _, pairs in batches])
    return GroupSample(
        group,
        energy_tev,
        stream.sigma_fb(),
        stream.sigma_error_fb(),
        events,
        hard_pairs,
        messages,
    )


class GroupStream:
    """One initialised Pythia instance generating a production group on demand.

    The cross-section estimate improves with every event generated; it is read
    with :meth:`sigma_fb` at any time.

    Args:
        card: SLHA file with spectrum and complete DECAY blocks.
        energy_tev: Centre-of-mass energy (TeV).
        group: Production group (a key of :data:`PROCESS_GROUPS`).
        seed: Random seed of this instance.
        settings: Simulation level and K-factors.

    Raises:
        EventGenerationError: Pythia rejects a setting or fails to initialise.
    """

    def __init__(
        self,
        card: Path,
        energy_tev: float,
        group: str,
        *,
        seed: int,
        settings: GenerationSettings,
    ) -> None:
        self.group = group
        self.energy_tev = energy_tev
        self.n_events = 0
        self._k_factor = settings.k_factors.get(group, 1.0)
        self._pythia = _initialised_pythia(card, energy_tev, group, seed, settings)

    def next_batch(
        self, n_events: int, deadline: float | None = None
    ) -> tuple[ak.Array, np.ndarray]:
        """``n_events`` events (at most :data:`BATCH_SIZE`) in one call of
        Pythia's batch generator, and their hard-process pairs (see
        :func:`_next_batch`)."""
        events, pairs = _next_batch(self._pythia, n_events, deadline)
        self.n_events += len(events)
        return events, pairs

    def next_events(
        self, n_events: int, deadline: float | None = None
    ) -> tuple[ak.Array, np.ndarray]:
        """``n_events`` events in batches of :data:`BATCH_SIZE`, checking the
        deadline between batches."""
        batches = []
        remaining = n_events
        while remaining > 0:
            size = min(remaining, BATCH_SIZE)
            batches.append(self.next_batch(size, deadline))
            remaining -= size
        if not batches:
            raise ValueError(f"asked for {n_events} events; need at least one")
        events = ak.concatenate([events for events, _ in batches])
        return events, np.concatenate([pairs for _, pairs in batches])

    def sigma_fb(self) -> float:
        """LO cross section times the group's K-factor so far (fb)."""
        return self._pythia.infoPython().sigmaGen() * FB_PER_MB * self._k_factor

    def sigma_error_fb(self) -> float:
        """Pythia's statistical error on :meth:`sigma_fb` (fb)."""
        return self._pythia.infoPython().sigmaErr() * FB_PER_MB * self._k_factor

    def log_messages(self) -> list[str]:
        """Pythia's messages that are not benign, logged once each; returned."""
        messages = [m for m in pythia_messages(self._pythia) if not _is_benign(m)]
        for message in messages:
            level = logging.WARNING if _is_about_decays(message) else logging.DEBUG
            logger.log(
                level, "Pythia (%s, %s TeV): %s", self.group, self.energy_tev, message
            )
        return messages


def _initialised_pythia(
    card: Path, energy_tev: float, group: str, seed: int, settings: GenerationSettings
):
    import pythia8mc

    pythia = pythia8mc.Pythia("", False)
    for line in pythia_settings(card, energy_tev, group, seed, settings):
        if not pythia.readString(line):
            raise EventGenerationError(f"Pythia rejected the setting {line!r}")
    if not _quietly(pythia.init):
        raise EventGenerationError(
            f"Pythia failed to initialise group {group} at {energy_tev} TeV "
            f"from {card}: {'; '.join(pythia_messages(pythia)[-5:])}"
        )
    return pythia


def _next_batch(
    pythia, n_events: int, deadline: float | None
) -> tuple[ak.Array, np.ndarray]:
    """Generate events; keep what the detector needs and the hard-process pair."""
    if deadline is not None and time.monotonic() > deadline:
        raise EventGenerationTimeoutError("event generation ran past its time limit")
    batch = pythia.nextBatch(n_events, "skip")
    particles = batch.prt
    status = particles.status
    abs_id = np.abs(particles.id)
    history_flavour = (status < 0) & ((abs_id == 4) | (abs_id == 5) | (abs_id == 15))
    keep = particles[(status > 0) | history_flavour]
    events = ak.zip(
        {
            "id": keep.id,
            "status": keep.status,
            "px": keep.p.px,
            "py": keep.p.py,
            "pz": keep.p.pz,
            "e": keep.p.e,
        }
    )
    hard = ak.pad_none(particles.id[status == -22], 2, axis=1)[:, :2]
    pairs = ak.to_numpy(ak.fill_none(hard, 0)).astype(np.int64).reshape(-1, 2)
    return events, pairs


def pythia_messages(pythia) -> list[str]:
    """Pythia's accumulated warnings and errors, one line each.

    Pythia prints its message statistics to the C++ standard output; they are
    captured at file-descriptor level.
    """
    text = capture_stdout(lambda: pythia.stat())
    lines = []
    for line in text.splitlines():
        body = line.strip(" |")
        if ("Warning" in body or "Error" in body or "Abort" in body) and body[
            :1
        ].isdigit():
            lines.append(body.split(None, 1)[1] if " " in body else body)
    return lines


def _is_about_decays(message: str) -> bool:
    """A message about decay tables, channels or widths: our DECAY blocks are wrong."""
    lowered = message.lower()
    return any(word in lowered for word in ("decay", "channel", "width", "slha"))


def _is_benign(message: str) -> bool:
    return any(token in message for token in BENIGN_MESSAGES)


def _quietly(function: Callable[[], bool]) -> bool:
    result: list[bool] = []
    capture_stdout(lambda: result.append(function()))
    return result[0]


def capture_stdout(function: Callable[[], object]) -> str:
    """Run ``function`` with file descriptor 1 redirected; return what it wrote."""
    sys.stdout.flush()
    saved = os.dup(1)
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 1)
        try:
            function()
        finally:
            sys.stdout.flush()
            os.dup2(saved, 1)
            os.close(saved)
        sink.seek(0)
        return sink.read().decode(errors="replace")
