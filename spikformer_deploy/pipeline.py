"""The named conversion pipeline: float model -> deploy IR -> passes -> (calibration) -> integer graph.

Sits above passes and backends: calibration runs the simulator's float mode, which a pass may not import.
"""
from __future__ import annotations

import functools

import torch

from .backends.sim import Counters, Simulator
from .ir import Graph, trace
from .model import Spikformer
from .passes import Calibration, fold_batchnorm, quantize, rewrite_ssa, run_passes


def float_graph(model: Spikformer) -> Graph:
    """Traced, BatchNorm folded, attention rewritten: still float, and still the float reference's meaning."""
    return run_passes(trace(model), [fold_batchnorm, rewrite_ssa])


def run_batches(sim: Simulator, x: torch.Tensor, batch_size: int, progress=None):
    """Run ``x`` in batches; yields each batch's SimResult. ``progress(done)`` after each batch."""
    for start in range(0, len(x), batch_size):
        result = sim.run(x[start:start + batch_size])
        if progress:
            progress(min(start + batch_size, len(x)))
        yield result


def calibrate(graph: Graph, x: torch.Tensor, batch_size: int = 64) -> Calibration:
    sim = Simulator(graph, count=True)
    counters: Counters | None = None
    for result in run_batches(sim, x, batch_size):
        if counters is None:
            counters = result.counters
        else:
            counters.merge(result.counters)
    return Calibration(input_min=float(x.min()), input_max=float(x.max()), maxima=dict(counters.maxima),
                       samples=len(x))


def integer_graph(model: Spikformer, calibration_x: torch.Tensor, weight_bits: int = 8, input_bits: int = 8,
                  batch_size: int = 64) -> Graph:
    g = float_graph(model)
    calibration = calibrate(g, calibration_x, batch_size)
    return run_passes(g, [functools.partial(quantize, calibration=calibration, weight_bits=weight_bits,
                                            input_bits=input_bits)])
