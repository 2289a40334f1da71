"""SLHA files: read SPheno spectra and decay tables, write cards Pythia 8 accepts."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyslha

from simulators.errors import SLHAError
from simulators.spectrum import MODEL_PARAMETERS, Q_SCALE, soft_parameters
from simulators.spectrum_types import Decay, DecayTable, Spectrum

logger = logging.getLogger(__name__)

#: SPhenoLowEnergy entries (SPheno 4 numbering) kept under readable names; units:
#: branching ratios are plain numbers, Delta M_Bs in ps^-1.
LOW_ENERGY_ENTRIES: dict[int, str] = {
    1: "BR(b->s gamma)",
    8: "BR(Bs->mu mu)",
    10: "BR(Bu->tau nu)",
    13: "DeltaM_Bs",
}

#: EXTPAR entries of a pMSSM card to pMSSM-19 canonical names (GeV; 25 is tan beta).
EXTPAR_NAMES: dict[int, str] = {
    1: "M1", 2: "M2", 3: "M3", 11: "At", 12: "Ab", 13: "Atau", 23: "mu",
    25: "tanb", 26: "mA", 31: "mL12", 33: "mL3", 34: "mE12", 36: "mE3",
    41: "mQ12", 43: "mQ3", 44: "mU12", 46: "mU3", 47: "mD12", 49: "mD3",
}  # fmt: skip

#: Standard Model inputs written to SMINPUTS (PDG values as used by SPheno 4.0.5):
#: 1/alpha_em(m_Z) MS-bar, G_F (GeV^-2), alpha_s(m_Z), m_Z, m_b(m_b), m_t pole,
#: m_tau pole (GeV).
SM_INPUTS: dict[int, float] = {
    1: 127.931911, 2: 1.166379e-05, 3: 0.1184, 4: 91.1876, 5: 4.18, 6: 173.1,
    7: 1.77682,
}  # fmt: skip


# ------------------------------------------------------------------ reading


def read_spheno_info(path: str | Path) -> dict[int, list[str]]:
    """SPINFO entries of an SLHA file by code, read as text.

    SPheno writes ``4`` (errors) with only a comment when it fails, which pyslha
    cannot parse; this reader tolerates that.

    Returns:
        Code to the list of texts given for it (value and comment), e.g.
        ``{1: ["SPheno"], 4: ["internal problem, see Messages.out for infos"]}``.

    Raises:
        SLHAError: The file is missing or unreadable.
    """
    text = _read_text(path)
    info: dict[int, list[str]] = {}
    in_block = False
    for line in text.splitlines():
        head = line.strip().upper()
        if head.startswith(("BLOCK", "DECAY")):
            in_block = (
                head.split()[1:2] == ["SPINFO"] if head.startswith("BLOCK") else False
            )
            continue
        if not in_block or not line.strip() or line.lstrip().startswith("#"):
            continue
        body, _, comment = line.partition("#")
        fields = body.split()
        if fields and fields[0].isdigit():
            value = " ".join(fields[1:]) or comment.strip()
            info.setdefault(int(fields[0]), []).append(value)
    return info


def read_spectrum(path: str | Path) -> Spectrum:
    """Read a spectrum written by SPheno (or any SLHA 2 spectrum file).

    Args:
        path: The SLHA file.

    Returns:
        The spectrum; ``source`` is ``"spheno"`` or ``"builtin"`` by the program
        named in SPINFO 1 (``"slha"`` otherwise); ``low_energy`` carries the
        SPhenoLowEnergy entries of :data:`LOW_ENERGY_ENTRIES` and ``m_W`` (GeV,
        from MASS 24) when present.

    Raises:
        SLHAError: Missing or unreadable file, or a missing block; names file and
            block.
    """
    doc = _parse(path)
    blocks = doc.blocks
    masses = _masses(blocks, path)
    hmix = _block(blocks, "HMIX", path)
    spectrum = Spectrum(
        masses=masses,
        N=_matrix(blocks, "NMIX", 4, path),
        U=_matrix(blocks, "UMIX", 2, path),
        V=_matrix(blocks, "VMIX", 2, path),
        stop_mix=_matrix(blocks, "STOPMIX", 2, path),
        sbottom_mix=_matrix(blocks, "SBOTMIX", 2, path),
        stau_mix=_matrix(blocks, "STAUMIX", 2, path),
        alpha=_alpha(blocks, path),
        tan_beta=_entry(hmix, 2, "HMIX", path),
        mu=_entry(hmix, 1, "HMIX", path),
        parameters=_parameters(blocks),
        couplings=_couplings(blocks, path),
        tachyons=[],
        low_energy=_low_energy(blocks, masses),
        source=_source(blocks),
    )
    logger.debug("read spectrum from %s", path)
    return spectrum


def read_decays(path: str | Path) -> DecayTable:
    """Read the DECAY blocks of an SLHA file.

    Returns:
        PDG code to :class:`Decay`; daughters keep their signs. Particles listed
        with a width but no channel (SPheno's Z and W) keep an empty channel list.

    Raises:
        SLHAError: Missing or unreadable file.
    """
    doc = _parse(path)
    table: DecayTable = {}
    for pdg, particle in doc.decays.items():
        width = float(particle.totalwidth or 0.0)
        channels = [
            (float(d.br), tuple(int(i) for i in d.ids)) for d in particle.decays
        ]
        table[int(pdg)] = Decay(width=width, channels=channels)
    logger.debug("read %d decay tables from %s", len(table), path)
    return table


def _read_text(path: str | Path) -> str:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise SLHAError(f"cannot read SLHA file {path}: {exc}") from exc


def _parse(path: str | Path) -> Any:
    text = _read_text(path)
    try:
        return pyslha.readSLHA(text, ignorenobr=True)
    except Exception as exc:  # pyslha raises several unrelated types on bad input
        raise SLHAError(f"SLHA file {path} is malformed: {exc}") from exc


def _block(blocks: Mapping[str, Any], name: str, path: str | Path) -> Any:
    if name not in blocks or len(blocks[name]) == 0:
        raise SLHAError(f"SLHA file {path} has no block {name}")
    return blocks[name]


def _masses(blocks: Mapping[str, Any], path: str | Path) -> dict[int, float]:
    try:
        return {int(k): float(v) for k, v in _block(blocks, "MASS", path).items()}
    except (TypeError, ValueError) as exc:
        raise SLHAError(f"SLHA file {path}: block MASS has a malformed entry") from exc


def _entry(block: Any, key: Any, name: str, path: str | Path) -> float:
    try:
        return float(block[key])
    except (KeyError, TypeError, ValueError) as exc:
        raise SLHAError(f"SLHA file {path}: block {name} lacks entry {key}") from exc


def _matrix(
    blocks: Mapping[str, Any], name: str, n: int, path: str | Path
) -> np.ndarray:
    block = _block(blocks, name, path)
    out = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            out[i, j] = _entry(block, (i + 1, j + 1), name, path)
    return out


def _alpha(blocks: Mapping[str, Any], path: str | Path) -> float:
    block = _block(blocks, "ALPHA", path)
    values = list(block.values())
    if len(values) != 1:
        raise SLHAError(f"SLHA file {path}: block ALPHA should hold one value")
    return float(values[0])


def _source(blocks: Mapping[str, Any]) -> str:
    """``spheno`` or ``builtin`` from SPINFO 1 (the program), else ``slha``."""
    spinfo = blocks.get("SPINFO")
    program = str(spinfo[1]).lower() if spinfo is not None and 1 in spinfo else ""
    return {"spheno": "spheno", "scynet-al": "builtin"}.get(program, "slha")


def _parameters(blocks: Mapping[str, Any]) -> dict[str, float]:
    extpar = blocks.get("EXTPAR")
    if extpar is None:
        return {}
    return {name: float(extpar[k]) for k, name in EXTPAR_NAMES.items() if k in extpar}


def _couplings(blocks: Mapping[str, Any], path: str | Path) -> dict[str, float]:
    gauge = _block(blocks, "GAUGE", path)
    out = {f"g{i}": _entry(gauge, i, "GAUGE", path) for i in (1, 2, 3)}
    for name, block in (("yt", "YU"), ("yb", "YD"), ("ytau", "YE")):
        out[name] = _entry(_block(blocks, block, path), (3, 3), block, path)
    out["v"] = _entry(_block(blocks, "HMIX", path), 3, "HMIX", path)
    return out


def _low_energy(
    blocks: Mapping[str, Any], masses: Mapping[int, float]
) -> dict[str, float]:
    block = blocks.get("SPHENOLOWENERGY")
    if block is None:
        return {}
    out = {
        name: float(block[k]) for k, name in LOW_ENERGY_ENTRIES.items() if k in block
    }
    if 24 in masses:
        out["m_W"] = float(masses[24])
    return out


# ------------------------------------------------------------------ writing


def write_card(path: str | Path, spectrum: Spectrum, decays: DecayTable) -> Path:
    """Write an SLHA card that Pythia 8 reads with ``SUSY:all = on``.

    Blocks: MODSEL, SMINPUTS, MINPAR, EXTPAR and MSOFT (when the spectrum carries
    its pMSSM-11/19 input point), GAUGE, YU/YD/YE, AU/AD/AE, HMIX, MASS (with the
    top quark), ALPHA, NMIX, UMIX, VMIX, STOPMIX, SBOTMIX, STAUMIX and one DECAY
    block per particle with at least one channel.

    Args:
        path: Output file (overwritten).
        spectrum: The spectrum.
        decays: Decay tables to include.

    Returns:
        The path written.

    Raises:
        SLHAError: The file cannot be written.
    """
    soft = _soft_of(spectrum)
    parts = [
        "# SUSY Les Houches Accord 2 spectrum and decays written by scynet-al\n",
        f"BLOCK SPINFO   # program\n     1   {_PROGRAM.get(spectrum.source, 'unknown')}\n",
        _block_text("MODSEL", {1: 0}, "general MSSM"),
        _block_text("SMINPUTS", SM_INPUTS, "Standard Model inputs"),
        _block_text("MINPAR", {3: spectrum.tan_beta}, "tan beta"),
    ]
    if soft:
        parts.append(_block_text("EXTPAR", _extpar(soft), "pMSSM inputs at Q", q=None))
        parts.append(_block_text("MSOFT", _msoft(soft), "soft masses", q=Q_SCALE))
    parts += [
        _couplings_text(spectrum, soft),
        _block_text("HMIX", _hmix(spectrum), "Higgs parameters", q=Q_SCALE),
        _block_text("MASS", _mass_entries(spectrum), "pole masses (GeV)"),
        f"BLOCK ALPHA   # CP-even Higgs mixing angle\n     {spectrum.alpha: .8E}\n",
        _matrix_text("NMIX", spectrum.N),
        _matrix_text("UMIX", spectrum.U),
        _matrix_text("VMIX", spectrum.V),
        _matrix_text("STOPMIX", spectrum.stop_mix),
        _matrix_text("SBOTMIX", spectrum.sbottom_mix),
        _matrix_text("STAUMIX", spectrum.stau_mix),
    ]
    parts += [_decay_text(pdg, decay) for pdg, decay in sorted(decays.items())]
    path = Path(path)
    try:
        path.write_text("".join(parts), encoding="utf-8")
    except OSError as exc:
        raise SLHAError(f"cannot write SLHA card {path}: {exc}") from exc
    logger.debug("wrote SLHA card %s", path)
    return path


_PROGRAM = {"builtin": "scynet-al", "spheno": "SPheno"}


def _soft_of(spectrum: Spectrum) -> dict[str, float]:
    names = set(spectrum.parameters)
    for model, wanted in MODEL_PARAMETERS.items():
        if set(wanted) <= names:
            arrays = soft_parameters(spectrum.parameters, model)
            return {k: float(v[0]) for k, v in arrays.items()}
    return {}


def _extpar(s: Mapping[str, float]) -> dict[int, float]:
    out = {0: Q_SCALE, 1: s["M1"], 2: s["M2"], 3: s["M3"], 11: s["At"], 12: s["Ab"]}
    out.update({13: s["Atau"], 23: s["mu"], 25: s["tanb"], 26: s["mA"]})
    for base, (first, third) in {31: ("mL1", "mL3"), 34: ("mE1", "mE3")}.items():
        out.update({base: s[first], base + 1: s[first], base + 2: s[third]})
    for base, key in {41: "Q", 44: "U", 47: "D"}.items():
        out.update(
            {base: s[f"m{key}1"], base + 1: s[f"m{key}1"], base + 2: s[f"m{key}3"]}
        )
    return out


def _msoft(s: Mapping[str, float]) -> dict[int, float]:
    return {k: v for k, v in _extpar(s).items() if k in (1, 2, 3) or k >= 31}


def _hmix(spectrum: Spectrum) -> dict[int, float]:
    out = {1: spectrum.mu, 2: spectrum.tan_beta}
    if "v" in spectrum.couplings:
        out[3] = spectrum.couplings["v"]
    m_a = spectrum.masses.get(36)
    if m_a is not None:
        out[4] = m_a**2
    return out


def _mass_entries(spectrum: Spectrum) -> dict[int, float]:
    """MASS entries: all SUSY and Higgs states and the top quark.

    Pythia 8 keeps its own masses for SM particles lighter than ``SLHA:minMassSM``
    (100 GeV) and warns when a card lists them, so b, tau, Z and W are left out.
    """
    entries = {6: SM_INPUTS[6]}
    entries.update(
        {pdg: m for pdg, m in spectrum.masses.items() if pdg >= 25 or abs(m) >= 100.0}
    )
    return dict(sorted(entries.items()))


def _couplings_text(spectrum: Spectrum, soft: Mapping[str, float]) -> str:
    c = spectrum.couplings
    text = ""
    if all(f"g{i}" in c for i in (1, 2, 3)):
        text += _block_text(
            "GAUGE", {i: c[f"g{i}"] for i in (1, 2, 3)}, "gauge", q=Q_SCALE
        )
    for block, key in (("YU", "yt"), ("YD", "yb"), ("YE", "ytau")):
        if key in c:
            text += _block_text(block, {(3, 3): c[key]}, "Yukawa", q=Q_SCALE)
    for block, key in (("AU", "At"), ("AD", "Ab"), ("AE", "Atau")):
        if key in soft:
            text += _block_text(block, {(3, 3): soft[key]}, "trilinear", q=Q_SCALE)
    return text


def _block_text(
    name: str, entries: Mapping[Any, float], comment: str, q: float | None = None
) -> str:
    head = f"BLOCK {name}" + (f" Q= {q: .8E}" if q is not None else "")
    lines = [f"{head}   # {comment}"]
    for key, value in entries.items():
        index = (
            " ".join(f"{k:3d}" for k in key) if isinstance(key, tuple) else f"{key:9d}"
        )
        lines.append(f"  {index}   {_number(value, name, key)}")
    return "\n".join(lines) + "\n"


def _number(value: float, block: str, key: Any) -> str:
    if isinstance(value, int):
        return f"{value:d}"
    value = float(value)
    if not math.isfinite(value):
        raise SLHAError(f"block {block} entry {key} is not a finite number: {value}")
    return f"{value: .8E}"


def _matrix_text(name: str, matrix: np.ndarray) -> str:
    n = matrix.shape[0]
    entries = {(i + 1, j + 1): matrix[i, j] for i in range(n) for j in range(n)}
    return _block_text(name, entries, "mixing matrix")


def _decay_text(pdg: int, decay: Decay) -> str:
    if not decay.channels:
        return ""
    lines = [f"DECAY {pdg:9d}   {decay.width: .8E}"]
    for br, daughters in decay.channels:
        ids = " ".join(f"{d:9d}" for d in daughters)
        lines.append(f"   {br: .8E}   {len(daughters)}   {ids}")
    return "\n".join(lines) + "\n"
