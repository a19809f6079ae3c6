"""Fill scheme v1 from the reference facts: deterministic, RNG-free, keyed by state_dict name."""

from __future__ import annotations

import math
import zlib

import torch


def fill_tensor(key: str, tensor: torch.Tensor) -> torch.Tensor:
    if not tensor.is_floating_point():
        return torch.zeros_like(tensor)
    n = tensor.numel()
    j = torch.arange(n, dtype=torch.float64)
    phase = (zlib.crc32(key.encode("utf-8")) % 997) / 97
    base = torch.sin(0.7 * j + phase)
    if key.endswith("running_var"):
        values = 1 + 0.25 * (base + 1)
    elif key.endswith("running_mean"):
        values = 0.1 * base
    elif key.endswith(".bias"):
        values = 0.05 * base
    elif tensor.dim() == 1:
        values = 1 + 0.1 * base
    else:
        fan_in = n // tensor.shape[0]
        values = base * math.sqrt(3 / fan_in)
    return values.reshape(tensor.shape).to(tensor.dtype)


def fill_module(module: torch.nn.Module) -> None:
    state = {k: fill_tensor(k, v) for k, v in module.state_dict().items()}
    module.load_state_dict(state, strict=True)


def golden_input(batch: int, chw: list[int]) -> torch.Tensor:
    c, h, w = chw
    j = torch.arange(batch * c * h * w, dtype=torch.float64)
    return torch.sin(0.01 * j + 0.5).reshape(batch, c, h, w).to(torch.float32)
