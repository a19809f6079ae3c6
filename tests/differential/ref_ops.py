"""Reference semantics of the primitives the differential tests generate, written with torch.nn.functional.

Deliberately plain and independent of archspec: no import from `archspec`, no fx, no module classes.
Each function takes the primitive's args (a dict), its input tensors, the weights of its module (a dict
of tensors by torch name, empty for functions) and the mode, and returns the output tensor.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _pair(value):
    return (value, value) if isinstance(value, int) else tuple(value)


def conv2d(args, xs, w, training):
    return F.conv2d(xs[0], w["weight"], w.get("bias"), stride=_pair(args.get("stride", 1)),
                    padding=_pair(args.get("padding", 0)), dilation=_pair(args.get("dilation", 1)),
                    groups=args.get("groups", 1))


def split(total: int, groups: int) -> list[int]:
    """MixNet's channel split: equal parts, the first one takes the remainder."""
    parts = [total // groups] * groups
    parts[0] += total - sum(parts)
    return parts


def grouped_conv2d(args, xs, w, training):
    kernels = args["kernel"]
    parts = torch.split(xs[0], split(xs[0].shape[1], len(kernels)), dim=1)
    outs = [F.conv2d(part, w[f"grouped_conv.{i}.weight"], None, stride=args.get("stride", 1),
                     padding=args.get("padding", 0)) for i, part in enumerate(parts)]
    return torch.cat(outs, dim=1)


def batchnorm(args, xs, w, training):
    # Clones: the differential tests compare outputs, and each evaluator must see the same buffers.
    return F.batch_norm(xs[0], w["running_mean"].clone(), w["running_var"].clone(), w.get("weight"), w.get("bias"),
                        training, args.get("momentum", 0.1), args.get("eps", 1e-5))


def linear(args, xs, w, training):
    return F.linear(xs[0], w["weight"], w.get("bias"))


def _pool(fn):
    def pool(args, xs, w, training):
        kernel = _pair(args["kernel"])
        stride = _pair(args["stride"]) if args.get("stride") is not None else kernel
        return fn(xs[0], kernel, stride, _pair(args.get("padding", 0)), ceil_mode=args.get("ceil_mode", False))
    return pool


ACTIVATIONS = {
    "relu": F.relu, "relu6": F.relu6, "sigmoid": torch.sigmoid, "swish": F.silu, "hardswish": F.hardswish,
    "hardsigmoid": F.hardsigmoid, "gelu": F.gelu, "tanh": torch.tanh,
}


def _activation(kind):
    return lambda args, xs, w, training: ACTIVATIONS[kind](xs[0])


def _sum(args, xs, w, training):
    out = xs[0]
    for x in xs[1:]:
        out = out + x
    return out


OPS = {
    "conv2d": conv2d,
    "grouped_conv2d": grouped_conv2d,
    "batchnorm": batchnorm,
    "linear": linear,
    "maxpool2d": _pool(F.max_pool2d),
    "avgpool2d": _pool(F.avg_pool2d),
    "adaptive_avgpool2d": lambda args, xs, w, t: F.adaptive_avg_pool2d(xs[0], _pair(args.get("output_size", 1))),
    "global_avgpool": lambda args, xs, w, t: xs[0].mean(dim=(2, 3), keepdim=args.get("keepdim", False)),
    "flatten": lambda args, xs, w, t: xs[0].flatten(1),
    "identity": lambda args, xs, w, t: xs[0],
    "add": _sum,
    "mul": lambda args, xs, w, t: xs[0] * xs[1],
    "concat": lambda args, xs, w, t: torch.cat(xs, dim=1),
    "channel_slice": lambda args, xs, w, t: xs[0][:, args.get("start", 0):args["stop"]],
    "act": lambda args, xs, w, t: ACTIVATIONS[args.get("kind", "relu")](xs[0]),
    **{kind: _activation(kind) for kind in ACTIVATIONS},
}

# Multiply-adds per sample, by the documented dense conv + linear convention, computed from shapes alone.


def macs(op: str, args: dict, in_shape: tuple, out_shape: tuple) -> int:
    if op == "conv2d":
        kh, kw = _pair(args.get("kernel", 1))
        return out_shape[0] * out_shape[1] * out_shape[2] * (in_shape[0] // args.get("groups", 1)) * kh * kw
    if op == "linear":
        return in_shape[0] * out_shape[0]
    if op == "grouped_conv2d":
        kernels = args["kernel"]
        pairs = zip(split(in_shape[0], len(kernels)), split(out_shape[0], len(kernels)), kernels)
        return sum(i * o * k * k for i, o, k in pairs) * out_shape[1] * out_shape[2]
    return 0
