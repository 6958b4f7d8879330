"""Measured GPU reference: the float model (T unrolled) on CUDA, energy read from NVML's total-energy counter.

NVML is reached through ctypes (libnvidia-ml.so.1 ships with the driver), so no extra package is needed. Method:
idle power is the counter's slope over ``idle_seconds`` just before the run; then the model runs at ``batch``
for ``seconds`` after a warm-up; J per image = counter delta / images (raw) and minus idle power x time
(idle-subtracted). ``nvmlDeviceGetTotalEnergyConsumption`` needs a Volta or newer GPU.
"""
from __future__ import annotations

import ctypes
import time

import torch

from .errors import GpuMeasurementUnavailable


class _Nvml:
    def __init__(self, index: int):
        try:
            self.lib = ctypes.CDLL("libnvidia-ml.so.1")
        except OSError:
            raise GpuMeasurementUnavailable("NVML (libnvidia-ml.so.1) is not available") from None
        self._check(self.lib.nvmlInit_v2(), "nvmlInit")
        self.handle = ctypes.c_void_p()
        self._check(self.lib.nvmlDeviceGetHandleByIndex_v2(index, ctypes.byref(self.handle)), "device handle")

    @staticmethod
    def _check(code: int, what: str) -> None:
        if code != 0:
            raise GpuMeasurementUnavailable(f"NVML {what} failed (code {code})")

    def energy_j(self) -> float:
        mj = ctypes.c_ulonglong()
        self._check(self.lib.nvmlDeviceGetTotalEnergyConsumption(self.handle, ctypes.byref(mj)), "energy counter")
        return mj.value / 1000.0

    def name(self) -> str:
        buf = ctypes.create_string_buffer(96)
        self._check(self.lib.nvmlDeviceGetName(self.handle, buf, 96), "device name")
        return buf.value.decode()


def measure_float_reference(model: torch.nn.Module, sample: torch.Tensor, batch: int = 256, seconds: float = 5.0,
                            idle_seconds: float = 2.0, device_index: int = 0) -> dict:
    if not torch.cuda.is_available():
        raise GpuMeasurementUnavailable("CUDA is not available: GPU figures are analytic estimates only")
    nvml = _Nvml(device_index)
    device = torch.device(f"cuda:{device_index}")
    model = model.to(device).eval()
    x = sample[:1].to(device).repeat(batch, *([1] * (sample.ndim - 1)))
    with torch.no_grad():
        for _ in range(3):  # warm-up: kernels, allocator
            model(x)
        torch.cuda.synchronize(device)
        e0, t0 = nvml.energy_j(), time.perf_counter()
        time.sleep(idle_seconds)
        idle_power = (nvml.energy_j() - e0) / (time.perf_counter() - t0)
        images, e1, t1 = 0, nvml.energy_j(), time.perf_counter()
        while time.perf_counter() - t1 < seconds:
            model(x)
            images += batch
            torch.cuda.synchronize(device)
        elapsed, energy = time.perf_counter() - t1, nvml.energy_j() - e1
    return {"gpu": nvml.name(), "kind": "measured", "batch": batch, "seconds": elapsed, "images": images,
            "images_per_s": images / elapsed, "J_per_image": energy / images,
            "J_per_image_idle_subtracted": (energy - idle_power * elapsed) / images,
            "idle_power_W": idle_power, "mean_power_W": energy / elapsed,
            "method": "NVML total-energy counter around a timed run of the float model (T unrolled); idle power from "
                      "the counter's slope just before"}
