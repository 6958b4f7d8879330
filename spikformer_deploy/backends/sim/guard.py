"""The float reference in float32, guarded: the float64 reference's spikes at float32 speed.

The float reference decides spikes on ``v >= threshold``. Run in float32, a decision can differ from float64's only
where v lies within float32's rounding of the threshold. This module bounds that rounding per neuron and step and
repairs the few decisions it cannot vouch for:

- ``guard_plan``: the graphs it applies to. Every synapse reads an exact input (spikes, sums of spikes, the image)
  and feeds one LIF; every other node's float32 value equals its float64 value (spikes, OR pools, sums of spikes,
  the rewritten attention's integer products, reshapes). Then the only rounding is in the synapses' drives, and a
  spike decision never carries an error downstream: identical decisions make identical inputs for the next layer.
  Graphs with real-valued residual streams (a membrane shortcut) or an unfolded BatchNorm run in float64.
- the drive: a synapse reading integers (spikes, sums of spikes: at most ``bound``) runs on split weights
  (``split_weights``), w = w_hi + w_lo with w_hi on a grid of 2**(e_c - b) (2**e_c >= max |w_c|, b bits chosen so
  that K bound 2**b < 2**24). Its products and every partial sum are multiples of the grid below 2**24 of it, so
  float32 computes the w_hi part exactly in any order; only the w_lo part (|w_lo| <= 2**(e_c - b - 1)) rounds. One
  GEMM computes both and Σx over each receptive field (the output channels stacked: w_hi, w_lo, a kernel of ones),
  the LIF adds the parts and the bias in float64. A synapse reading the image runs on plain float32 weights.
- the bound on a drive (``row_error`` x ``channel_error``): an inner product of n non-zero terms in any summation
  order is within γ_n Σ|w||x| of exact (Higham, *Accuracy and Stability of Numerical Algorithms*, §3.1; zero
  terms add exactly), the float32 weights are within u|w| of the float64 ones, and Σ|w||x| <= max_i |w_ci| Σ|x_i|.
  So the drive of channel c at a row (token, or output pixel) is within (n + 2) u Σ|x| max|w_lo,c| of the exact
  sum, n and Σ|x| counted over the row's receptive field, and float64's own sum within (n + 2) 2**-53 Σ|x| max|w_c|.
  For integer inputs (all >= 0: spikes and their sums) n <= Σx, so the factor is (Σx + 2) Σx, from the ones kernel.
- the LIF (``cpu_kernels.float_lif``) carries v in float64 and the bound E beside it; a row with a decision closer
  to the threshold than E is recomputed in float64 from its inputs (``repair``): its drive for all T steps, then
  the recurrence. The repaired row's sum order is not the batched GEMM's, so it equals the float64 reference's
  decisions up to float64's own rounding (1e-16 of v).

oneDNN computes float32 convolutions in float32 unless ``ONEDNN_DEFAULT_FPMATH_MODE`` allows lower precision, and
CPU matmuls never lower it: with that variable set to anything but STRICT, the guard stands down.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ...ir import Graph
from ...ir.ops import (LIF, Add, AndTokenSum, ChannelMask, Conv2d, Dense, Flatten, Head, Input, MaxPool,
                       SpikingAttention, StreamSum, Unflatten, Vectorize)
from . import cpu_kernels

U32 = 2.0**-24  # float32's unit roundoff
SAFETY = 1.01  # covers γ_n's 1 / (1 - n u) and float64's own rounding of the same sums (u64 / u32 = 2**-29)
U64 = 2.0**-53
ROUNDING64 = 2.0**-51  # each float64 rounding that may differ between the two runs, with room
MIN_SPLIT_BITS = 4  # fewer bits on w_hi's grid would leave most of each weight to w_lo
# exact in both types (integers below 2**24, spikes, reshapes): their float32 values are float64's
_PASS_THROUGH = (Flatten, Unflatten, Vectorize, MaxPool)


@dataclass(frozen=True)
class GuardPlan:
    lifs: dict[str, str | None]  # LIF -> the synapse whose float32 drive it checks (None: its input is exact)
    integer_inputs: frozenset[str]  # guarded synapses that read integers (split weights)


def guard_plan(graph: Graph) -> GuardPlan | None:
    """Which LIFs check which synapses' float32 drives, for a graph the guard applies to; None for a graph that
    must run in float64 (see the module docstring)."""
    if os.environ.get("ONEDNN_DEFAULT_FPMATH_MODE", "STRICT").upper() != "STRICT":
        return None
    exact, integer, plan = set(), set(), {}
    for node in graph.nodes.values():
        op, ins = node.op, node.inputs
        if isinstance(op, Input):
            exact.add(node.name)
        elif op.spiking or isinstance(op, (AndTokenSum, ChannelMask)) and all(i in exact for i in ins) or \
                isinstance(op, SpikingAttention) and op.rewritten:
            exact.add(node.name)
            integer.add(node.name)
        elif isinstance(op, (Add, StreamSum)) and all(i in integer for i in ins) or \
                isinstance(op, _PASS_THROUGH) and ins[0] in exact:
            exact.add(node.name)
            if all(i in integer for i in ins):
                integer.add(node.name)
        elif isinstance(op, Head) and ins[0] in exact:
            pass  # the head computes in float64 from its exact input in either mode
        elif not (isinstance(op, (Conv2d, Dense)) and ins[0] in exact):
            return None  # a real value that float32 would round: BatchNorm, TokenMean, a stream, ...
        if isinstance(op, LIF) and ins[0] not in exact:
            if not isinstance(graph.nodes[ins[0]].op, (Conv2d, Dense)) or \
                    [c.name for c in graph.consumers(ins[0])] != [node.name]:
                return None  # a guarded drive read by anything but its LIF
            plan[node.name] = ins[0]
        elif isinstance(op, LIF):
            plan[node.name] = None
    if any(n.op.synapse and n.name not in plan.values() for n in graph.nodes.values()):
        return None  # a synapse that feeds no LIF directly
    return GuardPlan(plan, frozenset(s for s in plan.values() if s and graph.nodes[s].inputs[0] in integer))


def split_weights(op, in_bound: float | None) -> tuple[np.ndarray, np.ndarray]:
    """(float32 weights, per-channel error factor) of a guarded synapse: [w_hi; w_lo; ones] stacked on the output
    channels where it reads integers of at most ``in_bound`` (else the weights as they are), and u max|w_lo,c| (or
    u max|w_c|) plus float64's 2**-53 max|w_c|, with the safety factor: the drive's bound is this times
    ``row_error``."""
    w = np.asarray(op.weight, np.float64)
    rows = w.reshape(w.shape[0], -1)
    peak = np.abs(rows).max(1)
    grouped = isinstance(op, Conv2d) and op.groups > 1  # stacking would interleave a grouped conv's outputs
    bits = 0 if in_bound is None or grouped else 23 - int(np.ceil(np.log2(rows.shape[1] * in_bound + 1)))
    if bits < MIN_SPLIT_BITS:
        return w.astype(np.float32), (peak * U32 * (1 + U32) + peak * U64) * SAFETY
    grid = np.exp2(np.ceil(np.log2(np.where(peak > 0, peak, 1.0))) - bits).reshape(-1, *[1] * (w.ndim - 1))
    hi = np.round(w / grid) * grid  # at most 2**bits grid steps: exact in float32
    lo = w - hi
    stacked = np.concatenate([hi, lo, np.ones_like(w[:1])]).astype(np.float32)
    low = np.abs(lo.reshape(w.shape[0], -1)).max(1)
    return stacked, (low * U32 * (1 + U32) + peak * U64) * SAFETY


def row_error(op, x: torch.Tensor) -> torch.Tensor:
    """(n + 2) Σ|x| over each output row's receptive field, float64: [T, B, N] for a token-wise synapse on
    [T, B, N, K], [T, B, H_out * W_out] for a convolution on [T, B, C, H, W] (the sums over all input channels
    bound a depthwise kernel's own channel too)."""
    magnitude = x.abs().sum(-1 if isinstance(op, Dense) else 2, dtype=torch.float64)
    count = (x != 0).sum(-1 if isinstance(op, Dense) else 2, dtype=torch.float64)
    if isinstance(op, Dense):
        return (count + 2) * magnitude
    steps, batch = x.shape[:2]
    window = op.weight.shape[-2:]

    def field_sum(a: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(a.reshape(steps * batch, 1, *a.shape[2:]), window, op.stride, op.padding,
                            count_include_pad=True, divisor_override=1)

    return ((field_sum(count) + 2) * field_sum(magnitude)).reshape(steps, batch, -1)


def repair(op, x: torch.Tensor, flags: np.ndarray, out: torch.Tensor, decay: float, threshold: float) -> int:
    """Recompute in float64 the flagged rows (``flags`` [B, N] or [B, H_out * W_out]) of a LIF driven by synapse
    ``op`` from its input ``x``: the drive for every step, then the recurrence; their spikes overwrite ``out``'s.
    Returns the number of rows repaired."""
    rows = np.argwhere(flags)
    if not len(rows):
        return 0
    b, pos = (torch.from_numpy(rows[:, i]) for i in (0, 1))
    # the op's own float64 array as a matrix (a view: no copy of the layer's weights per call)
    weight = np.asarray(op.dense_weight() if isinstance(op, Conv2d) else op.weight, np.float64)
    weight = weight.reshape(weight.shape[0], -1)
    if isinstance(op, Dense):
        patches = x[:, b, pos].to(torch.float64)  # [T, R, K]
    else:  # each row's receptive field, flattened in the weight's (C_in, kh, kw) order: [T, R, C_in kh kw]
        (kh, kw), (sh, sw), (ph, pw) = op.weight.shape[-2:], op.stride, op.padding
        width = out.shape[-1]
        samples, which = torch.unique(b, return_inverse=True)
        padded = F.pad(x[:, samples].to(torch.float64), (pw, pw, ph, ph))  # only the samples with a flagged row
        corners = zip(which.tolist(), (pos // width * sh).tolist(), (pos % width * sw).tolist())
        patches = torch.stack([padded[:, i, :, top:top + kh, left:left + kw].reshape(x.shape[0], -1)
                               for i, top, left in corners], 1)
    drive = patches.numpy() @ weight.T
    if op.bias is not None:
        drive += op.bias
    # [T, 1, R, C]: the rows as tokens of one sample, through the float64 reference's own LIF
    spikes = cpu_kernels.float_lif(torch.from_numpy(drive)[:, None], decay, threshold)[0][:, 0]
    if isinstance(op, Dense):
        out[:, b, pos] = spikes.to(out.dtype)
    else:
        out.view(*out.shape[:3], -1).permute(1, 3, 0, 2)[b, pos] = spikes.to(out.dtype).transpose(0, 1)
    return len(rows)
