"""Frontends: source models -> deploy graphs (hls4ml's converters). A family member's float model gives the float
graph (one trace function per member, ``TRACERS``); a lava-dl netx network gives an integer graph directly."""
from ..ir import Graph
from .metaspikeformer import trace_metaspikeformer
from .netx import read_netx
from .sdt import trace_sdt
from .spikformer import trace_spikformer
from .spikingformer import trace_spikingformer

TRACERS = {"spikformer": trace_spikformer, "spikingformer": trace_spikingformer, "sdt": trace_sdt,
           "metaspikeformer": trace_metaspikeformer}


def trace(model) -> Graph:
    """The float deploy graph of a family member's float reference (node names: the original module names)."""
    return TRACERS[model.config.member](model)


__all__ = ["trace", "read_netx", "TRACERS"]
