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
from .analysis.feasibility import chain_costs, choose_placement, map_network
from .analysis.profiles import load_profile
from .errors import ConfigError
from .passes import (Calibration, attention_placement, check_attention_choice, fold_batchnorm, fold_linear_chains,
                     linear_chains, lower_attention, quantize, rewrite_ssa, run_passes)


CHAIN_FORMS = ("auto", "folded", "apart")


def float_graph(model: Spikformer, chains: str = "auto", profile: str = "loihi2") -> Graph:
    """Traced, BatchNorm folded, chains of synapses folded or relayed, attention rewritten: still float, and still
    the float reference's meaning. ``chains``: ``auto`` takes the form with fewer cores on ``profile`` for each
    chain (``chain_costs``); ``folded`` / ``apart`` force one form on all."""
    if chains not in CHAIN_FORMS:
        raise ConfigError(f"chain form {chains!r}: choose from {', '.join(CHAIN_FORMS)}")
    g = run_passes(trace(model), [fold_batchnorm])
    found = linear_chains(g)
    if found:
        every = frozenset(c[-1] for c in found)
        costs = chain_costs(fold_linear_chains(g), fold_linear_chains(g, every), found, load_profile(profile))
        keep = {"folded": frozenset(), "apart": every,
                "auto": frozenset(k for k, c in costs.items() if c["choice"] == "apart")}[chains]
        g = run_passes(g, [functools.partial(fold_linear_chains, keep_apart=keep, decisions=costs)])
    return run_passes(g, [rewrite_ssa])


def calibrate(graph: Graph, x: torch.Tensor, batch_size: int = 64) -> Calibration:
    """Ranges of every drive and membrane in the float graph on ``x`` (for ``quantize``)."""
    sim = Simulator(graph, count=True)
    counters = Counters(sim.time_steps(x))
    for start in range(0, len(x), batch_size):
        counters.merge(sim.run(x[start:start + batch_size]).counters)
    return Calibration(input_min=float(x.min()), input_max=float(x.max()), maxima=dict(counters.maxima),
                       samples=len(x))


def place_attention(graph: Graph, attention: str = "auto", profile: str = "loihi2",
                    chips: int | None = None) -> Graph:
    """The integer graph with its attention on the embedded cores (as it is) or on neurocores (``lower_attention``);
    ``auto``: ``choose_placement`` on ``profile``'s mapping of both (``chips``: the budget). A graph without a
    ``SpikingAttention`` is returned as it is."""
    check_attention_choice(attention)
    if attention == "embedded" or attention_placement(graph) != "embedded":
        return graph
    lowered = run_passes(graph, [lower_attention])
    if attention == "neurocores":
        return lowered
    p = load_profile(profile)
    choice, _ = choose_placement({"embedded": map_network(graph, p)["chips"],
                                  "neurocores": map_network(lowered, p)["chips"]}, chips)
    return lowered if choice == "neurocores" else graph


def integer_graph_from(model: Spikformer, calibration_x: torch.Tensor, weight_bits: int = 8, input_bits: int = 8,
                       batch_size: int = 64, chains: str = "auto", attention: str = "embedded",
                       chips: int | None = None) -> tuple[Graph, Graph]:
    """(float graph, integer graph): the integer one quantized with ranges calibrated on ``calibration_x``
    (``chains``: see ``float_graph``), its attention placed by ``place_attention`` (``chips``: the budget)."""
    g = float_graph(model, chains)
    calibration = calibrate(g, calibration_x, batch_size)
    return g, place_attention(run_passes(g, [functools.partial(quantize, calibration=calibration,
                                                               weight_bits=weight_bits, input_bits=input_bits)]),
                              attention, chips=chips)


def integer_graph(model: Spikformer, calibration_x: torch.Tensor, weight_bits: int = 8, input_bits: int = 8,
                  batch_size: int = 64, chains: str = "auto", attention: str = "embedded",
                  chips: int | None = None) -> Graph:
    """The integer (Loihi 2 formats) deploy graph of ``model``: traced, BatchNorm folded, attention rewritten,
    calibrated on ``calibration_x``, quantized to ``weight_bits`` / ``input_bits``, the attention placed
    (``place_attention``)."""
    return integer_graph_from(model, calibration_x, weight_bits, input_bits, batch_size, chains, attention,
                              chips)[1]
