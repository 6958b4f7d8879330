"""Simulator speed on the Spikformer-4-384 cifar10 shape (random weights), batch 32, T = 4 — one run, side by side.

Prints images/s of (a) the integer simulator (with and without counters; and its portable torch code, the path CUDA
runs, with counters), (b) the float reference (the PyTorch model), (c) the dense floor: the model's dense-equivalent
FLOPs per image over the fp32 GEMM rate measured in this run; and the peak resident memory of each, each measured in
its own process (the simulator's includes building the integer graph: calibration runs the float64 graph).

    .venv/bin/python benchmarks/bench_sim.py [--batch 32] [--repeats 3] [--threads 2]
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import time

import torch


def build_model(seed: int = 0):
    """Paper-size cifar10 model with BatchNorm statistics set from data, so layers fire at realistic rates."""
    from spikformer_deploy.model import Spikformer, SpikformerConfig

    torch.manual_seed(seed)
    cfg = SpikformerConfig("cifar10", dim=384, depth=4, num_heads=12, mlp_ratio=4, num_classes=10, in_channels=3,
                           img_size=32, T=4)
    model = Spikformer(cfg)
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.momentum = None  # cumulative average over the calibration batches
    model.train()
    with torch.no_grad():
        for _ in range(2):
            model(torch.randn(16, 3, 32, 32))
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.bias.add_(0.5)  # centre drives just below threshold: ~10-20 % firing, as trained models do
    return model.eval()


def gemm_rate(threads: int) -> float:
    torch.set_num_threads(threads)
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    a @ b
    start, reps = time.perf_counter(), 10
    for _ in range(reps):
        a @ b
    return 2 * 2048**3 * reps / (time.perf_counter() - start)


def measure(kind: str, batch: int, repeats: int, threads: int, queue) -> None:
    """Runs in its own process so that ru_maxrss is this measurement's peak."""
    torch.set_num_threads(threads)
    from spikformer_deploy.backends.sim import Simulator
    from spikformer_deploy.pipeline import integer_graph

    model = build_model()
    x = torch.rand(batch, 3, 32, 32)
    info = {}
    if kind == "float_reference":
        def step():
            with torch.no_grad():
                model(x)
    elif kind in ("float_guarded", "float64"):  # the float graph alone, as `simulate` runs it beside the integer one
        from spikformer_deploy.pipeline import float_graph

        sim = Simulator(float_graph(model), count=False, record="spikes",
                        precision="auto" if kind == "float_guarded" else "float64")

        def step():
            before = sum(sim.repaired.values())
            sim.run(x)
            info["repaired_rows"] = sum(sim.repaired.values()) - before
    elif kind == "simulate_command":  # what `simulate` runs per batch: the float graph beside the integer one
        from spikformer_deploy.pipeline import integer_graph_from
        from spikformer_deploy.runner import run_batch, simulators

        float_g, int_g = integer_graph_from(model, x)
        int_sim, float_sim = simulators(int_g, float_g)

        def step():
            run_batch(int_sim, float_sim, x)
    else:
        graph = integer_graph(model, x)
        sim = Simulator(graph, count=(kind != "simulator_no_counters"), native_kernels=(kind != "simulator_portable"))
        result = sim.run(x)
        if result.counters:
            rows = result.counters.per_sample()
            info["dense_macs_per_image"] = sum(r.get("dense_macs", 0.0) for r in rows.values())
            spikes = sum(r.get("spikes", 0.0) for r in rows.values())
            updates = sum(r.get("neuron_updates", 0.0) for r in rows.values())
            info["firing_rate"] = spikes / updates

        def step():
            sim.run(x)
    step()
    start = time.perf_counter()
    for _ in range(repeats):
        step()
    info["images_per_s"] = batch * repeats / (time.perf_counter() - start)
    info["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put(info)


def floor_rate(dense_macs_per_image: float, threads: int) -> float:
    """Images/s of the dense floor: the dense-equivalent FLOPs per image at this run's fp32 GEMM rate."""
    return gemm_rate(threads) / (2 * dense_macs_per_image)


def run_isolated(kind: str, args) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=measure, args=(kind, args.batch, args.repeats, args.threads, queue))
    proc.start()
    info = queue.get()
    proc.join()
    return info


def parse_args(description: str) -> argparse.Namespace:
    """The options every simulator benchmark on this shape takes."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    return parser.parse_args()


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    kinds = ("simulator", "simulator_no_counters", "simulator_portable", "float_reference")
    results = {kind: run_isolated(kind, args) for kind in kinds}
    flops = 2 * results["simulator"]["dense_macs_per_image"]
    floor = floor_rate(results["simulator"]["dense_macs_per_image"], args.threads)
    rate = floor * flops
    print(f"Spikformer-4-384 (cifar10), batch {args.batch}, T=4, {args.threads} threads; "
          f"firing rate {results['simulator']['firing_rate']:.3f}")
    print(f"dense-equivalent work {flops / 1e9:.2f} GFLOP/image; fp32 GEMM {rate / 1e9:.1f} GFLOP/s "
          f"-> dense floor {floor:.2f} images/s")
    for kind, info in results.items():
        print(f"  {kind:24s} {info['images_per_s']:7.2f} images/s  = {info['images_per_s'] / floor:5.2f} x floor"
              f"  peak RSS {info['peak_rss_mb']:7.0f} MB")
    print(f"simulator / float reference: "
          f"{results['simulator']['images_per_s'] / results['float_reference']['images_per_s']:.2f}")


if __name__ == "__main__":
    main()
