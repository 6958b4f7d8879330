"""Compiled CPU kernels (numba) for the integer graph: Loihi 2's LIF in one pass over a layer, and spike sums.

The torch recurrence (``simulator.run_loihi_lif``, kept for CUDA) makes about ten passes over memory per step (decay,
truncate, add, compare, reset, copy, the observer's maxima) and carries integers in floats. Here each neuron's u and v
stay in registers as int64 for its T steps, the spikes come out as uint8 (the next synapse's int8 kernel reads them
as they are), and the largest |u| and |v| — the calibration ranges the counters report — come from the same pass.
Same arithmetic as lava's ``PyLifModelBitAcc``: shifts toward zero, 24-bit wrap of u, 24-bit clip of v.

Spike tensors are uint8 with channels innermost: tokens ``[T, B, N, C]`` and channels-last images ``[T, B, C, H, W]``,
i.e. rows of C channels per (sample, position). torch's own uint8 reductions run at well under 1 GB/s here, so their
sums are a kernel too.
"""
from __future__ import annotations

import functools
import multiprocessing

import numba
import numpy as np
import torch

from ...ir.ops import ACT_SHIFT, STATE_BITS

STATE_MAX = 2 ** (STATE_BITS - 1)
DECAY_SHIFT = 12  # decays are k / 4096


@numba.njit(parallel=True, nogil=True, cache=True)
def _loihi_lif(drive, bias, k_u, k_v, vth, spikes, maxima):
    """drive [T, M, C] (exact integers in floats), bias [C] int64 -> spikes [T, M, C] uint8, and per row m the
    largest |u| and |v| (before reset) in maxima [M, 2]."""
    steps, rows, channels = drive.shape
    for m in numba.prange(rows):
        u = np.zeros(channels, np.int64)
        v = np.zeros(channels, np.int64)
        max_u = 0
        max_v = 0
        for t in range(steps):
            for c in range(channels):
                uu = u[c]
                decayed = (abs(uu) * k_u) >> DECAY_SHIFT
                uu = (decayed if uu >= 0 else -decayed) + (np.int64(drive[t, m, c]) << ACT_SHIFT)
                if uu > STATE_MAX:  # lava's 24-bit wrap of u
                    uu -= 2 * STATE_MAX
                elif uu <= -STATE_MAX:
                    uu += 2 * STATE_MAX
                u[c] = uu
                vv = v[c]
                decayed = (abs(vv) * k_v) >> DECAY_SHIFT
                vv = min(max((decayed if vv >= 0 else -decayed) + uu + bias[c], 1 - STATE_MAX), STATE_MAX - 1)
                max_u = max(max_u, abs(uu))
                max_v = max(max_v, abs(vv))
                fired = vv > vth
                spikes[t, m, c] = fired
                v[c] = 0 if fired else vv
        maxima[m, 0] = max_u
        maxima[m, 1] = max_v


@numba.njit(inline="always")
def _float_lif_step(drive, t, r, c, p, lo, bias_c, err_c, factor, decay, threshold, rounding, guarded, v, e,
                    spikes, flags):
    """One neuron's step of ``_float_lif``; returns its |v| before reset."""
    a = np.float64(drive[t, r, c, p])
    if lo:
        a = a + np.float64(drive[t, r, lo + c, p])
    a = a + bias_c
    decayed = v[c, p] * decay
    vv = decayed + a
    fired = vv >= threshold
    if guarded:
        ee = e[c, p] * decay + factor * err_c + rounding * (abs(a) + abs(decayed) + abs(vv))
        if abs(vv - threshold) <= ee:
            flags[r, p] = 1
        e[c, p] = 0.0 if fired else ee
    spikes[t, r, c, p] = fired
    v[c, p] = 0.0 if fired else vv
    return abs(vv)


@numba.njit(parallel=True, nogil=True, cache=True)
def _float_lif(drive, lo, bias, decay, threshold, row_err, chan_err, rounding, spikes, flags, vmax):
    """The float LIF (``v = v * decay + a``, spike on ``v >= threshold``, reset to 0) over drive [T, R, C', P], with
    v in float64 whatever the drive's type: the same two roundings per step as the float64 reference's.
    a = drive[c] (+ drive[lo + c] where ``lo`` > 0: a split synapse's two parts) + bias[c], in float64.

    Guarded (``row_err`` non-empty, or ``lo`` > 0: then the row's factor is (s + 2) s, s = drive[2 lo]): a is
    within ``row_err[t, r, p] * chan_err[c]`` of the float64 reference's drive, plus float64 roundings that may
    differ (``rounding`` times |a|, |v decay|, |v|). E, the bound on |v - v_float64|, follows v (decay, reset to 0
    with it). A decision with |v - threshold| <= E may differ from the reference's: its row (r, p) is flagged for a
    float64 repair. Spikes go to ``spikes`` [T, R, C, P] (which may be ``drive`` itself where ``lo`` is 0: each
    element is read before it is written), the largest |v| (before reset) of each r to ``vmax``. Tokens (P = 1)
    run their channels as the inner loop."""
    steps, rows, _, positions = drive.shape
    channels = bias.shape[0]
    guarded = row_err.size > 0 or lo > 0
    for r in numba.prange(rows):
        v = np.zeros((channels, positions), np.float64)
        e = np.zeros((channels, positions), np.float64)
        factor = np.zeros(positions, np.float64)
        top = 0.0
        for t in range(steps):
            if guarded:
                for p in range(positions):
                    if lo:
                        s = np.float64(drive[t, r, 2 * lo, p])
                        factor[p] = (s + 2.0) * s
                    else:
                        factor[p] = row_err[t, r, p]
            if positions == 1:
                for c in range(channels):
                    top = max(top, _float_lif_step(drive, t, r, c, 0, lo, bias[c], chan_err[c] if guarded else 0.0,
                                                   factor[0], decay, threshold, rounding, guarded, v, e, spikes,
                                                   flags))
            else:
                for c in range(channels):
                    bias_c, err_c = bias[c], chan_err[c] if guarded else 0.0
                    for p in range(positions):
                        top = max(top, _float_lif_step(drive, t, r, c, p, lo, bias_c, err_c, factor[p], decay,
                                                       threshold, rounding, guarded, v, e, spikes, flags))
        vmax[r] = top


@numba.njit(parallel=True, nogil=True, cache=True)
def _row_sums(values, sums, nonzero):
    """values [T, M, C] uint8 -> per (t, m): the sum over C, and how many are non-zero."""
    steps, rows, channels = values.shape
    for m in numba.prange(rows):
        for t in range(steps):
            total = 0
            count = 0
            for c in range(channels):
                value = values[t, m, c]
                total += value
                count += value != 0
            sums[t, m] = total
            nonzero[t, m] = count


def channels_last(x: torch.Tensor) -> torch.Tensor:
    """``x`` [T, B, C, H, W] or [T, B, N, C] with channels innermost in memory (a copy only when they are not)."""
    if x.ndim == 5:
        return x if x.permute(0, 1, 3, 4, 2).is_contiguous() else \
            x.permute(0, 1, 3, 4, 2).contiguous().permute(0, 1, 4, 2, 3)
    return x.contiguous()


def _rows(x: torch.Tensor) -> np.ndarray:
    """A channels-innermost tensor as the array [T, positions over the batch, C] over its own memory."""
    steps, channels = x.shape[0], x.shape[2] if x.ndim == 5 else x.shape[-1]
    rows = (x.permute(0, 1, 3, 4, 2) if x.ndim == 5 else x).reshape(steps, -1, channels)
    assert rows.data_ptr() == x.data_ptr() and rows.is_contiguous(), "rows must be a view"
    return rows.numpy()


@functools.lru_cache(maxsize=None)
def _start_thread_pool() -> None:
    """Start numba's threads without leaving multiprocessing's start method fixed: numba's start-up asks for it
    (``get_start_method()`` fixes the default), and lava, imported later, fails setting it itself ('context has
    already been set')."""
    unset = multiprocessing.get_start_method(allow_none=True) is None
    numba.get_num_threads()
    if unset:
        multiprocessing.set_start_method(None, force=True)


def _threads() -> None:
    _start_thread_pool()
    numba.set_num_threads(min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS))


def loihi_lif(drive: torch.Tensor, bias: np.ndarray, k_u: int, k_v: int, vth: int
              ) -> tuple[torch.Tensor, int, int]:
    """(uint8 spikes, channels innermost, max |u|, max |v|) of a LoihiLIF layer over all steps.

    ``drive``: [T, B, C, H, W] or [T, B, N, C], the exact integer drive after the synapse's shift, on the CPU;
    ``bias``: int64 per channel (mantissa << exponent); ``k_u``, ``k_v``: decays in 1/4096; ``vth``: vth << 6."""
    drive = channels_last(drive)
    spikes = torch.empty_like(drive, dtype=torch.uint8)  # same strides as the drive
    maxima = np.zeros((_rows(drive).shape[1], 2), np.int64)
    _threads()
    _loihi_lif(_rows(drive), np.ascontiguousarray(bias, np.int64), k_u, k_v, vth, _rows(spikes), maxima)
    top = maxima.max(0) if maxima.size else (0, 0)
    return spikes, int(top[0]), int(top[1])


def float_lif(drive: torch.Tensor, decay: float, threshold: float, guard: dict | None = None
              ) -> tuple[torch.Tensor, np.ndarray | None, float]:
    """(spikes, flagged rows or None, largest |v|) of a float LIF layer.

    ``drive``: [T, B, N, C'] tokens or [T, B, C', H, W] images, contiguous, on the CPU; without a guard its buffer
    receives the spikes. ``guard`` (a guarded float32 synapse's output): ``bias`` [C] (float64), ``split`` (C' =
    2 C + 1: the w_hi and w_lo parts and the ones kernel), else ``row_err`` [T, B, N] or [T, B, H*W] (float64);
    ``chan_err`` [C], ``rounding``
    (``_float_lif``); the flags come back as [B, N] / [B, H*W]."""
    steps, images = drive.shape[0], drive.ndim == 5
    rows = drive.numpy().reshape(steps, drive.shape[1], drive.shape[2], -1) if images else \
        drive.numpy().reshape(steps, -1, drive.shape[-1], 1)
    channels = rows.shape[2] // 2 if guard is not None and guard["split"] else rows.shape[2]
    split = channels != rows.shape[2]
    out = drive
    if split:  # the spikes need a buffer of their own shape
        shape = (*drive.shape[:2], channels, *drive.shape[3:]) if images else (*drive.shape[:-1], channels)
        out = torch.empty(shape, dtype=drive.dtype)
    spikes = out.numpy().reshape(steps, rows.shape[1], channels, rows.shape[3])
    flags = np.zeros((rows.shape[1], rows.shape[3]), np.uint8)
    vmax = np.zeros(rows.shape[1], np.float64)
    if guard is None:
        bias, row_err, chan_err, rounding = np.zeros(channels), np.zeros((0, 0, 0)), np.zeros(0), 0.0
    else:
        bias, chan_err, rounding = guard["bias"], guard["chan_err"], guard["rounding"]
        row_err = np.zeros((0, 0, 0)) if split else guard["row_err"].reshape(steps, rows.shape[1], rows.shape[3])
    _threads()
    _float_lif(rows, channels if split else 0, bias, decay, threshold, row_err, chan_err,
               rounding, spikes, flags, vmax)
    return out, (flags.reshape(drive.shape[1], -1) if guard is not None else None), float(vmax.max(initial=0.0))


def position_sums(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(sum over channels, number of non-zero channels), each int64 [T, B, positions], of uint8 spikes (or spike
    sums) laid out channels innermost."""
    rows = _rows(channels_last(x))
    sums = np.empty(rows.shape[:2], np.int64)
    nonzero = np.empty(rows.shape[:2], np.int64)
    _threads()
    _row_sums(rows, sums, nonzero)
    shape = (x.shape[0], x.shape[1], -1)
    return torch.from_numpy(sums).view(shape), torch.from_numpy(nonzero).view(shape)
