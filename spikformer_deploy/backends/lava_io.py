"""Lava I/O shared by the Lava and netx backends: input frames, the (W, H, C) layout, and a recording Process.

The recorder writes each step's input into a memory-mapped file: lava's ``io.sink.RingBuffer`` keeps its recording in
a Var, and ``Var.get()`` of megabytes takes minutes; a file that the parent reads after the run costs nothing.
"""
from __future__ import annotations

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.process.ports.ports import InPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from ..ir.ops import Input


def input_frames(op: Input, x: np.ndarray, T: int) -> np.ndarray:
    """The integers the simulator feeds: [B, T, C, H, W]."""
    if op.kind == "events":
        return np.clip(np.round(x), 0, 2 ** (op.bits or 8) - 1).astype(np.int64)
    lo, hi = (-(2 ** (op.bits - 1)), 2 ** (op.bits - 1) - 1) if op.signed else (0, 2**op.bits - 1)
    q = np.clip(np.round(x * op.scale), lo, hi).astype(np.int64)
    return np.repeat(q[:, None], T, axis=1)


def to_whc(a: np.ndarray) -> np.ndarray:
    """[C, H, W] -> Lava's (W, H, C)."""
    return np.ascontiguousarray(np.transpose(a, (2, 1, 0)))


class Recorder(AbstractProcess):
    def __init__(self, *, shape: tuple[int, ...], steps: int, path: str, name: str | None = None) -> None:
        super().__init__(shape=shape, steps=steps, path=path, name=name)
        self.a_in = InPort(shape=shape)


def open_recording(path: str, steps: int, shape: tuple[int, ...], mode: str) -> np.memmap:
    return np.memmap(path, dtype=np.int32, mode=mode, shape=(steps, *shape))


@implements(proc=Recorder, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyRecorderFixed(PyLoihiProcessModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)

    def run_spk(self) -> None:
        p = self.proc_params
        if not hasattr(self, "_file"):
            self._file = open_recording(p["path"], p["steps"], p["shape"], "r+")
        self._file[self.time_step - 1] = self.a_in.recv()
        if self.time_step == p["steps"]:
            self._file.flush()
