"""Frontend: the float deploy graph of a Meta-SpikeFormer, traced from its float reference as it is: each RepConv a
chain of synapses (its 1x1 conv with a one-pixel zero border and its BatchNorm -- the BN of zero on the border is the
original's BN-valued padding --, the 3x3 depthwise conv, the 1x1 conv and the two BatchNorms), each SepConv's 7x7
depthwise conv and the 1x1 after it. ``fold_batchnorm`` and ``fold_linear_chains`` then fold or relay those chains
(the pipeline asks the mapper which). The distillation head is averaged into the head here (the mean over T is
linear), recorded as ``fold_heads``.

Every stage keeps the image layout ``[C, H, W]``: each down-sampling conv's output starts a real-valued stream
(a one-input ``StreamSum`` relay), every membrane shortcut is a ``StreamSum``, the MLP's Conv1d are 1x1 convs on the
grid; the attention alone works on tokens (q, k, v ``Flatten``-ed, ``SpikingAttention`` in the original order
q (kᵀ v), attn_lif, then ``Unflatten`` back for the projection). Head: the stream's token mean -> lif -> the
per-step linear head."""
from __future__ import annotations

from torch import nn

from ..ir import PassRecord
from ..ir.graph import Graph
from ..ir.ops import Conv2d, Flatten, Head, Input, SpikingAttention, StreamSum, TokenMean, Unflatten
from ..model.metaspikeformer import ATTENTION_SCALE, STAGES, MS_Block, MS_ConvBlock, MS_DownSampling, MetaSpikeFormer
from .layers import add_synapse, array, batchnorm, conv, lif, lif_on, synapse_bn


def _rep_projection(g: Graph, projection: nn.Sequential, p: str, x: str) -> str:
    """``projection = Sequential(RepConv, BatchNorm)``, named ``p``: its chain of synapses with their BatchNorms."""
    rep, bn_after = projection
    conv1, pad, (dw, pw, bn) = rep.body
    body = f"{p}.0.body"
    # the 1x1 conv's output with a zero border, through its BatchNorm: the border holds BN(0), the original padding
    # (exact because the 1x1 conv has no bias, as in the original: its border is 0 before the BatchNorm)
    x = add_synapse(g, f"{body}.0", conv1, Conv2d(weight=array(conv1.weight), stride=1, padding=pad.pad), x)
    x = g.add(f"{body}.1.bn", batchnorm(pad.bn), [x])
    x = add_synapse(g, f"{body}.2.0", dw, conv(dw), x)
    x = add_synapse(g, f"{body}.2.1", pw, conv(pw), x)
    x = g.add(f"{body}.2.2", batchnorm(bn), [x])
    return g.add(f"{p}.1", batchnorm(bn_after), [x])


def _down_sampling(g: Graph, mod: MS_DownSampling, p: str, x: str) -> str:
    if hasattr(mod, "encode_lif"):
        x = lif_on(g, mod, p, "encode_lif", x)
    x = synapse_bn(g, mod, p, ("encode_conv", "encode_bn"), conv(mod.encode_conv), x)
    return g.add(f"{p}.stream", StreamSum(), [x])  # a new stream starts at the conv's output


def _conv_block(g: Graph, blk: MS_ConvBlock, p: str, x: str) -> str:
    sep, sp = blk.Conv, f"{p}.Conv"
    s = lif_on(g, sep, sp, "lif1", x)
    s = synapse_bn(g, sep, sp, ("pwconv1", "bn1"), conv(sep.pwconv1), s)
    s = lif_on(g, sep, sp, "lif2", s)
    s = add_synapse(g, f"{sp}.dwconv", sep.dwconv, conv(sep.dwconv), s)
    s = synapse_bn(g, sep, sp, ("pwconv2", "bn2"), conv(sep.pwconv2), s)  # reads the depthwise conv's real values
    x = g.add(f"{p}.sep_residual", StreamSum(), [s, x])
    s = lif_on(g, blk, p, "lif1", x)
    s = synapse_bn(g, blk, p, ("conv1", "bn1"), conv(blk.conv1), s)
    s = lif_on(g, blk, p, "lif2", s)
    s = synapse_bn(g, blk, p, ("conv2", "bn2"), conv(blk.conv2), s)
    return g.add(f"{p}.residual", StreamSum(), [x, s])


def _ms_block(g: Graph, blk: MS_Block, p: str, x: str) -> str:
    attn, ap = blk.attn, f"{p}.attn"
    c, h, w = g.nodes[x].shape
    s = lif_on(g, attn, ap, "head_lif", x)
    qkv = []
    for n in ("q", "k", "v"):
        y = _rep_projection(g, getattr(attn, f"{n}_conv"), f"{ap}.{n}_conv", s)
        y = lif_on(g, attn, ap, f"{n}_lif", y)
        qkv.append(g.add(f"{ap}.{n}_tokens", Flatten(), [y]))
    a = g.add(f"{ap}.ssa", SpikingAttention(num_heads=attn.num_heads, head_dim=c // attn.num_heads,
                                            scale=ATTENTION_SCALE, order="q_kv"), qkv)
    a = lif_on(g, attn, ap, "attn_lif", a)
    a = g.add(f"{ap}.attn_map", Unflatten(height=h, width=w), [a])
    a = _rep_projection(g, attn.proj_conv, f"{ap}.proj_conv", a)
    x = g.add(f"{p}.attn_residual", StreamSum(), [x, a])
    mlp, mp = blk.mlp, f"{p}.mlp"
    m = x
    for i in (1, 2):  # Conv1d on the tokens = a 1x1 conv on their grid
        m = lif_on(g, mlp, mp, f"fc{i}_lif", m)
        m = synapse_bn(g, mlp, mp, (f"fc{i}_conv", f"fc{i}_bn"), _conv1x1(getattr(mlp, f"fc{i}_conv")), m)
    return g.add(f"{p}.mlp_residual", StreamSum(), [x, m])


def _conv1x1(module: nn.Conv1d) -> Conv2d:
    return Conv2d(weight=array(module.weight)[..., None], bias=array(module.bias), stride=(1, 1), padding=(0, 0))


def trace_metaspikeformer(model: MetaSpikeFormer) -> Graph:
    cfg = model.config
    g = Graph(meta={"model": {**cfg.to_dict(), "kd": False}})  # the graph has one head
    x = g.add("input", Input(shape=(cfg.in_channels, cfg.img_size, cfg.img_size), kind="image", steps=cfg.T))
    for name in STAGES:
        stage = getattr(model, name)
        if isinstance(stage, MS_DownSampling):
            x = _down_sampling(g, stage, name, x)
            continue
        for i, blk in enumerate(stage):
            x = (_conv_block if isinstance(blk, MS_ConvBlock) else _ms_block)(g, blk, f"{name}.{i}", x)
    x = g.add("head.tokens", Flatten(), [x])
    x = g.add("head.token_mean", TokenMean(), [x])
    x = g.add("lif", lif(model.lif), [x])
    weight, bias = array(model.head.weight), array(model.head.bias)
    if cfg.kd:  # evaluation averages the two heads' logits: one head with the mean weights (exact in float64)
        weight, bias = (weight + array(model.head_kd.weight)) / 2, (bias + array(model.head_kd.bias)) / 2
        g.records.append(PassRecord("fold_heads", settings={"heads": 2, "parameters_removed": int(
            model.head_kd.weight.numel() + model.head_kd.bias.numel())}))
    g.add("head", Head(weight=weight, bias=bias), [x])
    g.validate()
    return g
