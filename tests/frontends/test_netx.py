"""lava-dl netx networks as deploy graphs: Intel's PilotNet LIF reproduces lava-dl's own ground truth, spike for
spike, in every layer; Lava runs the imported graph bit-exactly; bad files are one-line errors."""
from pathlib import Path

import numpy as np
import pytest
import torch

from support import PILOTNET

from spikformer_deploy.backends.sim import Simulator
from spikformer_deploy.errors import GraphError
from spikformer_deploy.frontends import read_netx

PACK = PILOTNET
LAYERS = ["input", "conv-0", "conv-1", "conv-2", "conv-3", "conv-4", "fc-0", "fc-1", "fc-2", "fc-3"]
RESET_INTERVAL = 17  # the ground truth's netx reset interval (see the pack's README)
RECORDED = 24


def frame() -> torch.Tensor:
    """The pack's frame, (x, y, c) -> [1, C, H, W]."""
    return torch.tensor(np.load(PACK / "image.npy").transpose(2, 1, 0)[None], dtype=torch.float32)


def ground_truth(name: str) -> np.ndarray:
    """Spikes as [24 steps, C, H, W]."""
    gt = np.load(PACK / (f"{name}-s.npy" if name == "fc-3" else f"{name}.npy"))
    return gt.transpose(3, 2, 1, 0) if gt.ndim == 4 else gt.T[:, :, None, None]


@pytest.fixture(scope="module")
def pilotnet():
    graph = read_netx(PACK / "network.net", steps=RESET_INTERVAL)
    return graph, Simulator(graph, record="spikes").run(frame())


def test_pilotnet_structure(pilotnet):
    graph, _ = pilotnet
    assert [n.name for n in graph.having("neuron_group")] == LAYERS
    assert sum(int(np.prod(graph.nodes[n].shape)) for n in LAYERS) == 158_509  # the pack's neuron count
    assert graph.nodes["conv-3.synapse"].op.stride == (2, 1) and graph.nodes["conv-3.synapse"].op.padding == (1, 0)
    assert graph.nodes["fc-0.synapse"].shape == (100, 1, 1) and graph.nodes["flatten-0"].shape == (2560, 1, 1)
    lif = graph.nodes["conv-0"].op
    assert (lif.du, lif.dv, lif.vth, lif.bias_exp) == (4095, 1024, 25, 6)


@pytest.mark.parametrize("name", LAYERS)
def test_every_layer_equals_lava_dl_ground_truth(pilotnet, name):
    """Layer L of the ground truth starts its first sample at step L (one synapse hop per layer; earlier steps hold
    its pre-reset warm-up); compare every step of that sample the recording holds."""
    graph, result = pilotnet
    first = graph.pipeline_depths()[name] - 1
    steps = min(RESET_INTERVAL, RECORDED - first)
    ours = result.outputs[name][:steps, 0].numpy()
    theirs = ground_truth(name)[first:first + steps].astype(np.float32)
    assert ours.shape == theirs.shape
    np.testing.assert_array_equal(ours, theirs, err_msg=name)
    if name != "fc-3":  # the output integrator never fires (vth = 131071)
        assert theirs.sum() > 0


def test_lava_runs_the_imported_network_bit_exactly(pilotnet):
    from spikformer_deploy.backends.lava import LavaNetwork

    graph, result = pilotnet
    lava = LavaNetwork(graph).run(frame().numpy(), record={"conv-4", "fc-0", "fc-2"})
    for name, spikes in lava.outputs.items():
        np.testing.assert_array_equal(spikes, result.outputs[name].numpy(), err_msg=name)
    np.testing.assert_array_equal(lava.int_logits, result.logits.numpy())


def _netx(tmp_path: Path, edit) -> Path:
    import h5py

    path = tmp_path / "edited.net"
    path.write_bytes((PACK / "network.net").read_bytes())
    with h5py.File(path, "r+") as f:
        edit(f)
    return path


@pytest.mark.parametrize("edit,message", [
    (lambda f: f["layer/3/type"].__setitem__(0, b"pool"), r"layer 3 \(pool\): layer type 'pool' is not supported"),
    (lambda f: f["layer/2/neuron/type"].__setitem__((), b"SDNN") if f["layer/2/neuron/type"].shape == ()
     else f["layer/2/neuron/type"].__setitem__(0, b"SDNN"), r"layer 2 \(conv\): SDNN neurons are not supported"),
    (lambda f: f["layer/1/weight"].__setitem__((0, 0, 0, 0), 0.5), "weights must be integers"),
    (lambda f: f["layer/7"].__delitem__("neuron"), r"layer 7 \(dense\): no neuron group"),
    (lambda f: f["layer/8/weight"].__setitem__((0, 0), np.nan), "weights must be integers"),
])
def test_bad_networks_are_one_line_errors(tmp_path, edit, message):
    with pytest.raises(GraphError, match=message):
        read_netx(_netx(tmp_path, edit))


def test_not_a_netx_file(tmp_path):
    (tmp_path / "x.net").write_bytes(b"not hdf5")
    with pytest.raises(GraphError, match="not a netx HDF5 file"):
        read_netx(tmp_path / "x.net")
    with pytest.raises(GraphError, match="pass them"):
        read_netx(_netx(tmp_path, lambda f: f.__delitem__("simulation")))
