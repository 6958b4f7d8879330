"""The guarded float32 reference (``backends/sim/guard.py``): the float64 reference's spikes and logits, decision by
decision, on the original-code fixtures, the bundled models and decisions placed at the threshold on purpose."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from support import (BUNDLED, BUNDLED_FMNIST, FAMILY_CASES, FMNIST_TEST, assert_reproduces_fixture, load_family_fixture,
                     load_fixture)

from spikformer_deploy import load_checkpoint
from spikformer_deploy.backends.sim import Simulator
from spikformer_deploy.backends.sim.cpu_kernels import float_lif
from spikformer_deploy.backends.sim.guard import guard_plan, split_weights
from spikformer_deploy.data import load_data
from spikformer_deploy.ir.ops import Dense
from spikformer_deploy.pipeline import float_graph


def both(graph, x):
    """(float64 run, guarded run, the guarded simulator), both recording every spike."""
    fast = Simulator(graph, count=False, record="spikes")
    return Simulator(graph, count=False, record="spikes", precision="float64").run(x), fast.run(x), fast


def assert_same(reference, guarded):
    assert reference.outputs.keys() == guarded.outputs.keys()
    for name, spikes in reference.outputs.items():
        assert torch.equal(spikes, guarded.outputs[name].double()), name
    assert torch.equal(reference.logits, guarded.logits)


@pytest.mark.parametrize("variant", ["cifar10", "imagenet", "cifar10dvs"])
def test_guarded_reference_reproduces_the_original_code(variant):
    model, x, logits, spikes = load_fixture(variant)
    graph = float_graph(model)
    assert guard_plan(graph) is not None  # Spikformer's float graph is one the guard applies to
    reference, guarded, sim = both(graph, x)
    assert sim.float_dtype == torch.float32
    assert_same(reference, guarded)
    assert_reproduces_fixture(guarded, logits, spikes)


@pytest.mark.parametrize("checkpoint", [BUNDLED, BUNDLED_FMNIST], ids=["digits", "fmnist"])
def test_guarded_reference_equals_float64_on_the_bundled_models(checkpoint):
    model = load_checkpoint(checkpoint)
    x = load_data(FMNIST_TEST, model.config)[0][:64]
    reference, guarded, _ = both(float_graph(model), x)
    assert_same(reference, guarded)


@pytest.mark.parametrize("case", FAMILY_CASES)
def test_real_valued_streams_run_in_float64(case):
    """A membrane shortcut carries real values that float32 would round between layers: no guard, float64."""
    graph = float_graph(load_family_fixture(case)[0])
    assert guard_plan(graph) is None
    assert Simulator(graph, count=False).float_dtype == torch.float64


def test_decisions_at_the_threshold_are_repaired():
    """Drives put 4e-15 above or below the threshold (float64 tells them apart; float32's rounding, 1e-7, does not):
    the guard flags them, recomputes their rows in float64 and takes float64's decisions."""
    model = load_checkpoint(BUNDLED)
    x = load_data(FMNIST_TEST, model.config)[0][:8]
    graph = float_graph(model)
    name = next(n.name for n in graph.nodes.values() if isinstance(n.op, Dense) and "fc1" in n.name)
    node, lif = graph.nodes[name], graph.consumers(name)[0]
    recorded = Simulator(graph, count=False, record={name, node.inputs[0]}, precision="float64").run(x).outputs
    # the token with the most input at step 0 (v starts at 0 there, so v = drive)
    b, n = divmod(int(recorded[node.inputs[0]][0].sum(-1).argmax()), recorded[name].shape[2])
    drive, spikes_in = recorded[name][0, b, n].numpy(), recorded[node.inputs[0]][0, b, n]
    offsets = np.where(np.arange(len(node.op.bias)) % 2 == 0, 4e-15, -4e-15)  # 18 float64 ulps of the threshold
    # there every channel lands 4e-15 from the threshold
    bias = np.asarray(node.op.bias, np.float64) + lif.op.threshold - drive + offsets
    node.op = dataclasses.replace(node.op, bias=bias)
    reference, guarded, sim = both(graph, x)
    assert_same(reference, guarded)
    assert sim.repaired.get(lif.name, 0) >= 1
    # the channels' decisions there follow the offsets' signs: float64 tells them apart
    assert torch.equal(reference.outputs[lif.name][0, b, n], torch.tensor(offsets > 0, dtype=torch.float64))
    # float32 alone does not: its drive gets some of them wrong
    plain = spikes_in.float() @ torch.tensor(node.op.weight.T, dtype=torch.float32) \
        + torch.tensor(bias, dtype=torch.float32)
    assert not torch.equal((plain >= lif.op.threshold).double(), reference.outputs[lif.name][0, b, n])


def test_inputs_float32_cannot_hold_run_in_float64():
    model = load_checkpoint(BUNDLED)
    x = load_data(FMNIST_TEST, model.config)[0][:4].double() + 1e-12
    reference, guarded, _ = both(float_graph(model), x)
    assert_same(reference, guarded)


def test_split_weights_are_exact_sums_in_float32():
    """w_hi's sums are exact in float32 for every input within the bound; w_hi + w_lo = w to float32's rounding."""
    rng = np.random.default_rng(0)
    op = Dense(weight=rng.normal(0, 0.1, (16, 384)), bias=None)
    stacked, _ = split_weights(op, 5.0)
    hi, lo, ones = stacked[:16].astype(np.float64), stacked[16:32].astype(np.float64), stacked[32:]
    assert np.array_equal(ones, np.ones((1, 384), np.float32))
    x = rng.integers(0, 6, (64, 384))
    exact = x @ hi.T  # float64 sums of these integers are exact
    assert np.array_equal((torch.tensor(x, dtype=torch.float32) @ torch.tensor(hi.T, dtype=torch.float32)).double()
                          .numpy(), exact)
    assert np.abs(hi + lo - op.weight).max() <= 2.0**-24 * np.abs(lo).max()


def test_compiled_lif_is_the_float64_recurrence():
    """The compiled float LIF against the recurrence written out: v = v * decay + a, fire on v >= threshold."""
    rng = np.random.default_rng(1)
    drive = torch.tensor(rng.normal(0.6, 0.8, (4, 3, 5, 7)))  # [T, B, N, C]
    decay, threshold = 0.5, 1.0
    v, expected, top = np.zeros((3, 5, 7)), [], 0.0
    for t in range(4):
        v = v * decay + drive[t].numpy()
        top = max(top, np.abs(v).max())
        fired = v >= threshold
        expected.append(fired)
        v = np.where(fired, 0.0, v)
    spikes, flags, vmax = float_lif(drive.clone(), decay, threshold)
    assert flags is None and vmax == top
    assert np.array_equal(spikes.numpy(), np.array(expected, np.float64))
