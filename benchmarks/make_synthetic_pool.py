"""A synthetic pool for smoke runs of the pool benchmark: analytic chi2, no physics.

Usage::

    python benchmarks/make_synthetic_pool.py POOL.h5 [--n 3000] [--seed 0]

Writes a campaign store of ``n`` uniform pMSSM-11 prior draws labelled by the
analytic landscape of ``tests/landscapes.py`` (a zero-signal plateau at chi2 54.8
with a thin II/III band and a range-I dip, about 8 % of draws in the rare ranges
under the paper's 13 TeV regions), all ``ok``. Numbers measured on it say that
the benchmark machinery works, not how much active learning saves on the LHC chi2.
Run from the repository root (it imports the ``tests`` package).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from sampler.priors import UniformPrior
from sampler.space import pmssm11
from simulators.result import SimulationResult

#: Config stored with the pool: paper Table 4 regions, which the landscape is built for.
CONFIG_TEXT = "campaign: {name: synthetic-pool}\nspace: {model: pmssm11}\nregions: {paper: true}\n"


def make_synthetic_pool(path: str | Path, n: int, seed: int = 0) -> Path:
    """Create the synthetic pool at ``path`` (must not exist) and return the path."""
    from scynet_al.store import CampaignStore

    repo = str(Path(__file__).resolve().parents[1])
    if repo not in sys.path:
        sys.path.insert(0, repo)  # the landscape lives in the tests package
    from tests.landscapes import chi2 as landscape_chi2

    space = pmssm11()
    U = UniformPrior(space).sample_unit(n, np.random.default_rng(seed))
    chi2 = landscape_chi2(U)
    with CampaignStore.create(
        path,
        config_text=CONFIG_TEXT,
        space=space,
        energies=[13],
        analyses={13: ["landscape"]},
        n_features=0,
    ) as store:
        ids, _ = store.add_pending(space.from_unit(U), origin="prior", round=0)
        for point_id, value in zip(ids, chi2, strict=True):
            result = SimulationResult(
                "ok",
                chi2={13: float(value)},
                chi2_analysis={13: {"landscape": float(value)}},
            )
            store.record(int(point_id), result)
    return Path(path)


def main(argv: list[str] | None = None) -> int:
    """Write the pool named on the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pool", type=Path)
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    make_synthetic_pool(args.pool, args.n, args.seed)
    print(f"wrote {args.n} synthetic points to {args.pool}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
