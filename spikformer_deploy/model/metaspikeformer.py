"""Float reference Meta-SpikeFormer, the Spike-driven Transformer v2 (BICLab/Spike-Driven-Transformer-V2 @ 35f245f,
classification/models.py ``Spiking_vit_MetaFormer``). Written from the forward facts of its fixture's README
(tests/fixtures/family/metaspikeformer/imagenet/README.txt, file:line there); the repository has no licence and
nothing of its code is copied here.

What differs from the other members:
- no tokenizer: four down-sampling convs (the first, 7x7 stride 2 with bias, on the real image with no LIF; the
  others LIF -> conv with bias -> BN), with conv stages of ``MS_ConvBlock`` between them (SepConv: LIF -> 1x1 -> BN ->
  LIF -> 7x7 depthwise -> 1x1 -> BN, whose second 1x1 reads real values; then LIF -> 3x3 -> BN -> LIF -> 3x3 -> BN),
  each with membrane shortcuts;
- 6 + 2 transformer blocks on the real-valued stream (counts hard-coded in the original, whatever ``depths``);
- attention on RepConv projections (1x1 -> BN whose padding is the BN of zero -> 3x3 depthwise -> 1x1 -> BN, then
  a second BN): ``(q @ (k^T @ v)) * 0.125`` -> attn_lif (0.5) -> RepConv proj; no LIF after the projection;
- MLP of Conv1d with bias; head: token mean of the stream -> LIF -> Linear per step -> mean over T (and, with a
  knowledge-distillation head, its mean averaged in at evaluation).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import FamilyModel, synapse_bn
from .config import ATTN_LIF_THRESHOLD, SpikformerConfig
from .lif import MultiStepLIF

ATTENTION_SCALE = 0.125  # fixed, whatever the head size (classification/models.py:291)
STAGE3_BLOCKS, STAGE4_BLOCKS = 6, 2
STAGES = ("downsample1_1", "ConvBlock1_1", "downsample1_2", "ConvBlock1_2", "downsample2", "ConvBlock2_1",
          "ConvBlock2_2", "downsample3", "block3", "downsample4", "block4")  # in forward order


def frames(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``module`` on ``[T, B, ...]`` with T folded into the batch."""
    y = module(x.flatten(0, 1))
    return y.reshape(*x.shape[:2], *y.shape[1:]).contiguous()


class BNAndPad(nn.Module):
    """BatchNorm, then a one-pixel border whose value per channel is that BatchNorm applied to zero, so that the
    3x3 depthwise conv after it sees the padding an un-normalised conv would have (RepConv's re-parameterisation)."""

    def __init__(self, channels: int, pad: int = 1):
        super().__init__()
        self.bn = nn.BatchNorm2d(channels)
        self.pad = pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bn, p = self.bn, self.pad
        border = (bn.bias - bn.running_mean * bn.weight / torch.sqrt(bn.running_var + bn.eps)).view(1, -1, 1, 1)
        # a select, not writes into the padded tensor: exact, and ONNX traces it for any batch size
        outside = F.pad(torch.zeros(1, 1, *x.shape[-2:], dtype=torch.bool, device=x.device), [p] * 4, value=True)
        return torch.where(outside, border, F.pad(bn(x), [p] * 4))


class RepConv(nn.Module):
    """1x1 -> BN with BN padding -> 3x3 depthwise (no padding) -> 1x1 -> BN: one same-size 3x3 conv in effect."""

    def __init__(self, channels: int, out_channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 1, bias=False), BNAndPad(channels),
            nn.Sequential(nn.Conv2d(channels, channels, 3, groups=channels, bias=False),
                          nn.Conv2d(channels, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def rep_projection(channels: int) -> nn.Sequential:
    """RepConv then a BatchNorm (two BatchNorms in a row), as the attention's q, k, v and proj."""
    return nn.Sequential(RepConv(channels, channels), nn.BatchNorm2d(channels))


class MS_DownSampling(nn.Module):
    def __init__(self, in_channels: int, channels: int, kernel: int, stride: int, padding: int, first: bool):
        super().__init__()
        self.encode_conv = nn.Conv2d(in_channels, channels, kernel, stride=stride, padding=padding)
        self.encode_bn = nn.BatchNorm2d(channels)
        if not first:  # the first reads the real image directly
            self.encode_lif = MultiStepLIF()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if hasattr(self, "encode_lif"):
            x = self.encode_lif(x)
        return synapse_bn(self.encode_conv, self.encode_bn, x)


class SepConv(nn.Module):
    def __init__(self, channels: int, expansion: int = 2, kernel: int = 7):
        super().__init__()
        mid = channels * expansion
        self.lif1 = MultiStepLIF()
        self.pwconv1 = nn.Conv2d(channels, mid, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.lif2 = MultiStepLIF()
        self.dwconv = nn.Conv2d(mid, mid, kernel, padding=kernel // 2, groups=mid, bias=False)
        self.pwconv2 = nn.Conv2d(mid, channels, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.lif2(synapse_bn(self.pwconv1, self.bn1, self.lif1(x)))
        return synapse_bn(self.pwconv2, self.bn2, frames(self.dwconv, x))  # no BN or LIF between the two convs


class MS_ConvBlock(nn.Module):
    def __init__(self, channels: int, mlp_ratio: int = 4):
        super().__init__()
        hidden = channels * mlp_ratio
        self.Conv = SepConv(channels)
        self.lif1 = MultiStepLIF()
        self.conv1 = nn.Conv2d(channels, hidden, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(hidden)
        self.lif2 = MultiStepLIF()
        self.conv2 = nn.Conv2d(hidden, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.Conv(x) + x
        branch = synapse_bn(self.conv1, self.bn1, self.lif1(x))
        return x + synapse_bn(self.conv2, self.bn2, self.lif2(branch))


class MS_Attention(nn.Module):
    """The original's MS_Attention_RepConv_qkv_id."""

    def __init__(self, channels: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.head_lif = MultiStepLIF()
        for name in ("q", "k", "v"):
            setattr(self, f"{name}_conv", rep_projection(channels))
            setattr(self, f"{name}_lif", MultiStepLIF())
        self.attn_lif = MultiStepLIF(v_threshold=ATTN_LIF_THRESHOLD)
        self.proj_conv = rep_projection(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B, C, H, W = x.shape
        x = self.head_lif(x)
        q, k, v = (getattr(self, f"{n}_lif")(frames(getattr(self, f"{n}_conv"), x)).flatten(3).transpose(-1, -2)
                   .reshape(T, B, H * W, self.num_heads, C // self.num_heads).permute(0, 1, 3, 2, 4).contiguous()
                   for n in ("q", "k", "v"))
        x = (q @ (k.transpose(-2, -1) @ v)) * ATTENTION_SCALE
        x = self.attn_lif(x.transpose(3, 4).reshape(T, B, C, H * W).contiguous()).reshape(T, B, C, H, W)
        return frames(self.proj_conv, x)


class MS_MLP(nn.Module):
    def __init__(self, channels: int, hidden: int):
        super().__init__()
        self.fc1_lif = MultiStepLIF()
        self.fc1_conv = nn.Conv1d(channels, hidden, 1)
        self.fc1_bn = nn.BatchNorm1d(hidden)
        self.fc2_lif = MultiStepLIF()
        self.fc2_conv = nn.Conv1d(hidden, channels, 1)
        self.fc2_bn = nn.BatchNorm1d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        x = synapse_bn(self.fc1_conv, self.fc1_bn, self.fc1_lif(x.flatten(3)))
        return synapse_bn(self.fc2_conv, self.fc2_bn, self.fc2_lif(x)).reshape(shape)


class MS_Block(nn.Module):
    def __init__(self, channels: int, num_heads: int, mlp_ratio: int):
        super().__init__()
        self.attn = MS_Attention(channels, num_heads)
        self.mlp = MS_MLP(channels, channels * mlp_ratio)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(x)
        return x + self.mlp(x)


class MetaSpikeFormer(FamilyModel):
    def __init__(self, config: SpikformerConfig):
        super().__init__()
        self.config = config
        e0, e1, e2, e3 = config.embed_dims
        ratio = int(config.mlp_ratio)
        self.downsample1_1 = MS_DownSampling(config.in_channels, e0 // 2, 7, 2, 3, first=True)
        self.ConvBlock1_1 = nn.ModuleList([MS_ConvBlock(e0 // 2, ratio)])
        self.downsample1_2 = MS_DownSampling(e0 // 2, e0, 3, 2, 1, first=False)
        self.ConvBlock1_2 = nn.ModuleList([MS_ConvBlock(e0, ratio)])
        self.downsample2 = MS_DownSampling(e0, e1, 3, 2, 1, first=False)
        self.ConvBlock2_1 = nn.ModuleList([MS_ConvBlock(e1, ratio)])
        self.ConvBlock2_2 = nn.ModuleList([MS_ConvBlock(e1, ratio)])
        self.downsample3 = MS_DownSampling(e1, e2, 3, 2, 1, first=False)
        self.block3 = nn.ModuleList([MS_Block(e2, config.num_heads, ratio) for _ in range(STAGE3_BLOCKS)])
        self.downsample4 = MS_DownSampling(e2, e3, 3, 1, 1, first=False)
        self.block4 = nn.ModuleList([MS_Block(e3, config.num_heads, ratio) for _ in range(STAGE4_BLOCKS)])
        self.lif = MultiStepLIF()
        self.head = nn.Linear(e3, config.num_classes)
        if config.kd:
            self.head_kd = nn.Linear(e3, config.num_classes)

    def parts(self) -> list[nn.Module]:
        out = []
        for name in STAGES:
            stage = getattr(self, name)
            out += list(stage) if isinstance(stage, nn.ModuleList) else [stage]
        return out

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        spikes = self.lif(x.flatten(3).mean(3))
        logits = self.head(spikes).mean(0)
        if self.config.kd:  # evaluation: the two heads averaged (the distillation head's teacher is not needed)
            return (logits + self.head_kd(spikes).mean(0)) / 2
        return logits
