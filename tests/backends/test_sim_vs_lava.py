"""The simulator's integer neuron and synapse against Lava's own bit-accurate models (Loihi2SimCfg fixed_pt)."""
import numpy as np
import pytest
import torch

from spikformer_deploy.backends.sim import Simulator
from spikformer_deploy.ir import Graph
from spikformer_deploy.ir.ops import Dense, Flatten, Head, Input, LoihiLIF


def one_layer_graph(w, weight_exp, vth, bias_mant, bias_exp):
    n_out, n_in = w.shape
    g = Graph("integer")
    g.add("input", Input(shape=(n_in, 1, 1), kind="events", steps=8, bits=8), [])
    g.add("tokens", Flatten(), ["input"])
    g.add("dense", Dense(weight=w, weight_exp=weight_exp, weight_bits=8), ["tokens"])
    g.add("lif", LoihiLIF(vth=vth, bias_mant=bias_mant, bias_exp=bias_exp), ["dense"])
    g.add("head", Head(weight=np.ones((1, n_out), dtype=np.int32), bias=np.zeros(1, dtype=np.int64), scale=1.0),
          ["lif"])
    return g


def run_lava(w, weight_exp, vth, bias_mant, bias_exp, spikes_in, graded):
    """Dense + LIF in Lava; returns output spikes [T, n_out] aligned to the input's time axis."""
    from lava.proc.dense.process import Dense as LavaDense
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source
    from lava.proc.lif.process import LIF as LavaLIF

    from spikformer_deploy.backends.lava_io import lava_run

    n_out, n_in = w.shape
    T = spikes_in.shape[0]
    # Lava keeps only even 8-bit mixed-sign weights: store 2w with one exponent less, as netx does.
    src = Source(data=np.concatenate([spikes_in.T, np.zeros((n_in, 1))], axis=1).astype(np.int32))
    dense = LavaDense(weights=2 * w, weight_exp=int(weight_exp) - 1, num_weight_bits=8,
                      num_message_bits=8 if graded else 0)
    # The Dense's one-step delay gives the LIF a first step with bias only (v = bias). Start at v = -2 * bias so that
    # step lands on v = 0, where the simulator's first step starts.
    v0 = -2 * (bias_mant.astype(np.int64) << bias_exp)
    lif = LavaLIF(shape=(n_out,), du=4095, dv=2048, vth=int(vth), bias_mant=bias_mant, bias_exp=int(bias_exp), v=v0)
    sink = Sink(shape=(n_out,), buffer=T + 1)
    src.s_out.connect(dense.s_in)
    dense.a_out.connect(lif.a_in)
    lif.s_out.connect(sink.a_in)
    with lava_run(sink, T + 1):  # under the watchdog, as every Lava run of the package
        out = sink.data.get()
    return out[:, 1:].T  # the Dense delays by one step


@pytest.mark.parametrize("graded,weight_exp,seed", [(False, 0, 0), (True, -2, 1), (False, 5, 2), (True, 7, 3)])
def test_dense_lif_bit_exact_with_lava(graded, weight_exp, seed):
    rng = np.random.default_rng(seed)
    n_in, n_out, T = 40, 24, 8
    w = rng.integers(-128, 128, size=(n_out, n_in)).astype(np.int32)
    spikes = rng.integers(0, 4 if graded else 2, size=(T, n_in)) * (rng.random((T, n_in)) < 0.4)
    bias_mant = rng.integers(-800, 800, size=n_out).astype(np.int32)
    vth, bias_exp = max(1, int(rng.integers(50, 300) * 2.0**weight_exp)), int(rng.integers(0, 8))
    sim = Simulator(one_layer_graph(w, weight_exp, vth, bias_mant, bias_exp), record={"lif"})
    result = sim.run(torch.tensor(spikes, dtype=torch.float32).reshape(1, T, n_in, 1, 1))
    ours = result.outputs["lif"][:, 0, 0, :].numpy()
    lava = run_lava(w, weight_exp, vth, bias_mant, bias_exp, spikes, graded)
    assert ours.sum() > 0 and (ours == 0).sum() > 0, "degenerate case: no or only spikes"
    np.testing.assert_array_equal(ours, lava)
    if weight_exp == 7:  # drive past 2**23: u wraps and v saturates the same way in both
        assert result.counters.maxima["lif"]["max_abs_v"] == 2**23 - 1
