"""simulate --record: per-step outputs and neuron states on the simulator's time axis, checked against lava's own
bit-accurate LIF model and against the run without recording."""
import json

import numpy as np
import pytest
import torch

from support import BUNDLED, PILOTNET, run_cli

from spikformer_deploy import load_checkpoint
from spikformer_deploy.api import simulate
from spikformer_deploy.backends.sim import Simulator
from spikformer_deploy.data import digits_split
from spikformer_deploy.errors import DataError
from spikformer_deploy.ir.ops import LoihiLIF


def lava_lif_states(op: LoihiLIF, drive: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """u, v (after each step) and spikes of lava's PyLifModelBitAcc, its own code driven by ``drive`` [T, ..., C]
    (channels last, the bias per channel)."""
    from lava.proc.lif.models import PyLifModelBitAcc

    model = PyLifModelBitAcc({})
    shape = drive.shape[1:]
    model.u, model.v = np.zeros(shape, np.int32), np.zeros(shape, np.int32)
    model.du, model.dv, model.vth = op.du, op.dv, op.vth
    model.bias_mant, model.bias_exp = np.broadcast_to(op.bias_mant, shape).astype(np.int32), op.bias_exp
    model.scale_bias()
    model.scale_threshold()
    us, vs, spikes = [], [], []
    for a in drive.astype(np.int32):
        model.subthr_dynamics(activation_in=a)
        s = model.spiking_activation()
        model.v[s] = 0
        us.append(model.u.copy()), vs.append(model.v.copy()), spikes.append(s)
    return np.array(us), np.array(vs), np.array(spikes)


def test_states_equal_lavas_lif_model_and_spikes_are_unchanged():
    x = digits_split(16)[0][:6]
    from spikformer_deploy.pipeline import integer_graph

    graph = integer_graph(load_checkpoint(BUNDLED), x)
    lifs = [n for n in graph.of_type(LoihiLIF) if graph.nodes[n.inputs[0]].op.synapse][:4]
    plain = Simulator(graph, record="spikes").run(x)
    traced = Simulator(graph, record={*(n.inputs[0] for n in lifs), *(n.name for n in graph.having("spiking"))},
                       record_states=[n.name for n in lifs]).run(x)
    for name, spikes in plain.outputs.items():
        assert torch.equal(spikes.float(), traced.outputs[name].float()), name
    assert torch.equal(plain.int_logits, traced.int_logits)
    for node in lifs:
        drive = traced.outputs[node.inputs[0]].numpy()
        if drive.ndim == 5:  # images [T, B, C, H, W]: channels last for the per-channel bias
            drive = drive.transpose(0, 1, 3, 4, 2)
        u, v, s = lava_lif_states(node.op, drive)
        ours = {k: t.numpy() for k, t in traced.states[node.name].items()}
        spikes = traced.outputs[node.name].numpy()
        if ours["v"].ndim == 5:
            ours = {k: a.transpose(0, 1, 3, 4, 2) for k, a in ours.items()}
            spikes = spikes.transpose(0, 1, 3, 4, 2)
        np.testing.assert_array_equal(ours["u"], u, err_msg=node.name)
        np.testing.assert_array_equal(ours["v"], v, err_msg=node.name)
        np.testing.assert_array_equal(spikes, s, err_msg=node.name)
        assert s.any() and (v != 0).any()


def test_traces_over_batches_are_the_one_run():
    model = load_checkpoint(BUNDLED)
    x = digits_split(16)[0][:10]
    names = ("block.0.attn.q_lif", "patch_embed.proj_conv")
    run = simulate(model, x, calibration_x=x, batch=4, record=names)
    assert set(run.traces) == {*names, "block.0.attn.q_lif.u", "block.0.attn.q_lif.v"}
    assert run.traces["block.0.attn.q_lif"].shape[:2] == (4, 10)
    whole = Simulator(run.graph, record=set(names), record_states=[names[0]]).run(x)
    np.testing.assert_array_equal(run.traces[names[1]], whole.outputs[names[1]].numpy())
    np.testing.assert_array_equal(run.traces[names[0] + ".v"], whole.states[names[0]]["v"].numpy())
    with pytest.raises(DataError, match="only for integer neurons"):
        Simulator(run.graph, record_states=["patch_embed.proj_conv"])


def test_record_cli_writes_one_npz_with_its_meaning(tmp_path, capsys):
    out = tmp_path / "t.npz"
    rc, text, err = run_cli(capsys, "simulate", "--samples", "4", "--batch", "3", "--record",
                            "block.0.attn.attn_lif,block.0.attn.ssa.sum,head", "--record-out", str(out), "--json")
    assert rc == 0, err
    assert json.loads(text)["record"]["arrays"]["block.0.attn.attn_lif.v"] == [4, 4, 16, 64]
    z = np.load(out)
    meta = json.loads(str(z["meta"]))
    assert set(z.files) == {"block.0.attn.attn_lif", "block.0.attn.attn_lif.u", "block.0.attn.attn_lif.v",
                            "block.0.attn.ssa.sum", "head", "meta"}
    assert z["head"].shape == (1, 4, 10) and meta["arrays"]["head"]["layout"].startswith("[1, inputs, classes]")
    assert meta["arrays"]["block.0.attn.attn_lif.v"]["layout"] == "[T, inputs, N, C]"
    # the delay rule's steps (Lava's time axis): a neuron fires in the step its synapses deliver
    assert meta["depths"]["block.0.attn.attn_lif"] == meta["depths"]["block.0.attn.ssa.sum"] > 4
    assert set(np.unique(z["block.0.attn.attn_lif"])) <= {0, 1}
    for args, message in ((["--record", "nowhere", "--record-out", str(tmp_path / "n.npz")], "no node 'nowhere'"),
                          (["--record", "block.0.attn.q_lif"], "go together"),
                          (["--record", ",", "--record-out", str(tmp_path / "e.npz")], "names no node")):
        rc, _, err = run_cli(capsys, "simulate", "--samples", "2", *args)
        assert rc == 2 and message in err and "Traceback" not in err, err
    assert not (tmp_path / "n.npz").exists()


def test_record_a_netx_network(tmp_path, capsys):
    """Every network kind: a lava-dl netx network's layers too (Intel's PilotNet LIF, its own frame)."""
    out = tmp_path / "p.npz"
    rc, text, err = run_cli(capsys, "simulate", str(PILOTNET / "network.net"), "--data", str(PILOTNET / "image.npy"),
                            "--record", "conv-0", "--record-out", str(out), "--json")
    assert rc == 0, err
    z = np.load(out)
    assert {"conv-0", "conv-0.u", "conv-0.v"} <= set(z.files)
    # conv-0's spikes as lava-dl's ground truth has them (tests/frontends/test_netx.py checks every step)
    assert z["conv-0"].sum() > 0 and z["conv-0.v"].shape == z["conv-0"].shape
