"""Which module runs which calls: one forward program per composite block, and the root's per mode.

Pure Python on the typed graph (no torch). A block instance gets its own forward, written from the
calls of its subgraph, and its parent calls it the way hand-written code calls a child module. A
container is inlined into its parent (its calls are made by the parent, reaching into it) when:
- a value inside it, other than its output, is read from outside it, or is an output of the network
  (a tap: SSDLite reads `base_net.14.conv.2`, as pytorch-ssd runs block 14's layers itself);
- it is a sequence whose items do not form the plain chain that `nn.Sequential.forward` runs (an item
  reads something other than the item before it, a held module sits in it, or a `call:` re-runs a module
  inside it);
- it reads a value or calls a module that lives outside it (a `seq` sees its parent's names).
A block's own forward still works standalone when its parent inlines it. Programs name values by
position (`in0`, `v3`), so identical instances share one program, and so one generated class.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from archspec.graph.ir import INPUT, Call, Invocation, TypedGraph

SEQUENTIAL = "Sequential"


@dataclass(frozen=True)
class Step:
    """One line of a forward: a call of a child module (`target`, relative to the owner) or a function."""

    value: str
    op: str  # the primitive, or the container type for a child container
    target: str | None
    args: Any
    inputs: tuple[str, ...]
    inplace: bool = False


@dataclass(frozen=True)
class Forward:
    inputs: tuple[str, ...]
    steps: tuple[Step, ...]
    outputs: tuple[str, ...]
    channels_last: bool = False  # an optimized build: the input goes NHWC, the outputs back to NCHW

    def key(self) -> str:
        """Equal keys, equal programs (args are frozen pydantic models with a stable repr)."""
        return repr(self)


@dataclass(frozen=True)
class PlanStep:
    """One call of a flat plan: the IR's Call as the backends use it, with the builder's in-place decision."""

    id: str
    op: str
    args: Any
    module: str | None
    inputs: tuple[str, ...]
    inplace: bool
    in_shapes: tuple[tuple[int, ...], ...]
    out_shape: tuple[int, ...]


@dataclass(frozen=True)
class FlatPlan:
    """The live calls of each mode in order, and the outputs: what `archspec.optimize` rewrites."""

    steps: dict[str, tuple[PlanStep, ...]]  # mode ("train", "eval") -> steps
    outputs: dict[str, tuple[str, ...]]
    input_shape: tuple[int, ...]
    channels_last: bool = False

    @classmethod
    def of(cls, tg: TypedGraph, inplace: set[str]) -> FlatPlan:
        steps = {}
        for mode in ("train", "eval"):
            live = tg.live(mode)
            steps[mode] = tuple(PlanStep(c.id, c.op, c.args, c.module, tuple(c.inputs), c.id in inplace,
                                         tuple(tuple(s) for s in c.in_shapes), tuple(c.out_shape))
                                for c in tg.calls() if c.id in live)
        outputs = {mode: tuple(refs) for mode, refs in tg.outputs.items()}
        return cls(steps, outputs, tuple(tg.input_shape))


@dataclass(frozen=True)
class RootProgram:
    train: Forward
    eval: Forward

    def key(self) -> str:
        return repr(self)

    @property
    def same_in_both_modes(self) -> bool:
        return self.train == self.eval


class ForwardPlanner:
    """Decides, for every container invocation, whether its parent calls it or runs its calls itself."""

    def __init__(self, tg: TypedGraph, inplace: set[str]):
        self.tg = tg
        self.inplace = inplace
        self.live_any = tg.live("train") | tg.live("eval")
        self.calls = [c for c in tg.calls() if c.id in self.live_any or c.containers]
        self.inside: dict[int, list[Call]] = defaultdict(list)
        for call in self.calls:
            for token in call.containers:
                self.inside[token].append(call)
        self.children: dict[str, list[str]] = defaultdict(list)
        for path in tg.modules:
            self.children[path.rpartition(".")[0]].append(path)
        self.callable = self._callable_tokens()

    # ---- which invocations a parent calls ---------------------------------------------------
    def _callable_tokens(self) -> set[int]:
        readers: dict[str, list[Call]] = defaultdict(list)
        for call in self.calls:
            if call.id in self.live_any:
                for producer in call.inputs:
                    readers[producer].append(call)
        outputs = {o for refs in self.tg.outputs.values() for o in refs}
        result: set[int] = set()
        for token in sorted(self.tg.invocations, reverse=True):  # inner invocations have larger tokens
            inv = self.tg.invocations[token]
            if self._escapes(token, inv, readers, outputs) or not self._contained(token, inv):
                continue
            if inv.type == SEQUENTIAL and not self._plain_chain(token, inv, result):
                continue
            result.add(token)
        return result

    def _escapes(self, token: int, inv: Invocation, readers: dict, outputs: set) -> bool:
        for call in self.inside[token]:
            if call.id == inv.output:
                continue
            if call.id in outputs or any(token not in r.containers for r in readers[call.id]):
                return True
        return False

    def _contained(self, token: int, inv: Invocation) -> bool:
        own = {c.id for c in self.inside[token]} | set(inv.inputs)
        prefix = inv.path + "."
        return all(set(c.inputs) <= own and (c.module is None or c.module.startswith(prefix))
                   for c in self.inside[token])

    def _plain_chain(self, token: int, inv: Invocation, callable_inner: set[int]) -> bool:
        """What nn.Sequential.forward runs: each child once, in order, each reading the one before."""
        items = self._direct_items(token)
        if [path for path, _, _, _ in items] != self.children[inv.path] or len(inv.inputs) != 1:
            return False
        prev = inv.inputs[0]
        for _, inputs, out, inner in items:
            if list(inputs) != [prev] or (inner is not None and inner not in callable_inner):
                return False
            prev = out
        return prev == inv.output

    def _direct_items(self, token: int) -> list[tuple[str | None, list[str], str, int | None]]:
        """(module path, inputs, output, invocation) of what runs directly inside `token`, in order."""
        items, seen = [], set()
        for call in self.inside[token]:
            below = call.containers[call.containers.index(token) + 1:]
            if below:
                if below[0] not in seen:
                    seen.add(below[0])
                    inv = self.tg.invocations[below[0]]
                    items.append((inv.path, inv.inputs, inv.output, below[0]))
            else:
                items.append((call.module, call.inputs, call.id, None))
        return items

    # ---- programs ---------------------------------------------------------------------------
    def block_forward(self, path: str) -> Forward | None:
        """The forward of the container at `path`, from its first invocation (None: never invoked)."""
        tokens = [t for t, inv in sorted(self.tg.invocations.items()) if inv.path == path]
        if not tokens:
            return None
        token = tokens[0]
        inv = self.tg.invocations[token]
        needed = _ancestors_within(inv.output, {c.id: c for c in self.inside[token]})
        calls = [c for c in self.inside[token] if c.id in needed]
        return self._program(calls, token, path, inv.inputs, [inv.output])

    def root_program(self) -> RootProgram:
        forwards = {}
        for mode in ("train", "eval"):
            live = self.tg.live(mode)
            calls = [c for c in self.calls if c.id in live]
            forwards[mode] = self._program(calls, None, "", [INPUT], self.tg.outputs[mode])
        return RootProgram(forwards["train"], forwards["eval"])

    def _program(self, calls: list[Call], owner: int | None, base: str, inputs: list[str],
                 outputs: list[str]) -> Forward:
        steps: list[Step] = []
        done: set[int] = set()
        for call in calls:
            inner = self._outermost_callable(call, owner)
            if inner is None:
                target = None if call.module is None else _relative(call.module, base)
                args = call.args if target is None else None  # a module holds its own args (widths, strides)
                steps.append(Step(call.id, call.op, target, args, tuple(call.inputs), call.id in self.inplace))
            elif inner not in done:
                done.add(inner)
                inv = self.tg.invocations[inner]
                steps.append(Step(inv.output, inv.type, _relative(inv.path, base), None, tuple(inv.inputs)))
        return renumbered(Forward(tuple(inputs), tuple(steps), tuple(outputs)))

    def _outermost_callable(self, call: Call, owner: int | None) -> int | None:
        start = call.containers.index(owner) + 1 if owner is not None else 0
        return next((t for t in call.containers[start:] if t in self.callable), None)


def _ancestors_within(output: str, own: dict[str, Call]) -> set[str]:
    needed, stack = set(), [output]
    while stack:
        ref = stack.pop()
        if ref in own and ref not in needed:
            needed.add(ref)
            stack.extend(own[ref].inputs)
    return needed


def _relative(path: str, base: str) -> str:
    return path[len(base) + 1:] if base else path


def renumbered(forward: Forward) -> Forward:
    """Values named by position, so that two instances of one configuration give equal programs."""
    names = {ref: f"in{i}" for i, ref in enumerate(forward.inputs)}
    steps = []
    for i, step in enumerate(forward.steps):
        inputs = tuple(names[r] for r in step.inputs)
        names[step.value] = f"v{i}"
        steps.append(Step(f"v{i}", step.op, step.target, step.args, inputs, step.inplace))
    return Forward(tuple(names[r] for r in forward.inputs), tuple(steps), tuple(names[r] for r in forward.outputs),
                   forward.channels_last)
