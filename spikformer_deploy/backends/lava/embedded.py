"""Lava Processes for the Spike-driven Transformer's ops that no neurocore computes, with fixed-point CPU
ProcessModels (on Loihi 2: the embedded x86 cores), each sending in the step its inputs arrive (no synapse hop):

- ``GridMaxPool``: max-pool of graded values (the tokenizer's last pool, on the real-valued stream);
- ``AndTokenSum``: SDSA's per-channel count of tokens where k AND v spike, shifted left by ``out_shift``;
- ``ChannelMask``: q AND a per-channel spike, broadcast over the tokens;
- ``TokenSum``: the sum over the tokens of graded values, shifted right by ``shift`` (arithmetic).

Layouts are Lava's ``(W, H, C)``; a per-channel value is ``(1, 1, C)``. The integer meaning of each is the
simulator's kernel of the same op (``backends/sim``).
"""
from __future__ import annotations

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

GRADED = 24


class GridMaxPool(AbstractProcess):
    def __init__(self, *, in_shape: tuple[int, int, int], out_shape: tuple[int, int, int], kernel: int, stride: int,
                 padding: int) -> None:
        super().__init__(kernel=kernel, stride=stride, padding=padding)
        self.s_in = InPort(shape=in_shape)
        self.a_out = OutPort(shape=out_shape)


class AndTokenSum(AbstractProcess):
    def __init__(self, *, shape: tuple[int, int, int], out_shift: int) -> None:
        super().__init__(out_shift=out_shift)
        self.k = InPort(shape=shape)
        self.v = InPort(shape=shape)
        self.a_out = OutPort(shape=(1, 1, shape[2]))


class ChannelMask(AbstractProcess):
    def __init__(self, *, shape: tuple[int, int, int]) -> None:
        super().__init__()
        self.q = InPort(shape=shape)
        self.m = InPort(shape=(1, 1, shape[2]))
        self.s_out = OutPort(shape=shape)


class TokenSum(AbstractProcess):
    def __init__(self, *, shape: tuple[int, int, int], shift: int) -> None:
        super().__init__(shift=shift)
        self.s_in = InPort(shape=shape)
        self.a_out = OutPort(shape=(1, 1, shape[2]))


def grid_max_pool(x: np.ndarray, kernel: int, stride: int, padding: int, out_shape) -> np.ndarray:
    """Max over each (kernel x kernel) window of a (W, H, C) grid; padding never wins."""
    w, h, c = x.shape
    padded = np.full((w + 2 * padding, h + 2 * padding, c), np.iinfo(np.int64).min, dtype=np.int64)
    padded[padding:padding + w, padding:padding + h] = x
    ow, oh, _ = out_shape
    out = np.full((ow, oh, c), np.iinfo(np.int64).min, dtype=np.int64)
    for dx in range(kernel):
        for dy in range(kernel):
            out = np.maximum(out, padded[dx:dx + stride * ow:stride, dy:dy + stride * oh:stride])
    return out


@implements(proc=GridMaxPool, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyGridMaxPoolFixed(PyLoihiProcessModel):
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=GRADED)
    a_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=GRADED)

    def run_spk(self) -> None:
        p = self.proc_params
        out = grid_max_pool(self.s_in.recv(), p["kernel"], p["stride"], p["padding"], self.a_out.shape)
        self.a_out.send(out.astype(np.int32))


@implements(proc=AndTokenSum, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyAndTokenSumFixed(PyLoihiProcessModel):
    k: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=1)
    v: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=1)
    a_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=GRADED)

    def run_spk(self) -> None:
        counts = (self.k.recv().astype(np.int64) & self.v.recv().astype(np.int64)).sum(axis=(0, 1), keepdims=True)
        self.a_out.send(np.left_shift(counts, self.proc_params["out_shift"]).astype(np.int32))


@implements(proc=ChannelMask, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyChannelMaskFixed(PyLoihiProcessModel):
    q: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=1)
    m: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=1)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=1)

    def run_spk(self) -> None:
        self.s_out.send((self.q.recv() & self.m.recv()).astype(np.int32))


@implements(proc=TokenSum, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyTokenSumFixed(PyLoihiProcessModel):
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=GRADED)
    a_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=GRADED)

    def run_spk(self) -> None:
        total = self.s_in.recv().astype(np.int64).sum(axis=(0, 1), keepdims=True)
        self.a_out.send(np.right_shift(total, self.proc_params["shift"]).astype(np.int32))
