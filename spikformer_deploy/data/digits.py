"""scikit-learn's 8x8 handwritten digits (shipped inside its wheel: no download), upscaled for a Spikformer stem."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

DIGITS_SOURCE = "sklearn.datasets.load_digits (UCI optical recognition of handwritten digits, 1797 images, 8x8, 0..16)"


def digits_split(img_size: int = 16, test_fraction: float = 0.2, seed: int = 0):
    """Stratified train/test split: ``(x_train, y_train, x_test, y_test)``, images ``[N, 1, S, S]`` in [0, 1].

    Pixels are divided by 16 (their maximum) and bilinearly upscaled; the same seed gives the same split.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = digits.images.astype(np.float32) / 16.0
    labels = digits.target.astype(np.int64)
    idx_train, idx_test = train_test_split(np.arange(len(labels)), test_size=test_fraction, random_state=seed,
                                           stratify=labels)

    def prepare(idx):
        x = torch.from_numpy(images[idx]).unsqueeze(1)
        if img_size != 8:
            x = F.interpolate(x, size=(img_size, img_size), mode="bilinear", align_corners=False)
        return x.clamp_(0.0, 1.0).contiguous(), torch.from_numpy(labels[idx])

    x_train, y_train = prepare(idx_train)
    x_test, y_test = prepare(idx_test)
    return x_train, y_train, x_test, y_test
