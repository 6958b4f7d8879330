"""Quantize a folded, SSA-rewritten float graph to Loihi 2 integer formats.

For each synapse -> LIF pair (DESIGN.md §3): weights become ``weight_bits``-bit mantissas ``w`` with a per-layer step
``delta`` (chosen by least squares over a few clipping ratios), and the integer membrane is ``v = lambda * V`` with
``lambda = 2**(6 + weight_exp) / delta`` (``a = (w s) << weight_exp``; the neuron adds ``a << 6``). ``weight_exp`` is
the largest value (<= 7) for which the calibrated drive, membrane and threshold keep ``headroom`` below their limits
(24-bit u and v, 17-bit vth, 13-bit bias mantissa): more fractional bits make the halving ``v >> 1`` exact for more steps. The float LIF
fires on ``V >= th``; Loihi fires on ``v > vth << 6``, so ``vth << 6`` is set just below ``lambda * th`` by the
granularity of v. Where every drive is a multiple of 2**(T-1) units (attention, no bias) this is exact.

The real-valued residual stream (Spikingformer, Spike-driven Transformer, Meta-SpikeFormer: ``stream_nodes``) lives on
one integer scale ``sigma`` per connected segment (``stream_segments``: one for the first two, one per stage of
Meta-SpikeFormer), a power of two: stream value ``x`` is ``round(sigma * (x - beta))``, where ``beta`` is the sum
of the biases of the synapses that wrote it (``carried_biases``). Loihi synapses have no bias, so each neuron that
reads the stream adds ``beta`` itself (in its bias), and the head adds ``W beta`` to its own. A synapse writing the
stream has weights ``w << e`` = ``W * sigma`` (per-synapse exponent e >= 0: its weight step is ``2**e / sigma``);
``sigma`` is the largest power of two for which every stream value and every reading neuron's ``u = x << 6`` keep
``headroom`` below 24 bits and every reader's bias fits its 13-bit mantissa. A neuron reads the stream with exponent 0 (``lambda = 64 sigma``).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numba
import numpy as np

from ..errors import ConfigError, GraphError
from ..ir import Graph, PassRecord
from ..ir.ops import (ACT_SHIFT, BIAS_EXP_MAX, BIAS_MANT_BITS, FLOAT, INTEGER, LIF, STATE_BITS, UNBOUNDED, VTH_BITS,
                      WEIGHT_EXP_RANGE, AndTokenSum, Conv2d, Flatten, Head, Input, LoihiLIF, MaxPool,
                      SpikingAttention, StreamSum, TokenMean)

STATE_LIMIT = 2 ** (STATE_BITS - 1)
MIN_WEIGHT_EXP = 0
CLIP_RATIOS = (1.0, 0.95, 0.9, 0.85, 0.8, 0.75, 0.7, 0.6, 0.5)


@dataclass
class Calibration:
    """Ranges seen by the float simulator on calibration data: ``maxima[node]['max_abs_a' | 'max_abs_v']``."""

    input_min: float
    input_max: float
    maxima: dict[str, dict[str, float]] = field(default_factory=dict)
    samples: int = 0


def weight_levels(bits: int, coarsening: int = 0) -> tuple[int, int]:
    """Mantissa range of ``bits``-bit weights; ``coarsening`` k > 0 keeps the symmetric ±(2**(bits-1)-1) >> k."""
    if coarsening:
        hi = (2 ** (bits - 1) - 1) >> coarsening
        return -hi, hi
    return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1


@numba.njit(parallel=True, nogil=True, cache=True)
def _round_weights(weight, step, lo, hi, mantissas, squares):
    """mantissas[i] = clip(round(weight[i] / step), lo, hi) (round half to even), squares[i] its squared error
    (q * step - weight[i])**2 — numpy's operations in numpy's order, in one pass instead of seven — and the number
    of weights more than half a level outside [lo, hi]."""
    clipped = 0
    for i in numba.prange(weight.size):
        scaled = weight[i] / step
        clipped += (scaled > hi + 0.5) or (scaled < lo - 0.5)
        q = min(max(np.rint(scaled), lo), hi)
        mantissas[i] = q
        d = q * step - weight[i]
        squares[i] = d * d
    return clipped


def _rounded(weight: np.ndarray, step: float, levels: tuple[int, int]) -> tuple[np.ndarray, int, np.ndarray]:
    """(int8 mantissas, number clipped, squared errors) of ``weight`` at ``step``, in ``weight``'s shape."""
    flat = np.ascontiguousarray(weight, dtype=np.float64).reshape(-1)
    mantissas, squares = np.empty(flat.shape, np.int8), np.empty_like(flat)
    clipped = _round_weights(flat, float(step), float(levels[0]), float(levels[1]), mantissas, squares)
    return mantissas.reshape(np.shape(weight)), int(clipped), squares.reshape(np.shape(weight))


def round_weights(weight: np.ndarray, step: float, levels: tuple[int, int]) -> tuple[np.ndarray, int]:
    """(integer mantissas as int8 — at most 8 bits —, number of weights clipped) for one step."""
    return _rounded(weight, step, levels)[:2]


def choose_weight_step(weight: np.ndarray, levels: tuple[int, int]) -> tuple[float, np.ndarray, int]:
    """(step, integer mantissas, number clipped) minimising the squared weight error over CLIP_RATIOS.

    The largest magnitude sits at ``ratio`` times the top level: weights that are already ``q * step`` with the
    top level used (a model snapped by finetune) get ``step`` back exactly at ratio 1. Each ratio's error is the
    numpy sum of the same squared errors as ``((q * step - weight) ** 2).sum()``, so the same step wins.
    """
    peak = float(np.abs(weight).max())
    if peak == 0.0:
        return 1.0, np.zeros(weight.shape, dtype=np.int8), 0
    best = None
    for ratio in CLIP_RATIOS:
        step = ratio * peak / levels[1]
        q, clipped, squares = _rounded(weight, step, levels)
        err = float(squares.sum())
        if best is None or err < best[0]:
            best = (err, step, q, clipped)
    return best[1:]


def two_adic(values: np.ndarray) -> int:
    """Largest k with every non-zero value divisible by 2**k (64 if all are zero)."""
    nz = np.abs(values[values != 0]).astype(np.int64)
    if nz.size == 0:
        return 64
    return int(min((int(v) & -int(v)).bit_length() - 1 for v in np.unique(nz)))


# lava-dl netx fixes bias_exp = 6 for CUBA neurons: a bias in multiples of 64 (at most one weight LSB, since
# weight_exp >= 0) keeps the same integers valid there.
BIAS_EXP_MIN = 6


def quantize_bias(target: np.ndarray) -> tuple[np.ndarray, int, int]:
    """(mantissa, exponent, number clipped): the smallest exponent (>= 6) whose 13-bit mantissa holds ``target``."""
    lim = 2 ** (BIAS_MANT_BITS - 1)
    for exp in range(BIAS_EXP_MIN, BIAS_EXP_MAX + 1):
        mant = np.round(target / 2**exp)
        if np.abs(mant).max(initial=0) <= lim - 1:
            return mant.astype(np.int16), exp, 0
    mant = np.round(target / 2**BIAS_EXP_MAX)
    clipped = int((np.abs(mant) > lim - 1).sum())
    return np.clip(mant, -lim, lim - 1).astype(np.int16), BIAS_EXP_MAX, clipped


def _neuron_params(threshold: float, bias: np.ndarray, step: float, max_a: float, max_v: float, T: int,
                   headroom: float, max_exp: int = WEIGHT_EXP_RANGE[1]) -> dict:
    """weight_exp, lambda, vth, bias of one LIF whose drive is in units of ``step`` (see the module docstring).

    Exponents stay >= 0 (MIN_WEIGHT_EXP): lava's Conv model ignores weight_exp (the exponent is folded into its
    weights), its attention process shifts left, and a right shift would floor the drive. ``overflow`` in the record
    says that no exponent fits; the caller then coarsens the weight step.
    """
    chosen = None
    max_bias = (2 ** (BIAS_MANT_BITS - 1) - 1) * 2**BIAS_EXP_MAX
    for exp in range(max_exp, MIN_WEIGHT_EXP - 1, -1):
        lam = 2.0 ** (ACT_SHIFT + exp) / step
        fits = (max_a / step * 2.0 ** (ACT_SHIFT + exp) * headroom < STATE_LIMIT
                and lam * max_v * headroom < STATE_LIMIT
                and lam * threshold / 2**ACT_SHIFT < 2**VTH_BITS - 1
                and lam * float(np.abs(bias).max(initial=0.0)) <= max_bias)
        if fits:
            chosen = exp
            break
    overflow = chosen is None
    exp = MIN_WEIGHT_EXP if overflow else chosen
    lam = 2.0 ** (ACT_SHIFT + exp) / step
    bias_mant, bias_exp, bias_clipped = quantize_bias(lam * bias)
    effective_bias = bias_mant.astype(np.int64) << bias_exp
    # v is a multiple of 2**g_bits after up to T-1 halvings; fire on v >= lam*th  <=>  v > lam*th - 2**g_bits
    g_bits = max(0, min(ACT_SHIFT + exp, two_adic(effective_bias)) - (T - 1))
    vth_exact = (lam * threshold - 2.0**g_bits) / 2**ACT_SHIFT
    vth = int(np.clip(np.round(vth_exact), 0, 2**VTH_BITS - 1))
    effective_threshold = (vth * 2**ACT_SHIFT + 2.0**g_bits) / lam
    return {"weight_exp": exp, "lambda": lam, "vth": vth, "bias_mant": bias_mant, "bias_exp": bias_exp,
            "g_bits": g_bits, "record": {"weight_exp": exp, "lambda": lam, "vth": vth, "bias_exp": bias_exp,
                       "bias_clipped": bias_clipped, "overflow": overflow,
                       "threshold": threshold, "effective_threshold": effective_threshold,
                       "threshold_exact": bool(vth == vth_exact),
                       "est_max_abs_u": max_a / step * 2.0 ** (ACT_SHIFT + exp), "est_max_abs_v": lam * max_v}}


def threshold_aligned_step(threshold: float, step: float, weight_exp: int, g_bits: int) -> float:
    """The step nearest ``step`` whose integer threshold is exact: ``lambda * threshold = 64 vth + 2**g_bits``.

    Then ``v > vth << 6`` (Loihi) holds exactly when ``V >= threshold`` (the float LIF), for every v on its
    2**g_bits grid. Otherwise the two disagree on membranes within up to 32 units of the threshold: half a weight
    step where weight_exp is 0. The step moves by at most 1 / (2 vth) of itself: the mantissas hardly change.
    """
    scaled = 2.0 ** (ACT_SHIFT + weight_exp) * threshold
    vth = round((scaled / step - 2.0**g_bits) / 2**ACT_SHIFT)
    return step if vth < 1 else scaled / (vth * 2**ACT_SHIFT + 2.0**g_bits)


def stream_nodes(g: Graph) -> set[str]:
    """The real-valued residual stream: ``StreamSum`` and ``MaxPool`` nodes, their ``Flatten``, and the synapses
    that write them (which must write nothing else: a one-input StreamSum relays a synapse output read twice)."""
    stream: set[str] = set()
    for node in g.nodes.values():
        if (isinstance(node.op, (StreamSum, MaxPool))
                or isinstance(node.op, Flatten) and node.inputs[0] in stream):
            stream.add(node.name)
            for i in node.inputs:
                if g.nodes[i].op.synapse:
                    stream.add(i)
                elif i not in stream:
                    raise GraphError(f"{node.name}: input {i} ({g.nodes[i].op.type}) is not on the real stream")
    for name in stream:
        others = [c.name for c in g.consumers(name) if c.name not in stream] if g.nodes[name].op.synapse else []
        if others:
            raise GraphError(f"{name} writes the residual stream and also feeds {others[0]}: put a relay (one-input "
                             f"StreamSum) between")
    return stream


def stream_segments(g: Graph, stream: set[str]) -> dict[str, str]:
    """Each stream node -> its segment, named by its first node: the connected parts of the stream. A new one starts
    where a synapse writes a stream no earlier stream value reaches (each of Meta-SpikeFormer's down-sampling
    convs); each segment has its own scale, so that a stream written from the analog image keeps fine weights."""
    order = {name: i for i, name in enumerate(g.nodes)}
    parent = {name: name for name in stream}

    def find(name: str) -> str:
        while parent[name] != name:
            name = parent[name]
        return name

    for name in sorted(stream, key=order.get):
        node = g.nodes[name]
        if node.op.synapse:
            continue
        for i in node.inputs:
            a, b = sorted((find(name), find(i)), key=order.get)
            parent[b] = a
    return {name: find(name) for name in stream}


def read_bias(g: Graph, syn, beta: dict[str, np.ndarray]) -> np.ndarray:
    """What synapse ``syn`` adds to its output from the bias carried on the stream it reads (zero when it reads no
    stream): the bias is a constant map, which a convolution without padding turns into ``sum_taps W . beta``."""
    (x,) = syn.inputs
    if x not in beta or not np.any(beta[x]):
        return np.zeros(syn.shape[0])
    if getattr(syn.op, "padding", (0, 0)) != (0, 0):
        raise GraphError(f"{syn.name} reads a real-valued stream with a carried bias through a zero-padded "
                         f"convolution: its border would lose the bias")
    w = np.asarray(syn.op.dense_weight() if isinstance(syn.op, Conv2d) else syn.op.weight, dtype=np.float64)
    return w.reshape(w.shape[0], w.shape[1], -1).sum(2) @ beta[x]


def carried_biases(g: Graph, stream: set[str]) -> dict[str, np.ndarray]:
    """Per stream node: the per-channel sum of the biases of the synapses that wrote it (float units), a synapse
    that reads a stream adding what it makes of that stream's carried bias (``read_bias``)."""
    beta: dict[str, np.ndarray] = {}
    for node in g.nodes.values():
        if node.name not in stream:
            continue
        if node.op.synapse:
            own = np.zeros(node.shape[0]) if node.op.bias is None else np.asarray(node.op.bias, float)
            beta[node.name] = own + read_bias(g, node, beta)
        else:  # StreamSum sums them; MaxPool (max(x + b) = max(x) + b) and Flatten pass them on
            beta[node.name] = sum(beta[i] for i in node.inputs)
    return beta


def stream_scale(g: Graph, stream: set[str], beta: dict[str, np.ndarray], calibration: Calibration,
                 headroom: float) -> tuple[float, float]:
    """(sigma, the largest |value| the calibration saw on the stream): sigma is the largest power of two keeping
    every stream integer and every reading neuron's u and v within ``headroom`` of 24 bits (u = x << 6)."""
    largest, largest_bias = 0.0, 0.0
    for name in stream:
        stats = calibration.maxima.get(name, {})
        carried = float(np.abs(beta[name]).max(initial=0.0))
        largest = max(largest, stats.get("max_abs_a", 0.0) + carried)
        for reader in g.consumers(name):
            if isinstance(reader.op, LIF):
                largest = max(largest, calibration.maxima.get(reader.name, {}).get("max_abs_v", 0.0))
                largest_bias = max(largest_bias, carried)
    # u and v: 64 sigma x headroom below 2**23; a reader's bias 64 sigma beta within the 13-bit mantissa << 7
    limits = [2.0 ** (STATE_BITS - 1 - ACT_SHIFT) / headroom / largest if largest > 0 else UNBOUNDED,
              (2 ** (BIAS_MANT_BITS - 1) - 1) * 2.0 ** (BIAS_EXP_MAX - ACT_SHIFT) / largest_bias
              if largest_bias > 0 else UNBOUNDED]
    limit = min(limits)
    return (2.0 ** np.floor(np.log2(limit)) if limit < UNBOUNDED else 1.0), largest


def input_unit(g: Graph, syn, sigma: dict[str, float]) -> float:
    """Integers per float unit of synapse ``syn``'s input: the image's scale, a stream's sigma, or 1 (spikes)."""
    (x,) = syn.inputs
    if isinstance(g.nodes[x].op, Input):
        return g.nodes[x].op.scale  # the synapse sees round(x * scale)
    return sigma.get(x, 1.0)


def relay_scale(g: Graph, nodes: set[str], segment: dict[str, str], scales: dict, calibration: Calibration,
                beta: dict[str, np.ndarray], weight_bits: int, headroom: float) -> float:
    """The scale of a stream segment, no larger than the segment allows; where a synapse reads it (a relay between
    two synapses kept apart), also no larger than that reader allows, since exponents >= 0 cannot scale its
    integers down:
    - a reader that writes another segment: the power of two nearest the geometric mean of the two scales' needs,
      so that the relay's integers and the reader's weights (``W sigma_out / sigma``) share the rounding;
    - a reader that feeds a LIF: the largest power of two at which that LIF's drive, membrane, threshold and bias
      fit their fields (its weight step is ``step / sigma``: a finer relay makes larger integers downstream)."""
    root = segment[next(iter(nodes))]
    bounds = [scales[root][0]]
    for name in nodes:
        for reader in g.consumers(name):
            if not reader.op.synapse:
                continue
            if reader.name in segment and segment[reader.name] != root:
                largest = max(calibration.maxima.get(name, {}).get("max_abs_a", 0.0), 1e-12)
                peak = float(np.abs(reader.op.weight).max(initial=0.0))
                bounds.append(2.0 ** np.round(np.log2(np.sqrt(scales[segment[reader.name]][0] * peak / largest))))
            elif reader.name not in segment:
                (lif,) = g.consumers(reader.name)
                stats = {**calibration.maxima.get(reader.name, {}), **calibration.maxima.get(lif.name, {})}
                step = choose_weight_step(reader.op.weight, weight_levels(weight_bits))[0]  # at sigma = 1
                bias = (0.0 if reader.op.bias is None else reader.op.bias) + read_bias(g, reader, beta)
                sigma = bounds[0]
                while sigma > 2.0**-24 and _neuron_params(
                        lif.op.threshold, bias, step / sigma, stats.get("max_abs_a", 0.0), stats.get("max_abs_v", 0.0),
                        g.steps, headroom)["record"]["overflow"]:
                    sigma /= 2
                bounds.append(sigma)
    return min(bounds)


def quantize_stream_synapse(op, weight: np.ndarray, sigma: float, weight_bits: int) -> tuple[object, dict]:
    """A synapse writing the stream: mantissas and exponent with ``(w << e) = W * sigma`` (bias carried on)."""
    hi = 2 ** (weight_bits - 1) - 1
    scaled = weight * sigma
    peak = float(np.abs(scaled).max(initial=0.0))
    exp = int(min(WEIGHT_EXP_RANGE[1], max(0, np.ceil(np.log2(peak / hi)) if peak > 0 else 0)))
    w, clipped = round_weights(scaled, 2.0**exp, weight_levels(weight_bits))
    record = {"step": 2.0**exp / sigma, "weight_exp": exp, "clipped_weights": clipped, "weights": int(w.size),
              "max_abs_w": int(np.abs(w.astype(np.int32)).max(initial=0)), "stream_scale": sigma}
    return dataclasses.replace(op, weight=w, bias=None, weight_exp=exp, weight_bits=weight_bits), record


def quantize(graph: Graph, calibration: Calibration, weight_bits: int = 8, input_bits: int = 8,
             headroom: float = 2.0) -> Graph:
    if not 2 <= weight_bits <= 8:
        raise ConfigError(f"weight bits must be 2..8 (Loihi 2 synapses), got {weight_bits}")
    if not 2 <= input_bits <= 8:
        raise ConfigError(f"input bits must be 2..8, got {input_bits}")
    if graph.dialect != FLOAT:
        raise GraphError(f"quantize takes a float graph, this one is {graph.dialect}")
    if any(isinstance(n.op, SpikingAttention) and not n.op.rewritten for n in graph.nodes.values()):
        raise GraphError("quantize needs rewrite_ssa first (the attention scale must sit in attn_lif's threshold)")
    g = graph.copy(dialect=INTEGER)
    T = g.steps
    record = PassRecord("quantize", settings={"weight_bits": weight_bits, "input_bits": input_bits,
                                              "headroom": headroom, "calibration_samples": calibration.samples})
    inp = g.input
    if inp.op.kind == "image":
        signed = calibration.input_min < 0
        peak = max(abs(calibration.input_min), abs(calibration.input_max)) or 1.0
        if 0.0 <= calibration.input_min and calibration.input_max <= 1.0:
            # images in [0, 1] (pixels / 255): their full range, so that 8-bit pixels map to their own integers
            # whatever the calibration set's brightest pixel
            peak = 1.0
        scale = (2 ** (input_bits - 1) - 1 if signed else 2**input_bits - 1) / peak
    else:  # event counts are integers already
        signed, scale = False, 1.0
    inp.op = dataclasses.replace(inp.op, scale=scale, bits=input_bits, signed=signed)
    record.nodes[inp.name] = {"scale": scale, "bits": input_bits, "signed": signed}

    stream = stream_nodes(g)
    beta = carried_biases(g, stream)
    segment = stream_segments(g, stream)
    members: dict[str, set[str]] = {}  # segment -> its nodes, segments in graph order (the roots come first)
    for name in g.nodes:
        if name in segment:
            members.setdefault(segment[name], set()).add(name)
    # segment -> (sigma, the largest |value| on it)
    scales = {root: stream_scale(g, nodes, beta, calibration, headroom) for root, nodes in members.items()}
    for root in reversed(members):  # relays read by a synapse that writes a later segment: balance the two scales
        scales[root] = (relay_scale(g, members[root], segment, scales, calibration, beta, weight_bits, headroom),
                        scales[root][1])
    sigma = {name: scales[root][0] for name, root in segment.items()}
    if stream:
        record.settings["stream_scale"] = min(s for s, _ in scales.values())
        if len(scales) > 1:
            record.settings["stream_scales"] = {root: s for root, (s, _) in scales.items()}
        # signed graded payloads: the calibrated range times the headroom the scale keeps
        record.settings["stream_payload_bits"] = max(int(np.ceil(np.log2(s * largest * headroom + 1))) + 1
                                                     for s, largest in scales.values())
        for name in sorted(stream):
            node = g.nodes[name]
            if node.op.synapse:
                w_float = node.op.weight / input_unit(g, node, sigma)
                node.op, record.nodes[name] = quantize_stream_synapse(node.op, w_float, sigma[name], weight_bits)

    for node in g.of_type(LIF):
        src = g.nodes[node.inputs[0]]
        stats = {**calibration.maxima.get(src.name, {}), **calibration.maxima.get(node.name, {})}
        max_a, max_v = stats.get("max_abs_a", 0.0), stats.get("max_abs_v", 0.0)
        if src.name in stream:  # reads the stream: drive x on the stream's scale, exponent 0, carried bias
            p = _neuron_params(node.op.threshold, beta[src.name], 1.0 / sigma[src.name], max_a, max_v, T, headroom,
                               max_exp=0)
            p["record"]["stream_scale"] = sigma[src.name]
        elif isinstance(src.op, TokenMean):  # the token sum of the stream, shifted right until it fits
            (x,) = src.inputs
            tokens = g.nodes[x].shape[1]
            for shift in range(STATE_BITS):
                p = _neuron_params(node.op.threshold, beta[x], 2.0**shift / (sigma[x] * tokens), max_a, max_v, T,
                                   headroom, max_exp=0)
                if not p["record"]["overflow"]:
                    break
            src.op = dataclasses.replace(src.op, shift=shift)
            record.nodes[src.name] = {"shift": shift, "tokens": tokens, "stream_scale": sigma[x]}
        elif src.op.synapse:
            w_float = src.op.weight / input_unit(g, src, sigma)
            step, w_int, clipped = choose_weight_step(w_float, weight_levels(weight_bits))
            bias = (src.op.bias if src.op.bias is not None else np.zeros(src.op.weight.shape[0])) \
                + read_bias(g, src, beta)
            coarsened = 0  # where even exponent 0 overflows, use fewer mantissa levels instead
            while True:
                p = _neuron_params(node.op.threshold, bias, step, max_a, max_v, T, headroom)
                if not p["record"]["overflow"] or coarsened >= weight_bits - 2:
                    break
                coarsened += 1
                step, w_int, clipped = choose_weight_step(w_float, weight_levels(weight_bits, coarsened))
            aligned = threshold_aligned_step(node.op.threshold, step, p["weight_exp"], p["g_bits"])
            if aligned != step and not p["record"]["overflow"]:
                candidate = _neuron_params(node.op.threshold, bias, aligned, max_a, max_v, T, headroom)
                if candidate["record"]["threshold_exact"]:
                    step, p = aligned, candidate
                    w_int, clipped = round_weights(w_float, step, weight_levels(weight_bits, coarsened))
            p["record"]["coarsening"] = coarsened  # the mantissas span ±(2**(bits-1)-1) >> coarsening
            src.op = dataclasses.replace(src.op, weight=w_int, bias=None, weight_exp=p["weight_exp"],
                                         weight_bits=weight_bits)
            record.nodes[src.name] = {"step": step, "clipped_weights": clipped, "weights": int(w_int.size),
                                      "max_abs_w": int(np.abs(w_int.astype(np.int32)).max()),
                                      "worst_case_abs_a": float(np.abs(w_int.astype(np.int32)).reshape(
                                          len(w_int), -1).sum(1).max())}
        elif isinstance(src.op, (SpikingAttention, AndTokenSum)):  # exact integer counts
            p = _neuron_params(node.op.threshold, np.zeros(node.shape[0]), 1.0, max_a, max_v, T, headroom)
            src.op = dataclasses.replace(src.op, out_shift=p["weight_exp"])
            record.nodes[src.name] = {"out_shift": p["weight_exp"], "exact": p["record"]["threshold_exact"]}
        else:
            raise GraphError(f"quantize: {node.name} is fed by {src.op.type}, not a synapse, the attention or the "
                             f"stream")
        node.op = LoihiLIF(vth=p["vth"], bias_mant=p["bias_mant"], bias_exp=p["bias_exp"], scale=p["lambda"])
        record.nodes[node.name] = p["record"]

    for node in g.of_type(Head):
        op, (x,) = node.op, node.inputs
        steps_tokens = T * g.nodes[x].shape[1]
        # its input: spikes or spike sums (unit 1), or the stream (unit 1 / sigma, its carried bias adds W beta)
        unit, carried = (1.0 / sigma[x], op.weight @ beta[x]) if x in stream else (1.0, 0.0)
        step, w_int, clipped = choose_weight_step(op.weight, weight_levels(8))
        b_int = np.round((op.bias + carried) * steps_tokens / (unit * step)).astype(np.int64)
        node.op = Head(weight=w_int, bias=b_int, weight_bits=8, scale=step * unit / steps_tokens)
        record.nodes[node.name] = {"step": step, "clipped_weights": clipped, "sum_over": steps_tokens,
                                   "input_unit": unit}
    g.records.append(record)
    return g


@dataclass(frozen=True)
class GridPoint:
    """One layer's deploy grid in the float model's units: folded weight = ``mantissas * step``."""

    synapse: str  # module name
    batchnorm: str | None  # the BatchNorm folded into it (None for the head)
    step: float
    mantissas: np.ndarray
    bias: np.ndarray  # the folded bias as the integer model holds it
    levels: tuple[int, int]  # symmetric: a weight at -2**(bits-1) would make the quantizer, which puts the largest
    # magnitude at the top positive level, choose another step for the snapped model


def grid_points(g: Graph) -> list[GridPoint]:
    """Each synapse's and the head's grid in a quantized graph, in the float model's units (its last quantize
    record gives the steps)."""
    steps = next(r for r in reversed(g.records) if r.name == "quantize").nodes
    points = []
    for node in g.nodes.values():
        op = node.op
        if op.synapse:
            if "stream_scale" in steps[node.name]:
                raise GraphError(f"{node.name} writes a real-valued residual stream, whose biases the integer graph "
                                 f"carries into its readers: it has no single deploy grid, which finetune and "
                                 f"--nir-weights grid need (--nir-weights float works)")
            step = steps[node.name]["step"]
            if isinstance(g.nodes[node.inputs[0]].op, Input):
                step *= g.input.op.scale  # that synapse's steps are per input integer
            (lif,) = g.consumers(node.name)
            neuron = lif.op
            assert isinstance(neuron, LoihiLIF)
            bias = neuron.bias_mant.astype(np.float64) * 2.0**neuron.bias_exp / neuron.scale
            hi = weight_levels(op.weight_bits, steps[lif.name]["coarsening"])[1]
            points.append(GridPoint(node.name, node.meta["batchnorm"], step, np.asarray(op.weight),
                                    np.broadcast_to(bias, (op.weight.shape[0],)).copy(), (-hi, hi)))
        elif isinstance(op, Head):
            hi = weight_levels(op.weight_bits)[1]
            points.append(GridPoint(node.name, None, steps[node.name]["step"], np.asarray(op.weight),
                                    op.bias.astype(np.float64) * op.scale, (-hi, hi)))
    return points
