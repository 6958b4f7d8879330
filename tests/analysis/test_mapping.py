"""The core mapper reads a depthwise convolution as what it is, against a dense one of the same kernel: fan-in k²
(one input channel per neuron), one k x k kernel per channel in a core's synaptic memory, and a core's input axons
its channels' tiles."""
import numpy as np

from spikformer_deploy.analysis import load_profile
from spikformer_deploy.analysis.feasibility import map_network, valid_taps
from spikformer_deploy.ir import Graph
from spikformer_deploy.ir.ops import LIF, Conv2d, DepthwiseConv2d, Input


def _group(synapse, channels: int = 16, side: int = 12):
    g = Graph()
    g.add("input", Input(shape=(channels, side, side), kind="events", steps=2))
    g.add("syn", synapse, ["input"])
    g.add("lif", LIF(v_threshold=1.0), ["syn"])
    (group,) = map_network(g, load_profile("loihi2"))["groups"]
    return group


def test_a_depthwise_group_has_fan_in_k2_and_one_kernel_per_channel():
    c, side, k = 16, 12, 7
    depthwise = _group(DepthwiseConv2d(weight=np.ones((c, 1, k, k)), padding=3))
    dense = _group(Conv2d(weight=np.ones((c, c, k, k)), padding=3))
    taps = valid_taps(side, side, k, 1, 3, side, side)  # per channel pair, padding taps excluded
    assert (depthwise.fan_in, dense.fan_in) == (k * k, c * k * k)
    assert (depthwise.synapses, dense.synapses) == (taps * c, taps * c * c)
    # one core each here (2,304 neurons); shared weights: a channel's kernel once per core, 8 bits a weight
    assert depthwise.cores == dense.cores == 1
    assert (depthwise.synapse_bits_per_core, dense.synapse_bits_per_core) == (c * k * k * 8, c * c * k * k * 8)
    # the whole 12 x 12 map of every channel the core holds (depthwise: its own 16; dense: all 16 inputs)
    assert depthwise.input_axons_per_core == dense.input_axons_per_core == side * side * c


def test_a_wide_depthwise_group_splits_by_its_own_channels_input_axons():
    # 64 channels of 24 x 24: 36,864 neurons need 5 cores, and every core reads only its channels' maps
    group = _group(DepthwiseConv2d(weight=np.ones((64, 1, 7, 7)), padding=3), channels=64, side=24)
    assert group.fan_in == 49 and group.input_parts == 1
    assert group.input_axons_per_core <= 4096 and group.cores >= 5
