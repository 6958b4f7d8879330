"""Counting conventions side by side: the simulator's counts of one run, read the way each published counter reads a
network, so that a user sees why a paper's number differs from another paper's and from the event-driven count.

A convention is a name, a one-line definition, the source it follows (file and version), what it does with the
things counts disagree on (attention, integer or real inputs, pooling, bias, neurons), and per layer a count:
dense ops, MACs and ACs (``Count``), or nothing where the layer is invisible to it. Energies price MACs and ACs at a
per-op profile's E_MAC and E_AC (cmos45nm: 4.6 / 0.9 pJ, Horowitz ISSCC 2014), the constants every one of these
papers uses; NeuroBench and syops print counts only, and their energies here say so.

syops-counter hooks modules, not IR nodes: ``syops_modules`` lists the modules the original code has, as syops
sees them (a conv or linear with its bias, the BatchNorm folded into it, each LIF, each max-pool, the head), with
the hooks' dense ops, ACs, MACs and rate. Spikingformer's counter is that list filtered by module name, plus its
attention formula. Which inputs count as spikes follows the graph's value bounds (a residual sum of n binary sources
is an integer in 0..n), where the libraries test each batch's values: the two agree whenever the bound holds.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..ir import Graph, Node, OpTable
from ..ir.ops import (ATTENTION_STAGES, LIF, Add, AndTokenSum, AttentionCount, AttentionSum, ChannelMask, Head,
                      Input, LoihiLIF, MaxPool, OrPool, SpikingAttention, StreamSum, TokenMean)
from .layers import LayerStats, _bounds
from .profiles import Profile

ATTENTION_OPS = (SpikingAttention, AndTokenSum, ChannelMask, *ATTENTION_STAGES)
EVENT_DRIVEN = "event-driven counts"  # what a simulator run's counts are (analysis.rates: an estimate from rates)


@dataclass(frozen=True)
class Count:
    dense: float = 0.0
    macs: float = 0.0
    acs: float = 0.0

    def __add__(self, other: "Count") -> "Count":
        return Count(self.dense + other.dense, self.macs + other.macs, self.acs + other.acs)


@dataclass(frozen=True)
class Treatment:
    """What a convention does with each thing counts disagree on (one short phrase each)."""

    attention: str
    integer_inputs: str
    pooling: str
    bias: str
    neurons: str


@dataclass
class ConventionCount:
    name: str
    title: str
    definition: str
    source: str
    treatment: Treatment
    per_layer: dict[str, Count]
    notes: list[str] = field(default_factory=list)

    @property
    def total(self) -> Count:
        return sum(self.per_layer.values(), Count())

    def energy(self, profile: Profile) -> float:
        """J per inference: E_MAC x MACs + E_AC x ACs."""
        return profile["e_mac"] * self.total.macs + profile["e_ac"] * self.total.acs

    def to_dict(self, profile: Profile, kind: str) -> dict:
        """``kind``: what the counts are (event-driven, or an estimate from rates: ``analysis.rates``)."""
        t = self.total
        return {"name": self.name, "title": self.title, "definition": self.definition, "source": self.source,
                "kind": kind, "treatment": vars(self.treatment), "dense": t.dense, "macs": t.macs,
                "acs": t.acs, "energy_J": self.energy(profile),
                "energy_constants": {k: {"value": profile.constants[k].value, "unit": profile.constants[k].unit,
                                         "source": profile.constants[k].source} for k in ("e_mac", "e_ac")},
                "notes": list(self.notes),
                "per_layer": {k: {"dense": c.dense, "macs": c.macs, "acs": c.acs} for k, c in self.per_layer.items()}}


@dataclass(frozen=True)
class _Run:
    """What a per-layer count may read besides its own row."""

    graph: Graph
    rows: dict[str, LayerStats]
    bounds: dict[str, float]

    @property
    def steps(self) -> int:
        return self.graph.steps

    def source(self, node: Node) -> Node:
        return self.graph.nodes[node.inputs[0]]

    def reads_image(self, node: Node) -> bool:
        op = self.source(node).op
        return isinstance(op, Input) and op.kind == "image"

    def spikes_in(self, node: Node, nspks_max: float = 1.0) -> bool:
        """The input counts as spikes (values in 0..nspks_max; the analog image and real values never do)."""
        return not self.reads_image(node) and self.bounds[node.inputs[0]] <= nspks_max

    def head_passes(self, node: Node) -> int:
        """The original applies its classifier per step to spikes (SDT) or once to a mean (Spikformer)."""
        return self.steps if self.bounds[node.inputs[0]] == 1 else 1

    def neuron_rate(self, name: str) -> float:
        """Firing rate of the neuron group that feeds ``name`` through reshapes."""
        node = self.graph.nodes[name]
        while node.name not in self.rows or self.rows[node.name].firing_rate is None:
            node = self.source(node)
        return self.rows[node.name].firing_rate


def _out_elements(node: Node, steps: int) -> float:
    return float(np.prod(node.shape)) * steps


def _in_elements(run: _Run, node: Node) -> float:
    return float(np.prod(run.source(node).shape)) * run.steps


def _module_bias(node: Node) -> bool:
    return bool(node.meta.get("module_bias", getattr(node.op, "bias", None) is not None))


def _mean_input(r: LayerStats) -> float:
    """A synapse's mean input value (a graded event of value n counts n): the paper's SOPs over the dense MACs."""
    return r.sops_paper / r.dense_macs if r.dense_macs else 0.0


def _per_event(r: LayerStats, dense: float, image_macs: float) -> Count:
    """Binary inputs: an AC per synaptic event; graded inputs: a MAC per event; the analog image: ``image_macs``."""
    if r.analog_input:
        return Count(dense, macs=image_macs)
    if not r.binary_input:
        return Count(dense, macs=r.event_synops)
    return Count(dense, acs=r.sops)


# -- ours: the event-driven counts (the per-op profile's "corrected" energy) ----------------------------------------
def _ours_synapse(r: LayerStats, node: Node, run: _Run) -> Count:
    return _per_event(r, r.dense_macs, r.macs)


def _ours_additions(r: LayerStats, node: Node, run: _Run) -> Count:
    return Count(r.dense_macs, acs=r.adds)


def _ours_head(r: LayerStats, node: Node, run: _Run) -> Count:
    return Count(r.dense_macs, macs=r.macs, acs=r.adds)


def _unseen(r: LayerStats, node: Node, run: _Run) -> None:
    """Invisible to this convention (no entry in per_layer)."""


# the attention on neurocores: its count and sum synapses are the popcounts and gated additions (ANDs and
# products, neuron updates, free as the embedded ANDs are)
OURS = OpTable("our counting convention", {Head: _ours_head, StreamSum: _ours_additions,
                                           AttentionCount: _ours_additions, AttentionSum: _ours_additions},
               by_traits=lambda cls: _ours_synapse if cls.synapse else _ours_additions if cls.embedded else _unseen)


# -- the Spikformer paper: SOP = input rate x T x FLOPs; the first conv and the head as MACs ------------------------
def _paper_synapse(r: LayerStats, node: Node, run: _Run) -> Count:
    return Count(r.dense_macs, macs=r.macs, acs=r.sops_paper)


PAPER = OpTable("the Spikformer paper's convention", {Head: _paper_synapse},
                by_traits=lambda cls: _paper_synapse if cls.synapse else _unseen)


# -- NeuroBench v2.3: Linear / Conv modules only; inputs in {-1, 0, 1} are ACs, others MACs; no bias ---------------
def _neurobench_synapse(r: LayerStats, node: Node, run: _Run) -> Count:
    return _per_event(r, r.in_bounds_macs, r.event_fanout)  # every non-zero pixel x its in-bounds fan-out


def _neurobench_head(r: LayerStats, node: Node, run: _Run) -> Count:
    classes = node.op.weight.shape[0]
    dense = run.head_passes(node) * node.op.weight.size
    if run.spikes_in(node):
        return Count(dense, acs=r.in_events * classes)
    return Count(dense, macs=r.pooled_nonzero * classes)


NEUROBENCH = OpTable("NeuroBench's synaptic operations", {Head: _neurobench_head},
                     by_traits=lambda cls: _neurobench_synapse if cls.synapse else _unseen)


# -- syops-counter 0.0.5: every hooked module; dense ops x input rate where the input is spikes, else MACs ---------
@dataclass(frozen=True)
class SyopsModule:
    """One module as a syops hook sees it: ``[dense, ACs, MACs, rate %]`` per sample."""

    name: str
    dense: float
    acs: float
    macs: float
    rate_pct: float


def _syops_rated(name: str, dense: float, spike: bool, rate: float) -> SyopsModule:
    return SyopsModule(name, dense, dense * rate if spike else 0.0, 0.0 if spike else dense,
                       100.0 * rate if spike else 100.0)


def _bias_ops(node: Node, leading: int, steps: int, linear_bias: str) -> float:
    """The hooks' bias additions, per sample at batch 1: a conv adds one per output element; nn.Linear one per output
    feature and call (syops 0.0.5, ``linear_bias="call"``) or per output feature and leading index of its input
    (Spikingformer's fork, ``"leading"``: ``leading`` is T for the [T*B, N, C] tokens and the per-step head, 1 for
    a pooled [B, C] head)."""
    if not _module_bias(node):
        return 0.0
    if node.meta.get("module", "Linear" if isinstance(node.op, Head) else None) != "Linear":
        return _out_elements(node, steps)
    return float(node.shape[0] * (leading if linear_bias == "leading" else 1))


def _syops_synapse(r: LayerStats, node: Node, run: _Run, nspks_max: float, linear_bias: str) -> list[SyopsModule]:
    dense = r.dense_macs + _bias_ops(node, run.steps, run.steps, linear_bias)
    out = [_syops_rated(node.name, dense, run.spikes_in(node, nspks_max), _mean_input(r))]
    if "batchnorm" in node.meta:  # affine BatchNorm on a real-valued input: 2 MACs per element
        out.append(_syops_rated(node.meta["batchnorm"], 2 * _out_elements(node, run.steps), False, 1.0))
    return out


def _syops_neuron(r: LayerStats, node: Node, run: _Run, nspks_max: float, linear_bias: str) -> list[SyopsModule]:
    # the LIF hook counts one AC per input element whatever it fires; its rate is the output's
    return [SyopsModule(node.name, r.neuron_updates, r.neuron_updates, 0.0,
                        100.0 * (r.firing_rate or 0.0))]


def _syops_pool(r: LayerStats, node: Node, run: _Run, nspks_max: float, linear_bias: str) -> list[SyopsModule]:
    elements = _in_elements(run, node)
    spike = run.spikes_in(node, nspks_max)
    return [_syops_rated(node.name, elements, spike, r.in_events / elements if spike else 1.0)]


def _syops_head(r: LayerStats, node: Node, run: _Run, nspks_max: float, linear_bias: str) -> list[SyopsModule]:
    passes, channels = run.head_passes(node), node.op.weight.shape[1]
    dense = passes * node.op.weight.size + _bias_ops(node, passes, run.steps, linear_bias)
    spike = passes > 1  # per step on spikes; a mean over tokens and steps is real-valued whatever nspks_max
    return [_syops_rated(node.name, dense, spike, r.in_events / (channels * passes) if spike else 1.0)]


def _syops_functional(r: LayerStats, node: Node, run: _Run, nspks_max: float, linear_bias: str) -> list[SyopsModule]:
    """A tensor operation, not a module (the attention's products, residual sums, means): no hook sees it."""
    return []


SYOPS = OpTable("syops-counter's module hooks", {
    LIF: _syops_neuron, LoihiLIF: _syops_neuron, OrPool: _syops_pool, MaxPool: _syops_pool, Head: _syops_head,
    Add: _syops_functional, StreamSum: _syops_functional, TokenMean: _syops_functional},
    by_traits=lambda cls: _syops_synapse if cls.synapse else _syops_functional)


def syops_modules(rows: list[LayerStats], graph: Graph, nspks_max: float = 1.0,
                  linear_bias: str = "call") -> list[SyopsModule]:
    """The modules of the original code as syops' hooks count them (per sample, at batch 1), in graph order."""
    run = _run(rows, graph)
    return [m for r in rows for m in SYOPS(graph.nodes[r.name])(r, graph.nodes[r.name], run, nspks_max, linear_bias)]


def ssa_operands(graph: Graph, node: Node) -> tuple[str, str, str]:
    """q, k, v of a Spiking Self-Attention: its inputs, or (on neurocores, ``node`` its ``AttentionSum``) the
    inputs of its AND and product stages."""
    if isinstance(node.op, SpikingAttention):
        return node.inputs
    product = graph.nodes[node.inputs[0]]
    first, second = graph.nodes[graph.nodes[product.inputs[0]].inputs[0]].inputs
    return (product.inputs[1], first, second) if node.op.order == "q_kv" else (first, second, product.inputs[1])


def _spikingformer_attention(run: _Run, node: Node) -> Count:
    """T x heads x N x d_h^2 x (fr_q + min(fr_k, fr_v)) ACs (Spikingformer's ``get_energy_cost``), rates of the
    q, k, v LIFs."""
    q, k, v = (run.neuron_rate(i) for i in ssa_operands(run.graph, node))
    base = run.steps * node.op.num_heads * node.shape[1] * node.op.head_dim ** 2
    return Count(2 * base, acs=base * (q + min(k, v)))


def _counted_by_name(name: str) -> bool:
    return "conv" in name or "head" in name


# -- the conventions ----------------------------------------------------------------------------------------------
def _run(rows: list[LayerStats], graph: Graph) -> _Run:
    return _Run(graph, {r.name: r for r in rows}, _bounds(graph))


def _by_table(table: OpTable, rows: list[LayerStats], graph: Graph) -> dict[str, Count]:
    run = _run(rows, graph)
    counts = {r.name: table(graph.nodes[r.name])(r, graph.nodes[r.name], run) for r in rows}
    return {k: c for k, c in counts.items() if c is not None}


def ours(rows, graph) -> ConventionCount:
    return ConventionCount(
        "ours", "ours: exact, event by event",
        "binary inputs: one AC per synaptic event; analog or graded inputs: one MAC per synaptic event; attention, "
        "residual relays, token means, graded max-pools: one AC per addition or comparison; head: its MACs",
        "spikformer_deploy.backends.sim.counting (the per-op profile's 'corrected' energy)",
        Treatment("ACs per popcount and gated addition (ANDs free)", "MAC per event", "OR pools free; graded: AC "
                  "per comparison", "excluded", "not counted"), _by_table(OURS, rows, graph))


def spikformer_paper(rows, graph) -> ConventionCount:
    return ConventionCount(
        "spikformer_paper", "Spikformer paper",
        "SOP = input firing rate x T x FLOPs per layer (a value n counts n); E = 4.6 pJ x MACs(first conv, head) + "
        "0.9 pJ x SOPs", "Zhou et al., Spikformer, ICLR 2023, section 4.3 and appendix (ZK-Zhou/spikformer)",
        Treatment("not counted", "ACs by value (rate x FLOPs)", "not counted", "excluded", "not counted"),
        _by_table(PAPER, rows, graph))


def spikingformer_counter(rows, graph, nspks_max: float) -> ConventionCount:
    """Spikingformer's patched syops: modules named conv or head, each all MACs (its rate is 100 %: not spikes) or
    all ACs, plus the attention formula."""
    run = _run(rows, graph)
    per_layer: dict[str, Count] = {}
    for m in syops_modules(rows, graph, nspks_max, linear_bias="leading"):
        if _counted_by_name(m.name):
            full = abs(m.rate_pct - 100) < 1e-4
            per_layer[m.name] = Count(m.dense, macs=m.macs if full else 0.0, acs=0.0 if full else m.acs)
    for node in graph.of_type(SpikingAttention, AttentionSum):  # the attention wherever it is placed
        per_layer[node.name] = _spikingformer_attention(run, node)
    label = "integer inputs as MACs" if nspks_max <= 1 else f"inputs in 0..{nspks_max:g} as ACs by value"
    unnamed = [n.name for n in graph.having("synapse") if not _counted_by_name(n.name)]
    notes = [f"{len(unnamed)} synapse module(s) not named 'conv' are not counted: {', '.join(unnamed)}"
             ] if unnamed else []
    if graph.of_type(AndTokenSum, ChannelMask):
        notes.append("its attention formula is for SSA: this model's SDSA is not counted")
    return ConventionCount(
        f"spikingformer_nspks{nspks_max:g}", f"Spikingformer counter, Nspks_max = {nspks_max:g}",
        f"modules named 'conv' or 'head' only; spikes (values 0..{nspks_max:g}): dense ops x mean input as ACs, "
        "else dense ops as MACs (bias included); SSA: T*H*N*d_h^2*(fr_q + min(fr_k, fr_v)) ACs",
        "zhouchenlin2096/Spikingformer energy_consumption_calculation/flops_counter.py @25d438d, ops.py @81731b2 "
        "(its energy logs: @4378623)",
        Treatment("formula (SSA only)", label, "not counted", "included", "not counted (LIFs named *head* are)"),
        per_layer, notes=notes)


def neurobench(rows, graph) -> ConventionCount:
    return ConventionCount(
        "neurobench", "NeuroBench SynapticOperations",
        "Linear/Conv modules only; inputs all in {-1, 0, 1}: ACs, else MACs; each non-zero input x non-zero weight "
        "(no padding taps, no bias); Dense = every input x weight; per sample",
        "neurobench 2.3.0 neurobench/metrics/workload/synaptic_operations.py, metrics/utils/layers/macs.py",
        Treatment("not counted", "MAC per event", "not counted", "excluded", "not counted"),
        _by_table(NEUROBENCH, rows, graph), notes=["counts only (Dense, Effective_MACs, Effective_ACs); energy priced "
                                                   "here at the profile's constants"])


def syops(rows, graph) -> ConventionCount:
    modules = syops_modules(rows, graph)
    per_layer = {m.name: Count(m.dense, macs=m.macs, acs=m.acs) for m in modules}
    return ConventionCount(
        "syops", "syops-counter",
        "every hooked module: spikes (values 0, 1): dense ops x input rate as ACs, else dense ops as MACs; each LIF "
        "an AC per input element; affine BatchNorm 2 MACs per element; bias included (nn.Linear: once per call)",
        "syops 0.0.5 (iCGY96/syops-counter) syops/ops.py",
        Treatment("not counted (functional matmul)", "MACs (dense)", "ACs x rate (binary input)", "included",
                  "AC per update"), per_layer,
        notes=["counts only; energy priced here at the profile's constants",
               "per sample over the T steps, at batch 1: syops adds an nn.Linear's bias once per call, so its "
               "per-sample count falls with the batch size"])


def conventions(rows: list[LayerStats], graph: Graph) -> list[ConventionCount]:
    """Every convention over one run's counts (``rows`` from ``layer_rows``), ours first."""
    bounds = _bounds(graph)
    stream_bound = max((bounds[n.name] for n in graph.of_type(Add)), default=1.0)
    out = [ours(rows, graph), spikformer_paper(rows, graph), spikingformer_counter(rows, graph, 1.0)]
    if stream_bound > 1:
        # an integer residual stream: the switch's other setting. The authors' comment says 2 x depth + 1 and their
        # code sets 30 (Spikingformer paper, appendix G, count 1); what matters is that it holds every stream
        # value, which the stream's bound (2 x depth + 2 for Spikformer) does
        out.append(spikingformer_counter(rows, graph, stream_bound))
    return out + [neurobench(rows, graph), syops(rows, graph)]


def breakdown(convention: ConventionCount, graph: Graph) -> dict[str, float]:
    """Ops (MACs + ACs) the convention counts per category of layer: what differs between conventions, visibly."""
    def category(name: str) -> str:
        node = graph.nodes.get(name)
        op = node.op if node is not None else None
        if op is None:
            return "batchnorm"
        if isinstance(op, ATTENTION_OPS):
            return "attention"
        if isinstance(op, (OrPool, MaxPool, TokenMean)):
            return "pooling"
        if isinstance(op, (StreamSum, Add)):
            return "residual"
        if op.spiking:
            return "neurons"
        if isinstance(op, Head):
            return "head"
        return "synapses"
    out = dict.fromkeys(("synapses", "attention", "pooling", "residual", "neurons", "batchnorm", "head"), 0.0)
    for name, c in convention.per_layer.items():
        out[category(name)] += c.macs + c.acs
    return out


def conventions_report(rows: list[LayerStats], graph: Graph, profile: Profile, kind: str = EVENT_DRIVEN) -> dict:
    """Every convention side by side, JSON-ready: totals, energy at ``profile``'s E_MAC / E_AC, what each does with
    attention, integer inputs, pooling, bias and neurons, and its ops per kind of layer."""
    return {"profile": profile.name, "kind": kind,
            "conventions": [{**c.to_dict(profile, kind), "by_layer_kind": breakdown(c, graph)}
                            for c in conventions(rows, graph)]}
