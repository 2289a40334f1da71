"""Speed of the vectorised SR chi-square against pyhf, and the catalogues' zero-signal chi2.

Run by hand: ``python benchmarks/bench_likelihood.py [--n 1000000] [--n-pyhf 40]``.
Prints the time of ``n`` signal-region evaluations in one vectorised call, pyhf's
time per maximum-likelihood fit (one ``q`` needs two: μ fixed and μ free) on the same
kind of cases, their ratio, and the zero-signal chi-square of the 8 and 13 TeV
catalogues next to the paper's values.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import warnings

import numpy as np

from simulators.catalogue import load_catalogue
from simulators.combination import combine
from simulators.likelihood import chi2_signal_region

#: Paper Sect. 2.2: zero-signal peaks at χ² ≈ 40 (8 TeV, 47 disjoint SRs) and ≈ 54
#: (13 TeV, 65 disjoint SRs).
PAPER_ZERO_SIGNAL = {8: (40.0, 47), 13: (54.0, 65)}


def random_cases(n: int, seed: int = 1) -> np.ndarray:
    """Rows ``(s, σ_s, b, σ_b, n_obs)``: counts 0.01-10⁴, errors 1-100 %."""
    rng = np.random.default_rng(seed)
    s = 10 ** rng.uniform(-2, 4, n)
    b = 10 ** rng.uniform(-2, 4, n)
    sigma_s = s * 10 ** rng.uniform(-2, 0, n)
    sigma_b = b * 10 ** rng.uniform(-2, 0, n)
    n_obs = rng.poisson(b + rng.uniform(0, 1.5, n) * s).astype(float)
    return np.column_stack([s, sigma_s, b, sigma_b, n_obs])


def time_ours(cases: np.ndarray) -> float:
    start = time.perf_counter()
    chi2_signal_region(*cases.T)
    return time.perf_counter() - start


def time_pyhf_per_fit(cases: np.ndarray) -> float:
    """Mean wall time of one pyhf fit (model building excluded)."""
    import pyhf

    pyhf.set_backend("numpy", pyhf.optimize.scipy_optimizer())
    elapsed, fits = 0.0, 0
    for s, sigma_s, b, sigma_b, n in cases:
        model = _pyhf_model(pyhf, s, sigma_s, b, sigma_b)
        data = [max(n, 1.0), *model.config.auxdata]
        bounds = [(-200.0, 200.0)] * len(model.config.suggested_bounds())
        bounds[model.config.poi_index] = (-1e3 * max(1, b / s), 1e3 * max(1, b / s))
        init = model.config.suggested_init()
        start = time.perf_counter()
        pyhf.infer.mle.fixed_poi_fit(1.0, data, model, init, bounds)
        pyhf.infer.mle.fit(data, model, init, bounds)
        elapsed += time.perf_counter() - start
        fits += 2
    return elapsed / fits


def _pyhf_model(pyhf, s, sigma_s, b, sigma_b):
    def normsys(name, rel):
        return {
            "name": name,
            "type": "normsys",
            "data": {"hi": np.exp(rel), "lo": np.exp(-rel)},
        }

    spec = {
        "channels": [
            {
                "name": "sr",
                "samples": [
                    {
                        "name": "signal",
                        "data": [s],
                        "modifiers": [
                            {"name": "mu", "type": "normfactor", "data": None},
                            normsys("signal_unc", sigma_s / s),
                        ],
                    },
                    {
                        "name": "bkg",
                        "data": [b],
                        "modifiers": [normsys("bkg_unc", sigma_b / b)],
                    },
                ],
            }
        ]
    }
    return pyhf.Model(
        spec,
        poi_name="mu",
        modifier_settings={"normsys": {"interpcode": "code1"}},
        validate=False,
    )


def zero_signal_report() -> None:
    catalogue = load_catalogue()
    print(
        "\nzero-signal chi2 (no signal in any SR; default grouping = 1 SR per analysis)"
    )
    for energy, (paper, paper_regions) in PAPER_ZERO_SIGNAL.items():
        at_energy = catalogue.for_energy(energy)
        combined = combine(at_energy, {}, cap=np.inf)
        every_region = [q for sr in combined.per_region.values() for q in sr.values()]
        mean = float(np.mean(every_region))
        print(
            f"  {energy:>2} TeV: {combined.total:6.2f} from {len(combined.chosen)} SRs "
            f"| paper ~{paper:.0f} from {paper_regions} disjoint SRs "
            f"| mean per SR over all {len(every_region)} SRs {mean:.3f} "
            f"-> x{paper_regions} = {mean * paper_regions:.1f} "
            f"| all {len(every_region)} SRs summed {sum(every_region):.1f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="SR evaluations")
    parser.add_argument(
        "--n-pyhf", type=int, default=40, help="pyhf cases (2 fits each)"
    )
    args = parser.parse_args()

    print(
        f"machine: {platform.platform()}, {platform.processor() or 'cpu'}, {os.cpu_count()} cpus, python {platform.python_version()}"
    )
    ours = time_ours(random_cases(args.n))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pyhf's own deprecation and fit-probe warnings
        per_fit = time_pyhf_per_fit(random_cases(args.n_pyhf, seed=2))
    per_ours = ours / args.n
    print(
        f"ours: {args.n} SR evaluations in {ours:.2f} s ({per_ours * 1e6:.2f} us each)"
    )
    print(
        f"pyhf: {per_fit * 1e3:.2f} ms per fit, {2 * per_fit * 1e3:.2f} ms per chi2 (2 fits), {args.n_pyhf} cases"
    )
    print(
        f"speed-up per chi2: {2 * per_fit / per_ours:.0f}x, per fit: {per_fit / per_ours:.0f}x"
    )
    zero_signal_report()


if __name__ == "__main__":
    main()
