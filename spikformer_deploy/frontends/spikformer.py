"""Frontend: the float deploy graph of a Spikformer (torch module). Node names are the original module names; the
model's configuration travels as graph metadata (``graph.meta["model"]``), which no backend reads."""
from __future__ import annotations

import numpy as np
import torch

from ..ir.graph import Graph
from ..ir.ops import LIF, Add, BatchNorm, Conv2d, Dense, Flatten, Head, Input, OrPool, SpikingAttention
from ..model.spikformer import Spikformer, stage_suffix, synapse_kind

# Product order of each original variant (all give the same integers on binary q, k, v).
ORIGINAL_ORDER = {"cifar10": "qk_v", "imagenet": "q_kv", "cifar10dvs": "qk_v"}


def _np(t: torch.Tensor | None) -> np.ndarray | None:
    # float64: the "exact" simulation mode must not add rounding of its own (fixture margins reach 6e-8)
    return None if t is None else t.detach().cpu().to(torch.float64).numpy().copy()


def _batchnorm(bn: torch.nn.Module) -> BatchNorm:
    scale = _np(bn.weight) / np.sqrt(_np(bn.running_var) + bn.eps)
    return BatchNorm(scale=scale, shift=_np(bn.bias) - _np(bn.running_mean) * scale)


def _dense(module: torch.nn.Module) -> Dense:
    """nn.Linear [out, in], Conv1d [out, in, 1] and 1x1 Conv2d [out, in, 1, 1] are the same token-wise synapse."""
    w = _np(module.weight)
    return Dense(weight=w.reshape(w.shape[0], w.shape[1]), bias=_np(module.bias))


def _synapse_bn_lif(g: Graph, parent: torch.nn.Module, prefix: str, names: tuple[str, str, str], synapse, x: str) -> str:
    """Synapse -> BatchNorm -> LIF, named after the original modules ``names`` (attributes of ``parent``)."""
    syn, bn, lif = names
    g.add(f"{prefix}.{syn}", synapse, [x])
    g.add(f"{prefix}.{bn}", _batchnorm(getattr(parent, bn)), [f"{prefix}.{syn}"])
    neuron = getattr(parent, lif)
    return g.add(f"{prefix}.{lif}", LIF(v_threshold=float(neuron.v_threshold), tau=float(neuron.tau)),
                 [f"{prefix}.{bn}"])


def trace(model: Spikformer) -> Graph:
    cfg = model.config
    g = Graph(meta={"model": cfg.to_dict()})
    kind = synapse_kind(cfg)
    x = g.add("input", Input(shape=(cfg.in_channels, cfg.img_size, cfg.img_size),
                             kind="events" if cfg.variant == "cifar10dvs" else "image", steps=cfg.T))
    sps = model.patch_embed
    for i in range(4):
        sfx = stage_suffix(i)
        conv = getattr(sps, f"proj_conv{sfx}")
        x = _synapse_bn_lif(g, sps, "patch_embed", (f"proj_conv{sfx}", f"proj_bn{sfx}", f"proj_lif{sfx}"),
                            Conv2d(weight=_np(conv.weight), stride=1, padding=1), x)
        if i in cfg.pooled_stages:
            x = g.add(f"patch_embed.maxpool{sfx}", OrPool(kernel=3, stride=2, padding=1), [x])
    feat = x
    x = _synapse_bn_lif(g, sps, "patch_embed", ("rpe_conv", "rpe_bn", "rpe_lif"),
                        Conv2d(weight=_np(sps.rpe_conv.weight)), x)
    x = g.add("patch_embed.residual", Add(), [x, feat])
    x = g.add("patch_embed.flatten", Flatten(), [x])
    for b, blk in enumerate(model.block):
        p = f"block.{b}.attn"
        qkv = [_synapse_bn_lif(g, blk.attn, p, (f"{n}_{kind}", f"{n}_bn", f"{n}_lif"),
                               _dense(getattr(blk.attn, f"{n}_{kind}")), x) for n in ("q", "k", "v")]
        a = g.add(f"{p}.ssa", SpikingAttention(num_heads=cfg.num_heads, head_dim=cfg.head_dim,
                                               scale=cfg.attention_scale, order=ORIGINAL_ORDER[cfg.variant]), qkv)
        a = g.add(f"{p}.attn_lif", LIF(v_threshold=float(blk.attn.attn_lif.v_threshold)), [a])
        a = _synapse_bn_lif(g, blk.attn, p, (f"proj_{kind}", "proj_bn", "proj_lif"),
                            _dense(getattr(blk.attn, f"proj_{kind}")), a)
        x = g.add(f"block.{b}.attn_residual", Add(), [x, a])
        m = x
        for n in ("fc1", "fc2"):
            m = _synapse_bn_lif(g, blk.mlp, f"block.{b}.mlp", (f"{n}_{kind}", f"{n}_bn", f"{n}_lif"),
                                _dense(getattr(blk.mlp, f"{n}_{kind}")), m)
        x = g.add(f"block.{b}.mlp_residual", Add(), [x, m])
    g.add("head", Head(weight=_np(model.head.weight), bias=_np(model.head.bias)), [x])
    g.validate()
    return g
