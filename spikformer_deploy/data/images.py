"""One preprocessing for every image source (IDX files, ``.npz`` arrays, image folders), so that the same pictures
reach the model as the same bits whichever way they were stored."""
from __future__ import annotations

import torch
import torch.nn.functional as F

PIXEL_LEVELS = 255  # 8-bit sources


def to_model_input(x: torch.Tensor, size: int, eight_bit: bool) -> torch.Tensor:
    """``x`` [N, C, H, W] (8-bit sources: in [0, 1]) resized to ``size`` x ``size`` (bilinear, antialiased when shrinking).

    An 8-bit source stays 8-bit: resized pixels are rounded back to multiples of 1/255, as a picture stored at the
    model's size would hold them. The integer model reads its input as 8-bit integers; inputs on that grid reach the
    float and the integer model alike, so their spikes can agree from the first layer on.
    """
    if tuple(x.shape[-2:]) != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    if eight_bit:  # (the triangle filter has no negative taps: nothing leaves [0, 1] to clamp)
        x = torch.round(x * PIXEL_LEVELS) / PIXEL_LEVELS
    return x.contiguous()


def from_pixels(x: torch.Tensor, size: int) -> torch.Tensor:
    """8-bit pixels (uint8 0..255) [N, C, H, W] as model input: in [0, 1], resized, on the 8-bit grid."""
    return to_model_input(x.float() / PIXEL_LEVELS, size, eight_bit=True)
