"""Frontend: the float deploy graph of a Spikformer (torch module). Node names are the original module names; the
model's configuration travels as graph metadata (``graph.meta["model"]``), which no backend reads."""
from __future__ import annotations

from ..ir.graph import Graph
from ..ir.ops import Add, Conv2d, Flatten, Head, Input, OrPool, SpikingAttention
from ..model.spikformer import Spikformer, stage_suffix, synapse_kind
from .layers import array, dense, lif, synapse_bn_lif

# Product order of each original variant (all give the same integers on binary q, k, v).
ORIGINAL_ORDER = {"cifar10": "qk_v", "imagenet": "q_kv", "cifar10dvs": "qk_v"}


def trace_spikformer(model: Spikformer) -> Graph:
    cfg = model.config
    g = Graph(meta={"model": cfg.to_dict()})
    kind = synapse_kind(cfg)
    x = g.add("input", Input(shape=(cfg.in_channels, cfg.img_size, cfg.img_size),
                             kind="events" if cfg.variant == "cifar10dvs" else "image", steps=cfg.T))
    sps = model.patch_embed
    for i in range(4):
        sfx = stage_suffix(i)
        conv = getattr(sps, f"proj_conv{sfx}")
        x = synapse_bn_lif(g, sps, "patch_embed", (f"proj_conv{sfx}", f"proj_bn{sfx}", f"proj_lif{sfx}"),
                            Conv2d(weight=array(conv.weight), stride=1, padding=1), x)
        if i in cfg.pooled_stages:
            x = g.add(f"patch_embed.maxpool{sfx}", OrPool(kernel=3, stride=2, padding=1), [x])
    feat = x
    x = synapse_bn_lif(g, sps, "patch_embed", ("rpe_conv", "rpe_bn", "rpe_lif"),
                        Conv2d(weight=array(sps.rpe_conv.weight)), x)
    x = g.add("patch_embed.residual", Add(), [x, feat])
    x = g.add("patch_embed.flatten", Flatten(), [x])
    for b, blk in enumerate(model.block):
        p = f"block.{b}.attn"
        qkv = [synapse_bn_lif(g, blk.attn, p, (f"{n}_{kind}", f"{n}_bn", f"{n}_lif"),
                               dense(getattr(blk.attn, f"{n}_{kind}")), x) for n in ("q", "k", "v")]
        a = g.add(f"{p}.ssa", SpikingAttention(num_heads=cfg.num_heads, head_dim=cfg.head_dim,
                                               scale=cfg.attention_scale, order=ORIGINAL_ORDER[cfg.variant]), qkv)
        a = g.add(f"{p}.attn_lif", lif(blk.attn.attn_lif), [a])
        a = synapse_bn_lif(g, blk.attn, p, (f"proj_{kind}", "proj_bn", "proj_lif"),
                            dense(getattr(blk.attn, f"proj_{kind}")), a)
        x = g.add(f"block.{b}.attn_residual", Add(), [x, a])
        m = x
        for n in ("fc1", "fc2"):
            m = synapse_bn_lif(g, blk.mlp, f"block.{b}.mlp", (f"{n}_{kind}", f"{n}_bn", f"{n}_lif"),
                                dense(getattr(blk.mlp, f"{n}_{kind}")), m)
        x = g.add(f"block.{b}.mlp_residual", Add(), [x, m])
    g.add("head", Head(weight=array(model.head.weight), bias=array(model.head.bias)), [x])
    g.validate()
    return g
