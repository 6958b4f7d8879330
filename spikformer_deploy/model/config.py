"""The architecture of one Spikformer-family model, in the terms of its original code.

Members (``member``): ``spikformer`` (ZK-Zhou/spikformer @ 6212689; variants cifar10, imagenet, cifar10dvs),
``spikingformer`` (zhouchenlin2096/Spikingformer @ 4378623; cifar10, imagenet) and ``sdt``, the Spike-driven
Transformer v1 (BICLab/Spike-Driven-Transformer @ 3faa822; its tokenizer's pools are ``pooling``, the 4-character
pooling_stat string of its configs: 0011 in the CIFAR ones, 1111 in the ImageNet ones) and ``metaspikeformer``, the
Spike-driven Transformer v2 (BICLab/Spike-Driven-Transformer-V2 @ 35f245f; its four stage widths are ``embed_dims``,
``dim`` the last; ``kd``: a second, distillation head).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..errors import ConfigError

VARIANTS = ("cifar10", "imagenet", "cifar10dvs")
MEMBERS = {"spikformer": "Spikformer", "spikingformer": "Spikingformer", "sdt": "Spike-driven Transformer",
           "metaspikeformer": "Meta-SpikeFormer"}
MEMBER_VARIANTS = {"spikformer": VARIANTS, "spikingformer": ("cifar10", "imagenet"), "sdt": ("cifar10", "imagenet"),
                   "metaspikeformer": ("imagenet",)}
# Meta-SpikeFormer: 6 + 2 transformer blocks whatever ``depths`` (classification/models.py:460-503), MS_ConvBlock's
# reshape hard-codes 4 x C (mlp_ratio 4), and the four stride-2 convs give a total stride of 16
META_DEPTH, META_MLP_RATIO, META_STRIDE = 8, 4, 16

# Per-variant facts of the original code (DESIGN.md §1).
ATTENTION_SCALE = {"cifar10": 0.125, "imagenet": 0.125, "cifar10dvs": 0.25}
# SPS stages followed by MaxPool2d(3, 2, 1): cifar10 pools after stages 2 and 3 only.
POOLED_STAGES = {"cifar10": (2, 3), "imagenet": (0, 1, 2, 3), "cifar10dvs": (0, 1, 2, 3)}
# Spikingformer: 5 conv stages (the first on the image, no LIF); stage i >= 1 is LIF -> [MaxPool] -> conv -> BN, and
# these stages have the pool (cifar10/model.py:162-170, imagenet/model.py:158-173).
SPIKINGFORMER_POOLED = {"cifar10": (3, 4), "imagenet": (1, 2, 3, 4)}
# Default image size and T of each variant's factory (imagenet hard-codes T = 4 in forward; dvs hard-codes 128x128).
DEFAULT_IMG_SIZE = {"cifar10": 32, "imagenet": 224, "cifar10dvs": 128}
DEFAULT_T = {"cifar10": 4, "imagenet": 4, "cifar10dvs": None}
LIF_TAU = 2.0
LIF_THRESHOLD = 1.0
ATTN_LIF_THRESHOLD = 0.5


@dataclass(frozen=True)
class SpikformerConfig:
    variant: str
    dim: int
    depth: int
    num_heads: int
    mlp_ratio: float
    num_classes: int
    in_channels: int
    img_size: int
    T: int
    member: str = "spikformer"
    pooling: str | None = None  # sdt only: pooling_stat
    embed_dims: tuple[int, ...] | None = None  # metaspikeformer only: the widths of its four stages
    kd: bool = False  # metaspikeformer only: a knowledge-distillation head, averaged in at evaluation

    def __post_init__(self):
        if self.member not in MEMBERS:
            raise ConfigError(f"unknown model family member {self.member!r}; expected one of {', '.join(MEMBERS)}")
        if self.variant not in MEMBER_VARIANTS[self.member]:
            raise ConfigError(f"unknown {self.member} variant {self.variant!r}; expected one of "
                              f"{', '.join(MEMBER_VARIANTS[self.member])}")
        if (self.member == "sdt") != (self.pooling is not None):
            raise ConfigError("pooling (pooling_stat) is an sdt setting, and sdt needs it")
        if self.pooling is not None and (len(self.pooling) != 4 or set(self.pooling) - {"0", "1"}):
            raise ConfigError(f"pooling_stat must be 4 characters of 0/1, got {self.pooling!r}")
        self._check_meta()
        for name in ("dim", "depth", "num_heads", "num_classes", "in_channels", "img_size", "T"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        if self.dim % 8:
            raise ConfigError(f"dim {self.dim} must be a multiple of 8 (SPS uses dim/8, dim/4, dim/2 channels)")
        if self.dim % self.num_heads:
            raise ConfigError(f"num_heads {self.num_heads} does not divide dim {self.dim}")
        if self.hidden_dim < 1 or self.hidden_dim != self.mlp_ratio * self.dim:
            raise ConfigError(f"mlp_ratio {self.mlp_ratio} does not give an integer hidden size for dim {self.dim}")
        if self.img_size % self.downsample:
            raise ConfigError(f"img_size {self.img_size} must be a multiple of {self.downsample} for {self.variant}")

    def _check_meta(self) -> None:
        meta = self.member == "metaspikeformer"
        if meta != (self.embed_dims is not None) or (self.kd and not meta):
            raise ConfigError("embed_dims and kd are metaspikeformer settings, and metaspikeformer needs embed_dims")
        if not meta:
            return
        dims = self.embed_dims
        if len(dims) != 4 or any(not isinstance(d, int) or d < 2 for d in dims) or dims[0] % 2:
            raise ConfigError(f"embed_dims must be 4 positive integers, the first even, got {dims!r}")
        if dims[-1] != self.dim or dims[2] % self.num_heads:
            raise ConfigError(f"embed_dims {dims!r} must end with dim {self.dim}, and num_heads {self.num_heads} "
                              f"must divide its third width")
        if (self.depth, self.mlp_ratio) != (META_DEPTH, META_MLP_RATIO):
            raise ConfigError(f"Meta-SpikeFormer has {META_DEPTH} blocks and mlp_ratio {META_MLP_RATIO} (hard-coded "
                              f"in its code), got depth {self.depth}, mlp_ratio {self.mlp_ratio}")

    @property
    def head_dim(self) -> int:
        return self.dim // self.num_heads

    @property
    def hidden_dim(self) -> int:
        return int(self.dim * self.mlp_ratio)

    @property
    def title(self) -> str:
        return MEMBERS[self.member]

    @property
    def pooled_stages(self) -> tuple[int, ...]:
        """Tokenizer stages with a max-pool (after the stage for spikformer and sdt, before it for spikingformer)."""
        if self.member == "spikingformer":
            return SPIKINGFORMER_POOLED[self.variant]
        if self.member == "sdt":
            return tuple(i for i, c in enumerate(self.pooling) if c == "1")
        return POOLED_STAGES[self.variant]

    @property
    def downsample(self) -> int:
        if self.member == "metaspikeformer":
            return META_STRIDE
        return 2 ** len(self.pooled_stages)

    @property
    def grid(self) -> int:
        """Side of the token grid after SPS."""
        return self.img_size // self.downsample

    @property
    def num_tokens(self) -> int:
        return self.grid**2

    @property
    def attention_scale(self) -> float | None:
        """The fixed scale of Q Kᵀ V (spikingformer: 0.125 after both products); sdt's SDSA has none."""
        if self.member == "sdt":
            return None
        return 0.125 if self.member == "spikingformer" else ATTENTION_SCALE[self.variant]

    @property
    def stage_channels(self) -> tuple[int, ...]:
        channels = (self.dim // 8, self.dim // 4, self.dim // 2, self.dim)
        return (*channels, self.dim) if self.member == "spikingformer" else channels

    def input_shape(self, batch: int = 1) -> tuple[int, ...]:
        """Shape the model's forward takes: an image (repeated T times inside) or T event frames."""
        if self.variant == "cifar10dvs":
            return (batch, self.T, self.in_channels, self.img_size, self.img_size)
        return (batch, self.in_channels, self.img_size, self.img_size)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "SpikformerConfig":
        if data.get("embed_dims") is not None:  # JSON gives a list
            data = {**data, "embed_dims": tuple(data["embed_dims"])}
        names = {f.name for f in dataclasses.fields(cls)}
        optional = {f.name for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING}
        unknown = sorted(set(data) - names)
        missing = sorted(names - set(data) - optional)  # configs written before the family members lack those
        if unknown or missing:
            raise ConfigError(f"bad model config: missing {missing}, unknown {unknown}")
        return cls(**data)
