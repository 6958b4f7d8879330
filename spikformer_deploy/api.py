"""The jobs the commands do, as functions (the package's public API re-exports them): simulate a model side by side
in float and integer, estimate its energy on every hardware profile, check an exported artifact on Lava against the
simulator, and build the hardware feasibility report. The commands call these; they add only input selection and
output."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .analysis import EnergyEstimate, LayerStats, Profile, builtin_profiles, estimate, layer_rows, load_profile, totals
from .errors import DeployError, GraphError
from .ir import Graph

GPU_REFERENCE = "h200_sxm"  # the GPU beside every report's target


@dataclass
class Simulation:
    """One side-by-side run: the integer graph (and the float one it was quantized from), per-layer counts per
    inference, and the scores (agreement, per-layer spike agreement, top-1 where there are labels)."""

    graph: Graph
    float_graph: Graph | None
    rows: list[LayerStats]
    scores: dict
    samples: int
    traces: dict[str, np.ndarray] = field(default_factory=dict)  # ``record``: [T, inputs, ...] per node

    def totals(self) -> dict:
        """Per inference, summed over layers."""
        return totals(self.rows)


def simulate(model, x, labels: torch.Tensor | None = None, *, calibration_x=None, weight_bits: int = 8,
             input_bits: int = 8, chains: str = "auto", batch: int = 64, device: str = "cpu",
             ray_address: str | None = None, attention: str = "embedded", chips: int | None = None,
             record: tuple[str, ...] = (),
             shard_batches: int = 4, progress=None) -> Simulation:
    """Run ``x`` through the float model and its integer (Loihi 2) graph, quantized with ranges calibrated on
    ``calibration_x`` (default: the first 256 inputs of ``x``). ``model`` may instead be an integer ``Graph`` (a netx network), which
    runs alone. ``progress(done)`` is called after each batch; ``ray_address`` shards the batches over a Ray
    cluster (the totals equal a local run's bit for bit); ``chains``: see ``pipeline.float_graph``; ``attention``:
    where the integer graph's attention runs, ``chips`` its budget (``pipeline.place_attention``); ``record``:
    integer nodes whose per-step outputs (and u, v for neurons) to return in ``traces`` (a local run)."""
    from .pipeline import integer_graph_from
    from .runner import run_local, run_ray, simulators

    if isinstance(model, Graph):
        if not model.integer:
            raise GraphError(f"simulate runs a model or an integer graph; this graph is {model.dialect}")
        float_graph, int_graph = None, model
    else:
        float_graph, int_graph = integer_graph_from(model, x[:256] if calibration_x is None else calibration_x,
                                                    weight_bits, input_bits, batch, chains, attention, chips)
    if ray_address:
        if record:
            raise DeployError("--record runs locally: it does not go with --ray-address")
        merged = run_ray(ray_address, int_graph, float_graph, x, batch, shard_batches, device, progress)
    else:
        merged = run_local(*simulators(int_graph, float_graph, device, traces=tuple(record)), x, batch, progress,
                           tuple(record))
    return Simulation(int_graph, float_graph, layer_rows(int_graph, merged.counters), merged.scores(labels), len(x),
                      merged.traced())


def profiles(names=None) -> list[Profile]:
    """Hardware profiles by name (built-in) or YAML path; none given: every built-in profile."""
    return [p if isinstance(p, Profile) else load_profile(p) for p in (names or builtin_profiles())]


def energy(simulation: Simulation, hardware=None) -> list[EnergyEstimate]:
    """Energy per inference, per layer, on each profile in ``hardware`` (names, paths or ``Profile``s; default:
    every built-in one), every convention the profile's model has; Loihi profiles on the network's mapping."""
    from .analysis.feasibility import map_network

    return [e for p in profiles(hardware) for e in estimate(
        simulation.rows, simulation.graph, p, map_network(simulation.graph, p) if p.model == "loihi" else None)]


def counting_conventions(simulation: Simulation, per_op: str | Path | Profile = "cmos45nm") -> dict:
    """Every counting convention over the run's counts, side by side (``analysis.conventions``), energies at the
    per-op profile's E_MAC and E_AC."""
    from .analysis.conventions import conventions_report

    return conventions_report(simulation.rows, simulation.graph, profiles([per_op])[0])


def architecture_graph(config, seed: int = 0) -> Graph:
    """The float deploy graph of an architecture with random weights (``analysis.rates.random_model``): what counts
    under forced rates are taken on."""
    from .analysis.rates import random_model
    from .pipeline import float_graph

    return float_graph(random_model(config, seed))


def rows_from_rates(graph: Graph, rates: dict[str, float], seed: int = 0) -> list[LayerStats]:
    """Per-layer counts of ``graph`` (one sample) with its spiking nodes firing at ``rates`` (``analysis.rates``);
    every LIF needs one."""
    from .backends.sim import Simulator
    from .errors import DataError
    from .ir.ops import LIF, LoihiLIF

    missing = [n.name for n in graph.of_type(LIF, LoihiLIF) if n.name not in rates]
    if missing:
        raise DataError(f"no rate for {len(missing)} LIF(s): {', '.join(missing)}")
    x = torch.rand(1, *graph.input.op.shape, generator=torch.Generator().manual_seed(seed))
    return layer_rows(graph, Simulator(graph, spike_rates=rates, seed=seed).run(x).counters)


def estimate_from_rates(rates: str | Path, target: str | Path | Profile = "loihi2", seed: int = 0) -> dict:
    """Every counting convention and the target's estimate (cores, chips, latency, energy) for an architecture
    from published per-layer firing rates (``analysis.rates``): an estimate from rates, not event-driven."""
    from .analysis.rates import KIND, load_rates
    from .analysis.report import build_report

    spec = load_rates(rates)
    graph = architecture_graph(spec.config, seed)
    rows = rows_from_rates(graph, spec.rates, seed)
    report = build_report(graph, rows, profiles([target])[0], load_profile(GPU_REFERENCE), None,
                          f"{KIND}: rates of {spec.source}", counts_kind=KIND)
    return {"kind": KIND, "source": spec.source, "architecture": dict(vars(spec.config)),
            "rates": dict(spec.rates), "seed": seed, "counting_conventions": report["counting_conventions"],
            "target": {k: report[k] for k in ("target", "verdict", "totals", "performance", "energy")},
            "layers": report["layers"]}


def feasibility_report(graph: Graph, x, target: str | Path | Profile = "loihi2", chips: int | None = None,
                       note: str = "", batch: int = 64, attention: str = "auto",
                       reason: str = "asked for (--attention)") -> dict:
    """The hardware feasibility report of an integer graph with firing rates measured on ``x``: mapping (cores,
    chips), every limit checked (all violations at once), latency, energy beside the GPU reference, verdict.
    A graph with Spiking Self-Attention is reported with its attention on the embedded cores and on neurocores
    (``lower_attention``), side by side in ``placements``; the rest describes ``attention`` (``auto``:
    ``choose_placement`` on the chips each takes and ``chips``, the budget; else ``reason`` says why)."""
    from .analysis.feasibility import choose_placement
    from .analysis.report import build_report, placement_summary
    from .passes import attention_placement, check_attention_choice, lower_attention
    from .runner import run_local, simulators

    check_attention_choice(attention)
    target = target if isinstance(target, Profile) else load_profile(target)

    def report(g: Graph) -> dict:
        counters = run_local(*simulators(g, None), x, batch).counters
        return build_report(g, layer_rows(g, counters), target, load_profile(GPU_REFERENCE), chips,
                            note or f"{len(x)} inputs")

    placed = attention_placement(graph)
    if placed is None:
        return {**report(graph), "placements": None}
    graphs = {"embedded": graph, "neurocores": lower_attention(graph)} if placed == "embedded" else \
        {"neurocores": graph}
    reports = {name: report(g) for name, g in graphs.items()}
    if attention == "auto" or len(reports) == 1:
        chosen, why = choose_placement({k: r["totals"]["chips"] for k, r in reports.items()}, chips)
    else:
        chosen, why = attention, reason
    return {**reports[chosen], "placements": {"chosen": chosen, "why": why, "rows": [
        placement_summary(name, r) for name, r in reports.items()]}}


def verify_on_lava(artifact: str | Path, x, batch: int = 64) -> dict:
    """Run an artifact's integer graph on Lava (Loihi2SimCfg, fixed_pt) and on the simulator: per layer, how many
    spike decisions are equal, whether the predictions are, and (where the artifact has one) whether the netx stem
    equals the simulator. The files are checked against the manifest first."""
    from .artifact import load_artifact
    from .backends.netx import NETX_FILE

    artifact = Path(artifact)
    graph, _ = load_artifact(artifact)
    netx = artifact / NETX_FILE
    return compare_on_lava(graph, x, netx if netx.exists() else None, batch)


def compare_on_lava(graph: Graph, x, netx_stem: Path | None = None, batch: int = 64) -> dict:
    """``verify_on_lava`` on a graph already loaded (and checked); ``netx_stem``: the artifact's netx file."""
    import time

    from .backends.lava import LavaNetwork
    from .backends.netx import run_netx_stem
    from .backends.sim import Simulator

    x = torch.as_tensor(x)
    start = time.perf_counter()
    sim = Simulator(graph, record="spikes")
    runs = [sim.run(x[i:i + batch]) for i in range(0, len(x), batch)]
    sim_s = time.perf_counter() - start
    sim_out = {k: np.concatenate([r.outputs[k].numpy() for r in runs], axis=1) for k in runs[0].outputs}
    sim_pred = np.concatenate([r.predictions.numpy() for r in runs])
    lava = LavaNetwork(graph).run(x.numpy())
    layers = {name: {"equal": int((out == sim_out[name]).sum()), "total": int(out.size)}
              for name, out in lava.outputs.items()}
    result = {"samples": len(x), "layers": layers,
              "spikes_equal": all(v["equal"] == v["total"] for v in layers.values()),
              "predictions_equal": bool(np.array_equal(lava.predictions, sim_pred)),
              "lava_s_per_input": lava.seconds / len(x), "sim_s_per_input": sim_s / len(x),
              "lava_processes": lava.processes, "lava_steps": lava.steps, "lava_s": lava.seconds,
              "lava_process_classes": lava.process_classes,
              "lava_custom_processes": sorted(k for k, v in lava.process_classes.items() if v["kind"] == "custom")}
    if netx_stem is not None:
        stem = run_netx_stem(netx_stem, graph, x.numpy())
        result["netx_stem_equal"] = all(np.array_equal(v, sim_out[k]) for k, v in stem.items())
    result["ok"] = result["spikes_equal"] and result["predictions_equal"] and result.get("netx_stem_equal", True)
    return result
