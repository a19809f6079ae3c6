"""Primitives: one file each. Importing this package registers the built-in ones."""

from archspec.ops import (  # noqa: F401  (imported for their registration)
    activations,
    adaptive_avgpool2d,
    add,
    avgpool2d,
    batchnorm,
    channel_slice,
    concat,
    conv2d,
    dropout,
    flatten,
    global_avgpool,
    grouped_conv2d,
    identity,
    instancenorm,
    linear,
    maxpool2d,
    mixed_conv2d,
    mul,
    reshape,
    to_anchors,
)
from archspec.ops.registry import REGISTRY, Primitive, get, register

__all__ = ["REGISTRY", "Primitive", "get", "register", "load_plugins"]


def load_plugins() -> list[str]:
    """Register primitives from installed packages' `archspec.primitives` entry points.

    This is the only way besides `register` to add Python: a spec never names an import path.
    """
    from importlib.metadata import entry_points

    loaded = []
    for point in entry_points(group="archspec.primitives"):
        if point.name not in REGISTRY:
            register(point.load())
            loaded.append(point.name)
    return loaded
