"""Signal-region catalogue: the published counts of the LHC analyses (paper Table 3).

The catalogue shipped with the package, ``simulators/data/lhc_signal_regions.json``,
holds the 19 analyses of Table 3 (216 signal regions) with the numbers published by
ATLAS and CMS as collected in the CheckMATE 2 reference data; ``tools/make_catalogue.py``
wrote it once from that source. Its format, per analysis::

    "atlas_1605_03814": {
      "sqrt_s_tev": 13.0, "luminosity_fb": 3.2, "reference": "arXiv:1605.03814",
      "aliases": [], "checkmate_name": "atlas_1605_03814",
      "description": "multiple jets + missing ET", "notes": "",
      "signal_regions": {
        "2jl": {"n_obs": 263.0, "n_bkg": 283.0, "bkg_error": 24.0,
                "s95_obs": 44.0, "s95_exp": 54.0}, ...},
      "groups": [["2jl", "2jm", ...]]}

``bkg_error`` is a number (symmetric), ``{"up": .., "down": ..}`` or ``null`` when the
source publishes none (the chi-square then uses the background without uncertainty).
``groups`` are the disjoint groups of paper Fig. 3; when absent, all signal regions of
an analysis form one group, so the combination uses the single most sensitive one.
The paper split its analyses into finer groups (47 SRs at 8 TeV, 65 at 13 TeV); that
overlap information is not in the reference data, so the shipped catalogue keeps the
default grouping.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simulators.errors import CatalogueError

logger = logging.getLogger(__name__)

#: The catalogue shipped with the package (Table 3 analyses).
DEFAULT_CATALOGUE = Path(__file__).resolve().parent / "data" / "lhc_signal_regions.json"

_REGION_NUMBERS = ("n_obs", "n_bkg", "s95_obs", "s95_exp")
_ANALYSIS_FIELDS = ("sqrt_s_tev", "luminosity_fb", "reference", "description")


@dataclass(frozen=True)
class SignalRegion:
    """Published numbers of one signal region (events).

    Attributes:
        name: Signal-region name as in the analysis.
        n_obs: Observed events.
        n_bkg: Expected Standard-Model background events.
        bkg_error_up: Upper background uncertainty (events).
        bkg_error_down: Lower background uncertainty (events); equal to
            ``bkg_error_up`` when the error is symmetric.
        s95_obs: Observed 95 % CL upper limit on signal events.
        s95_exp: Expected 95 % CL upper limit on signal events.
        bkg_error_published: False when the source gives no background uncertainty
            (both errors are then 0).
    """

    name: str
    n_obs: float
    n_bkg: float
    bkg_error_up: float
    bkg_error_down: float
    s95_obs: float
    s95_exp: float
    bkg_error_published: bool = True

    @property
    def symmetric(self) -> bool:
        """Whether the background error is the same up and down."""
        return self.bkg_error_up == self.bkg_error_down


@dataclass(frozen=True)
class Analysis:
    """One LHC analysis: its metadata, signal regions and disjoint groups."""

    name: str
    sqrt_s_tev: float
    luminosity_fb: float
    reference: str
    description: str
    signal_regions: Mapping[str, SignalRegion]
    groups: tuple[tuple[str, ...], ...]
    aliases: tuple[str, ...] = ()
    checkmate_name: str = ""
    notes: str = ""

    @property
    def region_names(self) -> list[str]:
        """Signal-region names in catalogue order."""
        return list(self.signal_regions)


@dataclass(frozen=True)
class Catalogue:
    """A set of analyses, usually all at one centre-of-mass energy.

    Attributes:
        analyses: Analysis name to :class:`Analysis`, in catalogue order.
        source: Where the catalogue was read from.
    """

    analyses: Mapping[str, Analysis]
    source: str = ""

    @property
    def energies(self) -> list[float]:
        """Distinct centre-of-mass energies (TeV), ascending."""
        return sorted({a.sqrt_s_tev for a in self.analyses.values()})

    @property
    def n_regions(self) -> int:
        """Total number of signal regions."""
        return sum(len(a.signal_regions) for a in self.analyses.values())

    def analysis(self, name: str) -> Analysis:
        """The analysis called ``name`` or carrying it as an alias.

        Raises:
            CatalogueError: No such analysis.
        """
        return self.analyses[self.resolve([name])[0]]

    def resolve(self, names: Iterable[str]) -> list[str]:
        """Catalogue names of ``names`` (aliases allowed), in the order given.

        Raises:
            CatalogueError: A name is neither an analysis nor an alias.
        """
        lookup = {alias: a.name for a in self.analyses.values() for alias in a.aliases}
        lookup.update({name: name for name in self.analyses})
        unknown = [n for n in names if n not in lookup]
        if unknown:
            raise CatalogueError(
                f"unknown analysis {unknown} in catalogue {self.source or '<memory>'}; "
                f"known: {sorted(self.analyses)}"
            )
        return [lookup[n] for n in names]

    def for_energy(self, energy_tev: float) -> Catalogue:
        """The analyses at ``energy_tev`` (TeV); empty if there are none."""
        kept = {
            name: a
            for name, a in self.analyses.items()
            if math.isclose(a.sqrt_s_tev, float(energy_tev))
        }
        return Catalogue(kept, source=self.source)

    def subset(self, names: Iterable[str]) -> Catalogue:
        """The named analyses (aliases allowed), in catalogue order.

        Raises:
            CatalogueError: A name is unknown.
        """
        wanted = set(self.resolve(list(names)))
        kept = {n: a for n, a in self.analyses.items() if n in wanted}
        return Catalogue(kept, source=self.source)

    def zero_signal_chi2(self, energy_tev: float | None = None) -> float:
        """Chi-square of a spectrum with no signal anywhere (the zero-signal peak).

        Each disjoint group contributes the background-only deviance of the signal
        region that an infinitesimal equal signal would select (the smallest
        ``s95_exp``); see :func:`simulators.combination.combine`. Not capped.

        Args:
            energy_tev: Restrict to this energy; may be omitted when the catalogue
                holds a single energy.

        Raises:
            CatalogueError: The catalogue mixes energies and none was given.
        """
        from simulators.combination import combine

        catalogue = self._single_energy(energy_tev)
        return combine(catalogue, {}, cap=math.inf).total

    def _single_energy(self, energy_tev: float | None) -> Catalogue:
        if energy_tev is not None:
            return self.for_energy(energy_tev)
        if len(self.energies) > 1:
            raise CatalogueError(
                f"catalogue {self.source or '<memory>'} mixes energies "
                f"{self.energies} TeV; name one"
            )
        return self


def load_catalogue(
    path: str | Path | None = None,
    energy_tev: float | None = None,
    analyses: Iterable[str] | None = None,
) -> Catalogue:
    """Read and validate a catalogue file.

    Args:
        path: JSON file in the format of the module docstring; default the shipped
            Table 3 catalogue.
        energy_tev: Keep only analyses at this centre-of-mass energy (TeV).
        analyses: Keep only these analyses (names or aliases).

    Returns:
        The validated :class:`Catalogue`.

    Raises:
        CatalogueError: Unreadable file, or a missing field, a negative or non-finite
            number, a bad group or an unknown analysis; the message names the file,
            the analysis and the signal region.
    """
    path = Path(path) if path is not None else DEFAULT_CATALOGUE
    logger.debug("reading signal-region catalogue %s", path)
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CatalogueError(f"cannot read catalogue {path}: {exc}") from exc
    catalogue = catalogue_from_dict(data, source=str(path))
    if energy_tev is not None:
        catalogue = catalogue.for_energy(energy_tev)
    if analyses is not None:
        catalogue = catalogue.subset(analyses)
    return catalogue


def catalogue_from_dict(data: Mapping[str, Any], *, source: str = "") -> Catalogue:
    """Build and validate a catalogue from its JSON structure.

    Raises:
        CatalogueError: As for :func:`load_catalogue`.
    """
    where = source or "<memory>"
    entries = data.get("analyses") if isinstance(data, Mapping) else None
    if not isinstance(entries, Mapping) or not entries:
        raise CatalogueError(f"catalogue {where}: no 'analyses' mapping")
    analyses = {
        name: _parse_analysis(name, entry, where) for name, entry in entries.items()
    }
    return Catalogue(analyses, source=source)


def _parse_analysis(name: str, entry: Any, where: str) -> Analysis:
    if not isinstance(entry, Mapping):
        raise CatalogueError(f"catalogue {where}, analysis {name}: not a mapping")
    missing = [key for key in (*_ANALYSIS_FIELDS, "signal_regions") if key not in entry]
    if missing:
        raise CatalogueError(f"catalogue {where}, analysis {name}: missing {missing}")
    for key in ("sqrt_s_tev", "luminosity_fb"):
        _check_number(
            entry[key], f"catalogue {where}, analysis {name}, {key}", positive=True
        )
    regions_in = entry["signal_regions"]
    if not isinstance(regions_in, Mapping) or not regions_in:
        raise CatalogueError(f"catalogue {where}, analysis {name}: no signal regions")
    regions = {
        sr: _parse_region(sr, values, f"catalogue {where}, analysis {name}, SR {sr}")
        for sr, values in regions_in.items()
    }
    groups = _parse_groups(entry.get("groups"), list(regions), where, name)
    return Analysis(
        name=name,
        sqrt_s_tev=float(entry["sqrt_s_tev"]),
        luminosity_fb=float(entry["luminosity_fb"]),
        reference=str(entry["reference"]),
        description=str(entry["description"]),
        signal_regions=regions,
        groups=groups,
        aliases=tuple(entry.get("aliases", ())),
        checkmate_name=str(entry.get("checkmate_name", name)),
        notes=str(entry.get("notes", "")),
    )


def _parse_region(name: str, values: Any, where: str) -> SignalRegion:
    if not isinstance(values, Mapping):
        raise CatalogueError(f"{where}: not a mapping")
    missing = [key for key in (*_REGION_NUMBERS, "bkg_error") if key not in values]
    if missing:
        raise CatalogueError(f"{where}: missing {missing}")
    numbers = {
        key: _check_number(values[key], f"{where}, {key}") for key in _REGION_NUMBERS
    }
    for key in ("n_bkg", "s95_exp"):
        if numbers[key] <= 0:
            raise CatalogueError(f"{where}, {key}: must be > 0, got {numbers[key]}")
    up, down, published = _parse_bkg_error(values["bkg_error"], where)
    return SignalRegion(
        name=name,
        bkg_error_up=up,
        bkg_error_down=down,
        bkg_error_published=published,
        **numbers,
    )


def _parse_bkg_error(error: Any, where: str) -> tuple[float, float, bool]:
    """``(up, down, published)`` from a number, ``{"up", "down"}`` or ``None``."""
    if error is None:
        return 0.0, 0.0, False
    if isinstance(error, Mapping):
        if set(error) != {"up", "down"}:
            raise CatalogueError(f"{where}, bkg_error: expected keys up and down")
        up = _check_number(error["up"], f"{where}, bkg_error.up")
        down = _check_number(error["down"], f"{where}, bkg_error.down")
        return up, down, True
    value = _check_number(error, f"{where}, bkg_error")
    return value, value, True


def _parse_groups(
    groups: Any, regions: list[str], where: str, analysis: str
) -> tuple[tuple[str, ...], ...]:
    """Disjoint groups; every signal region in exactly one. Default: one group."""
    if groups is None:
        return (tuple(regions),)
    flat = [sr for group in groups for sr in group]
    unknown = sorted(set(flat) - set(regions))
    repeated = sorted({sr for sr in flat if flat.count(sr) > 1})
    orphans = sorted(set(regions) - set(flat))
    if unknown or repeated or orphans or any(not g for g in groups):
        raise CatalogueError(
            f"catalogue {where}, analysis {analysis}: bad groups (unknown SR "
            f"{unknown}, SR in several groups {repeated}, SR in none {orphans})"
        )
    return tuple(tuple(group) for group in groups)


def _check_number(value: Any, where: str, *, positive: bool = False) -> float:
    """``value`` as a finite float ``>= 0`` (``> 0`` if ``positive``)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CatalogueError(f"{where}: expected a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number) or number < 0 or (positive and number == 0):
        raise CatalogueError(f"{where}: must be finite and >= 0, got {value!r}")
    return number
