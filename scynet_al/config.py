"""Campaign configuration: commented YAML validated into frozen, typed models.

A config has the sections ``campaign``, ``space``, ``prior``, ``regions``,
``simulator``, ``surrogate``, ``proposer`` and ``dask`` (see ``configs/*.yaml`` for
commented examples with units). :func:`load_config` reads a file and returns a
:class:`Config`; any problem raises :class:`~scynet_al.errors.ConfigError` with one
line naming the file, the key path (``campaign.budget.max_points``) and the value.

Validation is strict: unknown keys, duplicate keys, wrong types (a string where a
number belongs), empty or inverted ranges, parameters the model does not have,
negative budgets, a wall-time budget of zero (``null`` means no limit) and negative
proposal fractions are all refused. Numbers are read as YAML 1.2 reads them (``1e3``
and ``2E-4`` are floats, not strings), and an integer key takes a float with a whole
value (``max_points: 1e3``).

Nothing is written anywhere while a config is loaded, so a command can load its
config before it opens or creates a store and leave every file untouched when the
config is bad.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import re
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import pydantic
import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PrivateAttr

from sampler.errors import SamplerError
from sampler.regions import PAPER_EDGES, REGION_NAMES, ChiSquareRegions
from sampler.space import ParameterSpace, make_space
from scynet_al.errors import ConfigError

__all__ = [
    "BudgetConfig",
    "CampaignConfig",
    "ClusterConfig",
    "Config",
    "ConfigError",
    "DaskConfig",
    "FractionsConfig",
    "ProposerConfig",
    "RegionsConfig",
    "SimulatorConfig",
    "SpaceConfig",
    "SurrogateConfig",
    "load_config",
    "parse_config",
]


class _KeyedValueError(ValueError):
    """A semantic problem found by a validator, tied to a key below the model."""

    def __init__(self, key: str, value: Any, message: str) -> None:
        super().__init__(message)
        self.key, self.value, self.message = key, value, message


def _as_tuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _whole_float_as_int(value: Any) -> Any:
    """A float with a whole value (``1e3``, ``19000.0``) as the int it stands for.

    Physicists write counts as ``1e3``; strict validation would refuse that float
    for an integer key. A fractional value, a string or a bool is left for the
    integer check to refuse.
    """
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _interval_list(value: Any) -> Any:
    """Accept ``[lo, hi]`` as shorthand for ``[[lo, hi]]``."""
    numbers = isinstance(value, list) and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in value
    )
    return [value] if numbers and len(value) == 2 else value


IntTuple = Annotated[
    tuple[Annotated[int, BeforeValidator(_whole_float_as_int)], ...],
    BeforeValidator(_as_tuple),
]
Interval = Annotated[tuple[float, float], BeforeValidator(_as_tuple)]
# Pydantic runs "before" validators last-listed first: the shorthand is unwrapped,
# then the outer list becomes a tuple.
IntervalList = Annotated[
    tuple[Interval, ...], BeforeValidator(_as_tuple), BeforeValidator(_interval_list)
]
NonNegInt = Annotated[int, Field(ge=0), BeforeValidator(_whole_float_as_int)]
PosInt = Annotated[int, Field(ge=1), BeforeValidator(_whole_float_as_int)]
NonNegFloat = Annotated[float, Field(ge=0.0, allow_inf_nan=False)]
PosFloat = Annotated[float, Field(gt=0.0, allow_inf_nan=False)]


class _Section(BaseModel):
    """Base of every config section: frozen, strict types, unknown keys refused."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class BudgetConfig(_Section):
    """When a campaign stops at the latest, whatever its accuracy.

    Attributes:
        max_points: Points proposed at most over the whole campaign: every point
            that enters the store counts, validation points and points rejected at
            pre-selection or failed included, not only the simulated ok ones. A
            continued campaign counts the points already in its store.
        max_wall_time_hours: Hours one ``run`` or ``resume`` goes on at most
            (positive), or None (``null``) for no limit.
    """

    max_points: NonNegInt = 400
    max_wall_time_hours: PosFloat | None = 0.25

    @pydantic.field_validator("max_wall_time_hours", mode="before")
    @classmethod
    def _check_wall_time(cls, value: Any) -> Any:
        # Zero is refused rather than given a meaning: max_points 0 stops at once,
        # so a wall time of 0 reads as "no time" to some and "no limit" to others.
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if number and value <= 0:
            raise _KeyedValueError(
                "", value, "give a positive number of hours, or null for no limit"
            )
        return value


class CampaignConfig(_Section):
    """The campaign loop: energies, stop rule, job handling, checkpoints and budget."""

    name: Annotated[str, Field(min_length=1)] = "campaign"
    seed: NonNegInt = 0
    energies_tev: IntTuple = (13,)
    target_mean_abs_error: PosFloat = 1.0
    min_validation_count: NonNegInt = 20
    in_flight: PosInt = 8
    refit_every: PosInt = 50
    max_retries: NonNegInt = 2
    grace_period_s: NonNegFloat = 60.0
    job_timeout_s: PosFloat = 3600.0
    points_per_round: PosInt = 50
    # A direct network's checkpoint takes about 1.1 MB per ensemble member and
    # energy (5.5 MB for five), written at every refit: hundreds of refits in a
    # campaign of weeks fill gigabytes. Five refits (at most ~33 MB per energy with
    # the best one, however long the campaign runs) leave room to compare the last
    # few networks or fall back on one when a refit turns out worse; the latest and
    # the best refit's checkpoints are always kept, and every label stays in the
    # store, so a network can always be trained again. None keeps every checkpoint.
    keep_checkpoints: PosInt | None = 5
    budget: BudgetConfig = BudgetConfig()

    @pydantic.field_validator("energies_tev")
    @classmethod
    def _check_energies(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not value:
            raise _KeyedValueError("", list(value), "at least one energy is needed")
        if any(e <= 0 for e in value) or len(set(value)) != len(value):
            raise _KeyedValueError(
                "", list(value), "energies must be positive and distinct"
            )
        return value

    @pydantic.field_validator("keep_checkpoints", mode="before")
    @classmethod
    def _check_keep_checkpoints(cls, value: Any) -> Any:
        value = _whole_float_as_int(value)
        whole = isinstance(value, int) and not isinstance(value, bool)
        if value is not None and not (whole and value >= 1):
            raise _KeyedValueError(
                "",
                value,
                "give the number of newest refits whose checkpoints are kept (a"
                " whole number, at least 1), or null to keep every checkpoint",
            )
        return value


class SpaceConfig(_Section):
    """The parameter space: model, range overrides (GeV) and mass ordering."""

    model: Literal["pmssm11", "pmssm19"] = "pmssm11"
    ranges: dict[str, IntervalList] = {}
    ordering: Literal["none", "light_stop"] = "none"

    @pydantic.model_validator(mode="after")
    def _check_ranges(self) -> SpaceConfig:
        names = make_space(self.model).names
        for name, intervals in self.ranges.items():
            key = f"ranges.{name}"
            if name not in names:
                raise _KeyedValueError(
                    key, name, f"unknown parameter for {self.model}: {' '.join(names)}"
                )
            _check_intervals(key, intervals)
        try:
            self.build()
        except SamplerError as exc:
            raise _KeyedValueError("ranges", dict(self.ranges), str(exc)) from exc
        return self

    def build(self) -> ParameterSpace:
        """The parameter space this section describes."""
        return make_space(self.model, self.ranges or None)


def _check_intervals(key: str, intervals: Sequence[tuple[float, float]]) -> None:
    if not intervals:
        raise _KeyedValueError(
            key, [], "a parameter needs at least one [low, high] range"
        )
    for lo, hi in intervals:
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise _KeyedValueError(key, [lo, hi], "range bounds must be finite")
        if hi <= lo:
            raise _KeyedValueError(
                key, [lo, hi], "range is empty or inverted (need low < high)"
            )


class RegionsConfig(_Section):
    """Chi-square regions: the paper's, centred on the catalogue, or explicit.

    Exactly one of ``paper: true``, ``centre_on_catalogue: true`` or explicit
    per-energy regions ``{13: {I: [0, 53.5], zero: [53.5, 56], ...}}`` (chi-square
    units) is given.
    """

    paper: bool = False
    centre_on_catalogue: bool = False
    explicit: dict[int, dict[str, Interval]] = {}

    @pydantic.model_validator(mode="before")
    @classmethod
    def _collect_energies(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        data = dict(data)
        energies = {k: data.pop(k) for k in list(data) if isinstance(k, int)}
        if energies:
            data["explicit"] = energies
        return data

    @pydantic.model_validator(mode="after")
    def _check_choice(self) -> RegionsConfig:
        chosen = [self.paper, self.centre_on_catalogue, bool(self.explicit)]
        if sum(chosen) != 1:
            raise _KeyedValueError(
                "",
                self.model_dump(),
                "give exactly one of 'paper: true', 'centre_on_catalogue: true' or per-energy regions",
            )
        for energy, regions in self.explicit.items():
            try:
                ChiSquareRegions.from_mapping(regions)
            except SamplerError as exc:
                raise _KeyedValueError(str(energy), dict(regions), str(exc)) from exc
            unknown = sorted(set(regions) - set(REGION_NAMES))
            if unknown:
                raise _KeyedValueError(
                    f"{energy}.{unknown[0]}",
                    unknown[0],
                    f"unknown region; expected {REGION_NAMES}",
                )
        return self

    def build(
        self, energy_tev: int, zero_chi2: float | None = None
    ) -> ChiSquareRegions:
        """The regions at one energy.

        Args:
            energy_tev: Centre-of-mass energy in TeV.
            zero_chi2: The catalogue's zero-signal chi-square at that energy; needed
                only with ``centre_on_catalogue``.

        Raises:
            ConfigError: Centring asked for without ``zero_chi2``.
        """
        if self.paper:
            return ChiSquareRegions.paper(energy_tev)
        if self.centre_on_catalogue:
            if zero_chi2 is None:
                raise ConfigError(
                    "regions.centre_on_catalogue needs the catalogue's zero-signal chi2"
                )
            return ChiSquareRegions.centred_on(zero_chi2)
        return ChiSquareRegions.from_mapping(self.explicit[int(energy_tev)])


class SimulatorConfig(_Section):
    """Which backend labels the points, with its free-form settings."""

    backend: Literal["builtin", "spheno", "checkmate", "replay"] = "builtin"
    settings: dict[str, Any] = {}


class SurrogateConfig(_Section):
    """The surrogate network ensemble and its training."""

    kind: Literal["direct", "reparametrized"] = "direct"
    ensemble_size: PosInt = 5
    bootstrap: bool = True
    max_epochs: PosInt = 300
    patience: PosInt = 20
    batch_size: PosInt | None = None
    seed: NonNegInt = 0


class FractionsConfig(_Section):
    """Relative weights of the acquisition strategies in a round (non-negative)."""

    prior: NonNegFloat = 0.2
    density: NonNegFloat = 0.2
    local: NonNegFloat = 0.2
    uncertainty: NonNegFloat = 0.4

    @pydantic.model_validator(mode="after")
    def _check_sum(self) -> FractionsConfig:
        if sum(self.as_dict().values()) <= 0.0:
            raise _KeyedValueError(
                "", self.as_dict(), "at least one fraction must be positive"
            )
        return self

    def as_dict(self) -> dict[str, float]:
        """Strategy name to weight."""
        return self.model_dump()


class ProposerConfig(_Section):
    """How new points are proposed (distances and widths in unit-cube units)."""

    validation_share: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.2
    min_distance: NonNegFloat = 0.02
    local_width: PosFloat = 0.05
    candidate_pool: PosInt = 20000
    adapt_to_errors: bool = True
    fractions: FractionsConfig = FractionsConfig()


class ClusterConfig(_Section):
    """Workers started through dask-jobqueue on a batch system."""

    kind: Literal["slurm", "pbs", "htcondor"]
    jobs: PosInt = 2
    cores: PosInt = 4
    memory: Annotated[str, Field(min_length=1)] = "8GB"
    walltime: Annotated[str, Field(min_length=1)] = "24:00:00"
    queue: str | None = None
    extra: dict[str, Any] = {}


class DaskConfig(_Section):
    """Where simulations run: a LocalCluster, a running scheduler or a batch system."""

    n_workers: PosInt = 2
    threads_per_worker: PosInt = 1
    scheduler_address: Annotated[str, Field(min_length=1)] | None = None
    cluster: ClusterConfig | None = None
    shared_filesystem: bool = False

    @pydantic.model_validator(mode="after")
    def _check_exclusive(self) -> DaskConfig:
        if self.scheduler_address is not None and self.cluster is not None:
            raise _KeyedValueError(
                "cluster",
                self.cluster.kind,
                "give scheduler_address or cluster, not both",
            )
        return self


class Config(_Section):
    """A whole campaign config, validated and frozen.

    Build it with :func:`load_config`; :attr:`text` keeps the YAML it came from and
    :attr:`hash` is a stable sha256 of the normalised content (comments, key order
    and spelled-out defaults do not change it).
    """

    campaign: CampaignConfig
    space: SpaceConfig
    prior: Literal["uniform", "gaussian"] = "uniform"
    regions: RegionsConfig = RegionsConfig(paper=True)
    simulator: SimulatorConfig = SimulatorConfig()
    surrogate: SurrogateConfig = SurrogateConfig()
    proposer: ProposerConfig = ProposerConfig()
    dask: DaskConfig = DaskConfig()

    _text: str = PrivateAttr(default="")
    _source: str = PrivateAttr(default="<string>")

    @pydantic.model_validator(mode="after")
    def _check_regions_cover_energies(self) -> Config:
        for energy in self.campaign.energies_tev:
            if self.regions.paper and energy not in PAPER_EDGES:
                raise _KeyedValueError(
                    "regions.paper",
                    True,
                    f"the paper defines no regions at {energy} TeV",
                )
            if self.regions.explicit and energy not in self.regions.explicit:
                raise _KeyedValueError(
                    "regions",
                    sorted(self.regions.explicit),
                    f"no regions given for {energy} TeV",
                )
        return self

    @property
    def text(self) -> str:
        """The YAML text the config was read from."""
        return self._text

    @property
    def source(self) -> str:
        """The file the config was read from (``<string>`` when parsed from text)."""
        return self._source

    @property
    def hash(self) -> str:
        """Stable sha256 hex digest of the normalised config."""
        blob = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()

    def build_space(self) -> ParameterSpace:
        """The parameter space of the campaign."""
        return self.space.build()


def load_config(path: str | Path) -> Config:
    """Read and validate a campaign config file.

    Args:
        path: YAML file.

    Returns:
        The validated, frozen config.

    Raises:
        ConfigError: The file cannot be read, is not YAML, or fails validation; the
            message names the file, the key path and the value.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not a text file (byte {exc.object[exc.start]:#04x} at offset"
            f" {exc.start} is not UTF-8); a config is a YAML text file"
        ) from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config: {exc}") from exc
    return parse_config(text, source=str(path))


def parse_config(text: str, *, source: str = "<string>") -> Config:
    """Validate a config given as YAML text (see :func:`load_config`)."""
    data = _parse_yaml(text, source)
    try:
        config = Config.model_validate(data)
    except pydantic.ValidationError as exc:
        raise ConfigError(_describe(exc, source)) from exc
    config._text = text
    config._source = source
    return config


class ConfigLoader(yaml.SafeLoader):
    """Safe YAML loader of configs: a key given twice in one mapping is refused, and
    floats are read as YAML 1.2 reads them.

    PyYAML follows YAML 1.1, where a float needs a dot and a signed exponent:
    ``1e3``, ``1.0e9`` and ``2E-4`` would be strings there. Here every number
    with an exponent is a float, as in YAML 1.2 (and C, Fortran and Python).
    """


#: Numbers with an exponent, dot or not, sign or not (``1e3``, ``.5E-4``).
_EXPONENT_FLOAT = re.compile(
    r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"
)
ConfigLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float", _EXPONENT_FLOAT, list("-+.0123456789")
)


def read_yaml(text: str) -> Any:
    """The data of a YAML text read as configs are (:class:`ConfigLoader`).

    Raises:
        yaml.YAMLError: Not YAML, or a key given twice in one mapping.
    """
    return yaml.load(text, Loader=ConfigLoader)  # a SafeLoader subclass


def _construct_mapping(loader: ConfigLoader, node: yaml.MappingNode) -> dict:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node)


ConfigLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping
)


def _parse_yaml(text: str, source: str) -> dict:
    try:
        data = read_yaml(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML{_yaml_where(exc)}") from exc
    if not isinstance(data, dict):
        raise ConfigError(
            f"{source}: a config is a mapping of sections, got {type(data).__name__}"
        )
    return data


def _yaml_where(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    if mark is None:
        return f": {problem}"
    return f" at line {mark.line + 1}, column {mark.column + 1}: {problem}"


def _describe(exc: pydantic.ValidationError, source: str) -> str:
    """One line: file, key path, value and what is wrong; the other problems named.

    An unknown key that sits where a required one is missing is most likely a
    misspelling of it, and the message says so; a whole misspelt section is named
    by its key, without its contents.
    """
    errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
    first = errors[0]
    key, value, message = _key_value_message(first)
    if first["type"] == "extra_forbidden":
        guess = _misspelt(first, errors)
        message = f"unknown key (a misspelling of {guess}?)" if guess else message
        others = [e for e in errors[1:] if _key_value_message(e)[0] != guess]
    else:
        others = errors[1:]
    shown = ""
    if not (value is None and first["type"] == "missing"):
        shown = "" if isinstance(value, dict) else f" = {value!r}"
    more = ""
    if others:
        named = "; ".join(
            f"{k}: {m}" for k, _, m in (_key_value_message(e) for e in others[:3])
        )
        more = f" (also {named}" + (", and more)" if len(others) > 3 else ")")
    return f"{source}: {key}{shown}: {message}{more}"


def _key_value_message(error: Any) -> tuple[str, Any, str]:
    """Dotted key path, offending value and message of one pydantic error."""
    loc = [str(part) for part in error["loc"] if part != "[key]"]
    value: Any = error.get("input")
    message = error["msg"]
    problem = error.get("ctx", {}).get("error")
    if isinstance(problem, _KeyedValueError):
        loc += [part for part in problem.key.split(".") if part]
        value, message = problem.value, problem.message
    elif error["type"] == "extra_forbidden":
        message = "unknown key"
    elif error["type"] == "missing":
        message, value = "required key is missing", None
    return ".".join(loc) or "<top level>", value, message


def _misspelt(unknown: Any, errors: list[Any]) -> str | None:
    """The key beside ``unknown`` whose name is closest to it, if close: a missing
    required one first, else any the config takes there (``surogate``)."""
    parent = unknown["loc"][:-1]
    name = str(unknown["loc"][-1])
    missing = {
        ".".join(map(str, e["loc"])): str(e["loc"][-1])
        for e in errors
        if e["type"] == "missing" and e["loc"][:-1] == parent
    }
    close = difflib.get_close_matches(name, missing.values(), n=1)
    if close:
        return next(k for k, key in missing.items() if key == close[0])
    close = difflib.get_close_matches(name, _known_keys(parent), n=1)
    return ".".join([*map(str, parent), close[0]]) if close else None


def _known_keys(loc: tuple[Any, ...]) -> list[str]:
    """The keys a config takes in the section at ``loc`` (empty where free-form)."""
    section: Any = Config
    for part in loc:
        field = _fields_of(section).get(str(part))
        if field is None:
            return []
        section = field.annotation
    return list(_fields_of(section))


def _fields_of(annotation: Any) -> dict[str, Any]:
    """Fields of a config section, or of the section in ``X | None``; else none."""
    for candidate in (annotation, *typing.get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, pydantic.BaseModel):
            return dict(candidate.model_fields)
    return {}
