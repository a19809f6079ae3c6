"""Primitives: one file each. Importing this package registers the built-in ones.

Every module of this package whose name does not start with `_` is imported, in name order, so adding a
primitive is adding its file. Helpers that primitives share (`_pool`, `_broadcast`, `_torch_modules`) start
with `_`; `_torch_modules` is the one that imports torch, and only factories import it.
"""

import importlib
import pkgutil

from archspec.ops.registry import REGISTRY, Primitive, get, register

__all__ = ["REGISTRY", "Primitive", "get", "register", "load_plugins"]


def _discover() -> None:
    for module in pkgutil.iter_modules(__path__):
        if not module.name.startswith("_"):
            # The names are this package's own file names, never text from a spec.
            importlib.import_module(f"{__name__}.{module.name}")  # hazard-ok


_discover()


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
