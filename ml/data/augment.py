"""The paper's training augmentation, on whole batches on the training device.

A random horizontal flip (p = 0.5) and a rotation by a uniform angle in [-15, 15] degrees
about the centre, nearest-neighbour, zero fill: what torchvision's ``RandomHorizontalFlip`` and
``RandomRotation(15)`` do to one image at a time, done to a batch at once with one
``affine_grid`` / ``grid_sample``. The random draws come from one CPU generator (B flips and B
angles per batch), so training is reproducible and resumable on any device.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional

MAX_DEGREES = 15.0


def rotate_batch(images: torch.Tensor, degrees: torch.Tensor) -> torch.Tensor:
    """uint8 or float [B, H, W] rotated counter-clockwise by `degrees` [B] about the centre
    (nearest neighbour, zero outside), as torchvision's rotate does per image."""
    b, h, w = images.shape
    theta = degrees.to(images.device, torch.float32) * (math.pi / 180.0)
    cos, sin = torch.cos(theta), torch.sin(theta)
    # output (x, y) in normalised coordinates -> input; y grows downwards, so a
    # counter-clockwise turn on screen maps output to input by the clockwise matrix
    affine = torch.zeros(b, 2, 3, device=images.device)
    affine[:, 0, 0], affine[:, 0, 1] = cos, -sin * h / w
    affine[:, 1, 0], affine[:, 1, 1] = sin * w / h, cos
    grid = functional.affine_grid(affine, [b, 1, h, w], align_corners=False)
    out = functional.grid_sample(
        images.unsqueeze(1).float(), grid, mode="nearest", padding_mode="zeros", align_corners=False
    )
    return (
        out.squeeze(1).round().to(images.dtype)
        if not images.is_floating_point()
        else out.squeeze(1)
    )


def augment_batch(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """The training augmentation of a uint8 batch [B, H, W] on its own device."""
    b = images.shape[0]
    flip = torch.rand(b, generator=generator) < 0.5
    degrees = (torch.rand(b, generator=generator) * 2 - 1) * MAX_DEGREES
    flipped = torch.where(flip.to(images.device).view(b, 1, 1), images.flip(-1), images)
    return rotate_batch(flipped, degrees)
