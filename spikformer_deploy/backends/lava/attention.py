"""A Lava Process for spiking self-attention, with a fixed-point ProcessModel: AND / popcount / gated additions.

Inputs q, k, v: binary spikes on the token grid ``(W, H, C)`` (Lava's layout; token n = h * W + w). Output: the
integer ``M = Q Kᵀ V`` per head, shifted left by ``out_shift``, sent in the same time step (it feeds attn_lif's
``a_in``). On Loihi 2 this runs on the embedded x86 cores; here it is a CPU ProcessModel.
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


class SpikingSelfAttention(AbstractProcess):
    def __init__(self, *, shape: tuple[int, int, int], num_heads: int, head_dim: int, order: str, out_shift: int,
                 name: str | None = None) -> None:
        super().__init__(shape=shape, num_heads=num_heads, head_dim=head_dim, order=order, out_shift=out_shift,
                         name=name)
        self.q = InPort(shape=shape)
        self.k = InPort(shape=shape)
        self.v = InPort(shape=shape)
        self.a_out = OutPort(shape=shape)


def attention_product(q: np.ndarray, k: np.ndarray, v: np.ndarray, num_heads: int, head_dim: int,
                      order: str) -> np.ndarray:
    """Integer ``Q Kᵀ V`` per head on ``(W, H, C)`` spike grids; same layout out."""
    w, h, c = q.shape

    def heads(x):  # (W, H, C) -> [heads, N, d], token n = row * W + col
        return x.transpose(1, 0, 2).reshape(h * w, num_heads, head_dim).transpose(1, 0, 2).astype(np.int64)

    Q, K, V = heads(q), heads(k), heads(v)
    m = (Q @ K.transpose(0, 2, 1)) @ V if order == "qk_v" else Q @ (K.transpose(0, 2, 1) @ V)
    return m.transpose(1, 0, 2).reshape(h, w, c).transpose(1, 0, 2)


@implements(proc=SpikingSelfAttention, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PySpikingSelfAttentionFixed(PyLoihiProcessModel):
    q: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=1)
    k: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=1)
    v: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=1)
    a_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)

    def run_spk(self) -> None:
        p = self.proc_params
        m = attention_product(self.q.recv(), self.k.recv(), self.v.recv(), p["num_heads"], p["head_dim"],
                              p["order"])
        self.a_out.send(np.left_shift(m, p["out_shift"]).astype(np.int32))
