"""The accuracy / energy trade-off: the integer model per (weight bits, T) point, side by side.

Each point rebuilds the model at T (a trained model run for fewer or more steps: the question "how much accuracy at
T = 2?" is legitimate, and the float model at that T is reported beside it, so a loss from T and a loss from
quantization are told apart), calibrates on the calibration inputs, quantizes to the weight bits, and runs the
float and the integer model on the evaluation inputs: accuracy, agreement, synaptic ops, energy on Loihi 2 (with
the calibrated range) and in the 45 nm corrected convention, latency. Points run in parallel worker processes (spawned:
each one loads the checkpoint itself and runs torch on one thread); the results do not depend on how many.
The Pareto front: the points no other point beats on both accuracy and Loihi 2 energy.
"""
from __future__ import annotations

import dataclasses
import multiprocessing
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .data import Inputs


@dataclasses.dataclass(frozen=True)
class SweepJob:
    checkpoint: str
    overrides: dict
    x_cal: np.ndarray
    x: Inputs  # read batch by batch in the worker
    y: np.ndarray | None
    weight_bits: int
    T: int
    batch: int = 64
    input_bits: int = 8
    attention: str = "auto"  # pipeline.place_attention, as simulate and export place it


def run_point(job: SweepJob) -> dict:
    """One point (in a worker process)."""
    from .analysis import estimate, layer_rows, load_profile, totals
    from .analysis.feasibility import map_network, performance
    from .model import build_model, load_checkpoint
    from .pipeline import integer_graph_from
    from .runner import run_local, simulators

    torch.set_num_threads(1)
    trained = load_checkpoint(job.checkpoint, **job.overrides)
    model = build_model(dataclasses.replace(trained.config, T=job.T)).eval()
    model.load_state_dict(trained.state_dict())
    x_cal, x = torch.from_numpy(job.x_cal), job.x
    float_graph, int_graph = integer_graph_from(model, x_cal, job.weight_bits, job.input_bits, job.batch,
                                                attention=job.attention)
    merged = run_local(*simulators(int_graph, float_graph, compare_spikes=False), x, job.batch)
    rows = layer_rows(int_graph, merged.counters)
    loihi2 = load_profile("loihi2")
    mapping = map_network(int_graph, loihi2)
    (loihi,) = estimate(rows, int_graph, loihi2, mapping)
    corrected = next(e for e in estimate(rows, int_graph, load_profile("cmos45nm")) if e.convention == "corrected")
    point = {"weight_bits": job.weight_bits, "T": job.T, "samples": len(x),
             **merged.scores(None if job.y is None else torch.from_numpy(job.y)),
             "sops": totals(rows)["sops"], "loihi2_J": loihi.total, "loihi2_range_J": list(loihi.range),
             "cmos45nm_corrected_J": corrected.total, "latency_s": performance(int_graph, loihi2, mapping,
                                                                                rows)["latency_s"]}
    return point


def sweep(jobs: list[SweepJob], workers: int, progress: Callable[[dict], None] | None = None,
          ray_address: str | None = None) -> list[dict]:
    """Every job's point, in the jobs' order: in this process, in ``workers`` processes, or as tasks on a Ray
    cluster (the checkpoint path must be readable there)."""
    points: list[dict | None] = [None] * len(jobs)
    if ray_address:
        from .runner import ray_tasks

        calls = [(f"point {job.weight_bits} bits, T = {job.T}", (job,)) for job in jobs]
        return ray_tasks(ray_address, run_point, calls, lambda i, point: progress and progress(point))
    if workers <= 1:
        for i, job in enumerate(jobs):
            points[i] = run_point(job)
            if progress:
                progress(points[i])
        return points
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {pool.submit(run_point, job): i for i, job in enumerate(jobs)}
        for future in as_completed(futures):
            points[futures[future]] = future.result()
            if progress:
                progress(points[futures[future]])
    return points


def pareto(points: list[dict]) -> list[int]:
    """Indices of the points no other point beats on both accuracy (or agreement, without labels) and Loihi 2
    energy."""
    key = "int_accuracy" if all("int_accuracy" in p for p in points) else "agreement"
    front = []
    for i, p in enumerate(points):
        dominated = any(q[key] >= p[key] and q["loihi2_J"] <= p["loihi2_J"] and
                        (q[key] > p[key] or q["loihi2_J"] < p["loihi2_J"]) for q in points)
        if not dominated:
            front.append(i)
    return front


def to_markdown(points: list[dict], front: list[int], title: str) -> str:
    labelled = all("int_accuracy" in p for p in points)
    lines = [f"# Accuracy / energy sweep: {title}", "",
             "| weight bits | T | float top-1 | integer top-1 | agreement | SOPs | Loihi 2 (µJ) | 45 nm corrected (µJ) "
             "| latency (ms) | Pareto |", "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for i, p in enumerate(points):
        acc = (f"{p['float_accuracy']:.2%} | {p['int_accuracy']:.2%}" if labelled else "– | –")
        low, high = p["loihi2_range_J"]
        lines.append(f"| {p['weight_bits']} | {p['T']} | {acc} | {p['agreement']:.2%} | {p['sops']:,.0f} | "
                     f"{p['loihi2_J'] * 1e6:.1f} ({low * 1e6:.1f}–{high * 1e6:.1f}) | "
                     f"{p['cmos45nm_corrected_J'] * 1e6:.2f} | {p['latency_s'] * 1e3:.2f} | "
                     f"{'yes' if i in front else ''} |")
    lines += ["", "Float top-1 is the float model at the same T (its loss from fewer steps); integer top-1 and "
              "agreement add the quantization's. Loihi 2: the calibrated profile, range from its constants' spread."]
    return "\n".join(lines) + "\n"


def pareto_png(points: list[dict], front: list[int], title: str, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    key = "int_accuracy" if all("int_accuracy" in p for p in points) else "agreement"
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for T in sorted({p["T"] for p in points}):
        sel = [p for p in points if p["T"] == T]
        energy = np.array([p["loihi2_J"] * 1e6 for p in sel])
        spread = np.array([[p["loihi2_J"] - p["loihi2_range_J"][0], p["loihi2_range_J"][1] - p["loihi2_J"]]
                           for p in sel]).T * 1e6
        ax.errorbar(energy, [p[key] * 100 for p in sel], xerr=spread, fmt="o", capsize=2, label=f"T = {T}")
        for p, e in zip(sel, energy):
            ax.annotate(f"{p['weight_bits']}b", (e, p[key] * 100), fontsize=7, xytext=(3, 3),
                        textcoords="offset points")
    best = sorted(front, key=lambda i: points[i]["loihi2_J"])
    ax.plot([points[i]["loihi2_J"] * 1e6 for i in best], [points[i][key] * 100 for i in best], "k--", lw=1,
            label="Pareto front")
    ax.set_xlabel("Loihi 2 energy per inference (µJ, calibrated range)")
    ax.set_ylabel(("integer top-1" if key == "int_accuracy" else "agreement with float") + " (%)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(fig)
    return path
