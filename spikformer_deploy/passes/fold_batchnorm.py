"""Fold every eval-mode BatchNorm into the synapse before it: ``W' = W * scale``, ``b' = b * scale + shift``."""
from __future__ import annotations

import dataclasses

import numpy as np

from ..ir import Graph, GraphError, PassRecord
from ..ir.ops import BatchNorm


def fold_batchnorm(graph: Graph) -> Graph:
    g = graph.copy()
    record = PassRecord("fold_batchnorm")
    for bn_node in g.of_type(BatchNorm):
        (src,) = bn_node.inputs
        syn = g.nodes[src]
        if not syn.op.synapse or len(g.consumers(src)) != 1:
            raise GraphError(f"cannot fold {bn_node.name}: its input {src} is not a synapse read only by it")
        scale, shift = bn_node.op.scale, bn_node.op.shift
        w = syn.op.weight * scale.reshape(-1, *([1] * (syn.op.weight.ndim - 1)))
        b = (np.zeros_like(shift) if syn.op.bias is None else syn.op.bias) * scale + shift
        syn.op = dataclasses.replace(syn.op, weight=w, bias=b)
        syn.meta["batchnorm"] = bn_node.name
        record.nodes[src] = {"batchnorm": bn_node.name, "min_scale": float(np.abs(scale).min()),
                             "max_scale": float(np.abs(scale).max()), "negative_scales": int((scale < 0).sum())}
        g.remove_passthrough(bn_node.name)
    g.records.append(record)
    return g
