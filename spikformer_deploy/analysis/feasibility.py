"""Loihi feasibility: map neuron groups to cores under per-core limits, check every constraint, estimate speed.

Mapping model (each limit and its source is in the profile):
- a neuron group (LIF or OR-pool node) takes whole cores; cores are added until neurons, synaptic memory and input
  axons per core all fit. Token-wise synapses are split by whole tokens, convolutions by spatial tiles (a core's
  input axons are its tile plus the kernel's halo); with shared convolution weights (Loihi 2) a core stores its
  channels' kernels once, otherwise (Loihi 1) every synapse;
- a residual stream that carries values > 1 needs graded spikes; without them (Loihi 1) each consumer gets one
  copy of its synapses per binary source;
- the attention has no fixed synapses: it runs on the embedded x86 cores, which then send graded input to attn_lif
  (so do the Spike-driven Transformer's SDSA, graded max-pool and token mean: every ``embedded`` op); lowered onto
  neurocores (``lower_attention``) its AND, count and product groups and attn_lif sit on sparse synapses of known
  wiring (``ir.ops.Wiring``: fan-in, weight bits, distinct input axons per neuron), none shared;
- a real-valued residual stream (``StreamSum``) is held by graded relay neurons: a relay group holds the synapses
  that write the stream plus one identity synapse per earlier stream input (counted as one more input channel), and
  each neuron that reads the stream has one identity synapse (fan-in 1);
- groups fill chips in graph order on consecutive cores (``loihi_model.place_groups``).
Totals (neurons, synapses = existing pre/post connections) are exact; cores and timings are estimates.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..ir import Graph, OpTable
from ..ir.ops import (ATTENTION_STAGES, Add, AndTokenSum, AttentionAnd, AttentionCount, AttentionProduct,
                      AttentionSum, ChannelMask, Conv2d, DepthwiseConv2d, Flatten, MaxPool, OrPool, SpikingAttention,
                      StreamSum, TokenMean, Wiring)
from .layers import LayerStats
from .loihi_model import (WORD_BITS, boundary_table, core_times, embedded_ops, embedded_time, graph_activity, latency,
                          step_time)
from .profiles import Profile

SYSTEMS = ((1, "a single Loihi chip"), (8, "Kapoho Point (8 chips)"), (32, "Kapoho Point stack (32 chips)"),
           (1152, "Hala Point (1,152 chips)"))


@dataclass
class GroupMapping:
    name: str
    neurons: int
    synapse_node: str | None
    fan_in: int  # synapses per neuron (largest), all binary sources counted
    synapses: int  # existing pre/post connections, all sources counted
    sources: int  # binary sources the input is split into (1 with graded spikes)
    input_parts: int  # > 1: one neuron's fan-in exceeds a core; partial sums over this many cores
    cores: int
    limited_by: str
    synapse_bits_per_core: int
    input_axons_per_core: int


@dataclass
class Check:
    name: str
    status: str  # "ok" | "change" (fits once changed) | "violation" | "info"
    message: str
    fix: str = ""
    layers: list[str] = field(default_factory=list)


def valid_taps(h: int, w: int, k, stride, pad, h_out: int, w_out: int) -> int:
    """Kernel positions that land inside the input, summed over output positions (padding taps do not exist).
    ``k``, ``stride``, ``pad``: ints or (h, w) pairs."""
    def axis(n, n_out, k, stride, pad):
        return sum(sum(1 for d in range(k) if 0 <= o * stride - pad + d < n) for o in range(n_out))
    k, stride, pad = (np.broadcast_to(v, 2) for v in (k, stride, pad))
    return axis(h, h_out, k[0], stride[0], pad[0]) * axis(w, w_out, k[1], stride[1], pad[1])


def _map_pool(graph: Graph, node, profile: Profile, bounds: dict) -> GroupMapping:
    """A depthwise k x k OR with 1-bit weights."""
    c, h, w = graph.nodes[node.inputs[0]].shape
    op = node.op
    taps = valid_taps(h, w, op.kernel, op.stride, op.padding, *node.shape[1:]) * c
    return _map_cores(node, profile, None, taps, kernel=op.kernel, c_in=1, c_out=c, bits=1, sources=1,
                      tokenwise=False, depthwise=True)


def _synapse_geometry(graph: Graph, node, syn) -> tuple[int, int, int, int, bool]:
    """(taps, kernel, c_in, c_out, token-wise) of the synapse ``syn`` into ``node``'s neurons; ``c_in``: the input
    channels each output channel reads (1 for a depthwise conv)."""
    if isinstance(syn.op, Conv2d):
        src_shape = graph.nodes[syn.inputs[0]].shape
        c_out, c_in, kernel, _ = syn.op.weight.shape  # the core budget reads the kernel as square (kh)
        taps = valid_taps(src_shape[1], src_shape[2], syn.op.weight.shape[-2:], syn.op.stride, syn.op.padding,
                          *node.shape[1:])
        return taps * c_in * c_out, kernel, c_in, c_out, False
    c_out, c_in = syn.op.weight.shape
    return c_in * c_out * node.shape[1], 1, c_in, c_out, True


def _depthwise(syn) -> bool:
    return isinstance(syn.op, DepthwiseConv2d)


def _identity_synapses(node, profile: Profile, inputs: int) -> GroupMapping:
    """Neurons fed one-to-one by ``inputs`` graded streams (a stream reader, or a sum of streams)."""
    neurons = int(np.prod(node.shape))
    return _map_cores(node, profile, None, neurons * inputs, 1, inputs, node.shape[0], 8, 1, True)


def _map_wired(node, profile: Profile, synapse_node: str | None, wiring: Wiring) -> GroupMapping:
    """Neurons on sparse synapses of a known ``Wiring`` (the attention on neurocores): each core holds as many as
    its neurons, its synaptic memory (fan-in x weight bits per neuron, none shared) and its input axons (the
    wiring's distinct axons per neuron, for neurons held together with those that share their inputs) allow."""
    neurons = int(np.prod(node.shape))
    bits = wiring.fan_in * wiring.weight_bits
    axons = wiring.axons_per_neuron
    parts = max(1, math.ceil(bits / profile["synapse_memory_bits_per_core"]),
                math.ceil(axons / profile["input_axons_per_core"]))
    room = {"neurons": int(profile["neurons_per_core"]),
            "synaptic memory": int(profile["synapse_memory_bits_per_core"] * parts // bits),
            "input axons": int(profile["input_axons_per_core"] * parts // axons)}
    limited_by = min(room, key=room.get) if parts == 1 else f"fan-in: input split in {parts} parts"
    per_core = min(room.values())
    return GroupMapping(node.name, neurons, synapse_node, wiring.fan_in, neurons * wiring.fan_in, 1, parts,
                        math.ceil(neurons / per_core) * parts, limited_by, per_core * bits // parts,
                        math.ceil(per_core * axons / parts))


def _map_attention_group(graph: Graph, node, profile: Profile, bounds: dict) -> GroupMapping:
    return _map_wired(node, profile, None, node.op.wiring(graph.nodes[node.inputs[-1]].shape[1]))


def _map_neuron(graph: Graph, node, profile: Profile, bounds: dict) -> GroupMapping:
    """A LIF group and the synapse that feeds it; fed by an embedded op (the attention's cores), it has no
    synapses; fed by the real-valued stream, one identity synapse per neuron; fed by the attention's product
    neurons, their sparse graded synapses."""
    syn = graph.nodes[node.inputs[0]]
    if isinstance(syn.op, AttentionSum):
        return _map_wired(node, profile, syn.name, syn.op.wiring(node.shape[1]))
    if not syn.op.synapse:
        if graph.on_stream(syn.name):
            return _identity_synapses(node, profile, 1)
        npc = int(profile["neurons_per_core"])
        neurons = int(np.prod(node.shape))
        return GroupMapping(node.name, neurons, None, 0, 0, 1, 1, math.ceil(neurons / npc), "neurons", 0, 0)
    graded = int(profile["graded_spike_bits"]) > 0
    residual = isinstance(graph.nodes[syn.inputs[0]].op, (Add, Flatten))
    sources = int(bounds[syn.inputs[0]]) if residual and not graded else 1
    taps, kernel, c_in, c_out, tokenwise = _synapse_geometry(graph, node, syn)
    bits = syn.op.weight_bits or 8  # a float graph is mapped as if quantized to 8 bits
    return _map_cores(node, profile, syn.name, taps, kernel, c_in, c_out, bits, sources, tokenwise, _depthwise(syn))


def _map_relay(graph: Graph, node, profile: Profile, bounds: dict) -> GroupMapping:
    """Graded relay neurons of the real-valued stream: the synapse that writes it (the branch's last one) and one
    identity synapse per earlier stream input."""
    synapses = [graph.nodes[i] for i in node.inputs if graph.nodes[i].op.synapse]
    streams = len(node.inputs) - len(synapses)
    if not synapses:
        return _identity_synapses(node, profile, streams)
    syn = synapses[0]
    taps, kernel, c_in, c_out, tokenwise = _synapse_geometry(graph, node, syn)
    extra = sum(_synapse_geometry(graph, node, other)[2] for other in synapses[1:]) + streams
    return _map_cores(node, profile, syn.name, taps + extra * int(np.prod(node.shape)), kernel, c_in + extra, c_out,
                      syn.op.weight_bits or 8, 1, tokenwise, _depthwise(syn))


def _map_cores(node, profile: Profile, synapse: str | None, taps: int, kernel: int, c_in: int, c_out: int,
               bits: int, sources: int, tokenwise: bool, depthwise: bool = False) -> GroupMapping:
    """The fewest cores for the group; ``depthwise``: each output channel reads its own input channel, so a core's
    input axons are its channels' tiles, and its synaptic memory one k x k kernel per channel (shared weights)."""
    npc = int(profile["neurons_per_core"])
    mem = int(profile["synapse_memory_bits_per_core"])
    axon_limit = int(profile["input_axons_per_core"])
    shared = bool(profile["shared_conv_weights"])
    neurons = int(np.prod(node.shape))
    fan_in = c_in * kernel * kernel * sources
    positions = neurons // c_out

    parts = 1  # input channel parts: > 1 when a single neuron's fan-in exceeds a core (partial sums, see checks)

    def per_core(groups_c: int, tiles: int) -> tuple[int, int, int]:
        """(neurons, synapse bits, input axons) of one core holding 1/groups_c of the channels, 1/tiles of the grid
        and 1/parts of the input channels."""
        ch, pos = math.ceil(c_out / groups_c), math.ceil(positions / tiles)
        c_part = math.ceil(c_in / parts)
        per_neuron = c_part * kernel * kernel * bits * sources
        syn_bits = ch * per_neuron if shared else ch * pos * per_neuron
        side = math.ceil(math.sqrt(pos))
        axons = (pos if tokenwise else min(positions, (side + kernel - 1) ** 2)) * (ch if depthwise else c_part) \
            * sources
        return ch * pos, syn_bits, axons

    def fits(groups_c, tiles):
        n, b, a = per_core(groups_c, tiles)
        return n <= npc and b <= mem and a <= axon_limit

    while not fits(c_out, positions) and parts < c_in:  # even one neuron per core does not fit
        parts += 1
    best = None  # fewest cores over channel groups x spatial tiles (the limits shrink as either grows)
    for groups_c in range(1, c_out + 1):
        if not fits(groups_c, positions):
            continue
        lo, hi = 1, positions
        while lo < hi:
            mid = (lo + hi) // 2
            lo, hi = (lo, mid) if fits(groups_c, mid) else (mid + 1, hi)
        if best is None or groups_c * lo < best[0] * best[1]:
            best = (groups_c, lo)
    best = best or (c_out, positions)
    cores = best[0] * best[1] * parts
    n_core, syn_bits, axons = per_core(*best)
    if parts > 1:
        limited_by = f"fan-in: input split in {parts} parts"
    elif cores == math.ceil(neurons / npc):
        limited_by = "neurons"
    else:
        limited_by = "synaptic memory" if per_core(best[0], max(1, best[1] - 1))[1] > mem else "input axons"
    return GroupMapping(node.name, neurons, synapse, fan_in, taps * sources, sources, parts, cores, limited_by,
                        syn_bits, axons)


def _no_cores(graph: Graph, node, profile: Profile, bounds: dict) -> None:
    """Not a neuron group: on the host (input, head), the embedded cores (attention) or inside its consumers'
    synapses (residual relays, reshapes)."""


MAPPERS = OpTable("the core mapper", {OrPool: _map_pool, StreamSum: _map_relay, AttentionAnd: _map_attention_group,
                                      AttentionCount: _map_attention_group, AttentionProduct: _map_attention_group},
                  by_traits=lambda cls: _map_neuron if cls.neuron_group else _no_cores)


def map_network(graph: Graph, profile: Profile) -> dict:
    bounds = graph.value_bounds()
    groups = [MAPPERS(n)(graph, n, profile, bounds) for n in graph.having("neuron_group")]
    cores = sum(g.cores for g in groups)
    chips = max(1, math.ceil(cores / profile["cores_per_chip"]))  # consecutive placement (loihi_model.place_groups)
    return {"groups": groups, "cores": cores, "chips": chips,
            "neurons": sum(g.neurons for g in groups), "synapses": sum(g.synapses for g in groups),
            "system": next((name for n, name in SYSTEMS if chips <= n), f"{chips} chips (beyond Hala Point)")}


def choose_placement(chips: dict[str, int], budget: int | None) -> tuple[str, str]:
    """The attention's placement (``--attention auto``) from the chips each one needs: on neurocores where that fits
    the chip budget (``--chips``; without one, the chips the embedded placement takes), since a public Lava
    toolchain can place it (standard processes only); else on the embedded cores."""
    if "embedded" not in chips:
        return "neurocores", "the graph's attention is on neurocores already"
    if "neurocores" not in chips:
        return "embedded", "no attention to place on neurocores"
    limit = budget if budget is not None else chips["embedded"]
    within = f"the budget of {budget} chip(s)" if budget is not None else \
        f"the {limit} chip(s) the embedded placement takes"
    if chips["neurocores"] <= limit:
        return "neurocores", (f"on neurocores it takes {chips['neurocores']} chip(s), within {within}, and needs "
                              f"no embedded-core program (standard lava.proc processes only)")
    if chips["embedded"] > limit:
        return "embedded", (f"neither fits {within} (embedded {chips['embedded']} chip(s), neurocores "
                            f"{chips['neurocores']}): the one with fewer chips")
    return "embedded", (f"on neurocores it would take {chips['neurocores']} chip(s), more than {within}; the "
                        f"embedded cores take {chips['embedded']}")


def apart_keeps_precision(graph: Graph, chain: list[str]) -> bool:
    """Whether a chain kept apart keeps its 8-bit weights: with one relay, read by a synapse that writes the
    real-valued stream. Weight exponents stay >= 0 (lava's Conv takes none below 0), so the scales of a chain's
    weight sets multiply into the range of what it writes: a stream synapse sets its own fine scale, but a chain
    that ends in a LIF shares one 24-bit membrane's range among its weight sets, and each further relay halves the
    bits again (measured, Meta-SpikeFormer 15M at 224²: every RepConv kept apart leaves its first 1x1 conv with
    all-zero integer weights)."""
    return len(chain) == 2 and any(isinstance(c.op, StreamSum) for c in graph.consumers(chain[-1]))


def chain_costs(folded: Graph, apart: Graph, chains: list[list[str]], profile: Profile) -> dict[str, dict]:
    """Per chain of synapses (named by its last one): the cores, neurons and synapses of the neuron groups it
    feeds when folded into one conv (``folded``: the group reading it) and when kept apart (``apart``: that group
    plus the graded relays at its junctions), and the choice: apart where that takes fewer cores and keeps the
    weights' precision (``apart_keeps_precision``), else folded (one hop, no relays)."""
    maps = {form: {m.name: m for m in map_network(graph, profile)["groups"]}
            for form, graph in (("folded", folded), ("apart", apart))}
    costs = {}
    for chain in chains:
        last = chain[-1]
        groups = {"folded": [c.name for c in folded.consumers(last)],
                  "apart": [f"{n}.relay" for n in chain[:-1]] + [c.name for c in apart.consumers(last)]}
        entry = {}
        for form, names in groups.items():
            for key in ("cores", "neurons", "synapses"):
                entry[f"{key}_{form}"] = sum(getattr(maps[form][n], key) for n in names)
        entry["apart_keeps_precision"] = apart_keeps_precision(apart, chain)
        entry["choice"] = "apart" if entry["apart_keeps_precision"] and entry["cores_apart"] < entry["cores_folded"] \
            else "folded"
        entry["profile"] = profile.name
        costs[last] = entry
    return costs


def _precision_checks(graph: Graph, profile: Profile, mapping: dict, rows) -> list[Check]:
    checks = []
    q = graph.record("quantize")
    weight_bits = max((n.op.weight_bits or 8 for n in graph.having("synapse")), default=8)
    clipped = {k: v["clipped_weights"] for k, v in (q.nodes.items() if q else []) if v.get("clipped_weights")}
    if weight_bits > profile["max_weight_bits"]:
        checks.append(Check("weight precision", "violation", f"{weight_bits}-bit weights exceed the "
                            f"{int(profile['max_weight_bits'])}-bit synapses", "quantize with --weight-bits 8"))
    else:
        n = sum(clipped.values())
        checks.append(Check("weight precision", "ok" if not n else "info",
                            f"{weight_bits}-bit mantissas with a per-layer exponent; {n} weight(s) clipped by the "
                            f"least-squares step choice", layers=sorted(clipped)))
    thr = {k: abs(v["effective_threshold"] - v["threshold"]) / v["threshold"]
           for k, v in (q.nodes.items() if q else []) if "effective_threshold" in v and v["threshold"]}
    if thr:
        worst = max(thr, key=thr.get)
        checks.append(Check("threshold precision", "ok" if thr[worst] < 1e-3 else "info",
                            f"17-bit thresholds; largest relative threshold error {thr[worst]:.2e} ({worst})"))
    return checks


def _state_checks(graph: Graph, profile: Profile, mapping: dict, rows) -> list[Check]:
    if rows is None:
        return []
    margins = {r.name: r.overflow_margin_bits for r in rows if r.overflow_margin_bits is not None}
    bad = sorted(k for k, m in margins.items() if m < 0.01)
    tight = sorted(k for k, m in margins.items() if 0.01 <= m < 1)
    status = "violation" if bad else "info" if tight else "ok"
    return [Check("24-bit state", status,
                  f"smallest margin below the 24-bit u/v limit on the data: {min(margins.values()):.2f} bits"
                  if margins else "no integer neurons ran",
                  "recalibrate with more data or lower headroom" if bad else "", bad + tight)]


def _residual_checks(graph: Graph, profile: Profile, mapping: dict, rows) -> list[Check]:
    bounds = graph.value_bounds()
    graded = int(profile["graded_spike_bits"])
    checks = []
    if graph.of_type(Add) or not graph.of_type(StreamSum):
        residual = max((bounds[n.name] for n in graph.of_type(Add)), default=1)
        payload = math.ceil(math.log2(residual + 1))
        if graded == 0:
            split = [g.name for g in mapping["groups"] if g.sources > 1]
            checks.append(Check("residual stream", "change", f"values up to {residual:g} need graded spikes; this "
                                f"chip has none", f"split each consumer's synapses over the {residual:g} binary "
                                f"sources (W(a+b) = Wa + Wb; counted in the mapping)", split))
        elif payload > graded:
            checks.append(Check("residual stream", "violation", f"values up to {residual:g} need {payload}-bit "
                                f"payloads, the chip carries {graded}"))
        else:
            checks.append(Check("residual stream", "ok", f"graded spikes: values up to {residual:g} need {payload} "
                                f"payload bits of {graded}"))
    if graph.of_type(StreamSum):
        checks.append(_membrane_shortcut_check(graph, mapping, graded))
    depth = graph.pipeline_depths()
    needed = {n.name: max(depth[i] for i in n.inputs) - min(depth[i] for i in n.inputs)
              for n in graph.of_type(Add, StreamSum, AttentionProduct)}
    longest = max(needed.values(), default=0)
    fits = longest <= profile["max_delay"]
    checks.append(Check("delays", "ok" if fits else "change",
                        f"residual paths (and the attention's third operand on neurocores) differ by up to "
                        f"{longest} steps (limit {int(profile['max_delay'])}); the shorter path of each is delayed",
                        "" if fits else "chain relay neurons on the skip path", [k for k, v in needed.items() if v]))
    return checks


def _membrane_shortcut_check(graph: Graph, mapping: dict, graded: int) -> Check:
    """The real-valued stream on graded relay neurons: their cores and the payload its integers need."""
    relays = [g for g in mapping["groups"] if isinstance(graph.nodes[g.name].op, StreamSum)]
    cores, neurons = sum(g.cores for g in relays), sum(g.neurons for g in relays)
    q = graph.record("quantize")
    bits = q.settings.get("stream_payload_bits") if q else None
    where = f"{len(relays)} relay group(s), {neurons:,} neurons on {cores:,} cores"
    if graded == 0:
        return Check("membrane shortcut", "violation", f"the real-valued residual stream needs graded spikes "
                     f"({where}); this chip has none", "", [g.name for g in relays])
    if bits is None:
        return Check("membrane shortcut", "info", f"real-valued residual stream on graded relay neurons ({where}); "
                     f"its payload is set when it is quantized", "", [g.name for g in relays])
    status = "ok" if bits <= graded else "violation"
    return Check("membrane shortcut", status, f"real-valued residual stream as graded spikes on relay neurons "
                 f"({where}): {bits}-bit signed payloads (scale 1/{q.settings['stream_scale']:g}) of {graded}",
                 "" if status == "ok" else "quantize with more headroom (a smaller stream scale)",
                 [g.name for g in relays])


def _fan_in_checks(graph: Graph, profile: Profile, mapping: dict, rows) -> list[Check]:
    too_wide = [g.name for g in mapping["groups"] if g.input_parts > 1]
    widest = max(mapping["groups"], key=lambda g: g.fan_in)
    return [Check("fan-in", "change" if too_wide else "ok",
                  f"largest fan-in {widest.fan_in} synapses per neuron ({widest.name}); {len(too_wide)} group(s) "
                  f"exceed one core's input axons or synaptic memory",
                  "split their input channels across cores and add partial-sum neurons (counted in the mapping)"
                  if too_wide else "", too_wide)]


# what each embedded op is, in the attention-placement check
EMBEDDED_WORK = {SpikingAttention: "Q Kᵀ V", AndTokenSum: "SDSA's k AND v token sums", ChannelMask: "SDSA's q masks",
                 MaxPool: "graded max-pools", TokenMean: "token means"}


def _attention_checks(graph: Graph, profile: Profile, mapping: dict, rows) -> list[Check]:
    nodes = graph.having("embedded")
    if not nodes:
        return _neurocore_attention_checks(graph, mapping)
    work = list(dict.fromkeys(EMBEDDED_WORK.get(type(n.op), n.op.type) for n in nodes))
    names = {n.name for n in nodes}
    ssa = [r for r in rows or [] if r.name in names]
    ops = sum(embedded_ops(r) for r in ssa) / graph.steps if ssa else None
    cores = int(profile["embedded_cores_per_chip"]) * mapping["chips"]
    text = (f"{', '.join(work)} {'has' if len(work) == 1 else 'have'} no fixed synapses: "
            f"{'it runs' if len(work) == 1 else 'they run'} on the embedded x86 cores "
            f"({int(profile['embedded_cores_per_chip'])} per chip)")
    if ops is not None:
        at = {b: embedded_time(ops, mapping["chips"], p) * 1e6 for b, p in
              (("value", profile), ("low", profile.at("low")), ("high", profile.at("high")))}
        text += (f"; {ops:,.0f} {WORD_BITS}-bit word ANDs and additions per step over {cores} cores, "
                 f"~{at['value']:.1f} µs per step there ({at['low']:.1f}–{at['high']:.1f}; unvalidated: "
                 f"{profile.constants['t_embedded_op'].kind}, no public figure for these cores)")
    fix = "attention process on the embedded cores (graded output into attn_lif)" if work == ["Q Kᵀ V"] else \
        "processes on the embedded cores (graded or binary output into the next neurons)"
    return [Check("attention placement", "change", text, fix, [n.name for n in nodes])]


def _neurocore_attention_checks(graph: Graph, mapping: dict) -> list[Check]:
    """The attention lowered onto neurocores (``lower_attention``): what it takes there."""
    stages = [n.name for n in graph.of_type(*ATTENTION_STAGES)]
    if not stages:
        return []
    groups = [g for g in mapping["groups"] if g.name in stages]
    blocks = len(graph.of_type(AttentionSum))
    return [Check("attention placement", "ok",
                  f"Q Kᵀ V on neurocores ({blocks} block(s)): AND, count and product neurons, "
                  f"{sum(g.neurons for g in groups):,} neurons on {sum(g.cores for g in groups):,} cores, "
                  f"{sum(g.synapses for g in groups):,} synapses; four more synapse hops per block; standard "
                  f"lava.proc processes (LIF, GradedVec, ProdNeuron, Sparse), no embedded core", "", stages)]


def _input_checks(graph: Graph, profile: Profile, mapping: dict, rows) -> list[Check]:
    inp = graph.input.op
    if inp.kind != "image":
        return [Check("input encoding", "ok", "event frames: binary events (counts > 1 as graded spikes)")]
    status = "ok" if int(profile["graded_spike_bits"]) >= (inp.bits or 8) else "change"
    reader = graph.consumers(graph.input.name)[0]
    role = "synapse" if reader.op.synapse else "neuron group"  # a netx input layer takes the frame as its drive
    return [Check("input encoding", status,
                  f"the first {role} ({reader.name}) sees the analog image as {inp.bits or 8}-bit graded spikes "
                  f"({int(np.prod(inp.shape)):,} values per step, injected by the host)",
                  "" if status == "ok" else f"run the first {role} on the host or rate-code the input")]


CHECKS = (_precision_checks, _state_checks, _residual_checks, _fan_in_checks, _attention_checks, _input_checks)


def check_constraints(graph: Graph, profile: Profile, mapping: dict, rows: list[LayerStats] | None) -> list[Check]:
    """Every constraint at once, in report order (``rows``: the data's per-layer stats, for state margins and
    attention load; None checks the graph alone)."""
    return [check for check_group in CHECKS for check in check_group(graph, profile, mapping, rows)]


def performance(graph: Graph, profile: Profile, mapping: dict, rows: list[LayerStats]) -> dict:
    """Steps per inference, per-step latency (``analysis.loihi_model``, as the energy model) and its terms,
    inferences per second, the traffic across chip boundaries."""
    act, flows = graph_activity(graph, rows, mapping, profile)
    step, terms, bound = step_time(act, profile)
    load = core_times(act, profile)
    slowest = mapping["groups"][max(range(len(load)), key=load.__getitem__)].name if load else None
    # each bound on its own activity, as the energy model's (neuron_passes has a range too)
    ranges = {b: step_time(graph_activity(graph, rows, mapping, profile.at(b))[0], profile.at(b))[0]
              for b in ("low", "high")}
    return {**latency(graph, step), "slowest_group": slowest, "step_terms_s": terms, "bound_by": bound,
            "step_latency_range_s": [ranges["low"], ranges["high"]],
            "interchip_boundaries": boundary_table(flows, profile)}


def verdict(checks: list[Check], mapping: dict, chips_budget: int | None) -> tuple[str, list[str]]:
    reasons = [f"{c.name}: {c.message}" for c in checks if c.status == "violation"]
    if chips_budget is not None and mapping["chips"] > chips_budget:
        reasons.append(f"needs {mapping['chips']} chips, {chips_budget} available")
    if reasons:
        return "does not fit", reasons
    changes = [f"{c.name}: {c.fix}" for c in checks if c.status == "change"]
    return ("fits with changes", changes) if changes else ("fits", [])
