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
