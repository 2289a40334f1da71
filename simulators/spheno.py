"""The SPheno adapter: write LesHouches.in, run the binary, read and judge its output.

:func:`run_spheno` is the reusable step (the CheckMATE back-end calls it before
its own work); :class:`SPhenoSimulator` is the ``spheno`` back-end that stops
after the spectrum and the pre-selection.

Outcomes of one run, and how they are recorded:

- SPheno writes a spectrum that passes the pre-selection: ``ok``;
- the spectrum fails the pre-selection (paper Sect. 2): ``rejected``;
- SPheno stops on the physics of the point (exit code 99 or SPINFO 4 with a
  Messages.out naming a negative mass squared or a correction above 100 %):
  ``rejected``, since running it again gives the same answer;
- anything else - a timeout, a crash (any other exit code or a signal), exit 99
  without a recognised reason, a missing or unreadable SPheno.spc: ``failed``,
  with the reason and the tails of stdout, stderr and Messages.out in ``extra``.

SPheno runs with its working directory set to a private ``spheno/`` directory
inside the job's scratch directory, so every file it writes stays there.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from simulators.errors import SimulatorConfigError, SLHAError
from simulators.preselection import preselect
from simulators.result import N_FEATURES, SimulationResult
from simulators.slha import SM_INPUTS, read_spectrum, read_spheno_info
from simulators.spectrum import (
    MODEL_PARAMETERS,
    Q_SCALE,
    SpectrumError,
    soft_parameters,
)
from simulators.spectrum_types import Spectrum

logger = logging.getLogger(__name__)

#: Environment variable naming the SPheno binary when the settings do not.
SPHENO_ENV = "SCYNET_SPHENO"
#: Default wall-time limit of one SPheno run (s).
DEFAULT_TIMEOUT_S = 120.0
#: Messages.out phrases that mean SPheno stopped on the physics of the point,
#: with the reason recorded for them.
PHYSICS_MESSAGES: tuple[tuple[str, str], ...] = (
    ("negative mass squared", "tachyonic state (negative mass squared)"),
    ("100% corrections", "loop correction above 100 %"),
    ("tachyon", "tachyonic state"),
)
_TAIL_CHARS = 2000
_SM_LABELS = {
    2: "G_F, Fermi constant",
    3: "alpha_s(MZ) SM MSbar",
    4: "Z-boson pole mass",
    5: "m_b(mb) SM MSbar",
    6: "m_top(pole)",
    7: "m_tau(pole)",
}


def leshouches_input(point: Mapping[str, float], model: str) -> str:
    """The LesHouches.in text for a pMSSM-11 or pMSSM-19 point (SPA convention).

    MODSEL 1 = 0 (general MSSM); EXTPAR 0 = 1000 GeV input scale, gaugino masses,
    trilinears, mu, tan(beta) at Q, the pole m_A and the sfermion mass parameters
    (masses, not squares); SPhenoInput with SPA conventions, branching ratios on
    and ``80 1`` so that a failure exits with code 99.

    Raises:
        SpectrumError: Unknown model or missing parameter.
    """
    s = {k: float(v[0]) for k, v in soft_parameters(point, model).items()}
    lines = [
        "Block MODSEL                 # Select model",
        " 1    0                      # general MSSM",
        "Block SMINPUTS               # Standard Model inputs",
        *(f" {k}   {SM_INPUTS[k]:.6E}       # {_SM_LABELS[k]}" for k in _SM_LABELS),
        "Block MINPAR                 # Input parameters",
        f" 3   {s['tanb']:.6E}       # tanb at m_Z",
        f"Block EXTPAR                 # {model} at Q = 1 TeV (SPA convention)",
        *(f"{k:2d}   {v:.6E}       # {name}" for k, v, name in _extpar_rows(s)),
        "Block SPhenoInput       # SPheno specific input",
        " 1  -1                  # error level",
        " 2   1                  # SPA conventions",
        "11   1                  # calculate branching ratios",
        "12   1.00000000E-04     # write only branching ratios larger than this value",
        "21   0                  # calculate cross section",
        "80   1                  # exit with a non-zero code on failure",
    ]
    return "\n".join(lines) + "\n"


def _extpar_rows(s: Mapping[str, float]) -> list[tuple[int, float, str]]:
    rows = [
        (0, Q_SCALE, "input scale"), (1, s["M1"], "M1"), (2, s["M2"], "M2"),
        (3, s["M3"], "M3"), (11, s["At"], "A_t"), (12, s["Ab"], "A_b"),
        (13, s["Atau"], "A_tau"), (23, s["mu"], "mu"),
        (25, s["tanb"], "tanb at input scale"), (26, s["mA"], "m_A pole"),
    ]  # fmt: skip
    families = (("L", "mL"), ("E", "mE"), ("Q", "mQ"), ("U", "mU"), ("D", "mD"))
    for base, (label, key) in zip((31, 34, 41, 44, 47), families, strict=True):
        for gen in range(3):
            value = s[f"{key}3"] if gen == 2 else s[f"{key}1"]
            rows.append((base + gen, value, f"M_{label}{gen + 1}{gen + 1}"))
    return rows


def find_binary(spheno_binary: str | None = None) -> str | None:
    """Absolute path of the SPheno executable named by the setting, else by
    ``$SCYNET_SPHENO``; None when it is not found or not executable."""
    name = spheno_binary or os.environ.get(SPHENO_ENV)
    if not name:
        return None
    found = shutil.which(name)
    return str(Path(found).resolve()) if found else None


def run_spheno(
    point: Mapping[str, float],
    model: str,
    settings: Mapping[str, Any],
    workdir: str | Path,
) -> tuple[Spectrum | None, SimulationResult | None, Path | None]:
    """Run SPheno on one point and apply the pre-selection.

    Args:
        point: Canonical parameter names to values (GeV).
        model: ``"pmssm11"`` or ``"pmssm19"``.
        settings: ``spheno_binary`` (path or name on PATH; default
            ``$SCYNET_SPHENO``) and ``timeout_s`` (default 120).
        workdir: The job's scratch directory; SPheno runs in ``workdir/spheno``.

    Returns:
        ``(spectrum, outcome, spc_path)``. When the spectrum passes the
        pre-selection, ``outcome`` is None and the caller goes on with
        ``spectrum`` and the SPheno.spc at ``spc_path`` (SLHA with DECAY blocks).
        Otherwise ``outcome`` is the final ``rejected`` or ``failed`` result (with
        masses when a spectrum was read); ``spectrum`` and ``spc_path`` are given
        whenever they exist. Never raises for a point.
    """
    started = time.perf_counter()
    scratch = Path(workdir) / "spheno"
    scratch.mkdir(parents=True, exist_ok=True)
    binary = find_binary(settings.get("spheno_binary"))
    timeout = float(settings.get("timeout_s", DEFAULT_TIMEOUT_S))

    if binary is None:
        return None, _failed("SPheno binary not found", started), None
    try:
        (scratch / "LesHouches.in").write_text(leshouches_input(point, model))
    except (SpectrumError, OSError) as exc:
        return None, _failed(f"cannot write LesHouches.in: {exc}", started), None
    spectrum, outcome, spc = _execute(binary, scratch, timeout, started)
    if outcome is None and spectrum is not None:
        spectrum.parameters = {k: float(v) for k, v in point.items()}
        outcome = _judge(spectrum, started)
    return spectrum, outcome, spc


def _execute(
    binary: str, scratch: Path, timeout: float, started: float
) -> tuple[Spectrum | None, SimulationResult | None, Path | None]:
    logger.debug("running %s in %s", binary, scratch)
    try:
        proc = subprocess.run(
            [binary], cwd=scratch, capture_output=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        extra = _tails(scratch, exc.stdout, exc.stderr)
        return (
            None,
            _failed(f"SPheno timed out after {timeout:g} s", started, extra),
            None,
        )
    except OSError as exc:
        return None, _failed(f"cannot run SPheno {binary}: {exc}", started), None

    extra = _tails(scratch, proc.stdout, proc.stderr)
    extra["exit_code"] = proc.returncode
    spc = scratch / "SPheno.spc"
    if proc.returncode not in (0, 99):
        reason = f"SPheno crashed with exit code {proc.returncode}"
        return None, _failed(reason, started, extra), spc if spc.exists() else None
    if not spc.exists():
        reason = (
            f"SPheno finished with exit code {proc.returncode} but wrote no SPheno.spc"
        )
        return None, _failed(reason, started, extra), None
    return _read_output(spc, proc.returncode, extra, started)


def _read_output(
    spc: Path, exit_code: int, extra: dict[str, Any], started: float
) -> tuple[Spectrum | None, SimulationResult | None, Path | None]:
    try:
        info = read_spheno_info(spc)
    except SLHAError as exc:
        return None, _failed(f"SPheno.spc unreadable: {exc}", started, extra), spc
    if exit_code == 99 or 4 in info:
        return None, _stopped(extra, info, started), spc
    try:
        spectrum = read_spectrum(spc)
    except SLHAError as exc:
        return None, _failed(f"SPheno.spc unreadable: {exc}", started, extra), spc
    if 3 in info:
        logger.warning("SPheno warnings for %s: %s", spc, info[3])
    return spectrum, None, spc


def spheno_version(spc: str | Path | None) -> str:
    """SPheno's version from SPINFO 2 of its output, or an empty string."""
    if spc is None:
        return ""
    try:
        return " ".join(read_spheno_info(spc).get(2, []))
    except SLHAError:
        return ""


def _stopped(
    extra: dict[str, Any], info: Mapping[int, list[str]], started: float
) -> SimulationResult:
    """SPheno gave up (exit code 99 or SPINFO 4): a failed result with the reason.

    When Messages.out names a physics reason (a tachyon, a loop correction above
    100 %), the same point fails the same way every time, so the result is marked
    ``extra["retryable"] = False`` and a campaign does not spend retries on it.
    """
    messages = str(extra.get("messages_tail", ""))
    for phrase, meaning in PHYSICS_MESSAGES:
        if phrase in messages.lower():
            routine = _routine_line(messages, phrase)
            reason = (
                f"SPheno stopped (exit code {extra.get('exit_code')}): {meaning}"
                + (f" ({routine})" if routine else "")
            )
            return _failed(reason, started, {**extra, "retryable": False})
    problem = "; ".join(info.get(4, [])) or "no reason given"
    reason = f"SPheno failed (exit code {extra.get('exit_code')}, SPINFO 4: {problem})"
    return _failed(reason, started, extra)


def _routine_line(messages: str, phrase: str) -> str:
    for line in messages.splitlines():
        if phrase in line.lower() and "routine" in line.lower():
            return " ".join(line.split())
    return ""


def _judge(spectrum: Spectrum, started: float) -> SimulationResult | None:
    reason = preselect(spectrum)
    if reason is None:
        return None
    return SimulationResult.rejected(
        reason,
        masses=dict(spectrum.masses),
        simulator="spheno",
        timings=_timing(started),
    )


def _failed(
    reason: str, started: float, extra: dict[str, Any] | None = None
) -> SimulationResult:
    logger.debug("SPheno run failed: %s", reason)
    return SimulationResult.failed(
        reason, simulator="spheno", extra=extra or {}, timings=_timing(started)
    )


def _timing(started: float) -> dict[str, float]:
    return {"spectrum": time.perf_counter() - started}


def _tails(
    scratch: Path, stdout: bytes | str | None, stderr: bytes | str | None
) -> dict[str, Any]:
    messages = scratch / "Messages.out"
    try:
        text = messages.read_text(errors="replace") if messages.exists() else ""
    except OSError:
        text = ""
    return {
        "stdout_tail": _tail(stdout),
        "stderr_tail": _tail(stderr),
        "messages_tail": text[-_TAIL_CHARS:],
    }


def _tail(data: bytes | str | None) -> str:
    if data is None:
        return ""
    text = data.decode(errors="replace") if isinstance(data, bytes) else data
    return text[-_TAIL_CHARS:]


class SPhenoSimulator:
    """The ``spheno`` back-end: SPheno spectrum and pre-selection, no LHC labels.

    Args:
        spheno_binary: Path or name of the SPheno executable; default
            ``$SCYNET_SPHENO``.
        model: ``"pmssm11"`` or ``"pmssm19"``.
        timeout_s: Wall-time limit of one SPheno run (s).

    An ``ok`` result carries the masses only (no chi-square): this back-end serves
    the ``simulate --stage spectrum`` command and the CheckMATE back-end.
    """

    name = "spheno"

    def __init__(
        self,
        spheno_binary: str | None = None,
        model: str = "pmssm11",
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self.spheno_binary = spheno_binary
        self.model = model
        self.timeout_s = timeout_s

    @property
    def version(self) -> str:
        """SPheno binary path as configured (the run records SPheno's own version)."""
        return str(self.spheno_binary or os.environ.get(SPHENO_ENV, ""))

    def check(self) -> None:
        """Raise :class:`SimulatorConfigError` when SPheno cannot run here."""
        if self.model not in MODEL_PARAMETERS:
            raise SimulatorConfigError(
                f"spheno back-end: unknown model {self.model!r}; expected one of "
                f"{sorted(MODEL_PARAMETERS)}"
            )
        if not self.timeout_s > 0:
            raise SimulatorConfigError(
                f"spheno back-end: timeout_s must be > 0, got {self.timeout_s}"
            )
        if find_binary(self.spheno_binary) is None:
            named = self.spheno_binary or os.environ.get(SPHENO_ENV)
            raise SimulatorConfigError(
                f"SPheno binary {named!r} not found or not executable; set "
                f"simulator.settings.spheno_binary or ${SPHENO_ENV}"
                if named
                else f"no SPheno binary configured; set simulator.settings.spheno_binary or ${SPHENO_ENV}"
            )

    def describe(self) -> dict[str, Any]:
        """No LHC energies or analyses: this back-end stops at the spectrum."""
        return {"energies": [], "analyses": {}, "n_features": N_FEATURES}

    def simulate(
        self, point: Mapping[str, float], *, seed: int, workdir: str | Path
    ) -> SimulationResult:
        """Spectrum and pre-selection of one point (``seed`` is unused: SPheno is
        deterministic)."""
        started = time.perf_counter()
        settings = {"spheno_binary": self.spheno_binary, "timeout_s": self.timeout_s}
        spectrum, outcome, spc = run_spheno(point, self.model, settings, workdir)
        if outcome is None and spectrum is not None:
            outcome = SimulationResult(
                status="ok", masses=dict(spectrum.masses), timings=_timing(started)
            )
        elif outcome is None:
            outcome = _failed("SPheno gave neither a spectrum nor a reason", started)
        outcome.simulator = self.name
        outcome.version = spheno_version(spc)
        return outcome
