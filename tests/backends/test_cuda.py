"""The GPU path: the integer simulator on CUDA equals the CPU one bit for bit (counters, logits, spikes). Runs only
where CUDA exists (CI has none; the brief exempts CUDA tests from the no-skip rule)."""
import numpy as np
import pytest
import torch

from support import FMNIST_TEST, FMNIST_TRAIN, BUNDLED_FMNIST

from spikformer_deploy import load_checkpoint
from spikformer_deploy.backends.sim import Simulator
from spikformer_deploy.data import load_data
from spikformer_deploy.pipeline import integer_graph_from


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_integer_simulator_on_cuda_equals_cpu():
    model = load_checkpoint(BUNDLED_FMNIST)
    x, _ = load_data(FMNIST_TEST, model.config)
    x_cal, _ = load_data(FMNIST_TRAIN, model.config)
    _, graph = integer_graph_from(model, x_cal)
    runs = {device: Simulator(graph, device=device, record="spikes").run(x[:100]) for device in ("cpu", "cuda")}
    cpu, gpu = runs["cpu"], runs["cuda"]
    assert torch.equal(cpu.int_logits, gpu.int_logits.cpu())
    for name, spikes in cpu.outputs.items():
        assert torch.equal(spikes, gpu.outputs[name].cpu()), name
    for node, counts in cpu.counters.counts.items():
        for key, values in counts.items():
            assert np.array_equal(values, gpu.counters.counts[node][key]), (node, key)
