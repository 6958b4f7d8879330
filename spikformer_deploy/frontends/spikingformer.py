"""Frontend: the float deploy graph of a Spikingformer. The real-valued residual stream is a chain of ``StreamSum``
relays (the tokenizer's output passes through a one-input one, ``patch_embed.stream``), read by the pre-activation
LIFs; the head reads the last one."""
from __future__ import annotations

from ..ir.graph import Graph
from ..ir.ops import Flatten, Head, Input, OrPool, SpikingAttention, StreamSum
from ..model.spikingformer import Spikingformer, stage_names
from .layers import array, conv, dense, lif, lif_on, pre_activation_mlp, synapse_bn, synapse_bn_lif

ORIGINAL_ORDER = {"cifar10": "qk_v", "imagenet": "q_kv"}


def trace_spikingformer(model: Spikingformer) -> Graph:
    cfg = model.config
    g = Graph(meta={"model": cfg.to_dict()})
    x = g.add("input", Input(shape=(cfg.in_channels, cfg.img_size, cfg.img_size), kind="image", steps=cfg.T))
    tok = model.patch_embed
    for i in range(len(cfg.stage_channels)):
        names = stage_names(cfg.variant, i)
        if i:
            x = lif_on(g, tok, "patch_embed", names["lif"], x)
        if i in cfg.pooled_stages:
            x = g.add(f"patch_embed.{names['pool']}", OrPool(kernel=3, stride=2, padding=1), [x])
        x = synapse_bn(g, tok, "patch_embed", (names["conv"], names["bn"]), conv(getattr(tok, names["conv"])), x)
    x = g.add("patch_embed.stream", StreamSum(), [x])
    x = g.add("patch_embed.flatten", Flatten(), [x])
    for b, blk in enumerate(model.block):
        p, attn = f"block.{b}.attn", blk.attn
        s = lif_on(g, attn, p, "proj_lif", x)
        qkv = [synapse_bn_lif(g, attn, p, (f"{n}_conv", f"{n}_bn", f"{n}_lif"), dense(getattr(attn, f"{n}_conv")), s)
               for n in ("q", "k", "v")]
        a = g.add(f"{p}.ssa", SpikingAttention(num_heads=cfg.num_heads, head_dim=cfg.head_dim,
                                               scale=cfg.attention_scale, order=ORIGINAL_ORDER[cfg.variant]), qkv)
        a = g.add(f"{p}.attn_lif", lif(attn.attn_lif), [a])
        a = synapse_bn(g, attn, p, ("proj_conv", "proj_bn"), dense(attn.proj_conv), a)
        x = g.add(f"block.{b}.attn_residual", StreamSum(), [x, a])
        m = pre_activation_mlp(g, blk.mlp, f"block.{b}.mlp", "mlp", x)
        x = g.add(f"block.{b}.mlp_residual", StreamSum(), [x, m])
    g.add("head", Head(weight=array(model.head.weight), bias=array(model.head.bias)), [x])
    g.validate()
    return g
