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


def perturb_norms(model: torch.nn.Module, seed: int = 1) -> torch.nn.Module:
    """Random affine norm parameters and running statistics: γ, β, mean and var all far from 1 and 0, so that
    folding that drops or misplaces any of them changes the output."""
    generator = torch.Generator().manual_seed(seed)

    def uniform(tensor: torch.Tensor, low: float, high: float) -> None:
        tensor.copy_(torch.rand(tensor.shape, generator=generator) * (high - low) + low)

    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.modules.batchnorm._NormBase):  # BatchNorm and InstanceNorm
                if module.weight is not None:
                    uniform(module.weight, 0.5, 1.5)
                    module.weight.mul_(torch.where(torch.rand(module.weight.shape, generator=generator) < 0.2,
                                                   -1.0, 1.0))  # some negative scales
                if module.bias is not None:
                    uniform(module.bias, -0.5, 0.5)
                if module.running_var is not None:
                    uniform(module.running_var, 0.5, 1.5)
                    uniform(module.running_mean, -0.2, 0.2)
    return model


def he_init(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Random weights that keep activations at unit scale through deep ReLU nets (He, fan_in) and non-zero
    biases. Default inits shrink depthwise nets' activations to nothing, so ReLU and ReLU6 would agree."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            weight = getattr(module, "weight", None)
            if isinstance(weight, torch.Tensor) and weight.dim() >= 2:
                fan_in = weight[0].numel()
                weight.copy_(torch.randn(weight.shape, generator=generator) * math.sqrt(2 / fan_in))
                bias = getattr(module, "bias", None)
                if isinstance(bias, torch.Tensor):
                    bias.copy_(torch.rand(bias.shape, generator=generator) * 0.2 - 0.1)
    return model


def exercise(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """He-scaled weights and perturbed norms: every parameter and every non-linearity matters."""
    return perturb_norms(he_init(model, seed), seed + 1)
