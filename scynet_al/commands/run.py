"""``scynet-al run CONFIG --store FILE``: start a campaign, or continue one in FILE."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``run``."""
    parser.add_argument("config", type=Path, help="campaign config (YAML)")
    parser.add_argument(
        "--store",
        type=Path,
        required=True,
        help="campaign store (HDF5); continued if it exists",
    )
    add_dispatch_arguments(parser)


def add_dispatch_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments shared by ``run`` and ``resume``: where to run, how to show it."""
    parser.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="join a running Dask scheduler (tcp://host:8786) instead of the config's cluster",
    )
    parser.add_argument(
        "--no-progress", action="store_true", help="no progress bar even on a terminal"
    )
    parser.add_argument(
        "--json", action="store_true", help="print the final summary as JSON"
    )


def format_summary(summary: Any) -> str:
    """The final summary in a few lines: why it stopped, counts, errors per region."""
    counts = ", ".join(f"{k} {v}" for k, v in summary.counts.items())
    lines = [
        f"campaign stopped ({summary.stop_reason}) after round {summary.round}"
        f" in {summary.wall_time_s:.0f} s; converged: {summary.converged}",
        f"points: {counts}",
    ]
    for energy, regions in summary.regions.items():
        cells = ", ".join(
            f"{name} {r['mean_abs_error']:.2f} (n={r['count']})"
            for name, r in regions.items()
            if r.get("mean_abs_error") is not None
        )
        lines.append(f"mean |dchi2| at {energy} TeV: {cells or 'no validation points'}")
    return "\n".join(lines)


def main(args: argparse.Namespace) -> int:
    """Run the campaign until its stop rule holds, its budget is spent or a signal."""
    from scynet_al.config import load_config

    config = load_config(args.config)
    return execute(
        config,
        args.store,
        scheduler=args.scheduler,
        progress=sys.stderr.isatty() and not args.no_progress,
        as_json=args.json,
    )


def execute(
    config: Any,
    store_path: Path,
    *,
    scheduler: str | None = None,
    progress: bool = False,
    as_json: bool = False,
) -> int:
    """Check everything, open or create the store, run the campaign, print the summary.

    Shared by ``run`` and ``resume``. What can be checked without writing comes
    first: the simulator backend, the campaign's preflight (regions, surrogate, a
    first round the proposer can fill), whether an existing store takes this
    config, and the connection to the cluster. A store this command creates is
    removed again when the campaign fails before its first point; an existing
    store changes only once the campaign has started (see ``Campaign.run``).

    Returns:
        Exit code 0.
    """
    from scynet_al.campaign import Campaign, install_signal_handlers, preflight
    from scynet_al.cluster import connect
    from scynet_al.errors import ConfigError
    from simulators.backends import make_simulator
    from simulators.errors import SimulatorConfigError

    try:
        simulator = make_simulator(
            config.simulator.backend,
            config.simulator.settings,
            model=config.space.model,
        )
    except SimulatorConfigError as exc:  # a setting of the config: name the file
        raise ConfigError(f"{config.source}: {exc}") from exc
    simulator.check()
    preflight(config, simulator)
    if Path(store_path).exists():
        check_continuation(config, store_path)
    with (
        connect(config.dask, scheduler_address=scheduler) as handle,
        _removed_if_start_fails(
            open_or_create_store(config, store_path, simulator)
        ) as store,
    ):
        campaign = Campaign(
            config, store, handle.client, simulator=simulator, progress=progress
        )
        install_signal_handlers(campaign)
        summary = campaign.run()
    text = (
        json.dumps(summary.to_json(), indent=2) if as_json else format_summary(summary)
    )
    _print_summary(text)
    return 0


def _print_summary(text: str) -> None:
    """Print the summary, unless the terminal has gone away (SIGHUP stopped the run).

    Every count is in the store's summary row anyway. Standard output is pointed
    at the null device then, so that Python's final flush of it fails neither.
    """
    try:
        print(text, flush=True)
    except OSError as exc:
        logger.info("summary not printed (%s); it is in the store", exc)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


@contextlib.contextmanager
def _removed_if_start_fails(store: Any) -> Iterator[Any]:
    """The store, closed on leaving; removed if created here and a failure left it empty.

    A campaign that fails before its first point (a proposal that cannot be made,
    a cluster that goes away) would otherwise leave a store that pins the campaign
    seed and refuses the corrected config. A store that existed before is never
    removed.
    """
    try:
        yield store
    except BaseException:
        if store.created_here and len(store) == 0:
            store.discard()
        raise
    finally:
        store.close()


#: Config keys that fix what a store's points mean: seeds derive from the campaign
#: seed, labels from the simulator, points from the space, and the validation
#: points (the unbiased yardstick of the per-region errors) from the prior.
#: Budgets, surrogate, proposer and cluster settings may change when a campaign is
#: continued.
IDENTITY_KEYS: tuple[tuple[str, ...], ...] = (
    ("campaign", "seed"),
    ("campaign", "energies_tev"),
    ("space",),
    ("prior",),
    ("simulator",),
)


def check_continuation(config: Any, store_path: Path) -> None:
    """Refuse to continue the store at ``store_path`` with a config that changes
    what its points mean (:data:`IDENTITY_KEYS`); the store is only read.

    Raises:
        ConfigError: The config changes one of the identity keys.
        StoreError: The store cannot be read.
    """
    from scynet_al.store import CampaignStore

    with CampaignStore.open(store_path, mode="r") as reader:
        stored_text = reader.config_text
    _check_same_campaign(config, stored_text, store_path)


def _check_same_campaign(config: Any, stored_text: str, store_path: Path) -> None:
    """Refuse to continue a store with a config that changes what its points mean."""
    from scynet_al.config import parse_config
    from scynet_al.errors import ConfigError

    stored = parse_config(stored_text, source=f"{store_path} (stored config)")
    changed = []
    for key in IDENTITY_KEYS:
        old, new = stored.model_dump(), config.model_dump()
        for part in key:
            old, new = old[part], new[part]
        if old != new:
            changed.append(".".join(key) + _change(old, new))
    if changed:
        raise ConfigError(
            f"{config.source}: {', '.join(changed)} not as in the campaign stored in"
            f" {store_path}; continue it with its own config (scynet-al resume"
            f" {store_path}) or start a new store"
        )


def _change(old: Any, new: Any) -> str:
    """`` (stored 5, here 7)`` for a changed value that fits in a few words; a
    changed section is named alone."""
    shown = (repr(old), repr(new))
    if isinstance(old, dict) or any(len(text) > 40 for text in shown):
        return ""
    return f" (stored {shown[0]}, here {shown[1]})"


def open_or_create_store(config: Any, store_path: Path, simulator: Any) -> Any:
    """The store at ``store_path`` open for writing; created from the config if absent.

    An existing store is checked against the config (:func:`check_continuation`)
    and opened unchanged: a campaign started on it records a config that differs
    from the store's once the start has succeeded. A new store's directory is
    created too, as ``export`` and ``plot`` create theirs.
    """
    from scynet_al.store import KEY_MASS_PDGS, CampaignStore

    if Path(store_path).exists():
        check_continuation(config, store_path)
        return CampaignStore.open(store_path, mode="a")
    shape = simulator.describe()
    energies = [int(e) for e in config.campaign.energies_tev]
    Path(store_path).parent.mkdir(parents=True, exist_ok=True)
    return CampaignStore.create(
        store_path,
        campaign_seed=int(config.campaign.seed),
        config_text=config.text,
        space=config.build_space(),
        energies=energies,
        analyses={e: list(shape["analyses"].get(e, [])) for e in energies},
        mass_pdgs=KEY_MASS_PDGS,
        n_features=int(shape["n_features"]),
    )
