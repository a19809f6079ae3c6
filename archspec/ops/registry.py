"""The primitive registry. A primitive carries its own args model, shape rule, params/MACs rule
and torch factory, so no other code needs to know primitive names."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:  # torch is imported lazily by the builder only
    import torch.fx
    import torch.nn

Shape = tuple[int, ...]

PosInt = Annotated[int, Field(strict=True, ge=1, le=1 << 24)]
NonNegInt = Annotated[int, Field(strict=True, ge=0, le=1 << 24)]
Bool = Annotated[bool, Field(strict=True)]
Prob = Annotated[float, Field(ge=0.0, le=1.0)]
Eps = Annotated[float, Field(gt=0.0, le=1.0)]
IntPair = PosInt | Annotated[list[PosInt], Field(min_length=2, max_length=2)]
NonNegPair = NonNegInt | Annotated[list[NonNegInt], Field(min_length=2, max_length=2)]


class Args(BaseModel):
    """Base for primitive args: strict, closed, immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class NoArgs(Args):
    pass


class Primitive:
    """Subclass per primitive file. Shape/param/MAC rules are pure Python on int tuples."""

    name: ClassVar[str]
    category: ClassVar[str]  # conv, norm, activation, pool, linear, merge, shape, regularization
    Args: ClassVar[type[Args]] = NoArgs
    min_inputs: ClassVar[int] = 1
    max_inputs: ClassVar[int] = 1
    # The op that reads our output may overwrite it in place (our backward does not need it).
    mutable_output: ClassVar[bool] = False
    # The builder may ask this op to work in place on its first input.
    supports_inplace: ClassVar[bool] = False
    # (args, input shapes) that the registry tests build and run against the static rules.
    example: ClassVar[tuple[dict, list[Shape]]] = ({}, [(3, 4, 4)])
    # What the backends ask about a primitive, so that none of them needs its name:
    # - the inference build (`archspec.optimize`) drops the call: in eval mode it returns its input;
    passthrough_in_eval: ClassVar[bool] = False
    # - a per-channel affine norm that the inference build folds into the layer before it ...
    folds_into_previous: ClassVar[bool] = False
    # - ... when that layer absorbs it: its weight's dim 0 and its bias are per output channel;
    absorbs_norm: ClassVar[bool] = False
    # - its `weight` is a vector, so fan-based init schemes (kaiming, xavier) do not apply to it.
    vector_weight: ClassVar[bool] = False
    # - `fused` may return a module that is only faster on some inputs: the inference build measures it first.
    fuse_needs_measurement: ClassVar[bool] = False

    def infer(self, args: Any, shapes: Sequence[Shape]) -> Shape:
        return shapes[0]

    def count_params(self, args: Any, shapes: Sequence[Shape]) -> int:
        return 0

    def count_macs(self, args: Any, shapes: Sequence[Shape], out: Shape) -> int:
        return 0

    def key_args(self, args: Any) -> dict:
        """Args worth showing on a diagram or summary."""
        return {}

    def build(self, args: Any, shapes: Sequence[Shape], inplace: bool = False) -> torch.nn.Module | None:
        """Return a module, or None when `emit` produces a function call instead."""
        raise NotImplementedError

    def emit(self, graph: torch.fx.Graph, args: Any, inputs: list, inplace: bool = False):
        """Functional primitives add their call to `graph` here; module primitives return None."""
        return None

    @property
    def stateful(self) -> bool:
        """Its module's parameters are sized by the input's channels, so a shared module (`call:`) must see the
        same channel count at every call."""
        return self.category in ("conv", "norm", "linear")

    def fused(self, module: torch.nn.Module) -> tuple[torch.nn.Module, str] | None:
        """An equivalent, faster module for inference, and the primitive it then is; None: keep it."""
        return None

    def source(self, module: torch.nn.Module) -> str:
        """The Python expression that rebuilds `module` in an exported file (which imports `nn`)."""
        return "nn." + repr(module)

    def source_helpers(self) -> list[type]:
        """Classes whose source an exported file must carry to evaluate `source`."""
        return []

    @property
    def has_module(self) -> bool:
        return type(self).build is not Primitive.build

    @property
    def stateless_function(self) -> bool:
        return type(self).emit is not Primitive.emit


REGISTRY: dict[str, Primitive] = {}


def register(primitive_cls: type[Primitive]) -> type[Primitive]:
    """Class decorator. Raises on duplicates, as torchvision's model registry does."""
    name = primitive_cls.name
    if name in REGISTRY:
        raise ValueError(f"primitive {name!r} is already registered")
    REGISTRY[name] = primitive_cls()
    return primitive_cls


def get(name: str) -> Primitive | None:
    return REGISTRY.get(name)


def need_rank(shape: Shape, ranks: Sequence[int], what: str) -> None:
    if len(shape) not in ranks:
        want = " or ".join(_rank_name(r) for r in ranks)
        raise ValueError(f"{what} needs a {want} input, got {format_shape(shape)}")


def _rank_name(rank: int) -> str:
    return {1: "C (vector)", 3: "C×H×W (image)"}.get(rank, f"rank-{rank}")


def format_shape(shape: Shape) -> str:
    return "×".join(str(d) for d in shape) if shape else "scalar"


def pair(value: int | list[int]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (value[0], value[1])


def conv_out(size: int, kernel: int, stride: int, padding: int, dilation: int = 1) -> int:
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def spatial_out(shape: Shape, kernel, stride, padding, dilation=1, what: str = "this op") -> tuple[int, int]:
    kh, kw = pair(kernel)
    sh, sw = pair(stride)
    ph, pw = pair(padding)
    dh, dw = pair(dilation)
    h = conv_out(shape[1], kh, sh, ph, dh)
    w = conv_out(shape[2], kw, sw, pw, dw)
    if h < 1 or w < 1:
        raise ValueError(f"{what} collapses {shape[1]}×{shape[2]} to {h}×{w}")
    return h, w
