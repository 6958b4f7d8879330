"""Spiking self-attention on Loihi 2's neurocores: ``SpikingAttention`` rewritten into neurons and fixed synapses.

On binary q, k, v every product is an AND and every sum a synaptic accumulation, so the attention needs no embedded
core. Per head, in the order ``rewrite_ssa`` chose (the cheaper one; same integers):

- q_kv, Q (Kᵀ V): AND neurons k_i AND v_j per token (H d² N), graded count neurons summing them over the tokens
  (H d²), product neurons count_ij x q_i per token (H d² N), and synapses summing the products over i into attn_lif;
- qk_v, (Q Kᵀ) V: AND neurons q_(i,n) AND k_(i,m) (H N² d), count neurons summing over i (H N²), product neurons
  count_nm x v_(j,m) (H N² d), and synapses summing over m into attn_lif.

An AND neuron is lava's LIF with both weights 1, no memory (du = dv = 4095) and vth = 1; a count neuron is lava's
GradedVec (vth = 0); a product neuron is lava's ProdNeuron (vth = 0), whose second input is the third operand
delayed by two steps (the one delay rule balances it, as it balances residual sums). attn_lif reads the same
integers ``M << out_shift`` as from the embedded attention, so its spikes are unchanged; the lowering adds four
synapse hops to the pipeline.
"""
from __future__ import annotations

from ..errors import GraphError
from ..ir import Graph, PassRecord
from ..errors import ConfigError
from ..ir.ops import ATTENTION_STAGES, AttentionAnd, AttentionCount, AttentionProduct, AttentionSum, SpikingAttention

PLACEMENTS = ("embedded", "neurocores")
ATTENTION_CHOICES = ("auto", *PLACEMENTS)


def check_attention_choice(attention: str) -> None:
    if attention not in ATTENTION_CHOICES:
        raise ConfigError(f"attention placement {attention!r}: choose from {', '.join(ATTENTION_CHOICES)}")


def attention_placement(graph: Graph) -> str | None:
    """Where an integer graph's attention runs: embedded, neurocores, or None (no Spiking Self-Attention)."""
    return "neurocores" if graph.of_type(*ATTENTION_STAGES) else "embedded" if graph.of_type(SpikingAttention) \
        else None


def lower_attention(graph: Graph) -> Graph:
    if not graph.integer:
        raise GraphError("lower_attention runs on the integer graph (after quantize)")
    g = graph.copy()
    record = PassRecord("lower_attention")
    old, nodes = g.nodes, {}
    g.nodes = nodes  # rebuilt in order: _node reads the shapes of the nodes built so far
    renamed: dict[str, str] = {}
    for name, node in old.items():
        node.inputs = tuple(renamed.get(i, i) for i in node.inputs)
        if not isinstance(node.op, SpikingAttention):
            nodes[name] = node
            continue
        op, (q, k, v) = node.op, node.inputs
        shape = dict(num_heads=op.num_heads, head_dim=op.head_dim, order=op.order)
        first, second, third = (k, v, q) if op.order == "q_kv" else (q, k, v)
        stages = [(f"{name}.and", AttentionAnd(**shape), (first, second)),
                  (f"{name}.count", AttentionCount(**shape), (f"{name}.and",)),
                  (f"{name}.product", AttentionProduct(**shape), (f"{name}.count", third)),
                  (f"{name}.sum", AttentionSum(**shape, out_shift=op.out_shift), (f"{name}.product",))]
        for stage, stage_op, inputs in stages:
            nodes[stage] = g._node(stage, stage_op, inputs, {"lowered_from": name})
        renamed[name] = f"{name}.sum"
        record.nodes[name] = {"order": op.order, "stages": [s[0] for s in stages],
                              "neurons": sum(nodes[s].shape[0] * nodes[s].shape[1] for s, *_ in stages[:3]),
                              "added_hops": sum(s[1].delay for s in stages)}
    g.records.append(record)
    return g
