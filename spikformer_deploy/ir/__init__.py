"""The deploy IR: a typed graph of synapses, neuron groups, OR pools, residual sums, the SSA core and the head."""
from . import ops
from .graph import Graph, GraphError, Node, PassRecord
from .trace import trace

__all__ = ["Graph", "GraphError", "Node", "PassRecord", "trace", "ops"]
