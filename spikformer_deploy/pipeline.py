"""The named conversion pipeline: float model -> deploy IR -> passes -> (calibration) -> integer graph.

Sits above passes and backends: calibration runs the simulator's float mode, which a pass may not import.
"""
from __future__ import annotations

import functools

import torch

from .backends.sim import Simulator
from .counters import Counters
from .frontends import trace
from .ir import Graph
from .model import Spikformer
from .passes import Calibration, fold_batchnorm, quantize, rewrite_ssa, run_passes


def float_graph(model: Spikformer) -> Graph:
    """Traced, BatchNorm folded, attention rewritten: still float, and still the float reference's meaning."""
    return run_passes(trace(model), [fold_batchnorm, rewrite_ssa])


def calibrate(graph: Graph, x: torch.Tensor, batch_size: int = 64) -> Calibration:
    """Ranges of every drive and membrane in the float graph on ``x`` (for ``quantize``)."""
    sim = Simulator(graph, count=True)
    counters = Counters(sim.time_steps(x))
    for start in range(0, len(x), batch_size):
        counters.merge(sim.run(x[start:start + batch_size]).counters)
    return Calibration(input_min=float(x.min()), input_max=float(x.max()), maxima=dict(counters.maxima),
                       samples=len(x))


def integer_graph_from(model: Spikformer, calibration_x: torch.Tensor, weight_bits: int = 8, input_bits: int = 8,
                       batch_size: int = 64) -> tuple[Graph, Graph]:
    """(float graph, integer graph): the integer one quantized with ranges calibrated on ``calibration_x``."""
    g = float_graph(model)
    calibration = calibrate(g, calibration_x, batch_size)
    return g, run_passes(g, [functools.partial(quantize, calibration=calibration, weight_bits=weight_bits,
                                               input_bits=input_bits)])


def integer_graph(model: Spikformer, calibration_x: torch.Tensor, weight_bits: int = 8, input_bits: int = 8,
                  batch_size: int = 64) -> Graph:
    """The integer (Loihi 2 formats) deploy graph of ``model``: traced, BatchNorm folded, attention rewritten,
    calibrated on ``calibration_x`` and quantized to ``weight_bits`` / ``input_bits``."""
    return integer_graph_from(model, calibration_x, weight_bits, input_bits, batch_size)[1]
