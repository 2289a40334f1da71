"""The ``checkmate`` backend: SPheno spectrum → CheckMATE 2 → our chi-square.

Per point: SPheno writes the spectrum with its decay tables (and the pre-selection
judges it, see :mod:`simulators.spheno`); for each centre-of-mass energy a CheckMATE 2
run card names the analyses of the catalogue at that energy (paper Table 3), one
process section per production process with its number of events, the SLHA file and
the point's seed. CheckMATE runs as
``CheckMATE run.dat -oe overwrite -q`` (so it never stops to ask on stdin) with a
timeout, in a private directory under the job's scratch directory. The signal per
signal region is read from ``evaluation/total_results.txt`` by the names in its
header (a run card may choose other columns) and goes through our statistics
(:mod:`simulators.likelihood`, :mod:`simulators.combination`) with the published
counts of our own catalogue; CheckMATE's own limits are not used.

Event generation is left to CheckMATE's Pythia 8 with the process strings below;
strong production always, electroweak production only when the lightest neutralino
is lighter than ``ew_max_lsp_gev`` (paper Sect. 2.1, 500 GeV). The number of events
per process is a fixed setting (``events_per_process``): the paper's "5 times the
expected number of events" would need the cross sections before the run, which this
adapter does not compute. The 56 reparametrized features are not computed here
(``features`` stays ``None``).

Faults never escape :meth:`CheckMateSimulator.simulate`: a missing binary, a timeout, a
crash, or a missing, empty or garbled results file give a ``failed`` result with the
reason and the tails of CheckMATE's output in ``extra``.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simulators.catalogue import Catalogue, load_catalogue
from simulators.combination import combine
from simulators.errors import SimulatorConfigError, SimulatorError
from simulators.result import N_FEATURES, SimulationResult

logger = logging.getLogger(__name__)

#: Environment variable naming the CheckMATE executable when the settings do not.
CHECKMATE_ENV = "SCYNET_CHECKMATE"
#: Version of this adapter; bump when its labels change.
VERSION = "0.1.0"
#: Default wall-time limit of one CheckMATE run (s): event generation, Delphes and
#: the analyses of one energy.
DEFAULT_TIMEOUT_S = 3600.0
#: Default number of generated events per process section.
DEFAULT_EVENTS_PER_PROCESS = 5000
#: Electroweak production only below this lightest-neutralino mass (GeV, Sect. 2.1).
DEFAULT_EW_MAX_LSP_GEV = 500.0
#: Centre-of-mass energies (TeV) with analyses in the catalogue.
SUPPORTED_ENERGIES_TEV = (8.0, 13.0)

#: Strong production: section name → Pythia8Process string (CheckMATE 2 syntax).
STRONG_PROCESSES: dict[str, str] = {
    "gluino_pair": "p p > go go",
    "gluino_squark": "p p > go sq",
    "squark_pair": "p p > sq sq",
    "squark_antisquark": "p p > sq sq~",
    "stop1_pair": "p p > t1 t1~",
    "stop2_pair": "p p > t2 t2~",
    "sbottom1_pair": "p p > b1 b1~",
    "sbottom2_pair": "p p > b2 b2~",
}
#: Electroweak production: neutralino and chargino pairs.
ELECTROWEAK_PROCESSES: dict[str, str] = {
    "neutralino2_chargino1": "p p > n2 x1+",
    "neutralino2_antichargino1": "p p > n2 x1-",
    "chargino1_pair": "p p > x1+ x1-",
    "neutralino1_neutralino2": "p p > n1 n2",
}

#: Header names of each quantity in total_results.txt: the default columns first,
#: then the long names a run card may choose.
COLUMN_NAMES: dict[str, tuple[str, ...]] = {
    "analysis": ("analysis",),
    "sr": ("sr",),
    "signal": ("s", "signal_normevents"),
    "signal_error": ("ds", "signal_err_tot", "signal_err_stat"),
    "n_obs": ("o", "obs"),
    "n_bkg": ("b", "bkg"),
}
_TAIL_CHARS = 2000
_LSP = 1000022


class CheckMateOutputError(SimulatorError):
    """Raised when CheckMATE's results file is missing, empty or garbled."""


@dataclass(frozen=True)
class Process:
    """One process section of a CheckMATE run card."""

    name: str
    process: str
    max_events: int


def find_binary(checkmate_binary: str | None = None) -> str | None:
    """Absolute path of the CheckMATE executable named by the setting, else by
    ``$SCYNET_CHECKMATE``; None when it is not found or not executable."""
    name = checkmate_binary or os.environ.get(CHECKMATE_ENV)
    if not name:
        return None
    found = shutil.which(name)
    return str(Path(found).resolve()) if found else None


def write_run_card(
    path: Path,
    *,
    name: str,
    analyses: Sequence[str],
    slha_file: Path,
    output_dir: Path,
    seed: int,
    processes: Sequence[Process],
) -> Path:
    """Write a CheckMATE 2 run card.

    Args:
        path: Card file to write.
        name: Run name (CheckMATE writes to ``output_dir/name``).
        analyses: CheckMATE analysis names.
        slha_file: Spectrum with DECAY blocks, for CheckMATE's Pythia 8.
        output_dir: CheckMATE's output directory.
        seed: Random seed of every CheckMATE component.
        processes: Process sections.

    Returns:
        ``path``.
    """
    lines = [
        "[Parameters]",
        f"Name: {name}",
        f"Analyses: {', '.join(analyses)}",
        f"SLHAFile: {slha_file}",
        f"OutputDirectory: {output_dir}",
        "OutputExists: overwrite",
        "SkipParamCheck: True",
        "QuietMode: True",
        f"RandomSeed: {seed}",
    ]
    for process in processes:
        lines += [
            "",
            f"[{process.name}]",
            f"Pythia8Process: {process.process}",
            f"MaxEvents: {process.max_events}",
        ]
    path.write_text("\n".join(lines) + "\n")
    return path


def read_total_results(path: Path) -> list[dict[str, Any]]:
    """Rows of CheckMATE's ``total_results.txt``, located by its header.

    Returns:
        One dict per signal region with ``analysis``, ``sr``, ``signal``,
        ``signal_error`` and, when present, ``n_obs`` and ``n_bkg`` (events).

    Raises:
        CheckMateOutputError: Missing or unreadable file, no header or no rows, a
            needed column absent, a row of the wrong length or a non-numeric entry;
            the message names the file and line.
    """
    try:
        lines = [ln.split() for ln in path.read_text().splitlines() if ln.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise CheckMateOutputError(f"cannot read {path}: {exc}") from exc
    if len(lines) < 2:
        raise CheckMateOutputError(f"{path}: no header and rows")
    columns = _locate_columns(lines[0], path)
    rows = []
    for number, fields in enumerate(lines[1:], start=2):
        if len(fields) != len(lines[0]):
            raise CheckMateOutputError(
                f"{path}, line {number}: {len(fields)} fields, header has {len(lines[0])}"
            )
        rows.append(_parse_row(fields, columns, path, number))
    return rows


def _locate_columns(header: list[str], path: Path) -> dict[str, int]:
    lowered = [name.lower() for name in header]
    columns = {}
    for quantity, names in COLUMN_NAMES.items():
        found = [lowered.index(n.lower()) for n in names if n.lower() in lowered]
        if found:
            columns[quantity] = found[0]
        elif quantity not in ("n_obs", "n_bkg"):
            raise CheckMateOutputError(
                f"{path}: no column for {quantity} (looked for {list(names)}) in header {header}"
            )
    return columns


def _parse_row(
    fields: list[str], columns: Mapping[str, int], path: Path, number: int
) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for quantity, index in columns.items():
        if quantity in ("analysis", "sr"):
            row[quantity] = fields[index]
            continue
        try:
            value = float(fields[index])
        except ValueError as exc:
            raise CheckMateOutputError(
                f"{path}, line {number}: {quantity} {fields[index]!r} is not a number"
            ) from exc
        if not math.isfinite(value) or value < 0:
            raise CheckMateOutputError(
                f"{path}, line {number}: {quantity} = {value} is not a finite count"
            )
        row[quantity] = value
    return row


def signal_from_results(
    rows: Iterable[Mapping[str, Any]], catalogue: Catalogue
) -> dict[str, dict[str, tuple[float, float]]]:
    """Signal per analysis and SR of ``catalogue`` from parsed result rows.

    CheckMATE's analysis names are mapped to catalogue names through each
    analysis's ``checkmate_name``. Rows of analyses or SRs outside the catalogue are
    ignored; a catalogue SR without a row has zero signal.

    Raises:
        CheckMateOutputError: A catalogue analysis has no row at all.
    """
    by_checkmate = {
        a.checkmate_name or a.name: a.name for a in catalogue.analyses.values()
    }
    by_checkmate.update({name: name for name in catalogue.analyses})
    signal: dict[str, dict[str, tuple[float, float]]] = {
        n: {} for n in catalogue.analyses
    }
    for row in rows:
        name = by_checkmate.get(row["analysis"])
        if name is None or row["sr"] not in catalogue.analyses[name].signal_regions:
            logger.debug("ignoring CheckMATE row %s/%s", row["analysis"], row["sr"])
            continue
        signal[name][row["sr"]] = (row["signal"], row["signal_error"])
    missing = sorted(name for name, regions in signal.items() if not regions)
    if missing:
        raise CheckMateOutputError(f"no CheckMATE results for analyses {missing}")
    return signal


class CheckMateSimulator:
    """The ``checkmate`` backend (module docstring).

    Args:
        checkmate_binary: Path or name of the CheckMATE executable; default
            ``$SCYNET_CHECKMATE``.
        spheno_binary: Path or name of SPheno; default ``$SCYNET_SPHENO``.
        model: ``"pmssm11"`` or ``"pmssm19"``.
        energies_tev: Centre-of-mass energies to run (TeV), each a CheckMATE run.
        analyses: Energy (TeV) → analysis names (catalogue names or aliases);
            default all catalogue analyses at that energy (Table 3).
        catalogue: Catalogue file; default the shipped one.
        events_per_process: Events per process section.
        processes: Section name → Pythia8Process string replacing the strong and
            electroweak defaults.
        ew_max_lsp_gev: Electroweak processes only below this neutralino mass (GeV).
        timeout_s: Wall-time limit of one CheckMATE run (s).
        spheno_timeout_s: Wall-time limit of the SPheno run (s).
        cap: Cap of the total chi-square per energy.
        signal_systematic: Relative signal systematic added in quadrature to
            CheckMATE's signal error.
    """

    name = "checkmate"
    version = VERSION

    def __init__(
        self,
        checkmate_binary: str | None = None,
        spheno_binary: str | None = None,
        model: str = "pmssm11",
        energies_tev: Sequence[float] = (13.0,),
        analyses: Mapping[Any, Sequence[str]] | None = None,
        catalogue: str | None = None,
        events_per_process: int = DEFAULT_EVENTS_PER_PROCESS,
        processes: Mapping[str, str] | None = None,
        ew_max_lsp_gev: float = DEFAULT_EW_MAX_LSP_GEV,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        spheno_timeout_s: float = 120.0,
        cap: float = 100.0,
        signal_systematic: float = 0.0,
    ) -> None:
        self.checkmate_binary = checkmate_binary
        self.spheno_binary = spheno_binary
        self.model = model
        self.energies_tev = tuple(energies_tev)
        self.analyses = dict(analyses) if analyses is not None else None
        self.catalogue = catalogue
        self.events_per_process = events_per_process
        self.processes = dict(processes) if processes is not None else None
        self.ew_max_lsp_gev = ew_max_lsp_gev
        self.timeout_s = timeout_s
        self.spheno_timeout_s = spheno_timeout_s
        self.cap = cap
        self.signal_systematic = signal_systematic

    def check(self) -> None:
        """Raise :class:`SimulatorConfigError` when this backend cannot run here."""
        from simulators.spheno import find_binary as find_spheno

        if find_binary(self.checkmate_binary) is None:
            named = self.checkmate_binary or os.environ.get(CHECKMATE_ENV)
            raise SimulatorConfigError(
                f"CheckMATE executable {named!r} not found or not executable; set "
                f"simulator.settings.checkmate_binary or ${CHECKMATE_ENV}"
            )
        if find_spheno(self.spheno_binary) is None:
            raise SimulatorConfigError(
                "checkmate backend: SPheno not found; set "
                "simulator.settings.spheno_binary or $SCYNET_SPHENO"
            )
        for key, value in (("events_per_process", self.events_per_process),
                           ("timeout_s", self.timeout_s)):  # fmt: skip
            if not value > 0:
                raise SimulatorConfigError(
                    f"checkmate backend: {key} must be > 0, got {value!r}"
                )
        for energy in self.energies_tev:
            self.catalogue_at(energy)

    def describe(self) -> dict[str, Any]:
        """Energies, analyses per energy and the number of features."""
        return {
            "energies": [round(e) for e in self.energies_tev],
            "analyses": {
                round(e): list(self.catalogue_at(e).analyses) for e in self.energies_tev
            },
            "n_features": N_FEATURES,
        }

    def catalogue_at(self, energy: float) -> Catalogue:
        """The catalogue of the analyses run at ``energy`` (TeV).

        Raises:
            SimulatorConfigError: Unsupported energy, unknown analysis or a bad
                catalogue file.
        """
        if not any(math.isclose(energy, e) for e in SUPPORTED_ENERGIES_TEV):
            raise SimulatorConfigError(
                f"checkmate backend: no analyses at {energy} TeV; expected one of {SUPPORTED_ENERGIES_TEV}"
            )
        names = _analyses_for(self.analyses, energy)
        try:
            catalogue = load_catalogue(self.catalogue, energy_tev=energy)
            return catalogue.subset(names) if names is not None else catalogue
        except SimulatorError as exc:
            raise SimulatorConfigError(f"checkmate backend: {exc}") from exc

    def simulate(
        self, point: Mapping[str, float], *, seed: int, workdir: str | Path
    ) -> SimulationResult:
        """Labels of one point; never raises for a point.

        Returns:
            ``ok`` with chi-square per energy, per analysis, the chosen SRs and the
            signal; ``rejected`` when SPheno or the pre-selection rejects the point;
            ``failed`` with the reason otherwise.
        """
        started = time.perf_counter()
        try:
            result = self._simulate(point, seed, Path(workdir))
        except Exception as exc:  # a point must never raise; keep the reason
            logger.exception("checkmate simulation of %s failed", dict(point))
            result = SimulationResult.failed(f"{type(exc).__name__}: {exc}")
        result.simulator, result.version = self.name, self.version
        result.timings.setdefault("total", time.perf_counter() - started)
        return result

    def _simulate(
        self, point: Mapping[str, float], seed: int, workdir: Path
    ) -> SimulationResult:
        from simulators.spheno import run_spheno

        settings = {
            "spheno_binary": self.spheno_binary,
            "timeout_s": self.spheno_timeout_s,
        }
        started = time.perf_counter()
        spectrum, outcome, spc = run_spheno(point, self.model, settings, workdir)
        if outcome is not None:
            return outcome
        if spectrum is None or spc is None:
            return SimulationResult.failed(
                "SPheno gave neither a spectrum nor a reason"
            )

        result = SimulationResult(status="ok", masses=dict(spectrum.masses))
        result.timings["spectrum"] = time.perf_counter() - started
        processes = self._processes(spectrum.masses)
        for energy in self.energies_tev:
            failure = self._run_energy(energy, spc, seed, workdir, processes, result)
            if failure is not None:
                failure.masses = result.masses
                failure.timings.update(result.timings)
                return failure
        return result

    def _processes(self, masses: Mapping[int, float]) -> list[Process]:
        if self.processes is not None:
            chosen = self.processes
        else:
            chosen = dict(STRONG_PROCESSES)
            if abs(masses.get(_LSP, math.inf)) < self.ew_max_lsp_gev:
                chosen.update(ELECTROWEAK_PROCESSES)
        return [Process(n, p, int(self.events_per_process)) for n, p in chosen.items()]

    def _run_energy(
        self,
        energy: float,
        spc: Path,
        seed: int,
        workdir: Path,
        processes: Sequence[Process],
        result: SimulationResult,
    ) -> SimulationResult | None:
        """Run CheckMATE at one energy and fill ``result``; a failed result or None."""
        key = round(energy)
        catalogue = self.catalogue_at(energy)
        scratch = workdir / f"checkmate_{key}TeV"
        scratch.mkdir(parents=True, exist_ok=True)
        slha = Path(shutil.copyfile(spc, scratch / "spectrum.slha"))
        card = write_run_card(
            scratch / "run.dat",
            name="point",
            analyses=[a.checkmate_name or a.name for a in catalogue.analyses.values()],
            slha_file=slha,
            output_dir=scratch / "output",
            seed=seed,
            processes=processes,
        )

        started = time.perf_counter()
        failure, extra = self._execute(card, scratch)
        result.timings[f"checkmate_{key}"] = time.perf_counter() - started
        if failure:
            return SimulationResult.failed(
                f"CheckMATE at {key} TeV: {failure}", extra=extra
            )
        results_file = scratch / "output" / "point" / "evaluation" / "total_results.txt"
        try:
            signal = signal_from_results(read_total_results(results_file), catalogue)
        except CheckMateOutputError as exc:
            return SimulationResult.failed(
                f"CheckMATE at {key} TeV: {exc}", extra=extra
            )

        combined = combine(
            catalogue, signal, cap=self.cap, signal_systematic=self.signal_systematic
        )
        result.chi2[key] = combined.total
        result.chi2_analysis[key] = combined.per_analysis
        result.chosen_regions[key] = combined.chosen
        result.signal[key] = {
            f"{name}/{sr}": [s, ds]
            for name, regions in signal.items()
            for sr, (s, ds) in regions.items()
        }
        return None

    def _execute(self, card: Path, scratch: Path) -> tuple[str, dict[str, Any]]:
        """Run CheckMATE on ``card``; ``("", extra)`` on success, else the reason."""
        binary = find_binary(self.checkmate_binary)
        if binary is None:
            return "executable not found", {}
        command = [binary, str(card), "-oe", "overwrite", "-q"]
        logger.debug("running %s in %s", command, scratch)
        try:
            proc = subprocess.run(
                command,
                cwd=scratch,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=self.timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            extra = {"stdout_tail": _tail(exc.stdout), "stderr_tail": _tail(exc.stderr)}
            return f"timed out after {self.timeout_s:g} s", extra
        except OSError as exc:
            return f"cannot run {binary}: {exc}", {}
        extra = {
            "exit_code": proc.returncode,
            "stdout_tail": _tail(proc.stdout),
            "stderr_tail": _tail(proc.stderr),
        }
        if proc.returncode != 0:
            return f"exited with code {proc.returncode}", extra
        return "", extra


def _analyses_for(analyses: Mapping[Any, Sequence[str]] | None, energy: float):
    """Configured analysis names at ``energy``; keys may be numbers or strings."""
    if analyses is None:
        return None
    for key, names in analyses.items():
        if math.isclose(float(key), energy):
            return list(names)
    return None


def _tail(data: bytes | str | None) -> str:
    if data is None:
        return ""
    text = data.decode(errors="replace") if isinstance(data, bytes) else data
    return text[-_TAIL_CHARS:]
