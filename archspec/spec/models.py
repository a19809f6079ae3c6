"""pydantic models of a spec file and of a composite block file.

A call node keeps its block args as extra fields: they are checked against the block's own
params after the block is known (a spec may define blocks of its own), then typed by the
block's args model once their expressions are evaluated.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Union

from pydantic import AfterValidator, BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator, model_validator
from pydantic_core import PydanticCustomError

from archspec.spec.names import check_node_name

NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
REF = r"^[A-Za-z_0-9][A-Za-z0-9_.]*$"

Name = Annotated[str, Field(pattern=NAME, max_length=64)]
Ref = Annotated[str, Field(pattern=REF, max_length=256)]
NodeName = Annotated[str, Field(pattern=NAME, max_length=64), AfterValidator(check_node_name)]
Scalar = Union[Annotated[bool, Field(strict=True)], Annotated[int, Field(strict=True)], float, str]
Value = Union[Scalar, list[Any]]


class Closed(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ParamDecl(Closed):
    """A typed param with an optional default. `ints` is a list of ints (kernel lists)."""

    type: Literal["int", "float", "bool", "str", "ints", "floats", "any"]
    default: Value | None = None
    choices: list[Scalar] | None = Field(default=None, max_length=64)
    min: float | None = None
    max: float | None = None
    doc: str = Field(default="", max_length=2000)


# Keys of a node that a table column may not be named after: a column is a value for the node's
# expressions and params, so a column `when` or `from` would look like structure and silently be data.
# `name`, `repeat` and `in_channels` are the documented structural columns.
STRUCTURAL_KEYS = frozenset({"from", "when", "block", "call", "seq", "table", "hold", "input_shape", "doc"})


class Table(Closed):
    """Rows expand the node they sit on; each column becomes a name in the row's expressions."""

    columns: list[Name] = Field(min_length=1, max_length=32)
    rows: list[Union[list[Value], dict[str, Value]]] = Field(min_length=1, max_length=200_000)

    @field_validator("columns")
    @classmethod
    def _plain_columns(cls, columns: list[str]) -> list[str]:
        for column in columns:
            if column in STRUCTURAL_KEYS:
                raise PydanticCustomError(
                    "reserved_column", "a column cannot be called {column!r}: that is a node key, and a row "
                    "value cannot act as one; rename the column and use it in the node's expressions",
                    {"column": column})
            if columns.count(column) > 1:
                raise PydanticCustomError("duplicate_column", "column {column!r} appears twice", {"column": column})
        return columns


class NodeBase(BaseModel):
    name: NodeName | None = None
    from_: Ref | Annotated[list[Ref], Field(min_length=1, max_length=64)] | None = Field(default=None, alias="from")
    when: bool | str | None = None
    repeat: Annotated[int, Field(strict=True, ge=1)] | str | None = None
    table: Table | None = None
    doc: str = Field(default="", max_length=2000)


class CallNode(NodeBase):
    """`block: NAME` plus that block's args."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)
    block: Name
    in_channels: Annotated[int, Field(strict=True, ge=1)] | str | None = None
    hold: bool = False
    input_shape: list[Annotated[int, Field(strict=True, ge=1)] | str] | None = Field(default=None, max_length=4)

    @property
    def args(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


def _no_repeat_column(node: NodeBase) -> NodeBase:
    if node.table is not None and "repeat" in node.table.columns:
        raise PydanticCustomError(
            "repeat_column", "a `repeat` column repeats the node its table sits on, and the stride rule "
            "(stride 1 after the first repeat) applies only to blocks; on a {kind} it would repeat the whole "
            "{kind} unchanged. Put `repeat:` on the block inside it instead",
            {"kind": type(node).__name__.removesuffix("Node").lower()})
    return node


class UseNode(NodeBase):
    """`call: NAME` applies an existing module (or composite) again: one module, several calls."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    call: Ref

    _check_table = model_validator(mode="after")(_no_repeat_column)


class SeqNode(NodeBase):
    """An indexed sequence (`nn.Sequential`): items chain, unnamed items are named by index."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    seq: list[Node] = Field(min_length=1, max_length=200_000)

    _check_table = model_validator(mode="after")(_no_repeat_column)


def _node_kind(value: Any) -> str:
    if isinstance(value, dict):
        if "seq" in value:
            return "seq"
        if "call" in value:
            return "call"
        return "block"
    return "seq" if hasattr(value, "seq") else "call" if hasattr(value, "call") else "block"


Node = Annotated[
    Union[Annotated[CallNode, Tag("block")], Annotated[UseNode, Tag("call")], Annotated[SeqNode, Tag("seq")]],
    Discriminator(_node_kind),
]
SeqNode.model_rebuild()


class ModeOutputs(Closed):
    train: Ref | list[Union[Ref, OutputRef]]
    eval: Ref | list[Union[Ref, OutputRef]]


class OutputRef(Closed):
    ref: Ref
    when: bool | str = True


ModeOutputs.model_rebuild()
Outputs = Union[Ref, list[Union[Ref, OutputRef]], ModeOutputs]


# Names that lowering gives every expression scope: a param or `let` of that name would be replaced.
BUILTIN_VALUES = frozenset({"in_channels", "in_shape"})
# Keys of a block call node: a block param of that name could never be passed (`repeat: 2` repeats the node).
CALL_KEYS = frozenset({"name", "from", "when", "repeat", "table", "doc", "block", "hold", "input_shape", "call", "seq"})


def _free_names(names: dict, reserved: frozenset, what: str) -> dict:
    for name in names:
        if name in reserved:
            why = "archspec sets it in every scope (the input's channels or shape)" if name in BUILTIN_VALUES \
                else "it is a key of the node that calls the block"
            raise PydanticCustomError("reserved_param", "{what} {name!r} would never take effect: {why}; rename it",
                                      {"what": what, "name": name, "why": why})
    return names


# The order in which a block (or the network) registers its child modules: its print(model) order and its
# state_dict order. Listed children come first, in this order; a listed name whose node is absent (`when`) is
# skipped; children not listed follow in spec order.
ModuleOrder = Annotated[list[Name], Field(min_length=1, max_length=256)]


class BlockDef(Closed):
    """A composite block written in YAML from primitives and other composites."""

    archspec: Literal[1] = 1
    block: Name
    doc: str = Field(default="", max_length=4000)
    extends: Name | None = None
    defaults: dict[Name, Value] = Field(default_factory=dict, max_length=64)
    params: dict[Name, ParamDecl] = Field(default_factory=dict, max_length=64)
    let: dict[Name, Value] = Field(default_factory=dict, max_length=64)
    nodes: list[Node] = Field(default_factory=list, max_length=200_000)
    output: Ref | None = None
    order: ModuleOrder | None = None

    @field_validator("params")
    @classmethod
    def _params_can_be_passed(cls, params: dict) -> dict:
        return _free_names(params, BUILTIN_VALUES | CALL_KEYS, "param")

    @field_validator("let")
    @classmethod
    def _lets_do_not_replace_builtins(cls, lets: dict) -> dict:
        return _free_names(lets, BUILTIN_VALUES, "let value")


class InitRule(Closed):
    """Initialise the tensors of modules made by `blocks` (primitive names), optionally under `path`."""

    blocks: list[Name] = Field(min_length=1)
    under: str | None = None
    weight: str | None = None
    bias: str | None = None


SHA256 = re.compile(r"[0-9a-f]{8,64}")
PATTERN = Annotated[str, Field(min_length=1, max_length=256, pattern=r"^[A-Za-z0-9_.*?\[\]!-]+$")]


class WeightsEntry(Closed):
    """A published checkpoint of this spec: where it is, its SHA-256 (or a prefix of at least 8 hex digits)
    and how its tensors map onto the spec's state_dict."""

    url: str = Field(max_length=2000, pattern=r"^https?://[^\s]+$")
    sha256: str
    format: Literal["torch", "safetensors"] = "torch"
    license: str = Field(default="", max_length=200)
    port: Literal["names", "order"] = "names"
    drop: list[PATTERN] = Field(default_factory=list, max_length=64)
    doc: str = Field(default="", max_length=2000)

    @field_validator("sha256", mode="before")
    @classmethod
    def _digest(cls, value: Any) -> str:
        if not isinstance(value, str):
            raise PydanticCustomError("sha256", "sha256 must be a quoted string of hex digits, got {value!r} "
                                      "(YAML reads unquoted digits as a number)", {"value": str(value)[:80]})
        if not SHA256.fullmatch(value.lower()):
            raise PydanticCustomError(
                "sha256", "sha256 must be the file's SHA-256 in hex, whole (64 digits) or a prefix of at least "
                "8 digits (as in torchvision's file names), got {value!r}", {"value": value[:80]})
        return value.lower()

    @model_validator(mode="after")
    def _order_needs_torch(self) -> WeightsEntry:
        if self.port == "order" and self.format == "safetensors":
            raise PydanticCustomError("weights_port", "`port: order` needs a torch checkpoint: a safetensors "
                                      "file keeps no tensor order", {})
        return self


Weights = Annotated[dict[Name, WeightsEntry], Field(max_length=64)]


class SpecFile(Closed):
    archspec: Literal[1]
    name: Name
    class_name: Name | None = None  # the built model's class name (print(model), torchinfo); default: `name`
    description: str = Field(default="", max_length=4000)
    citation: str = Field(default="", max_length=2000)
    extends: str | None = Field(default=None, max_length=256)
    input: list[Annotated[int, Field(strict=True, ge=1, le=1 << 16)]] = Field(min_length=1, max_length=3)
    params: dict[Name, ParamDecl] = Field(default_factory=dict, max_length=128)
    let: dict[Name, Value] = Field(default_factory=dict, max_length=128)
    blocks: dict[Name, BlockDef] = Field(default_factory=dict, max_length=128)
    nodes: list[Node] = Field(min_length=1, max_length=200_000)
    outputs: Outputs | None = None
    order: ModuleOrder | None = None
    init: list[InitRule] = Field(default_factory=list, max_length=64)
    weights: Weights = Field(default_factory=dict)

    @field_validator("params", "let")
    @classmethod
    def _no_builtin_names(cls, names: dict) -> dict:
        return _free_names(names, BUILTIN_VALUES, "name")


class VariantFile(Closed):
    """A small file that extends a base spec and overrides its params."""

    archspec: Literal[1]
    name: Name
    extends: str = Field(max_length=256)
    description: str = Field(default="", max_length=4000)
    citation: str = Field(default="", max_length=2000)
    # the base's own type, so `input: ~` or `input: []` is refused here (absent: the base's input stays)
    input: list[Annotated[int, Field(strict=True, ge=1, le=1 << 16)]] = Field(default=None, min_length=1,
                                                                              max_length=3)
    params: dict[Name, Value | None] = Field(default_factory=dict, max_length=128)  # checked by the base's decl
    weights: Weights = Field(default_factory=dict)  # a variant's own; the base's are not inherited
