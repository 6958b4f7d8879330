"""fold_batchnorm, rewrite_ssa and quantize: what they produce, that meaning is kept, and their records."""
import numpy as np
import pytest
import torch

from support import load_fixture

from spikformer_deploy.backends.sim import Simulator
from spikformer_deploy.errors import ConfigError
from spikformer_deploy.frontends import trace
from spikformer_deploy.ir import GraphError
from spikformer_deploy.ir.ops import LIF, BatchNorm, Head, LoihiLIF, SpikingAttention
from spikformer_deploy.passes import (Calibration, cheaper_order, fold_batchnorm, quantize,
                                      run_passes)
from spikformer_deploy.pipeline import calibrate, float_graph, integer_graph


def test_fold_batchnorm_keeps_every_spike(fixture_variant):
    model, x, _, spikes = load_fixture(fixture_variant)
    traced = trace(model)
    folded = fold_batchnorm(traced)
    assert not folded.of_type(BatchNorm) and traced.of_type(BatchNorm)
    assert all(n.op.bias is not None for n in folded.having("synapse"))
    a, b = Simulator(traced).run(x), Simulator(folded).run(x)
    for name in spikes:
        assert torch.equal(a.spike_counts[name], b.spike_counts[name]), name
    assert len(folded.records[-1].nodes) == len(traced.of_type(BatchNorm))


def test_rewrite_ssa_moves_scale_and_picks_order(fixture_variant):
    model, x, _, spikes = load_fixture(fixture_variant)
    g = float_graph(model)
    cfg = model.config
    (ssa,) = g.of_type(SpikingAttention)
    assert ssa.op.rewritten and ssa.op.scale == 1.0
    assert ssa.op.order == ("q_kv" if cfg.head_dim < cfg.num_tokens else "qk_v")
    attn_lif = g.nodes["block.0.attn.attn_lif"].op
    assert attn_lif.v_threshold == 0.5 / cfg.attention_scale
    result = Simulator(g).run(x)  # the "exact" float mode of the rewritten graph
    for name, expected in spikes.items():
        assert torch.equal(result.spike_counts[name], expected), name
    assert cheaper_order(64, 32) == "q_kv" and cheaper_order(16, 64) == "qk_v"


@pytest.mark.parametrize("bits", [8, 4, 2])
def test_quantized_parameters_fit_loihi_formats(bits):
    model, x, *_ = load_fixture("cifar10")
    g = integer_graph(model, x, weight_bits=bits)
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    for n in g.having("synapse"):
        assert np.issubdtype(n.op.weight.dtype, np.integer) and n.op.bias is None
        assert lo <= n.op.weight.min() and n.op.weight.max() <= hi
        assert -8 <= n.op.weight_exp <= 7 and n.op.weight_bits == bits
    for n in g.of_type(LoihiLIF):
        assert 0 <= n.op.vth < 2**17 and 0 <= n.op.bias_exp <= 7
        assert np.abs(n.op.bias_mant).max(initial=0) < 2**12
        assert (n.op.du, n.op.dv) == (4095, 2048)
    assert not g.of_type(LIF)
    inp = g.input.op
    assert inp.bits == 8 and inp.signed  # the fixture images are signed randn
    record = g.records[-1]
    assert record.name == "quantize" and record.settings["weight_bits"] == bits
    assert {"step", "clipped_weights"} <= set(record.nodes["block.0.attn.q_linear"])


def test_attention_threshold_is_exact_after_quantization(fixture_variant):
    """attn_lif integer-exact: recompute the float LIF from the integer run's own q, k, v spikes."""
    model, x, *_ = load_fixture(fixture_variant)
    cfg = model.config
    g = integer_graph(model, x)
    names = [f"block.0.attn.{n}" for n in ("q_lif", "k_lif", "v_lif", "attn_lif")]
    out = Simulator(g, record=set(names)).run(x).outputs
    T, B, N, C = out[names[0]].shape
    q, k, v = (out[n].double().reshape(T, B, N, cfg.num_heads, cfg.head_dim).transpose(2, 3) for n in names[:3])
    drive = (((q @ k.transpose(-2, -1)) @ v) * cfg.attention_scale).transpose(2, 3).reshape(T, B, N, C)
    h_prev, expected = torch.zeros_like(drive[0]), []
    for t in range(T):  # spikingjelly's LIF, the original's attn_lif (threshold 0.5, ties fire)
        h = h_prev + (drive[t] - h_prev) / 2.0
        s = (h >= 0.5).double()
        expected.append(s)
        h_prev = h * (1 - s)
    assert torch.equal(out[names[3]].double(), torch.stack(expected))
    assert g.records[-1].nodes["block.0.attn.ssa"]["exact"]


def test_quantize_refuses_bad_settings_and_order():
    model, x, *_ = load_fixture("cifar10")
    g = float_graph(model)
    cal = calibrate(g, x)
    with pytest.raises(ConfigError, match="weight bits"):
        quantize(g, cal, weight_bits=9)
    with pytest.raises(ConfigError, match="input bits"):
        quantize(g, cal, input_bits=1)
    with pytest.raises(GraphError, match="rewrite_ssa"):
        quantize(fold_batchnorm(trace(model)), cal)
    assert isinstance(cal, Calibration) and cal.samples == len(x)


def test_run_passes_names_the_pass_that_broke_the_graph():
    model, *_ = load_fixture("cifar10")

    def corrupt(graph):
        g = graph.copy()
        g.nodes["head"].shape = (3,)
        return g

    with pytest.raises(GraphError, match="pass corrupt broke the graph"):
        run_passes(trace(model), [corrupt])


def test_head_is_integer_and_keeps_argmax():
    model, x, logits, _ = load_fixture("imagenet")
    g = integer_graph(model, x)
    (head,) = g.of_type(Head)
    assert np.issubdtype(head.op.weight.dtype, np.integer) and np.issubdtype(head.op.bias.dtype, np.integer)
    result = Simulator(g).run(x)
    assert torch.equal(result.int_logits, result.int_logits.round())
    assert torch.equal(result.predictions, result.int_logits.argmax(1))


@pytest.mark.parametrize("kind", ["normal", "laplace", "on_grid", "half_steps"])
@pytest.mark.parametrize("bits", [8, 4])
def test_weight_rounding_is_numpys(kind, bits):
    """The compiled weight rounding picks the same step and mantissas as numpy's formulas, written out here: round
    half to even, clip, squared error summed by numpy (ties between ratios included)."""
    from spikformer_deploy.passes.quantize import CLIP_RATIOS, choose_weight_step, round_weights, weight_levels

    rng = np.random.default_rng(bits)
    levels = weight_levels(bits)
    w = {"normal": lambda: rng.normal(0, 0.05, (64, 48, 3, 3)), "laplace": lambda: rng.laplace(0, 0.05, (96, 40)),
         "on_grid": lambda: np.round(rng.normal(0, 30, (32, 32))).clip(*levels) * 0.01,
         "half_steps": lambda: (rng.integers(-40, 40, (50, 20)) + 0.5) * 0.125}[kind]()
    peak, best = float(np.abs(w).max()), None
    for ratio in CLIP_RATIOS:
        step = ratio * peak / levels[1]
        scaled = w / step
        q = np.clip(np.round(scaled), *levels).astype(np.int8)
        clipped = int(((scaled > levels[1] + 0.5) | (scaled < levels[0] - 0.5)).sum())
        err = float(((q * step - w) ** 2).sum())
        if best is None or err < best[0]:
            best = (err, step, q, clipped)
    step, q, clipped = choose_weight_step(w, levels)
    assert (step, clipped) == (best[1], best[3]) and q.dtype == np.int8 and np.array_equal(q, best[2])
    q2, clipped2 = round_weights(w, step * 0.7, levels)
    assert np.array_equal(q2, np.clip(np.round(w / (step * 0.7)), *levels).astype(np.int8))
    assert clipped2 == int(((w / (step * 0.7) > levels[1] + 0.5) | (w / (step * 0.7) < levels[0] - 0.5)).sum())
