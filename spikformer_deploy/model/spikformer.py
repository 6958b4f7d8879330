"""Float reference Spikformer: the three variants of ZK-Zhou/spikformer @ 6212689, one implementation.

Module and parameter names follow the original code so that original state_dicts load strictly and spike counts can
be reported per original LIF name. Each variant keeps the original tensor layout and operation order (the fixtures
have threshold margins down to 6e-8, so a different summation order could flip a spike):
- cifar10: token stream ``[T, B, N, C]``; ``nn.Linear`` synapses (q/k/v WITH bias) and BatchNorm1d over C;
- imagenet: stream ``[T, B, C, H, W]``; q/k/v/proj 1x1 ``nn.Conv1d`` (q/k/v without bias), MLP 1x1 ``nn.Conv2d``;
- cifar10dvs: stream ``[T, B, C, N]``; 1x1 ``nn.Conv1d`` everywhere (q/k/v without bias).
"""
from __future__ import annotations

import torch
from torch import nn

from .base import FamilyModel, per_frame, synapse_bn
from .config import ATTN_LIF_THRESHOLD, SpikformerConfig
from .lif import MultiStepLIF


def stage_suffix(i: int) -> str:
    """Original SPS names: proj_conv, proj_conv1, proj_conv2, proj_conv3 (and bn/lif/maxpool alike)."""
    return "" if i == 0 else str(i)


class SPS(nn.Module):
    """Spiking patch splitting: 4 x (Conv3x3 -> BN -> LIF [-> MaxPool]) then the relative position embedding."""

    def __init__(self, config: SpikformerConfig):
        super().__init__()
        self.config = config
        in_ch = config.in_channels
        for i, ch in enumerate(config.stage_channels):
            sfx = stage_suffix(i)
            setattr(self, f"proj_conv{sfx}", nn.Conv2d(in_ch, ch, kernel_size=3, stride=1, padding=1, bias=False))
            setattr(self, f"proj_bn{sfx}", nn.BatchNorm2d(ch))
            setattr(self, f"proj_lif{sfx}", MultiStepLIF())
            if i in config.pooled_stages:
                setattr(self, f"maxpool{sfx}", nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
            in_ch = ch
        self.rpe_conv = nn.Conv2d(config.dim, config.dim, kernel_size=3, stride=1, padding=1, bias=False)
        self.rpe_bn = nn.BatchNorm2d(config.dim)
        self.rpe_lif = MultiStepLIF()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i in range(4):
            sfx = stage_suffix(i)
            x = getattr(self, f"proj_lif{sfx}")(
                synapse_bn(getattr(self, f"proj_conv{sfx}"), getattr(self, f"proj_bn{sfx}"), x, False))
            if i in self.config.pooled_stages:
                x = per_frame(getattr(self, f"maxpool{sfx}"), x)
        x_feat = x
        x = self.rpe_lif(synapse_bn(self.rpe_conv, self.rpe_bn, x, False))
        x = x + x_feat  # residual of spikes: values in {0, 1, 2}
        if self.config.variant == "cifar10":
            return x.flatten(-2).transpose(-1, -2)  # [T, B, N, C]
        if self.config.variant == "cifar10dvs":
            return x.flatten(-2)  # [T, B, C, N]
        return x  # imagenet: [T, B, C, H, W]


def _token_synapse(config: SpikformerConfig, out_features: int, bias: bool, in_features: int | None = None):
    in_features = in_features or config.dim
    if config.variant == "cifar10":
        return nn.Linear(in_features, out_features, bias=bias)
    return nn.Conv1d(in_features, out_features, kernel_size=1, stride=1, bias=bias)


def synapse_kind(config: SpikformerConfig) -> str:
    """Suffix of the original synapse names: q_linear / fc1_linear (cifar10) or q_conv / fc1_conv."""
    return "linear" if config.variant == "cifar10" else "conv"


class SSA(nn.Module):
    """Spiking self-attention: binary Q, K, V; no softmax; attention order and scale per variant."""

    def __init__(self, config: SpikformerConfig):
        super().__init__()
        self.config = config
        kind = synapse_kind(config)
        # cifar10 uses nn.Linear with its default bias for q/k/v (the qkv_bias argument is ignored there).
        qkv_bias = config.variant == "cifar10"
        for name in ("q", "k", "v"):
            setattr(self, f"{name}_{kind}", _token_synapse(config, config.dim, qkv_bias))
            setattr(self, f"{name}_bn", nn.BatchNorm1d(config.dim))
            setattr(self, f"{name}_lif", MultiStepLIF())
        self.attn_lif = MultiStepLIF(v_threshold=ATTN_LIF_THRESHOLD)
        setattr(self, f"proj_{kind}", _token_synapse(config, config.dim, True))
        self.proj_bn = nn.BatchNorm1d(config.dim)
        self.proj_lif = MultiStepLIF()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        kind = synapse_kind(cfg)
        channels_last = cfg.variant == "cifar10"
        grid_shape = x.shape[3:]
        if cfg.variant == "imagenet":
            x = x.flatten(3)  # [T, B, C, N]
        T, B = x.shape[:2]
        N = x.shape[2] if channels_last else x.shape[3]
        heads = []
        for name in ("q", "k", "v"):
            s = getattr(self, f"{name}_lif")(
                synapse_bn(getattr(self, f"{name}_{kind}"), getattr(self, f"{name}_bn"), x, channels_last))
            if not channels_last:
                s = s.transpose(-1, -2)
            heads.append(s.reshape(T, B, N, cfg.num_heads, cfg.head_dim).permute(0, 1, 3, 2, 4).contiguous())
        q, k, v = heads
        if cfg.variant == "cifar10":
            x = ((q @ k.transpose(-2, -1)) * cfg.attention_scale) @ v
        elif cfg.variant == "imagenet":
            x = (q @ (k.transpose(-2, -1) @ v)) * cfg.attention_scale
        else:
            x = ((q @ k.transpose(-2, -1)) @ v) * cfg.attention_scale
        # [T, B, heads, N, d] -> stream layout, channel index = head * d + j
        if channels_last:
            x = x.transpose(2, 3).reshape(T, B, N, cfg.dim).contiguous()
        else:
            x = x.transpose(3, 4).reshape(T, B, cfg.dim, N).contiguous()
        x = self.attn_lif(x)
        x = self.proj_lif(synapse_bn(getattr(self, f"proj_{kind}"), self.proj_bn, x, channels_last))
        if cfg.variant == "imagenet":
            x = x.reshape(T, B, cfg.dim, *grid_shape)
        return x


class MLP(nn.Module):
    def __init__(self, config: SpikformerConfig):
        super().__init__()
        self.config = config
        kind = synapse_kind(config)
        dims = ((config.dim, config.hidden_dim), (config.hidden_dim, config.dim))
        for i, (d_in, d_out) in enumerate(dims, start=1):
            if config.variant == "imagenet":
                synapse, bn = nn.Conv2d(d_in, d_out, kernel_size=1, stride=1), nn.BatchNorm2d(d_out)
            else:
                synapse, bn = _token_synapse(config, d_out, True, in_features=d_in), nn.BatchNorm1d(d_out)
            setattr(self, f"fc{i}_{kind}", synapse)
            setattr(self, f"fc{i}_bn", bn)
            setattr(self, f"fc{i}_lif", MultiStepLIF())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kind = synapse_kind(self.config)
        channels_last = self.config.variant == "cifar10"
        for i in (1, 2):
            x = getattr(self, f"fc{i}_lif")(
                synapse_bn(getattr(self, f"fc{i}_{kind}"), getattr(self, f"fc{i}_bn"), x, channels_last))
        return x


class Block(nn.Module):
    def __init__(self, config: SpikformerConfig):
        super().__init__()
        # norm1/norm2 exist in the original state_dict but forward() never calls them.
        eps = 1e-5 if config.variant == "cifar10" else 1e-6
        self.norm1 = nn.LayerNorm(config.dim, eps=eps)
        self.attn = SSA(config)
        self.norm2 = nn.LayerNorm(config.dim, eps=eps)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(x)
        return x + self.mlp(x)


class Spikformer(FamilyModel):
    def __init__(self, config: SpikformerConfig):
        super().__init__()
        self.config = config
        if config.variant == "cifar10dvs":
            self.pos_embed = nn.Parameter(torch.zeros(1, config.num_tokens, config.dim))  # unused by forward
        self.patch_embed = SPS(config)
        self.block = nn.ModuleList([Block(config) for _ in range(config.depth)])
        if config.variant == "cifar10dvs":
            self.norm = nn.LayerNorm(config.dim, eps=1e-6)  # unused by forward
        self.head = nn.Linear(config.dim, config.num_classes)
        self.apply(_init_weights)
        if config.variant == "cifar10dvs":
            nn.init.trunc_normal_(self.pos_embed, std=0.02)

    def pool(self, x: torch.Tensor) -> torch.Tensor:
        """The last block's output ``[T, B, ...]`` -> its mean over tokens, then over T: ``[B, dim]``."""
        if self.config.variant == "cifar10":
            x = x.mean(2)
        elif self.config.variant == "imagenet":
            x = x.flatten(3).mean(3)
        else:
            x = x.mean(3)
        return x.mean(0)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(x))

    @staticmethod
    def is_unused_parameter(key: str) -> bool:
        """pos_embed, norm, norm1/norm2: in the original state_dict, never read by forward()."""
        parts = key.split(".")
        if key == "pos_embed" or parts[0] == "norm":
            return True
        return len(parts) >= 3 and parts[0] == "block" and parts[2] in ("norm1", "norm2")


def _init_weights(m: nn.Module) -> None:
    """The original ``_init_weights``: truncated normal (std 0.02) Linear weights, zero biases, unit LayerNorm."""
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.constant_(m.bias, 0)
    elif isinstance(m, nn.LayerNorm):
        nn.init.constant_(m.bias, 0)
        nn.init.constant_(m.weight, 1.0)
