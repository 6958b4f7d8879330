"""Run the integer simulator (and the float one beside it) over a data set: in this process, or sharded over a Ray
cluster. Either way the per-batch results are merged in batch order, so the totals are the same bit for bit.

Memory stays bounded by the batch: each batch's spikes are compared and dropped; what is kept per input is its two
predictions. A shard is a run of whole batches; Ray retries a shard whose worker died (``max_retries``), and a shard
that still fails, or comes back with the wrong number of inputs, is an error that names it — never a gap.
"""
from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass, field

import numpy as np
import torch

from .backends.sim import Simulator
from .backends.sim.simulator import time_steps
from .counters import Counters
from .errors import DeployError
from .ir import Graph
from .ir.ops import Head, LoihiLIF

SHARD_RETRIES = 2
# Fault injection for the retry tests: a file holding how many more times the worker of the first shard dies.
CRASHES = "SPIKFORMER_DEPLOY_CRASHES"


@dataclass
class BatchResult:
    counters: Counters
    int_pred: torch.Tensor
    float_pred: torch.Tensor | None
    same: dict[str, int]  # spiking layer -> spike decisions both models take alike
    seen: dict[str, int]
    traces: dict[str, np.ndarray] = field(default_factory=dict)  # see ``traces_of``


def traces_of(result, names, graph: Graph) -> dict[str, np.ndarray]:
    """The integer run's recorded outputs of ``names`` [T, B, ...] (the simulator's layout: images C, H, W, tokens
    N, C; a head's logits, computed once after the last step, [1, B, classes]), and ``<name>.u`` / ``<name>.v`` of
    its traced neurons."""
    out = {name: result.outputs[name].numpy()[None] if isinstance(graph.nodes[name].op, Head) else
           result.outputs[name].numpy() for name in names}
    for name, states in result.states.items():
        out.update({f"{name}.{key}": value.numpy() for key, value in states.items()})
    return out


def run_batch(int_sim, float_sim, xb: torch.Tensor, traces: tuple[str, ...] = ()) -> BatchResult:
    result = int_sim.run(xb)
    same, seen, float_pred = {}, {}, None
    if float_sim is not None:
        reference = float_sim.run(xb)
        float_pred = reference.predictions
        for name, spikes in result.outputs.items():
            if name not in reference.outputs:  # the attention's AND neurons on neurocores: no float counterpart
                continue
            # count_nonzero of the differences: summing a bool tensor runs at a quarter of its speed
            same[name] = spikes.numel() - int(torch.count_nonzero(spikes != reference.outputs[name]))
            seen[name] = spikes.numel()
    return BatchResult(result.counters, result.predictions, float_pred, same, seen,
                       traces_of(result, traces, int_sim.graph))


@dataclass
class SideBySide:
    """Batch results merged in order: counters, predictions, per-layer spike agreement."""

    counters: Counters
    int_pred: list = field(default_factory=list)
    float_pred: list = field(default_factory=list)
    same: dict = field(default_factory=dict)
    seen: dict = field(default_factory=dict)
    traces: dict = field(default_factory=dict)  # name -> the batches' arrays, in order

    def add(self, r: BatchResult) -> None:
        self.counters.merge(r.counters)
        for name, value in r.traces.items():
            self.traces.setdefault(name, []).append(value)
        self.int_pred.append(r.int_pred)
        if r.float_pred is not None:
            self.float_pred.append(r.float_pred)
        for name in r.same:
            self.same[name] = self.same.get(name, 0) + r.same[name]
            self.seen[name] = self.seen.get(name, 0) + r.seen[name]

    def traced(self) -> dict[str, np.ndarray]:
        """Every trace over all inputs: [T, inputs, ...]."""
        return {name: np.concatenate(parts, axis=1) for name, parts in self.traces.items()}

    def predictions(self):
        return torch.cat(self.float_pred) if self.float_pred else None, torch.cat(self.int_pred)

    def scores(self, y: torch.Tensor | None = None) -> dict:
        """Prediction agreement and per-layer spike agreement (where there is a float model), top-1 of each model
        (where there are labels)."""
        float_pred, int_pred = self.predictions()
        out = {}
        if float_pred is not None:
            out["agreement"] = (float_pred == int_pred).double().mean().item()
            if self.same:
                out["spike_agreement"] = {name: self.same[name] / self.seen[name] for name in self.same}
        if y is not None:
            if float_pred is not None:
                out["float_accuracy"] = (float_pred == y).double().mean().item()
            out["int_accuracy"] = (int_pred == y).double().mean().item()
        return out


def simulators(int_graph: Graph, float_graph: Graph | None, device: str = "cpu", compare_spikes: bool = True,
               traces: tuple[str, ...] = ()):
    """(integer simulator with counters, float simulator or None); with ``compare_spikes`` both record their spikes
    for the per-layer agreement, as their kernels made them (widening the integer side's uint8 spikes to float32
    cost a second per image at 8-768); ``traces``: integer nodes whose outputs it records too, and u and v of those
    that are neurons."""
    record = "spikes" if compare_spikes and float_graph is not None else ()
    if traces:
        unknown = [name for name in traces if name not in int_graph.nodes]
        if unknown:
            raise DeployError(f"--record: no node {unknown[0]!r} in the integer graph (its nodes: `simulate --json` "
                              f"lists them as layers)")
        spiking = {n.name for n in int_graph.having("spiking")} if record else set()
        record = spiking | set(traces)
    neurons = {n.name for n in int_graph.of_type(LoihiLIF)}
    int_sim = Simulator(int_graph, device=device, record=record, spikes_as_made=True,
                        record_states=[name for name in traces if name in neurons])
    float_sim = None if float_graph is None else Simulator(float_graph, device=device, count=False, record=record,
                                                           spikes_as_made=True)
    return int_sim, float_sim


def shards(n: int, batch: int, shard_batches: int) -> list[tuple[int, int]]:
    size = batch * shard_batches
    return [(start, min(start + size, n)) for start in range(0, n, size)]


def run_local(int_sim, float_sim, x: torch.Tensor, batch: int, advance=None,
              traces: tuple[str, ...] = ()) -> SideBySide:
    """``traces``: integer nodes whose outputs (and, for neurons, u and v: ``simulators``) to keep."""
    merged = SideBySide(Counters(time_steps(int_sim.graph, x)))
    for start in range(0, len(x), batch):
        merged.add(run_batch(int_sim, float_sim, x[start:start + batch], traces))
        if advance:
            advance(min(start + batch, len(x)))
    return merged


def _simulate_shard(int_graph, float_graph, x: torch.Tensor, start: int, stop: int, batch: int, device: str):
    """One shard on a Ray worker: its batches' results, in order."""
    crashes = os.environ.get(CRASHES)
    if crashes and start == 0 and os.path.exists(crashes):
        left = int(open(crashes).read() or 0)
        if left > 0:
            with open(crashes, "w") as f:
                f.write(str(left - 1))
            os._exit(1)  # the worker dies mid-shard, as on a lost node
    torch.set_num_threads(1)  # one CPU per task: Ray schedules as many tasks as the cluster has CPUs
    int_sim, float_sim = simulators(int_graph, float_graph, device)
    return [run_batch(int_sim, float_sim, x[s:min(s + batch, stop)]) for s in range(start, stop, batch)]


def _check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """HOST:PORT must accept a connection now: ray.init would keep retrying a dead address for minutes."""
    import socket

    if address == "auto":
        return  # Ray finds the local cluster itself, and says so at once when there is none
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise DeployError(f"--ray-address {address!r}: expected auto or HOST:PORT")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise DeployError(f"cannot reach the Ray cluster at {address}: {exc.strerror or exc}") from None


def ray_tasks(address: str, func, calls: list[tuple[str, tuple]], done) -> list:
    """``func(*args)`` for every (label, args) of ``calls`` as tasks on the Ray cluster at ``address`` (one CPU
    each, retried when their worker dies), results in the calls' order; ``done(index, result)`` as each arrives.
    Arguments that are Ray object refs are shared, not copied per task. A call that still fails is an error naming
    its label."""
    try:
        import ray
    except ImportError:
        raise DeployError("--ray-address needs Ray: pip install 'spikformer-deploy[distributed]'") from None
    _check_reachable(address)
    # Ray's driver prints its cluster's news (a worker died...) with print(): onto stderr with it, so that stdout
    # holds only what the command writes (--json)
    with contextlib.redirect_stdout(sys.stderr):
        try:
            ray.init(address=address, logging_level="ERROR", log_to_driver=False)
        except Exception as exc:  # Ray raises ConnectionError, ValueError, RuntimeError... for a bad address
            raise DeployError(f"cannot reach the Ray cluster at {address}: {str(exc).splitlines()[0]}") from None
        try:
            task = ray.remote(num_cpus=1, max_retries=SHARD_RETRIES)(func)
            shared = {}

            def put(value):
                if isinstance(value, (torch.Tensor, Graph)):
                    shared.setdefault(id(value), ray.put(value))
                    return shared[id(value)]
                return value

            pending = {task.remote(*map(put, args)): i for i, (_, args) in enumerate(calls)}
            results = [None] * len(calls)
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                i = pending.pop(ready[0])
                try:
                    results[i] = ray.get(ready[0])
                except Exception as exc:  # retries spent: the call is lost
                    raise DeployError(f"{calls[i][0]} failed after {SHARD_RETRIES} retries: "
                                      f"{str(exc).splitlines()[0]}") from None
                done(i, results[i])
            return results
        finally:
            ray.shutdown()


def run_ray(address: str, int_graph, float_graph, x: torch.Tensor, batch: int, shard_batches: int, device: str,
            advance) -> SideBySide:
    """Shards of whole batches as Ray tasks; their batches merged in order, as ``run_local`` merges them."""
    bounds = shards(len(x), batch, shard_batches)
    calls = [(f"shard {i} (inputs {start}..{stop - 1})", (int_graph, float_graph, x, start, stop, batch, device))
             for i, (start, stop) in enumerate(bounds)]
    progress = {"done": 0}

    def done(i, batches):
        start, stop = bounds[i]
        if sum(len(b.int_pred) for b in batches) != stop - start:
            raise DeployError(f"{calls[i][0]} came back incomplete")
        progress["done"] += stop - start
        advance(progress["done"])

    merged = SideBySide(Counters(time_steps(int_graph, x)))
    for batches in ray_tasks(address, _simulate_shard, calls, done):
        for r in batches:
            merged.add(r)
    return merged
