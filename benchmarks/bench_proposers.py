"""Benchmark: proposals from a 50 000-point history, per strategy and mixed, one core.

Run by hand from the repository root: ``python benchmarks/bench_proposers.py``.
The history is labelled by the synthetic landscape of ``tests/landscapes.py``; the
surrogate is its cheap oracle stand-in, so the figures are the proposer's own cost.
A network ensemble's prediction on the candidate pool comes on top; it is timed
separately with an untrained stand-in of the paper's network shape.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sampler.ordering import OrderedPriorSampler, light_stop_ordering  # noqa: E402
from sampler.priors import GaussianPrior, UniformPrior  # noqa: E402
from sampler.proposers import Proposer  # noqa: E402
from sampler.regions import ChiSquareRegions  # noqa: E402
from sampler.space import pmssm11, pmssm19  # noqa: E402
from tests import landscapes  # noqa: E402

N_HISTORY = 50_000
N_PROPOSED = 1000
STRATEGIES = ("prior", "density", "local", "uncertainty")
MIXED = {"prior": 0.2, "density": 0.2, "local": 0.2, "uncertainty": 0.4}


def timed(fn, repeat: int = 3):
    """Best wall time in seconds of ``repeat`` calls, and the last result."""
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def bench_strategies() -> None:
    space, regions = pmssm11(), ChiSquareRegions.paper(13)
    rng = np.random.default_rng(0)
    U = rng.random((N_HISTORY, space.dim))
    history = {"X": space.from_unit(U), "chi2": landscapes.chi2(U)}
    surrogate = landscapes.OracleSurrogate()
    n_rare = int(regions.is_rare(history["chi2"]).sum())
    print(f"history: {N_HISTORY} pMSSM-11 points, {n_rare} in ranges I-III")
    print(f"{'strategy':<12} {'seconds':>8} {'rare share':>11}")
    for name in (*STRATEGIES, "mixed"):
        fractions = (
            MIXED if name == "mixed" else {s: float(s == name) for s in STRATEGIES}
        )
        proposer = Proposer(space, UniformPrior(space), regions, fractions=fractions)
        seconds, proposal = timed(
            lambda p=proposer: p.propose(N_PROPOSED, surrogate, history, rng)
        )
        rare = regions.is_rare(landscapes.chi2(space.to_unit(proposal.X))).mean()
        print(f"{name:<12} {seconds:8.3f} {rare:11.3f}")
    print(f"(uniform prior rate by hand: {landscapes.RARE_RATE_UNIFORM:.3f})")


def bench_network_pool() -> None:
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(1)
    pool = torch.rand(20_000, 11)
    members = [_mlp(torch) for _ in range(5)]
    with torch.no_grad():
        seconds, _ = timed(lambda: torch.stack([m(pool) for m in members]).std(0))
    print(
        f"untrained 5 x (4 x 300 tanh) ensemble on a 20 000-point pool: {seconds:.3f} s"
    )


def _mlp(torch):
    layers, width = [], 11
    for _ in range(4):
        layers += [torch.nn.Linear(width, 300), torch.nn.Tanh()]
        width = 300
    return torch.nn.Sequential(*layers, torch.nn.Linear(width, 1))


def bench_ordering() -> None:
    space = pmssm19()
    try:
        from simulators.spectrum import key_masses

        source = "simulators.spectrum.key_masses"

        def masses(X):
            return key_masses(X, "pmssm19")
    except ImportError:
        from tests.spectrum_standin import key_masses as masses

        source = "tests/spectrum_standin.py"
    ordering = light_stop_ordering(masses)
    print(f"pMSSM-19 light-stop ordering, key masses from {source}")
    bench_ordered_proposal(space, ordering)
    for prior_kind in (UniformPrior, GaussianPrior):
        prior = prior_kind(space)
        rng = np.random.default_rng(1)
        sampler = OrderedPriorSampler(space, prior, ordering)
        sampler.sample(10, rng)
        seconds, X = timed(lambda s=sampler, r=rng: s.sample(1000, r))
        blind = ordering(prior.sample(100_000, rng)).mean()
        print(
            f"  {prior.name:<8} {seconds * 1000:7.1f} ms per 1000 points,"
            f" acceptance {sampler.acceptance:.3f} (blind rejection {blind:.4f}),"
            f" satisfied {ordering(X).mean():.3f}"
        )


def bench_ordered_proposal(space, ordering) -> None:
    regions, prior = ChiSquareRegions.paper(13), UniformPrior(space)
    rng = np.random.default_rng(2)
    X = OrderedPriorSampler(space, prior, ordering).sample(N_HISTORY, rng)
    history = {"X": X, "chi2": landscapes.chi2(space.to_unit(X))}
    proposer = Proposer(space, prior, regions, fractions=MIXED, ordering=ordering)
    seconds, proposal = timed(
        lambda: proposer.propose(N_PROPOSED, landscapes.OracleSurrogate(), history, rng)
    )
    print(
        f"  mixed proposal of {N_PROPOSED} from {N_HISTORY} ordered points:"
        f" {seconds:.3f} s, satisfied {ordering(proposal.X).mean():.3f},"
        f" origins {proposal.counts()}"
    )


def main() -> None:
    print(f"machine: {platform.platform()}, {platform.processor() or 'cpu'},")
    print(
        f"  {os.cpu_count()} cpus visible, one thread used; python {platform.python_version()}"
    )
    bench_strategies()
    bench_network_pool()
    bench_ordering()


if __name__ == "__main__":
    main()
