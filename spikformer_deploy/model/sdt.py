"""Float reference Spike-driven Transformer v1 (BICLab/Spike-Driven-Transformer @ 3faa822, model/spikeformer.py,
module/sps.py, module/ms_conv.py; spike_mode 'lif', dvs_mode off, TET off).

What differs from Spikformer (tests/fixtures/family/sdt/*/README.txt, file:line there):
- tokenizer MS_SPS: conv -> BN -> LIF stages whose max-pools are switched by ``pooling_stat``; the last stage's
  pool acts on the REAL BN output (before proj_lif3); its output ``x_feat`` (real) plus rpe conv + BN of
  proj_lif3's spikes is the real-valued stream (rpe_lif is built, never called);
- membrane shortcuts inside attention and MLP (``branch + identity``), pre-activation branches;
- SDSA attention: ``kv = sum over tokens of k * v`` -> talking_heads_lif (threshold 0.5) -> ``q * kv`` (broadcast
  over tokens) -> proj conv + BN; no matrix product, no scale, no softmax (attn_lif and the talking_heads Conv1d are
  built and never called);
- head: token mean of the real stream -> head_lif -> Linear per step -> mean over T.
"""
from __future__ import annotations

import torch
from torch import nn

from .base import FamilyModel, per_frame, synapse_bn
from .config import ATTN_LIF_THRESHOLD, SpikformerConfig
from .lif import MultiStepLIF


def sps_suffix(i: int) -> str:
    return str(i) if i else ""


class MS_SPS(nn.Module):
    def __init__(self, config: SpikformerConfig):
        super().__init__()
        self.config = config
        in_ch = config.in_channels
        for i, ch in enumerate(config.stage_channels):
            sfx = sps_suffix(i)
            setattr(self, f"proj_conv{sfx}", nn.Conv2d(in_ch, ch, kernel_size=3, stride=1, padding=1, bias=False))
            setattr(self, f"proj_bn{sfx}", nn.BatchNorm2d(ch))
            setattr(self, f"proj_lif{sfx}", MultiStepLIF())
            setattr(self, f"maxpool{sfx}", nn.MaxPool2d(kernel_size=3, stride=2, padding=1, dilation=1))
            in_ch = ch
        self.rpe_conv = nn.Conv2d(config.dim, config.dim, kernel_size=3, stride=1, padding=1, bias=False)
        self.rpe_bn = nn.BatchNorm2d(config.dim)
        self.rpe_lif = MultiStepLIF()  # built, never called (module/sps.py:109-114)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = self.config.pooled_stages
        for i in range(3):
            sfx = sps_suffix(i)
            x = getattr(self, f"proj_lif{sfx}")(
                synapse_bn(getattr(self, f"proj_conv{sfx}"), getattr(self, f"proj_bn{sfx}"), x))
            if i in pooled:
                x = per_frame(getattr(self, f"maxpool{sfx}"), x)
        x = synapse_bn(self.proj_conv3, self.proj_bn3, x)
        if 3 in pooled:
            x = per_frame(self.maxpool3, x)  # on real values
        x_feat = x
        x = synapse_bn(self.rpe_conv, self.rpe_bn, self.proj_lif3(x))
        return x + x_feat


class MS_SSA_Conv(nn.Module):
    def __init__(self, config: SpikformerConfig):
        super().__init__()
        self.config = config
        dim = config.dim
        self.shortcut_lif = MultiStepLIF()
        for name in ("q", "k", "v"):
            setattr(self, f"{name}_conv", nn.Conv2d(dim, dim, kernel_size=1, stride=1, bias=False))
            setattr(self, f"{name}_bn", nn.BatchNorm2d(dim))
            setattr(self, f"{name}_lif", MultiStepLIF())
        self.attn_lif = MultiStepLIF(v_threshold=ATTN_LIF_THRESHOLD)  # built, never called
        self.talking_heads = nn.Conv1d(config.num_heads, config.num_heads, kernel_size=1, stride=1, bias=False)
        self.talking_heads_lif = MultiStepLIF(v_threshold=ATTN_LIF_THRESHOLD)
        self.proj_conv = nn.Conv2d(dim, dim, kernel_size=1, stride=1)
        self.proj_bn = nn.BatchNorm2d(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        T, B, C, H, W = x.shape
        identity = x
        x = self.shortcut_lif(x)
        heads = []
        for name in ("q", "k", "v"):
            s = getattr(self, f"{name}_lif")(synapse_bn(getattr(self, f"{name}_conv"), getattr(self, f"{name}_bn"), x))
            heads.append(s.flatten(3).transpose(-1, -2).reshape(T, B, H * W, cfg.num_heads, cfg.head_dim)
                         .permute(0, 1, 3, 2, 4).contiguous())
        q, k, v = heads
        kv = self.talking_heads_lif((k * v).sum(dim=-2, keepdim=True))  # [T, B, heads, 1, d]
        x = (q * kv).transpose(3, 4).reshape(T, B, C, H, W).contiguous()
        return synapse_bn(self.proj_conv, self.proj_bn, x) + identity


class MS_MLP_Conv(nn.Module):
    def __init__(self, config: SpikformerConfig):
        super().__init__()
        dims = ((config.dim, config.hidden_dim), (config.hidden_dim, config.dim))
        for i, (d_in, d_out) in enumerate(dims, start=1):
            setattr(self, f"fc{i}_lif", MultiStepLIF())
            setattr(self, f"fc{i}_conv", nn.Conv2d(d_in, d_out, kernel_size=1, stride=1))
            setattr(self, f"fc{i}_bn", nn.BatchNorm2d(d_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x
        for i in (1, 2):
            x = synapse_bn(getattr(self, f"fc{i}_conv"), getattr(self, f"fc{i}_bn"), getattr(self, f"fc{i}_lif")(x))
        return x + identity


class MS_Block_Conv(nn.Module):
    def __init__(self, config: SpikformerConfig):
        super().__init__()
        self.attn = MS_SSA_Conv(config)
        self.mlp = MS_MLP_Conv(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.attn(x))


class SpikeDrivenTransformer(FamilyModel):
    def __init__(self, config: SpikformerConfig):
        super().__init__()
        self.config = config
        self.patch_embed = MS_SPS(config)
        self.block = nn.ModuleList([MS_Block_Conv(config) for _ in range(config.depth)])
        self.head_lif = MultiStepLIF()
        self.head = nn.Linear(config.dim, config.num_classes)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.head_lif(x.flatten(3).mean(3))).mean(0)
