"""Resource caps, set by the caller (never by the spec) and checked before anything is allocated."""

from __future__ import annotations

from dataclasses import dataclass

from archspec.errors import LimitError, Location


@dataclass(frozen=True)
class Limits:
    max_params: int = 2_000_000_000
    max_calls: int = 100_000
    max_repeat: int = 4096
    max_activation_bytes: int = 8 << 30
    max_work: int = 250_000  # nodes visited while lowering: repeats, rows, `when: false` and held nodes too
    max_build: int = 40_000  # calls + modules that `build` makes into torch objects (the torch side is ~50x slower)
    max_expr_work: int = 2_000_000  # expression syntax nodes evaluated while lowering (remembered results: free)
    max_download_bytes: int = 1 << 30  # one checkpoint that `pretrained=` downloads

    def meter(self) -> WorkMeter:
        return WorkMeter(self)

    def check_repeat(self, count: int, where: Location) -> None:
        if count > self.max_repeat:
            raise LimitError(f"repeat {count} exceeds the cap of {self.max_repeat}", where,
                             "raise the cap with --max-repeat if you mean it", code="limit.repeat")

    def check_graph(self, calls: int, params: int, where: Location, activation_bytes: int = 0) -> None:
        if calls > self.max_calls:
            raise LimitError(f"the graph has more than {self.max_calls} calls", where,
                             "raise the cap with --max-calls if you mean it", code="limit.calls")
        if activation_bytes > self.max_activation_bytes:
            raise LimitError(f"activations at the declared input would take more than "
                             f"{self.max_activation_bytes / 2**20:,.0f} MiB per sample "
                             f"(so far {activation_bytes / 2**20:,.0f} MiB)", where,
                             "lower the input size, or raise the cap with --max-activation-mb",
                             code="limit.activations")
        if params > self.max_params:
            raise LimitError(f"the model would have more than {self.max_params:,} params (so far {params:,})",
                             where, "raise the cap with --max-params if you mean it", code="limit.params")


class WorkMeter:
    """Counts lowering work (every node visit, whether or not it makes a call) and refuses before a repeat
    expands past the cap: the first iteration's cost times the remaining count is checked up front, so that
    nested repeats around nodes that make no calls are refused in milliseconds, not after the work."""

    def __init__(self, limits: Limits):
        self.limits = limits
        self.used = 0
        self.expr_used = 0

    def evaluate(self, text: str, env: dict, src) -> object:
        """Evaluate one expression, charging the syntax nodes it walks (none when its result is remembered)."""
        from archspec.spec import expr

        value, cost = expr.evaluate_counted(text, env)
        self.expr_used += cost
        if self.expr_used > self.limits.max_expr_work:
            raise LimitError(f"expressions would take more than {self.limits.max_expr_work:,} evaluation steps",
                             src.at() if hasattr(src, "at") else Location(),
                             "simplify the expressions, or raise the cap with --max-expr-work if you mean it",
                             code="limit.expr_work")
        return value

    def step(self, src) -> None:
        """One node visited; `src` has `.at()` giving its Location (only called on refusal)."""
        self.used += 1
        if self.used > self.limits.max_work:
            self._refuse(self.used, src)

    def predict(self, first_cost: int, remaining: int, src) -> None:
        """Before the remaining iterations of a repeat whose first iteration cost `first_cost` units."""
        total = self.used + max(first_cost, 1) * remaining
        if total > self.limits.max_work:
            self._refuse(total, src)

    def estimate(self, spec, blocks: dict, where: Location) -> int:
        """Before lowering: the work the spec's node lists would take with every literal repeat and table row
        expanded and every composite block inlined (repeats given by expressions count once, `when` is not
        evaluated). Nesting blocks 8 wide and 8 deep is 16M visits with no repeat to predict: refused here."""
        cap, most = self.limits.max_work, self.limits.max_repeat  # a repeat over its own cap is refused there
        memo: dict[str, int] = {}

        def block_cost(name: str, stack: tuple) -> int:
            if name not in blocks or name in stack:
                return 0
            if name not in memo:
                memo[name] = nodes_cost(blocks[name][0].nodes, stack + (name,))
            return memo[name]

        def nodes_cost(nodes: list, stack: tuple) -> int:
            total = 0
            named: dict[str, int] = {}  # `call: NAME` runs NAME's module again: it costs what NAME cost
            for node in nodes:
                copies = min(_literal_count(node.repeat), most)
                if node.table is not None:
                    columns = node.table.columns
                    copies = 0
                    for row in node.table.rows:
                        value = row.get("repeat") if isinstance(row, dict) else \
                            (row[columns.index("repeat")] if "repeat" in columns and len(row) == len(columns) else None)
                        copies += min(_literal_count(value if value is not None else node.repeat), most)
                body = 0
                if hasattr(node, "seq"):
                    body = nodes_cost(node.seq, stack)
                elif isinstance(getattr(node, "block", None), str):
                    body = block_cost(node.block, stack)
                elif isinstance(getattr(node, "call", None), str):
                    body = named.get(node.call, 0)
                if getattr(node, "name", None):
                    named[node.name] = body
                total += copies * (1 + body)
                if total > cap:
                    return total
            return total

        total = nodes_cost(spec.model.nodes, ())
        if total > cap:
            raise LimitError(f"lowering would visit at least {total:,} nodes (the cap is {cap:,}): repeats, table "
                             "rows and nested blocks multiply, even around nodes that make no call", where,
                             "lower the repeat counts or the nesting, or raise the cap with --max-work",
                             code="limit.work")
        return total

    def _refuse(self, total: int, src) -> None:
        where = src.at("repeat") if hasattr(src, "at") else Location()
        raise LimitError(f"lowering would visit about {total:,} nodes (the cap is {self.limits.max_work:,}): "
                         "repeats, table rows and blocks multiply, even around nodes that make no call", where,
                         "lower the repeat counts, or raise the cap with --max-work if you mean it",
                         code="limit.work")


def _literal_count(value) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 1


def check_build(limits: Limits, tg) -> None:
    """Before `build` makes torch modules and the fx graph: its time and memory grow with calls + modules."""
    size = len(tg.graph) - 1 + len(tg.modules)
    if size > limits.max_build:
        raise LimitError(f"building would make {size:,} torch calls and modules (the cap is {limits.max_build:,}; "
                         "validate and draw need no build)", Location(tg.file or "<spec>", 1, 1, ("nodes",)),
                         "raise the cap with --max-build if you mean it (about 0.2 ms and 20 KB each)",
                         code="limit.build")


def check_input(limits: Limits, shape: tuple, where: Location) -> None:
    """The input tensor counts toward the activation cap (float32, batch 1)."""
    size = 4
    for dim in shape:
        size *= dim
    limits.check_graph(0, 0, where, size)


def check_held(limits: Limits, calls: int, params: int, where: Location, activation_bytes: int) -> None:
    """A `hold: true` module makes no call, but its params count toward the params cap."""
    limits.check_graph(calls, params, where, activation_bytes)


def activation_bytes(tg, batch: int = 1) -> int:
    """float32 bytes of the input and of every call's output at `batch`: the bound the cap is checked on."""
    total = 4
    for dim in tg.input_shape:
        total *= dim
    for call in tg.calls():
        size = 4
        for dim in call.out_shape:
            size *= dim
        total += size
    return total * batch


def check_traced(limits: Limits, tg, batch: int, where: Location) -> None:
    """Export traces with a batch of `batch`: its activations must fit the cap too."""
    needed = activation_bytes(tg, batch)
    if needed > limits.max_activation_bytes:
        raise LimitError(f"tracing at batch {batch} needs about {needed / 2**20:,.0f} MiB of activations "
                         f"(the cap is {limits.max_activation_bytes / 2**20:,.0f} MiB)", where,
                         "lower the input size, or raise the cap with --max-activation-mb", code="limit.activations")
