"""Frontends: source models -> deploy graphs (hls4ml's converters). A family member's float model gives the float
graph (one trace function per member, ``TRACERS``); a lava-dl netx network gives an integer graph directly."""
from ..errors import ConfigError
from ..ir import Graph
from .netx import read_netx
from .sdt import trace_sdt
from .spikformer import trace_spikformer
from .spikingformer import trace_spikingformer

TRACERS = {"spikformer": trace_spikformer, "spikingformer": trace_spikingformer, "sdt": trace_sdt}


def trace(model) -> Graph:
    """The float deploy graph of a family member's float reference (node names: the original module names)."""
    member = model.config.member
    if member not in TRACERS:
        raise ConfigError(f"{model.config.title} has a float reference (info, spike counts) but no deploy graph yet: "
                          "its conv stages and re-parameterised projections are not traced")
    return TRACERS[member](model)


__all__ = ["trace", "read_netx", "TRACERS"]
