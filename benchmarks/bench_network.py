"""Benchmark of the direct surrogate network: training time, throughput, latency.

Run by hand: ``python benchmarks/bench_network.py [--epochs 100] [--skip-training]``.

Figures, all from one run on this machine:

- training: 50 000 points x 11 inputs, 100 epochs at the paper's 13 TeV batch size
  (500), wall time (early stopping disabled so every epoch runs);
- throughput: points per second at batch 65 536, and the network's FLOP rate
  (2 x multiply-adds of its dense layers; tanh not counted) as a share of the fp32
  GEMM rate measured in the same run (the faster of torch's and NumPy's square
  2048 products; both libraries' rates are printed);
- latency: one point through the plain torch module, the regressor's ``predict``,
  a five-member ensemble, the exported program and the ONNX model.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sampler.space import pmssm11  # noqa: E402
from scynet_al import checkpoint, network  # noqa: E402
from scynet_al.ensemble import Ensemble  # noqa: E402
from scynet_al.export import export_checkpoint, load_exported  # noqa: E402
from scynet_al.network import DirectRegressor  # noqa: E402
from tests.surrogate_standin import standin_dataset  # noqa: E402

BATCH = 65536


def best_time(fn, repeats: int) -> float:
    """Shortest wall time of ``repeats`` calls (s), after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def median_latency(fn, calls: int = 2000) -> float:
    """Median wall time of one call (s) over ``calls`` calls, after warm-up."""
    for _ in range(50):
        fn()
    samples = []
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def gemm_rate() -> dict[str, float]:
    """fp32 GEMM rates (FLOP/s) of torch (MKL) and NumPy (its BLAS): square 2048
    and the network's 65 536 x 300 x 300, each library at its best of 5."""
    import numpy as np

    rates = {}
    for label, (m, k, n) in {
        "square 2048^3": (2048, 2048, 2048),
        "65536x300 @ 300x300": (BATCH, 300, 300),
    }.items():
        a, b = torch.randn(m, k), torch.randn(k, n)
        out = torch.empty(m, n)
        seconds = best_time(lambda a=a, b=b, out=out: torch.mm(a, b, out=out), 5)
        rates[f"torch {label}"] = 2.0 * m * k * n / seconds
        an, bn, on = a.numpy(), b.numpy(), np.empty((m, n), dtype=np.float32)
        seconds = best_time(lambda a=an, b=bn, out=on: np.matmul(a, b, out=out), 5)
        rates[f"numpy {label}"] = 2.0 * m * k * n / seconds
    return rates


def network_flops(model: DirectRegressor) -> int:
    """Dense-layer FLOPs per point (2 x multiply-adds)."""
    layers = [m for m in model.network_ if isinstance(m, torch.nn.Linear)]
    return sum(2 * m.in_features * m.out_features for m in layers)


def bench_training(epochs: int) -> None:
    U, y = standin_dataset(50_000, seed=1)
    model = DirectRegressor(max_epochs=epochs, patience=epochs + 1, n_threads=2)
    start = time.perf_counter()
    model.fit(U, y)
    wall = time.perf_counter() - start
    print(
        f"training: 50000 x 11, {model.n_epochs_} epochs, batch {model.effective_batch_size}, 2 threads: {wall:.1f} s wall ({wall / model.n_epochs_:.2f} s/epoch); validation mean |dchi2| {model.best_validation_error_:.3f}"
    )


def bench_inference() -> None:
    U, y = standin_dataset(4000, seed=2)
    quick = {"max_epochs": 2, "batch_size": 500}
    single = DirectRegressor(**quick).fit(U, y)
    ensemble = Ensemble(n_members=5, member_params=quick).fit(U, y)
    flops = network_flops(single)

    rates = gemm_rate()
    for label, rate in rates.items():
        print(f"fp32 GEMM {label}: {rate / 1e9:.1f} GFLOP/s")
    # The machine's fp32 GEMM rate: the faster library's square product.
    reference = max(rates["torch square 2048^3"], rates["numpy square 2048^3"])
    layer_shape = max(
        rates["torch 65536x300 @ 300x300"], rates["numpy 65536x300 @ 300x300"]
    )
    print(f"reference fp32 GEMM rate (best square): {reference / 1e9:.1f} GFLOP/s")

    X = torch.rand(BATCH, 11)
    net = single.network_
    with torch.inference_mode():
        t_module = best_time(lambda: net(X), 5)
    chosen = network.large_batch_library()
    print(f"large batches run through {chosen} here")
    t_predict = best_time(lambda: single.predict(X.numpy()), 5)
    Xd = X.double().numpy()
    t_ensemble = best_time(lambda: ensemble.predict(Xd, return_std=True), 3)
    other = "numpy" if chosen == "torch" else "torch"
    network.LARGE_BATCH_LIBRARY = other
    try:
        t_other = best_time(lambda: single.predict(X.numpy()), 5)
    finally:
        network.LARGE_BATCH_LIBRARY = None
    for label, seconds, n_nets in (
        ("plain module", t_module, 1),
        ("DirectRegressor.predict", t_predict, 1),
        (f"DirectRegressor.predict through {other} (not chosen)", t_other, 1),
        ("5-member Ensemble.predict (return_std)", t_ensemble, 5),
    ):
        rate = n_nets * flops * BATCH / seconds
        print(
            f"throughput {label}: {BATCH / seconds / 1e3:.1f} k points/s, {rate / 1e9:.1f} GFLOP/s = {100 * rate / reference:.0f} % of the square GEMM, {100 * rate / layer_shape:.0f} % of the layer-shape GEMM ({flops} FLOP/point/network)"
        )

    with tempfile.TemporaryDirectory() as tmp:
        ckpt = checkpoint.save(
            Path(tmp) / "n.ckpt",
            ensemble,
            space=pmssm11(),
            energy_tev=13,
            metrics={},
            config_hash="",
        )
        exported = load_exported(export_checkpoint(ckpt, Path(tmp) / "n.pt2"))
        onnx_model = load_exported(
            export_checkpoint(ckpt, Path(tmp) / "n.onnx", format="onnx")
        )
        program = torch.export.load(Path(tmp) / "n.pt2").module()
    x1 = X[:1]
    p1 = pmssm11().from_unit(Xd[:1])
    p1_t = torch.from_numpy(p1)
    latency = {}
    for threads in (torch.get_num_threads(), 1):
        torch.set_num_threads(threads)
        with torch.inference_mode():
            latency[f"plain module, 1 network, {threads} thread(s)"] = median_latency(
                lambda: net(x1)
            )
            latency[f"exported program module(), 5 members, {threads} thread(s)"] = (
                median_latency(lambda: program(p1_t), calls=200)
            )
    torch.set_num_threads(2)
    latency["DirectRegressor.predict, 1 network"] = median_latency(
        lambda: single.predict(Xd[:1])
    )
    latency["Ensemble.predict(return_std), 5 members"] = median_latency(
        lambda: ensemble.predict(Xd[:1], return_std=True)
    )
    latency["load_exported(pt2).predict, 5 members"] = median_latency(
        lambda: exported.predict(p1)
    )
    latency["onnxruntime, 5 members"] = median_latency(lambda: onnx_model.predict(p1))
    for label, seconds in latency.items():
        print(f"single-point latency {label}: {seconds * 1e6:.1f} us")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--skip-training", action="store_true")
    parser.add_argument("--skip-inference", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(2)
    print(
        f"machine: {platform.platform()}, {platform.processor() or platform.machine()}, cpu_count {os.cpu_count()}, torch {torch.__version__}, threads {torch.get_num_threads()}"
    )
    print(f"load average at start: {os.getloadavg()}")
    if not args.skip_inference:
        bench_inference()
    if not args.skip_training:
        bench_training(args.epochs)
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
