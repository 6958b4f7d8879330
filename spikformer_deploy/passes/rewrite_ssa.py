"""Spiking self-attention as AND / popcount / additions, with its scale moved into attn_lif's threshold.

On binary q, k, v the product ``Q Kᵀ V`` is an integer whatever the order, so the order is free: per head (Q Kᵀ) V
costs ~N²d and Q (Kᵀ V) ~N d²; the cheaper one is chosen. The scale (2⁻³ or 2⁻²) divides the threshold of the LIF
that reads the attention: ``V >= th`` on ``scale * M`` is ``V' >= th / scale`` on ``M`` — exact in floats, since the
scale is a power of two.
"""
from __future__ import annotations

import dataclasses

from ..ir import Graph, GraphError, PassRecord
from ..ir.ops import LIF, SpikingAttention


def cheaper_order(num_tokens: int, head_dim: int) -> str:
    return "q_kv" if head_dim < num_tokens else "qk_v"


def rewrite_ssa(graph: Graph) -> Graph:
    g = graph.copy()
    record = PassRecord("rewrite_ssa")
    for node in g.of_type(SpikingAttention):
        op = node.op
        if op.rewritten:
            continue
        consumers = g.consumers(node.name)
        if len(consumers) != 1 or not isinstance(consumers[0].op, LIF):
            raise GraphError(f"{node.name} must feed exactly one LIF (attn_lif) to take its scale")
        lif = consumers[0]
        n = node.shape[1]
        order = cheaper_order(n, op.head_dim)
        node.op = dataclasses.replace(op, scale=1.0, order=order, rewritten=True)
        lif.op = dataclasses.replace(lif.op, v_threshold=lif.op.v_threshold / op.scale)
        record.nodes[node.name] = {
            "original_order": op.order, "order": order, "scale": op.scale, "threshold_node": lif.name,
            "dense_ops_per_head": {"qk_v": 2 * n * n * op.head_dim, "q_kv": 2 * n * op.head_dim**2}}
    g.records.append(record)
    return g
