"""Fold chains of synapses with nothing between them (no neuron, no sum) into one convolution, or keep them apart
on graded relay neurons: Meta-SpikeFormer's RepConv (1x1 with BN-valued border -> 3x3 depthwise -> 1x1) and SepConv
tail (7x7 depthwise -> 1x1), after ``fold_batchnorm`` has put every BatchNorm into its synapse.

Folding is exact linear algebra (float64) in two cases, which cover every chain a frontend builds:
- the second synapse is a 1x1 conv (stride 1, no padding): ``W = W2 . W1`` per tap, ``b = W2 b1 + b2``; the first's
  stride and padding stay;
- the first is a 1x1 conv with stride 1: its padded output is ``W1 pad(x) + b1`` everywhere (a zero-padded border
  becomes ``b1``, the BN-valued padding of RepConv), so a second synapse without padding reads ``pad(x)`` through
  ``W[o, i] = sum_c W2[o, c] W1[c, i]`` with bias ``b2 + sum_c,taps W2[o, c] b1[c]``; the first's padding stays.
A depthwise kernel enters as the dense kernel it is (zero off the diagonal). The folded synapse keeps the chain's
last name (its BatchNorms folded into it) and reads the first's input; ``meta["chain"]`` lists what it replaced.

Kept apart (``keep_apart`` names a chain by its last synapse), each junction gets a one-input ``StreamSum``: graded
relay neurons that send the real value on, as the real-valued stream's relays do. The choice per chain is the
mapper's (``analysis.feasibility.chain_costs``, made by the pipeline); the record states it for each chain.
"""
from __future__ import annotations

import numpy as np

from ..ir import Graph, GraphError, PassRecord
from ..ir.ops import Conv2d, StreamSum


def linear_chains(graph: Graph) -> list[list[str]]:
    """Maximal runs of two or more synapses, each read by the next alone."""
    def next_synapse(name: str) -> str | None:
        readers = graph.consumers(name)
        return readers[0].name if len(readers) == 1 and readers[0].op.synapse else None

    chains, inside = [], set()
    for node in graph.having("synapse"):
        if node.name in inside:
            continue
        chain = [node.name]
        while (following := next_synapse(chain[-1])) is not None:
            chain.append(following)
        inside.update(chain)
        if len(chain) > 1:
            chains.append(chain)
    return chains


def _pointwise(op: Conv2d) -> bool:
    return op.weight.shape[2:] == (1, 1) and op.stride == (1, 1)


def compose(first: Conv2d, second: Conv2d, name: str) -> Conv2d:
    """The one conv equal to ``second(first(x))`` (see the module docstring for when one exists)."""
    for op in (first, second):
        if not isinstance(op, Conv2d):
            raise GraphError(f"{name}: a {op.type} in a chain of synapses has no fold (convolutions only)")
    w1, w2 = (np.asarray(op.dense_weight(), dtype=np.float64) for op in (first, second))
    b1 = np.zeros(w1.shape[0]) if first.bias is None else np.asarray(first.bias, dtype=np.float64)
    b2 = np.zeros(w2.shape[0]) if second.bias is None else np.asarray(second.bias, dtype=np.float64)
    if _pointwise(second) and second.padding == (0, 0):
        weight = np.einsum("oc,cihw->oihw", w2[:, :, 0, 0], w1)
        return Conv2d(weight=weight, bias=w2[:, :, 0, 0] @ b1 + b2, stride=first.stride, padding=first.padding)
    if _pointwise(first) and second.padding == (0, 0):
        weight = np.einsum("ochw,ci->oihw", w2, w1[:, :, 0, 0])
        return Conv2d(weight=weight, bias=w2.sum((2, 3)) @ b1 + b2, stride=second.stride, padding=first.padding)
    raise GraphError(f"{name}: a {first.type} {w1.shape[2:]} then a {second.type} {w2.shape[2:]} with padding "
                     f"{second.padding} has no exact fold")


def fold_linear_chains(graph: Graph, keep_apart: frozenset[str] | set[str] = frozenset(),
                       decisions: dict[str, dict] | None = None) -> Graph:
    """Fold every chain not named (by its last synapse) in ``keep_apart``; relay the named ones. ``decisions``: the
    mapper's costs per chain, copied into the record."""
    g = graph.copy()
    record = PassRecord("fold_linear_chains", settings={"kept_apart": sorted(keep_apart)})
    chains = linear_chains(g)
    unknown = set(keep_apart) - {c[-1] for c in chains}
    if unknown:
        raise GraphError(f"no chain of synapses ends at {', '.join(sorted(unknown))}")
    for chain in chains:
        last = chain[-1]
        record.nodes[last] = {"chain": chain, **(decisions or {}).get(last, {}),
                              "form": "apart" if last in keep_apart else "folded",
                              "weights_apart": int(sum(g.nodes[n].op.weight.size for n in chain))}
        if last in keep_apart:
            for name in chain[:-1]:
                g.insert_after(name, f"{name}.relay", StreamSum())
        else:
            folded = g.nodes[chain[0]].op
            for name in chain[1:]:
                folded = compose(folded, g.nodes[name].op, name)
            record.nodes[last]["weights_folded"] = int(folded.weight.size)
            node = g.nodes[last]
            node.op, node.inputs = folded, g.nodes[chain[0]].inputs
            node.meta.update(chain=chain, module="Conv2d", module_bias=folded.bias is not None)
            for name in chain[:-1]:
                del g.nodes[name]
    g.records.append(record)
    return g
