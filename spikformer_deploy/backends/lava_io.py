"""Lava I/O shared by the Lava and netx backends: input frames, the (W, H, C) layout, and a recording Process.

The recorder writes each step's input into a memory-mapped file: lava's ``io.sink.RingBuffer`` keeps its recording in
a Var, and ``Var.get()`` of megabytes takes minutes; a file that the parent reads after the run costs nothing.
"""
from __future__ import annotations

import warnings

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


def source_data(op: Input, x: np.ndarray, T: int, steps: int) -> np.ndarray:
    """The input for ``io.source.RingBuffer``: each sample's T frames back to back, (W, H, C, steps), zeros after."""
    frames = input_frames(op, np.asarray(x, dtype=np.float64), T)
    data = np.stack([to_whc(frames[b, t]) for b in range(len(frames)) for t in range(T)], axis=-1)
    return np.concatenate([data, np.zeros((*data.shape[:3], steps - data.shape[-1]))], axis=-1).astype(np.int32)


def attach_recorder(port, steps: int, path: str) -> tuple[str, tuple[int, ...]]:
    """Record ``port`` at every step of the run into ``path``; returns (path, shape). The Recorder joins the
    process graph through its connection."""
    shape = tuple(int(d) for d in port.shape)
    open_recording(path, steps, shape, "w+").flush()
    port.connect(Recorder(shape=shape, steps=steps, path=path).a_in)
    return path, shape


def run_fixed_pt(process, steps: int) -> None:
    """Run the process graph of ``process`` on Loihi2SimCfg(fixed_pt) for ``steps`` steps, then stop it."""
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg

    try:
        with warnings.catch_warnings():  # lava also searches the building module for custom ProcessModels
            warnings.filterwarnings("ignore", message="Cannot import module", category=UserWarning)
            process.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
    finally:
        process.stop()


def read_aligned(recording: tuple[str, tuple[int, ...]], steps: int, depth: int, T: int, batch: int,
                 ir_shape: tuple[int, ...]) -> np.ndarray:
    """A recording of a node whose step-0 output appears at Lava step ``depth``, as ``[T, B, ...]`` in the
    simulator's layout (images [T, B, C, H, W], tokens [T, B, N, C] with token n = h * W + w)."""
    path, shape = recording
    idx = np.array([[depth - 1 + b * T + t for b in range(batch)] for t in range(T)])
    cube = np.moveaxis(np.array(open_recording(path, steps, shape, "r")), 0, -1)[..., idx]  # (W, H, C, T, B)
    if len(ir_shape) == 3:
        return np.ascontiguousarray(cube.transpose(3, 4, 2, 1, 0))
    w, h, c = cube.shape[:3]
    return np.ascontiguousarray(cube.transpose(3, 4, 1, 0, 2).reshape(T, batch, h * w, c))


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
