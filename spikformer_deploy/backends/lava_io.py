"""Lava I/O shared by the Lava and netx backends: input frames, the (W, H, C) layout, and a recording Process.

The recorder writes each step's input into a memory-mapped file: lava's ``io.sink.RingBuffer`` keeps its recording in
a Var, and ``Var.get()`` of megabytes takes minutes; a file that the parent reads after the run costs nothing.
"""
from __future__ import annotations

import multiprocessing
import multiprocessing.resource_tracker
import os
import signal
import sys
import threading
import time
import warnings
import contextlib
from contextlib import contextmanager

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.process.ports.ports import InPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from ..errors import DeployError, LavaRunError
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


# A run's limit: Lava's Python runtime does a step of every process in a few ms (digits verify: 24 steps x 66
# processes in 9.3 s, 5.9 ms each, start-up included); 50 ms each and a minute of start-up is far past any healthy run.
LIMIT_BASE_S = 60.0
LIMIT_PER_STEP_PROCESS_S = 0.05
LIMIT_ENV = "SPIKFORMER_LAVA_LIMIT_S"  # a fixed limit in seconds instead (the watchdog tests)


class _Stopped(BaseException):
    """Raised in the main thread by the watchdog's signal: Lava's wait on a dead child never returns by itself."""


class LavaWatchdog:
    """Watches a Lava run from a thread: when a child process exits during the run (killed, crashed: Lava's runtime
    would wait on it forever, lava-nc/lava#83), or the run outlives its limit (``LIMIT_BASE_S`` +
    ``LIMIT_PER_STEP_PROCESS_S`` x steps x processes), it interrupts the main thread; leaving the block then kills
    and reaps every child the run started, so that none is orphaned, and raises one ``LavaRunError`` naming the dead
    process and its signal."""

    def __init__(self, process, steps: int):
        self.process, self.steps = process, steps
        self.children: dict[int, object] = {}  # pid -> multiprocessing.Process, every child the run started
        self._before = child_pids()  # not the run's: never touched
        self.failure: str | None = None
        self._done = threading.Event()
        self._main = threading.main_thread().ident
        self._start = time.monotonic()

    def limit_s(self) -> float:
        fixed = os.environ.get(LIMIT_ENV)
        if fixed:
            return float(fixed)
        return LIMIT_BASE_S + LIMIT_PER_STEP_PROCESS_S * self.steps * max(1, len(self.children))

    def __enter__(self):
        self._previous = signal.signal(signal.SIGUSR1, self._interrupt)
        self._previous_hook = sys.unraisablehook
        sys.unraisablehook = self._unraisable
        self._thread = threading.Thread(target=self._watch, name="lava-watchdog", daemon=True)
        self._thread.start()
        return self

    @staticmethod
    def _interrupt(signum, frame):
        raise _Stopped

    def _unraisable(self, info) -> None:
        """Our interrupt, dropped where Python cannot raise (it is sent again): nothing to print."""
        if not isinstance(info.exc_value, _Stopped):
            self._previous_hook(info)

    def _watch(self) -> None:
        while not self._done.wait(0.1):
            for child in multiprocessing.active_children():
                if child.pid not in self._before:
                    self.children.setdefault(child.pid, child)
            dead = [c for c in self.children.values() if c.exitcode is not None]
            if dead:
                self.failure = (f"Lava process {_describe(dead[0], self.process)} {_exit_text(dead[0].exitcode)} "
                                f"during the run")
            elif time.monotonic() - self._start > self.limit_s():
                self.failure = (f"Lava made no progress within {self.limit_s():g} s ({self.steps} steps x "
                                f"{len(self.children)} processes)")
            if self.failure:
                break
        # again until the main thread is out: an exception raised where Python cannot pass it on (an at-fork hook,
        # a __del__) is dropped
        while self.failure and not self._done.is_set():
            signal.pthread_kill(self._main, signal.SIGUSR1)
            self._done.wait(0.2)

    def __exit__(self, kind, exc, tb):
        while self._thread.is_alive():
            try:
                self._done.set()
                self._thread.join()
            except _Stopped:  # a signal it sent as the run ended
                pass
        signal.signal(signal.SIGUSR1, self._previous)
        sys.unraisablehook = self._previous_hook
        if self.failure is None and kind is not _Stopped:
            return False
        manager = _shared_memory_manager(self.process)
        server = getattr(getattr(manager, "_manager", None), "_process", None)  # lava wraps multiprocessing's
        # Lava cannot stop with a dead member: end every child the run started. From /proc, not only the ones
        # multiprocessing knows: a child forked as the interrupt came may not be registered yet.
        tracker = getattr(multiprocessing.resource_tracker._resource_tracker, "_pid", None)  # it cleans up, later
        run_children = child_pids() - self._before - {getattr(server, "pid", None), tracker}
        for pid in run_children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.children.update({c.pid: c for c in multiprocessing.active_children() if c.pid not in self._before})
        for child in self.children.values():  # reaped (lava's join() takes no timeout)
            if child is not server:
                multiprocessing.Process.join(child, 5)
        for pid in run_children - set(self.children):
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        if manager is not None:  # last, and asked: it unlinks the run's shared memory (killed, it would leak it)
            manager.shutdown()
        raise LavaRunError(f"{self.failure or 'Lava run interrupted'}; stopped the run and its "
                           f"{len(self.children)} processes") from None


def _describe(child, process) -> str:
    """A Lava child by the Process it runs, and its pid. Lava starts one child per Process builder, in the order of
    its executable's builders, then the runtime services (lava/magma/runtime/runtime.py, _build_processes); lava
    keeps that order in private attributes, hence the fallback to the child's own name."""
    try:
        runtime = process.runtime
        procs = list(runtime._executable.proc_builders)
        index = runtime._messaging_infrastructure.actors.index(child)
        what = f"{type(procs[index]).__name__} '{procs[index].name}'" if index < len(procs) else "runtime service"
    except (AttributeError, ValueError, TypeError):
        what = child.name
    return f"{what} (pid {child.pid})"


def child_pids(parent: int | None = None) -> set[int]:
    """The live (not zombie) children of ``parent`` (default: this process), from /proc (Lava forks: Linux)."""
    me, found = parent or os.getpid(), set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            state, ppid = stat[stat.rindex(")") + 2:].split()[:2]
            if int(ppid) == me and state != "Z":
                found.add(int(entry))
    return found


def _shared_memory_manager(process):
    """The SharedMemoryManager of the run (lava's MultiProcessing.smm), or None."""
    try:
        return process.runtime._messaging_infrastructure.smm
    except AttributeError:
        return None


def _exit_text(code: int) -> str:
    if code < 0:
        return f"died of {signal.Signals(-code).name}"
    return f"exited with status {code}"


@contextmanager
def lava_run(process, steps: int):
    """Run the process graph of ``process`` on Loihi2SimCfg(fixed_pt) for ``steps`` steps under a ``LavaWatchdog``;
    inside the block the stopped-but-not-ended runtime can still be read (``Var.get``); it stops at the end."""
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg

    if threading.current_thread() is not threading.main_thread():
        raise DeployError("Lava runs from the main thread only (its watchdog interrupts that thread)")
    try:
        with LavaWatchdog(process, steps):  # not around stop(): its children exit then, as they should
            with warnings.catch_warnings():  # lava also searches the building module for custom ProcessModels
                warnings.filterwarnings("ignore", message="Cannot import module", category=UserWarning)
                process.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
            yield
    except LavaRunError:  # its processes are gone: nothing to stop
        raise
    except BaseException:
        process.stop()
        raise
    process.stop()


def run_fixed_pt(process, steps: int) -> None:
    """Run the process graph of ``process`` for ``steps`` steps (``lava_run``), then stop it."""
    with lava_run(process, steps):
        pass


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
