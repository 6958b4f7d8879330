"""Re-parameterisation folds of Meta-SpikeFormer's float reference: exact linear-algebra identities that collapse
chains with no neuron between them, the deployment form its maintainers intend (V2 issue #11, SpikeYOLO #25).

- ``fold_repconv``: RepConv (1x1 -> BN padded with the BN of zero -> 3x3 depthwise -> 1x1 -> BN) and the BatchNorm
  after it are one same-size 3x3 conv with bias.
- ``fold_sepconv``: SepConv's 7x7 depthwise conv and the 1x1 after it (no BN or LIF between) are one dense 7x7 conv
  (zero padding commutes with the per-channel depthwise kernel).
- ``fold_heads``: the distillation head averaged in at evaluation and the head are one Linear (the mean over T is
  linear).

Each returns a new model (the input is left alone) whose forward computes the same function; the folds are computed
in float64 and stored in the model's dtype. ``fold_all`` applies every one and returns the record of what it folded.
"""
from __future__ import annotations

import copy
import dataclasses

import torch
from torch import nn

from .metaspikeformer import MetaSpikeFormer, RepConv, SepConv


def _bn_affine(bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """(scale, shift) of an eval-mode BatchNorm, in float64."""
    scale = bn.weight.double() / torch.sqrt(bn.running_var.double() + bn.eps)
    return scale, bn.bias.double() - bn.running_mean.double() * scale


def _conv(weight: torch.Tensor, bias: torch.Tensor | None, like: nn.Conv2d | nn.Module, padding: int) -> nn.Conv2d:
    out_ch, in_ch, k, _ = weight.shape
    dtype = next(like.parameters()).dtype
    conv = nn.Conv2d(in_ch, out_ch, k, padding=padding, bias=bias is not None, dtype=dtype)
    with torch.no_grad():
        conv.weight.copy_(weight)
        if bias is not None:
            conv.bias.copy_(bias)
    return conv


def repconv_as_conv(rep: RepConv, bn_after: nn.BatchNorm2d) -> nn.Conv2d:
    """The 3x3 conv (padding 1, with bias) equal to ``bn_after(rep(x))``."""
    conv1, pad, (dw, pw, bn) = rep.body
    w1 = conv1.weight.double()[:, :, 0, 0]  # [C, C_in]
    s0, t0 = _bn_affine(pad.bn)  # the border holds t0 = BN(0): BN applied to the zero-padded conv1 output
    k = dw.weight.double()[:, 0]  # [C, 3, 3]
    p = pw.weight.double()[:, :, 0, 0]  # [out, C]
    s1, t1 = _bn_affine(bn)
    s2, t2 = _bn_affine(bn_after)
    # out[o] = s2 s1 sum_c p[o,c] (k_c * (s0_c conv1(x)_c + t0_c)) + s2 t1 + t2
    weight = torch.einsum("oc,chw,ci->oihw", p * s0, k, w1)
    bias = p @ (t0 * k.sum((1, 2)))
    gain = s2 * s1
    return _conv(weight * gain.view(-1, 1, 1, 1), gain * bias + s2 * t1 + t2, conv1, padding=1)


def sepconv_tail_as_conv(sep: SepConv) -> nn.Conv2d:
    """The dense 7x7 conv equal to ``pwconv2(dwconv(x))`` (bias-free, padding 3)."""
    k = sep.dwconv.weight.double()[:, 0]  # [2C, 7, 7]
    p = sep.pwconv2.weight.double()[:, :, 0, 0]  # [C, 2C]
    return _conv(p[:, :, None, None] * k[None], None, sep.pwconv2, padding=sep.dwconv.padding[0])


def fold_repconv(model: MetaSpikeFormer) -> MetaSpikeFormer:
    model = copy.deepcopy(model)
    for blk in (*model.block3, *model.block4):
        for name in ("q_conv", "k_conv", "v_conv", "proj_conv"):
            rep, bn = getattr(blk.attn, name)
            setattr(blk.attn, name, repconv_as_conv(rep, bn))  # the original Sequential(RepConv, BN): one conv
    return model


def fold_sepconv(model: MetaSpikeFormer) -> MetaSpikeFormer:
    model = copy.deepcopy(model)
    for stage in (model.ConvBlock1_1, model.ConvBlock1_2, model.ConvBlock2_1, model.ConvBlock2_2):
        for block in stage:
            sep = block.Conv
            sep.pwconv2 = sepconv_tail_as_conv(sep)
            sep.dwconv = nn.Identity()
    return model


def fold_heads(model: MetaSpikeFormer) -> MetaSpikeFormer:
    model = copy.deepcopy(model)
    if model.config.kd:
        with torch.no_grad():
            model.head.weight.copy_((model.head.weight.double() + model.head_kd.weight.double()) / 2)
            model.head.bias.copy_((model.head.bias.double() + model.head_kd.bias.double()) / 2)
        del model.head_kd
        model.config = dataclasses.replace(model.config, kd=False)
    return model


def fold_all(model: MetaSpikeFormer) -> tuple[MetaSpikeFormer, list[dict]]:
    """Every fold, in order, with a record per fold (what it replaced, and the synapses before and after)."""
    records = []
    for fold in (fold_repconv, fold_sepconv, fold_heads):
        before = sum(p.numel() for p in model.parameters())
        model = fold(model)
        records.append({"fold": fold.__name__, "parameters_before": before,
                        "parameters_after": sum(p.numel() for p in model.parameters())})
    return model, records
