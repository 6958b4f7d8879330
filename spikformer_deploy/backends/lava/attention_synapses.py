"""The fixed synapses of the attention on neurocores, one by one: for each stage (``ir.ops.AttentionStage``) and each
of its inputs, the (output channel, output token) <- (input channel, input token) pairs, all of weight 1.

Written from the stage definitions alone (not from the simulator's tensor kernels), so Lava's sparse matrices, built
from these lists, check the kernels and the counters independently.
"""
from __future__ import annotations

import numpy as np

from ...ir.ops import AttentionAnd, AttentionCount, AttentionProduct, AttentionStage, AttentionSum

Synapses = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # out channel, out token, in channel, in token


def _grid(*sizes: int) -> list[np.ndarray]:
    return [a.reshape(-1) for a in np.indices(sizes)]


def stage_synapses(op: AttentionStage, tokens: int) -> list[Synapses]:
    """One synapse list per input of the stage, in the order of its inputs."""
    H, d, N = op.num_heads, op.head_dim, tokens
    if op.order == "q_kv":
        if isinstance(op, AttentionAnd):  # (h, i, j), m <- k (h, i), m and v (h, j), m
            h, i, j, m = _grid(H, d, d, N)
            out = (h * d + i) * d + j
            return [(out, m, h * d + i, m), (out, m, h * d + j, m)]
        if isinstance(op, AttentionCount):  # (h, i, j), 0 <- (h, i, j), m
            p, m = _grid(H * d * d, N)
            return [(p, 0 * m, p, m)]
        if isinstance(op, AttentionProduct):  # (h, i, j), n <- counts (h, i, j), 0 and q (h, i), n
            h, i, j, n = _grid(H, d, d, N)
            out = (h * d + i) * d + j
            return [(out, n, out, 0 * n), (out, n, h * d + i, n)]
        if isinstance(op, AttentionSum):  # (h, j), n <- (h, i, j), n
            h, i, j, n = _grid(H, d, d, N)
            return [(h * d + j, n, (h * d + i) * d + j, n)]
    else:
        if isinstance(op, AttentionAnd):  # (h, n, i), m <- q (h, i), n and k (h, i), m
            h, n, i, m = _grid(H, N, d, N)
            out = (h * N + n) * d + i
            return [(out, m, h * d + i, n), (out, m, h * d + i, m)]
        if isinstance(op, AttentionCount):  # (h, n), m <- (h, n, i), m
            h, n, i, m = _grid(H, N, d, N)
            return [(h * N + n, m, (h * N + n) * d + i, m)]
        if isinstance(op, AttentionProduct):  # (h, n, j), m <- counts (h, n), m and v (h, j), m
            h, n, j, m = _grid(H, N, d, N)
            out = (h * N + n) * d + j
            return [(out, m, h * N + n, m), (out, m, h * d + j, m)]
        if isinstance(op, AttentionSum):  # (h, j), n <- (h, n, j), m
            h, n, j, m = _grid(H, N, d, N)
            return [(h * d + j, n, (h * N + n) * d + j, m)]
    raise ValueError(f"no synapses for {op.type} in order {op.order}")
