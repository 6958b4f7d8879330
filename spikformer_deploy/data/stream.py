"""A data set's inputs read batch by batch: memory stays bounded by the batch, whatever the data set's size.

``Inputs`` behaves like the input tensor where the runners use one (``len``, ``shape``, ``inputs[a:b]`` gives the
tensor of those inputs) and reads only what a slice asks for: image files are decoded, and ``.npy`` arrays are
memory-mapped, when their batch comes. It holds paths and indices, not pixels, so a Ray task that receives it reads
its own shard from disk (the files must be visible to the workers).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch


class Inputs:
    def __init__(self, read: Callable[[np.ndarray], torch.Tensor], item_shape: tuple[int, ...],
                 indices: np.ndarray):
        """``read``: positions in the source -> input tensor ``[len, *item_shape]`` (picklable);
        ``indices``: the source positions these inputs are, in order."""
        self.read = read
        self.item_shape = tuple(item_shape)
        self.indices = np.asarray(indices, dtype=np.int64)

    @classmethod
    def of(cls, x: torch.Tensor) -> "Inputs":
        """Inputs already in memory."""
        return cls(InMemory(x), tuple(x.shape[1:]), np.arange(len(x)))

    def __len__(self) -> int:
        return len(self.indices)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self), *self.item_shape)

    def __getitem__(self, key: slice) -> torch.Tensor:
        if not isinstance(key, slice):
            raise TypeError("Inputs are read by slices (a batch at a time)")
        return self.read(self.indices[key])

    def subset(self, positions) -> "Inputs":
        """These inputs at ``positions`` (an index array, a boolean mask or a slice), still unread."""
        return Inputs(self.read, self.item_shape, self.indices[positions])


@dataclass(frozen=True)
class InMemory:
    x: torch.Tensor

    def __call__(self, indices: np.ndarray) -> torch.Tensor:
        return self.x[torch.from_numpy(indices)]
