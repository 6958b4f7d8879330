"""The CPU's compiled kernels (oneDNN int8 synapses, numba LIF and spike sums) against the portable torch code that
CUDA runs: same spikes in every layer, same logits, same counters and calibration maxima, bit for bit."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from support import BUNDLED_FMNIST, FMNIST_TEST, FMNIST_TRAIN, PILOTNET, load_fixture

from spikformer_deploy import load_checkpoint
from spikformer_deploy.backends.sim import Simulator, int8_gemm
from spikformer_deploy.data import load_data
from spikformer_deploy.frontends import read_netx
from spikformer_deploy.ir import Graph
from spikformer_deploy.ir.ops import Dense, Flatten, Head, Input, LoihiLIF
from spikformer_deploy.pipeline import integer_graph, integer_graph_from


def assert_same_run(graph: Graph, x: torch.Tensor) -> Simulator:
    native = Simulator(graph, record="spikes")
    portable = Simulator(graph, record="spikes", native_kernels=False)
    a, b = native.run(x), portable.run(x)
    if a.int_logits is not None:
        assert torch.equal(a.int_logits, b.int_logits)
    assert torch.equal(a.logits, b.logits)
    assert a.outputs.keys() == b.outputs.keys() and a.outputs
    for name, spikes in b.outputs.items():
        assert a.outputs[name].dtype == spikes.dtype and torch.equal(a.outputs[name], spikes), name
        assert torch.equal(a.spike_counts[name], b.spike_counts[name]), name
    assert a.counters.counts.keys() == b.counters.counts.keys()
    for node, counts in b.counters.counts.items():
        assert counts.keys() == a.counters.counts[node].keys(), node
        for key, values in counts.items():
            np.testing.assert_array_equal(a.counters.counts[node][key], values, err_msg=f"{node} {key}")
    assert a.counters.maxima == b.counters.maxima
    return native


def test_bundled_fashion_mnist_model():
    model = load_checkpoint(BUNDLED_FMNIST)
    x, _ = load_data(FMNIST_TEST, model.config)
    x_cal, _ = load_data(FMNIST_TRAIN, model.config)
    _, graph = integer_graph_from(model, x_cal)
    sim = assert_same_run(graph, x[:48])
    if int8_gemm.available():  # every synapse of the deployed model runs on the int8 kernels
        synapses = [n.name for n in graph.nodes.values() if n.op.synapse]
        assert synapses and all("int8" in sim.params[name] for name in synapses)
    # spikes recorded as their kernels made them (what simulate compares): the same values, uint8
    made = Simulator(graph, record="spikes", spikes_as_made=True).run(x[:48]).outputs
    widened = Simulator(graph, record="spikes").run(x[:48]).outputs
    assert any(t.dtype == torch.uint8 for t in made.values())  # the compiled LIF's
    assert all(torch.equal(made[k].to(widened[k].dtype), widened[k]) for k in widened)


def test_signed_input_keeps_float_synapse():
    """The imagenet fixture's inputs are signed: its first convolution stays in float, its neurons still native."""
    model, x, *_ = load_fixture("imagenet")
    graph = integer_graph(model, x)
    assert graph.input.op.signed
    sim = assert_same_run(graph, x)
    first = next(n for n in graph.nodes.values() if n.op.synapse)
    assert "int8" not in sim.params[first.name]


def test_pilotnet_current_decay_and_strided_convolutions():
    """Intel's PilotNet (netx): dv = 1024 (a decay float32 cannot carry), strides (2, 1), a dense tail."""
    pack = PILOTNET
    graph = read_netx(pack / "network.net", steps=12)
    frame = torch.tensor(np.load(pack / "image.npy").transpose(2, 1, 0)[None], dtype=torch.float32)
    assert_same_run(graph, frame.repeat(2, 1, 1, 1))


@pytest.mark.parametrize("du", [4095, 3000, 0])
def test_wrap_saturation_and_current_memory(du):
    """Drives past 2**23 (u wraps, v saturates), with and without current memory, graded 8-bit events."""
    rng = np.random.default_rng(du)
    n_in, n_out, steps = 48, 32, 10
    g = Graph("integer")
    g.add("input", Input(shape=(n_in, 1, 1), kind="events", steps=steps, bits=8), [])
    g.add("tokens", Flatten(), ["input"])
    weight = rng.integers(-128, 128, size=(n_out, n_in)).astype(np.int8)
    g.add("dense", Dense(weight=weight, weight_exp=7, weight_bits=8), ["tokens"])
    bias = rng.integers(-800, 800, size=n_out).astype(np.int32)
    g.add("lif", LoihiLIF(vth=5000, bias_mant=bias, bias_exp=3, du=du, dv=1000), ["dense"])
    g.add("head", Head(weight=np.ones((2, n_out), dtype=np.int32), bias=np.zeros(2, dtype=np.int64), scale=1.0),
          ["lif"])
    events = rng.integers(0, 256, size=(3, steps, n_in, 1, 1)) * (rng.random((3, steps, n_in, 1, 1)) < 0.5)
    sim = assert_same_run(g, torch.tensor(events, dtype=torch.float32))
    maxima = sim.run(torch.tensor(events, dtype=torch.float32)).counters.maxima["lif"]
    assert maxima["max_abs_v"] == 2**23 - 1 and maxima["max_abs_u"] >= 2**22  # the extremes were reached


def cpu_flags() -> set[str]:
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    return {flag for line in text.splitlines() if line.startswith("flags") for flag in line.split(":")[1].split()}


def test_int8_kernels_exact_on_extreme_values():
    """Where the CPU has VNNI the int8 path must be on (the benchmark's figures rest on it), and its results are
    those of float arithmetic: 8-bit pixels at 255 against weights at -128 and 127, strided and padded."""
    if cpu_flags() & {"avx512_vnni", "avx_vnni", "amx_int8"}:
        assert int8_gemm.available()
    if not int8_gemm.available():
        return
    rng = np.random.default_rng(0)
    w = rng.integers(-128, 128, size=(24, 16, 3, 2)).astype(np.int8)
    w[:4] = -128
    x = torch.tensor(rng.integers(0, 256, size=(6, 16, 11, 9)), dtype=torch.float32)
    x[:2] = 255
    expected = torch.nn.functional.conv2d(x.double(), torch.tensor(w, dtype=torch.float64), None, (2, 1), (1, 0))
    assert torch.equal(int8_gemm.Conv(w, (2, 1), (1, 0))(x).double(), expected)
    dense = w[:, :, 0, 0]
    tokens = x.flatten(2).transpose(1, 2)
    assert torch.equal(int8_gemm.Linear(dense)(tokens).double(),
                       tokens.double() @ torch.tensor(dense, dtype=torch.float64).T)


def test_lava_imports_after_the_native_kernels_ran():
    """numba's thread start-up fixes multiprocessing's start method, and lava's import then fails setting it: the
    kernels undo that. In a fresh process, as ``verify`` runs the simulator and then Lava."""
    script = ("import torch\n"
              "from spikformer_deploy.backends.sim import cpu_kernels\n"
              "cpu_kernels.position_sums((torch.rand(4, 2, 8, 3) < 0.5).to(torch.uint8))\n"
              "import lava.magma.runtime.message_infrastructure.multiprocessing\n"
              "print('imported')\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "imported", done.stderr[-2000:]
