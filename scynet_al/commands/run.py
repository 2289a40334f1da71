"""``scynet-al run CONFIG --store FILE``: start a campaign, or continue one in FILE."""

from __future__ import annotations

import argparse
import json
import logging
import sys
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
    """Check the simulator, open or create the store, run the campaign, print the summary.

    Shared by ``run`` and ``resume``. The simulator backend is checked before the
    store is created, so a misconfigured backend leaves no file behind.

    Returns:
        Exit code 0.
    """
    from scynet_al.campaign import Campaign, install_signal_handlers, preflight
    from scynet_al.cluster import connect
    from simulators.backends import make_simulator

    simulator = make_simulator(config.simulator.backend, config.simulator.settings)
    simulator.check()
    preflight(config, simulator)
    with (
        open_or_create_store(config, store_path, simulator) as store,
        connect(config.dask, scheduler_address=scheduler) as handle,
    ):
        campaign = Campaign(
            config, store, handle.client, simulator=simulator, progress=progress
        )
        install_signal_handlers(campaign)
        summary = campaign.run()
    if as_json:
        print(json.dumps(summary.to_json(), indent=2))
    else:
        print(format_summary(summary))
    return 0


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
            changed.append(".".join(key))
    if changed:
        raise ConfigError(
            f"{config.source}: {', '.join(changed)} not as in the campaign stored in"
            f" {store_path}; continue it with its own config (scynet-al resume"
            f" {store_path}) or start a new store"
        )


def open_or_create_store(config: Any, store_path: Path, simulator: Any) -> Any:
    """The store at ``store_path`` open for writing; created from the config if absent."""
    from scynet_al.store import KEY_MASS_PDGS, CampaignStore

    if Path(store_path).exists():
        with CampaignStore.open(store_path, mode="r") as reader:
            stored_text = reader.config_text
        _check_same_campaign(config, stored_text, store_path)
        store = CampaignStore.open(store_path, mode="a")
        if stored_text.strip() != config.text.strip():
            store.record_config(config.text)
            logger.warning(
                "%s ran with another config; continuing with %s, which is recorded "
                "in the store for later resumes",
                store_path,
                config.source,
            )
        return store
    shape = simulator.describe()
    energies = [int(e) for e in config.campaign.energies_tev]
    return CampaignStore.create(
        store_path,
        config_text=config.text,
        space=config.build_space(),
        energies=energies,
        analyses={e: list(shape["analyses"].get(e, [])) for e in energies},
        mass_pdgs=KEY_MASS_PDGS,
        n_features=int(shape["n_features"]),
    )
