"""Torch modules -> deploy-IR ops, shared by the family's trace frontends (float64 copies of the weights)."""
from __future__ import annotations

import numpy as np
import torch

from ..errors import GraphError
from ..ir.graph import Graph
from ..ir.ops import LIF, BatchNorm, Conv2d, Dense, DepthwiseConv2d


def array(t: torch.Tensor | None) -> np.ndarray | None:
    # float64: the "exact" simulation mode must not add rounding of its own (fixture margins reach 6e-8)
    return None if t is None else t.detach().cpu().to(torch.float64).numpy().copy()


def batchnorm(bn: torch.nn.Module) -> BatchNorm:
    scale = array(bn.weight) / np.sqrt(array(bn.running_var) + bn.eps)
    return BatchNorm(scale=scale, shift=array(bn.bias) - array(bn.running_mean) * scale)


def dense(module: torch.nn.Module) -> Dense:
    """nn.Linear [out, in], Conv1d [out, in, 1] and 1x1 Conv2d [out, in, 1, 1] are the same token-wise synapse."""
    w = array(module.weight)
    return Dense(weight=w.reshape(w.shape[0], w.shape[1]), bias=array(module.bias))


def conv(module: torch.nn.Conv2d) -> Conv2d:
    cls = Conv2d
    if module.groups != 1:
        if not module.groups == module.in_channels == module.out_channels:
            raise GraphError(f"a grouped conv ({module.groups} groups of {module.in_channels} channels) has no "
                             f"deploy op (depthwise convs have one)")
        cls = DepthwiseConv2d
    return cls(weight=array(module.weight), bias=array(module.bias), stride=module.stride, padding=module.padding)


def lif(module: torch.nn.Module) -> LIF:
    return LIF(v_threshold=float(module.v_threshold), tau=float(module.tau))


def add_synapse(g: Graph, name: str, module: torch.nn.Module, synapse, x: str) -> str:
    """The synapse node of an original module, with what module-hook counters (syops) see of it: its class, and
    whether it adds a bias."""
    return g.add(name, synapse, [x], module=type(module).__name__, module_bias=module.bias is not None)


def synapse_bn(g: Graph, parent: torch.nn.Module, prefix: str, names: tuple[str, str], synapse, x: str) -> str:
    """Synapse -> BatchNorm, named after the original modules ``names`` (attributes of ``parent``)."""
    syn, bn = names
    x = add_synapse(g, f"{prefix}.{syn}", getattr(parent, syn), synapse, x)
    return g.add(f"{prefix}.{bn}", batchnorm(getattr(parent, bn)), [x])


def synapse_bn_lif(g: Graph, parent: torch.nn.Module, prefix: str, names: tuple[str, str, str], synapse, x: str) -> str:
    """Synapse -> BatchNorm -> LIF, named after the original modules ``names``."""
    x = synapse_bn(g, parent, prefix, names[:2], synapse, x)
    return g.add(f"{prefix}.{names[2]}", lif(getattr(parent, names[2])), [x])


def lif_on(g: Graph, parent: torch.nn.Module, prefix: str, name: str, x: str) -> str:
    """The original LIF module ``name`` of ``parent`` reading ``x``."""
    return g.add(f"{prefix}.{name}", lif(getattr(parent, name)), [x])


def pre_activation_mlp(g: Graph, mlp: torch.nn.Module, prefix: str, stem: str, x: str) -> str:
    """The MLP branch on the real-valued stream ``x``, LIF -> synapse -> BatchNorm twice, named after the original
    ``{stem}{i}_lif / _conv / _bn`` of ``mlp``: its output is summed into the stream."""
    for i in (1, 2):
        x = lif_on(g, mlp, prefix, f"{stem}{i}_lif", x)
        x = synapse_bn(g, mlp, prefix, (f"{stem}{i}_conv", f"{stem}{i}_bn"), dense(getattr(mlp, f"{stem}{i}_conv")), x)
    return x
