"""Every simulator counter against a brute-force count (explicit loops over events) on small random models."""
import itertools

import numpy as np
import pytest
import torch

from spikformer_deploy.backends.sim import Simulator
from spikformer_deploy.ir.ops import LIF, Add, Conv2d, Dense, Head, Input, LoihiLIF, OrPool, SpikingAttention
from spikformer_deploy.model import Spikformer, SpikformerConfig
from spikformer_deploy.pipeline import float_graph, integer_graph

CONFIGS = {
    # head_dim 8 >= 4 tokens: (Q K^T) V
    "qk_v": SpikformerConfig("cifar10", dim=16, depth=1, num_heads=2, mlp_ratio=2, num_classes=3, in_channels=1,
                             img_size=8, T=2),
    # head_dim 4 < 16 tokens: Q (K^T V)
    "q_kv": SpikformerConfig("cifar10", dim=16, depth=1, num_heads=4, mlp_ratio=2, num_classes=3, in_channels=2,
                             img_size=16, T=3),
}


def random_model(config, seed=0):
    torch.manual_seed(seed)
    model = Spikformer(config)
    with torch.no_grad():  # BN statistics that make every layer spike sometimes
        for m in model.modules():
            if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                m.weight.uniform_(1.5, 4.0)
                m.bias.normal_(1.2, 0.8)
                m.running_var.uniform_(0.5, 2.0)
    return model.eval()


def conv_fanout(y, x, h, w, k, stride, pad, h_out, w_out):
    """Output positions whose window covers input (y, x), by enumeration (``stride``, ``pad``: ints or (h, w))."""
    (sy, sx), (py, px) = np.broadcast_to(stride, 2), np.broadcast_to(pad, 2)
    return sum(1 for oy in range(h_out) for ox in range(w_out)
               if oy * sy - py <= y < oy * sy - py + k and ox * sx - px <= x < ox * sx - px + k)


def brute_force(graph, node, ins, out, T, B):
    """Expected counters (per step, summed over samples) of one node from its recorded inputs and output."""
    op = node.op
    exp = {}
    if isinstance(op, (Conv2d, Dense)):
        x = ins[0]
        exp["in_events"] = [np.count_nonzero(x[t]) for t in range(T)]
        if isinstance(op, Conv2d):
            c_out, c_in, k, _ = op.weight.shape
            _, h_out, w_out = node.shape
            _, h, w = graph.nodes[node.inputs[0]].shape
            macs = c_out * h_out * w_out * c_in * k * k
            sops = [sum(x[t][idx] * c_out * conv_fanout(idx[2], idx[3], h, w, k, op.stride, op.padding, h_out, w_out)
                        for idx in zip(*np.nonzero(x[t]))) for t in range(T)]
            elems = c_in * h * w
            fanout = np.array([[c_out * conv_fanout(y, xx, h, w, k, op.stride, op.padding, h_out, w_out)
                                for xx in range(w)] for y in range(h)])
            exp["in_bounds_macs"] = [fanout.sum() * c_in * B] * T
            nonzero_fanout = [sum(fanout[idx[2], idx[3]] for idx in zip(*np.nonzero(x[t]))) for t in range(T)]
        else:
            c_out, c_in = op.weight.shape
            n = node.shape[1]
            macs = c_out * c_in * n
            sops = [sum(x[t][idx] * c_out for idx in zip(*np.nonzero(x[t]))) for t in range(T)]
            elems = c_in * n
            exp["in_bounds_macs"] = [macs * B] * T
            nonzero_fanout = [np.count_nonzero(x[t]) * c_out for t in range(T)]
        exp["dense_macs"] = [macs * B] * T
        if isinstance(graph.nodes[node.inputs[0]].op, Input):
            exp["macs"] = [macs * B] * T
            exp["event_fanout"] = nonzero_fanout
        else:
            exp["in_value"] = [x[t].sum() for t in range(T)]
            exp["sops"] = sops
            exp["sops_paper"] = [x[t].sum() / elems * macs for t in range(T)]
    elif isinstance(op, (LIF, LoihiLIF)):
        exp["neuron_updates"] = [np.prod(node.shape) * B] * T
        exp["spikes"] = [out[t].sum() for t in range(T)]
    elif isinstance(op, OrPool):
        c, h, w = graph.nodes[node.inputs[0]].shape
        _, h_out, w_out = node.shape
        x = ins[0]
        exp["in_events"] = [np.count_nonzero(x[t]) for t in range(T)]
        exp["sops"] = [sum(conv_fanout(i[2], i[3], h, w, op.kernel, op.stride, op.padding, h_out, w_out)
                           for i in zip(*np.nonzero(x[t]))) for t in range(T)]
        exp["neuron_updates"] = [np.prod(node.shape) * B] * T
        exp["spikes"] = [out[t].sum() for t in range(T)]
    elif isinstance(op, Add):
        exp["adds"] = [sum(np.count_nonzero(x[t]) for x in ins) for t in range(T)]
    elif isinstance(op, SpikingAttention):
        H, d = op.num_heads, op.head_dim
        n = node.shape[1]
        q, k, v = (x.reshape(T, B, n, H, d) for x in ins)
        ands, adds = [], []
        for t in range(T):
            a = s = 0
            for b, hh in itertools.product(range(B), range(H)):
                Q, K, V = q[t, b, :, hh], k[t, b, :, hh], v[t, b, :, hh]
                if op.order == "qk_v":
                    S = [[sum(Q[i, c] * K[j, c] for c in range(d)) for j in range(n)] for i in range(n)]
                    a += n * n * d
                    s += sum(map(sum, S)) + sum(1 for i in range(n) for j in range(n) for c in range(d)
                                                if S[i][j] > 0 and V[j, c])
                else:
                    R = [[sum(K[j, c] * V[j, e] for j in range(n)) for e in range(d)] for c in range(d)]
                    a += n * d * d
                    s += sum(map(sum, R)) + sum(1 for i in range(n) for c in range(d) for e in range(d)
                                                if Q[i, c] and R[c][e] > 0)
            ands.append(a)
            adds.append(s)
        exp["ands"], exp["adds"] = ands, adds
        exp["in_events"] = [sum(np.count_nonzero(x[t]) for x in ins) for t in range(T)]
        per_head = 2 * n * n * d if op.order == "qk_v" else 2 * n * d * d
        exp["dense_macs"] = [per_head * H * B] * T
    elif isinstance(op, Head):
        x = ins[0]
        exp["in_events"] = exp["adds"] = [np.count_nonzero(x[t]) for t in range(T)]
        exp["macs"] = exp["dense_macs"] = [0] * (T - 1) + [op.weight.size * B]
        exp["pooled_nonzero"] = [0] * (T - 1) + [np.count_nonzero(x.sum(axis=(0, 2)))]  # tokens [T, B, N, C]
    return exp


@pytest.mark.parametrize("quantized", [False, True])
@pytest.mark.parametrize("name", list(CONFIGS))
def test_counters_equal_brute_force(name, quantized):
    config = CONFIGS[name]
    model = random_model(config)
    x = torch.rand(3, config.in_channels, config.img_size, config.img_size, generator=torch.Generator().manual_seed(1))
    graph = integer_graph(model, x) if quantized else float_graph(model)
    assert graph.nodes["block.0.attn.ssa"].op.order == name
    result = Simulator(graph, record=set(graph.nodes)).run(x)
    recorded = {k: v.double().numpy() for k, v in result.outputs.items()}
    counters = result.counters
    checked = 0
    for node in graph.nodes.values():
        ins = [recorded[i] for i in node.inputs]
        expected = brute_force(graph, node, ins, recorded.get(node.name), config.T, len(x))
        assert set(expected) == set(counters.counts.get(node.name, {})), node.name
        for counter, values in expected.items():
            np.testing.assert_allclose(counters.counts[node.name][counter], np.asarray(values, dtype=float),
                                       rtol=1e-9, err_msg=f"{node.name}.{counter}")
            checked += 1
    silent = [n.name for n in graph.of_type(LIF, LoihiLIF) if counters.counts[n.name]["spikes"].sum() == 0]
    assert not silent, f"every neuron layer should spike in this test: {silent}"
    assert checked > 40
