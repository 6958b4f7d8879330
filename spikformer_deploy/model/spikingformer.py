"""Float reference Spikingformer (zhouchenlin2096/Spikingformer @ 4378623, cifar10 and imagenet model.py).

What differs from Spikformer (tests/fixtures/family/spikingformer/*/README.txt, file:line there):
- pre-activation branches, ``LIF -> conv -> BN``; no LIF after a branch's last BN;
- the tokenizer's first conv reads the image with no LIF; stages 1-4 are LIF -> [MaxPool] -> conv -> BN; no rpe;
- the residual stream is real-valued (a sum of BN outputs: a "membrane shortcut"), kept as ``[T, B, C, H, W]``;
- attention: ``proj_lif`` on the block input, Conv1d q/k/v, ``((q @ kᵀ) @ v) * 0.125`` (cifar10) or
  ``(q @ (kᵀ @ v)) * 0.125`` (imagenet), attn_lif (threshold 0.5), proj conv + BN, no proj LIF;
- the head reads the token mean of the real stream (mean over T, then Linear).
Module names follow the original: cifar10 ``block0_conv``, ``block1_lif``, ``block3_mp``; imagenet ``proj_conv``,
``proj1_lif``, ``maxpool1``.
"""
from __future__ import annotations

import torch
from torch import nn

from .base import FamilyModel, per_frame, synapse_bn
from .config import ATTN_LIF_THRESHOLD, SpikformerConfig
from .lif import MultiStepLIF


def stage_names(variant: str, i: int) -> dict[str, str]:
    """Original names of tokenizer stage i's modules (conv, bn, lif, pool)."""
    if variant == "cifar10":
        return {"conv": f"block{i}_conv", "bn": f"block{i}_bn", "lif": f"block{i}_lif", "pool": f"block{i}_mp"}
    sfx = str(i) if i else ""
    return {"conv": f"proj{sfx}_conv", "bn": f"proj{sfx}_bn", "lif": f"proj{sfx}_lif", "pool": f"maxpool{sfx}"}


class SpikingTokenizer(nn.Module):
    def __init__(self, config: SpikformerConfig):
        super().__init__()
        self.config = config
        in_ch = config.in_channels
        for i, ch in enumerate(config.stage_channels):
            names = stage_names(config.variant, i)
            if i:
                setattr(self, names["lif"], MultiStepLIF())
            if i in config.pooled_stages:
                setattr(self, names["pool"], nn.MaxPool2d(kernel_size=3, stride=2, padding=1, dilation=1))
            setattr(self, names["conv"], nn.Conv2d(in_ch, ch, kernel_size=3, stride=1, padding=1, bias=False))
            setattr(self, names["bn"], nn.BatchNorm2d(ch))
            in_ch = ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i in range(len(self.config.stage_channels)):
            names = stage_names(self.config.variant, i)
            if i:
                x = getattr(self, names["lif"])(x)
            if i in self.config.pooled_stages:
                x = per_frame(getattr(self, names["pool"]), x)
            x = synapse_bn(getattr(self, names["conv"]), getattr(self, names["bn"]), x)
        return x  # real-valued [T, B, D, H', W']


class SpikingSelfAttention(nn.Module):
    def __init__(self, config: SpikformerConfig):
        super().__init__()
        self.config = config
        dim = config.dim
        self.proj_lif = MultiStepLIF()
        for name in ("q", "k", "v"):
            setattr(self, f"{name}_conv", nn.Conv1d(dim, dim, kernel_size=1, stride=1, bias=False))
            setattr(self, f"{name}_bn", nn.BatchNorm1d(dim))
            setattr(self, f"{name}_lif", MultiStepLIF())
        self.attn_lif = MultiStepLIF(v_threshold=ATTN_LIF_THRESHOLD)
        self.proj_conv = nn.Conv1d(dim, dim, kernel_size=1, stride=1)
        self.proj_bn = nn.BatchNorm1d(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        T, B, C, H, W = x.shape
        x = self.proj_lif(x).flatten(3)  # [T, B, C, N]
        N = x.shape[3]
        heads = []
        for name in ("q", "k", "v"):
            s = getattr(self, f"{name}_lif")(synapse_bn(getattr(self, f"{name}_conv"), getattr(self, f"{name}_bn"), x))
            heads.append(s.transpose(-1, -2).reshape(T, B, N, cfg.num_heads, cfg.head_dim)
                         .permute(0, 1, 3, 2, 4).contiguous())
        q, k, v = heads
        if cfg.variant == "cifar10":
            x = ((q @ k.transpose(-2, -1)) @ v) * cfg.attention_scale
        else:
            x = (q @ (k.transpose(-2, -1) @ v)) * cfg.attention_scale
        x = self.attn_lif(x.transpose(3, 4).reshape(T, B, C, N).contiguous())
        return synapse_bn(self.proj_conv, self.proj_bn, x).reshape(T, B, C, H, W)


class SpikingMLP(nn.Module):
    def __init__(self, config: SpikformerConfig):
        super().__init__()
        dims = ((config.dim, config.hidden_dim), (config.hidden_dim, config.dim))
        for i, (d_in, d_out) in enumerate(dims, start=1):
            setattr(self, f"mlp{i}_lif", MultiStepLIF())
            setattr(self, f"mlp{i}_conv", nn.Conv2d(d_in, d_out, kernel_size=1, stride=1))
            setattr(self, f"mlp{i}_bn", nn.BatchNorm2d(d_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i in (1, 2):
            x = synapse_bn(getattr(self, f"mlp{i}_conv"), getattr(self, f"mlp{i}_bn"), getattr(self, f"mlp{i}_lif")(x))
        return x


class SpikingformerBlock(nn.Module):
    def __init__(self, config: SpikformerConfig):
        super().__init__()
        self.norm1 = nn.LayerNorm(config.dim)  # in the state_dict, never called
        self.attn = SpikingSelfAttention(config)
        self.norm2 = nn.LayerNorm(config.dim)
        self.mlp = SpikingMLP(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(x)
        return x + self.mlp(x)


class Spikingformer(FamilyModel):
    def __init__(self, config: SpikformerConfig):
        super().__init__()
        self.config = config
        self.patch_embed = SpikingTokenizer(config)
        self.block = nn.ModuleList([SpikingformerBlock(config) for _ in range(config.depth)])
        self.head = nn.Linear(config.dim, config.num_classes)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(x.flatten(3).mean(3).mean(0))

    @staticmethod
    def is_unused_parameter(key: str) -> bool:
        parts = key.split(".")
        return len(parts) >= 3 and parts[0] == "block" and parts[2] in ("norm1", "norm2")
