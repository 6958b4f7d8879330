"""Frontend: the float deploy graph of a Meta-SpikeFormer, traced from its folded float reference
(``model.reparam.fold_all``: each RepConv projection one 3x3 conv, each SepConv's depthwise + pointwise one dense
7x7 conv, one head), the folds recorded in the graph's pass records.

Every stage keeps the image layout ``[C, H, W]``: each down-sampling conv's output starts a real-valued stream
(a one-input ``StreamSum`` relay), every membrane shortcut is a ``StreamSum``, the MLP's Conv1d are 1x1 convs on the
grid; the attention alone works on tokens (q, k, v ``Flatten``-ed, ``SpikingAttention`` in the original order
q (kᵀ v), attn_lif, then ``Unflatten`` back for the 3x3 projection). Head: the stream's token mean -> lif -> the
per-step linear head."""
from __future__ import annotations

from torch import nn

from ..ir import PassRecord
from ..ir.graph import Graph
from ..ir.ops import Conv2d, Flatten, Head, Input, SpikingAttention, StreamSum, TokenMean, Unflatten
from ..model.metaspikeformer import ATTENTION_SCALE, STAGES, MS_Block, MS_ConvBlock, MS_DownSampling, MetaSpikeFormer
from ..model.reparam import fold_all
from .layers import add_synapse, array, conv, lif, lif_on, synapse_bn

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
    s = synapse_bn(g, sep, sp, ("pwconv2", "bn2"), conv(sep.pwconv2), s)  # the folded depthwise + pointwise
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
        folded = getattr(attn, f"{n}_conv")  # its BatchNorms inside: no BatchNorm node after it
        y = add_synapse(g, f"{ap}.{n}_conv", folded, conv(folded), s)
        y = lif_on(g, attn, ap, f"{n}_lif", y)
        qkv.append(g.add(f"{ap}.{n}_tokens", Flatten(), [y]))
    a = g.add(f"{ap}.ssa", SpikingAttention(num_heads=attn.num_heads, head_dim=c // attn.num_heads,
                                            scale=ATTENTION_SCALE, order="q_kv"), qkv)
    a = lif_on(g, attn, ap, "attn_lif", a)
    a = g.add(f"{ap}.attn_map", Unflatten(height=h, width=w), [a])
    a = add_synapse(g, f"{ap}.proj_conv", attn.proj_conv, conv(attn.proj_conv), a)
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
    folded, records = fold_all(model)
    cfg = folded.config
    g = Graph(meta={"model": cfg.to_dict()})
    x = g.add("input", Input(shape=(cfg.in_channels, cfg.img_size, cfg.img_size), kind="image", steps=cfg.T))
    for name in STAGES:
        stage = getattr(folded, name)
        if isinstance(stage, MS_DownSampling):
            x = _down_sampling(g, stage, name, x)
            continue
        for i, blk in enumerate(stage):
            x = (_conv_block if isinstance(blk, MS_ConvBlock) else _ms_block)(g, blk, f"{name}.{i}", x)
    x = g.add("head.tokens", Flatten(), [x])
    x = g.add("head.token_mean", TokenMean(), [x])
    x = g.add("lif", lif(folded.lif), [x])
    g.add("head", Head(weight=array(folded.head.weight), bias=array(folded.head.bias)), [x])
    for r in records:  # the folds happened on the float reference; the graph says which and what they cost
        g.records.append(PassRecord(r["fold"], settings={k: v for k, v in r.items() if k != "fold"}))
    g.validate()
    return g
