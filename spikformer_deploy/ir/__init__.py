"""The deploy IR: a typed graph of synapses, neuron groups, OR pools, residual sums, the SSA core and the head.

It depends on nothing above it: frontends (``spikformer_deploy.frontends``) build it, passes rewrite it, backends and
analyses read it."""
from . import ops
from ..errors import GraphError
from .graph import Graph, Node, PassRecord
from .optable import OpTable

__all__ = ["Graph", "GraphError", "Node", "OpTable", "PassRecord", "ops"]
