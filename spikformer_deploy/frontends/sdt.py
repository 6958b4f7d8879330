"""Frontend: the float deploy graph of a Spike-driven Transformer v1. SDSA is ``AndTokenSum`` (k AND v summed over
the tokens) -> talking_heads_lif -> ``ChannelMask`` (q AND that per-channel spike); the membrane shortcuts are
``StreamSum`` relays of the real-valued stream; the tokenizer's last pool is a ``MaxPool`` on real values; the
head is ``TokenMean`` -> head_lif -> ``Head`` (the per-step linear layer averaged over T is the linear layer of
the average)."""
from __future__ import annotations

from ..ir.graph import Graph
from ..ir.ops import AndTokenSum, ChannelMask, Flatten, Head, Input, MaxPool, OrPool, StreamSum, TokenMean
from ..model.sdt import SpikeDrivenTransformer, sps_suffix
from .layers import array, conv, dense, lif, lif_on, pre_activation_mlp, synapse_bn, synapse_bn_lif


def trace_sdt(model: SpikeDrivenTransformer) -> Graph:
    cfg = model.config
    g = Graph(meta={"model": cfg.to_dict()})
    x = g.add("input", Input(shape=(cfg.in_channels, cfg.img_size, cfg.img_size), kind="image", steps=cfg.T))
    sps = model.patch_embed
    for i in range(3):
        sfx = sps_suffix(i)
        x = synapse_bn_lif(g, sps, "patch_embed", (f"proj_conv{sfx}", f"proj_bn{sfx}", f"proj_lif{sfx}"),
                           conv(getattr(sps, f"proj_conv{sfx}")), x)
        if i in cfg.pooled_stages:
            x = g.add(f"patch_embed.maxpool{sfx}", OrPool(kernel=3, stride=2, padding=1), [x])
    feat = synapse_bn(g, sps, "patch_embed", ("proj_conv3", "proj_bn3"), conv(sps.proj_conv3), x)
    # x_feat is read twice (proj_lif3 and the rpe sum): a pool or a relay holds it
    feat = g.add("patch_embed.maxpool3", MaxPool(kernel=3, stride=2, padding=1), [feat]) if 3 in cfg.pooled_stages \
        else g.add("patch_embed.feat", StreamSum(), [feat])
    x = lif_on(g, sps, "patch_embed", "proj_lif3", feat)
    x = synapse_bn(g, sps, "patch_embed", ("rpe_conv", "rpe_bn"), conv(sps.rpe_conv), x)
    x = g.add("patch_embed.residual", StreamSum(), [x, feat])
    x = g.add("patch_embed.flatten", Flatten(), [x])
    for b, blk in enumerate(model.block):
        p, attn = f"block.{b}.attn", blk.attn
        s = lif_on(g, attn, p, "shortcut_lif", x)
        q, k, v = (synapse_bn_lif(g, attn, p, (f"{n}_conv", f"{n}_bn", f"{n}_lif"), dense(getattr(attn, f"{n}_conv")),
                                  s) for n in ("q", "k", "v"))
        kv = g.add(f"{p}.kv", AndTokenSum(), [k, v])
        kv = lif_on(g, attn, p, "talking_heads_lif", kv)
        a = g.add(f"{p}.mask", ChannelMask(), [q, kv])
        a = synapse_bn(g, attn, p, ("proj_conv", "proj_bn"), dense(attn.proj_conv), a)
        x = g.add(f"block.{b}.attn_residual", StreamSum(), [a, x])
        m = pre_activation_mlp(g, blk.mlp, f"block.{b}.mlp", "fc", x)
        x = g.add(f"block.{b}.mlp_residual", StreamSum(), [m, x])
    x = g.add("head.token_mean", TokenMean(), [x])
    x = g.add("head_lif", lif(model.head_lif), [x])
    g.add("head", Head(weight=array(model.head.weight), bias=array(model.head.bias)), [x])
    g.validate()
    return g
