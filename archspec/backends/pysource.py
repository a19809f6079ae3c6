"""Standalone PyTorch source for a built spec ("eject"): readable classes, no archspec import.

- Every composite block instance becomes a class (identical instances share one class), whose
  `__init__` builds its children in spec order and whose `forward` is generated with torch.fx from the
  calls of its first invocation. A module called several times (OSNet's gate) is called several times.
- Sequences become `nn.Sequential`; their items are called from the enclosing forward, so reads of
  values inside a sequence (taps) stay possible. A block whose inner values are read from outside is
  treated the same way.
- The top-level class switches between its train and eval graphs when the outputs depend on the mode.
The state_dict keys are the built module's, so its weights load with strict=True.
"""

from __future__ import annotations

import inspect
import keyword
import re
from collections import defaultdict

from torch import fx, nn

from archspec.graph.ir import INPUT, TypedGraph
from archspec.ops import REGISTRY
from archspec.ops._torch_modules import SplitConv

_FREE = re.compile(r";\s+(?:\w+ = )+None")
_INDEX = re.compile(r'getattr\(([\w.\[\]]+), "(\d+)"\)')


def _tidy(code: str) -> str:
    """Drop fx's `x = None` frees, write `getattr(self.seq, "0")` as `self.seq[0]`, and reach children named
    by a Python keyword (`class`, torch accepts it) with getattr."""
    code = _FREE.sub("", code)
    while True:
        tidier = _INDEX.sub(r"\1[\2]", code)
        if tidier == code:
            return _CHAIN.sub(_keyword_safe_chain, code)
        code = tidier


_CHAIN = re.compile(r"\b[A-Za-z_]\w*(?:\.[A-Za-z_]\w*|\[\d+\])+")
_LINK = re.compile(r"^[A-Za-z_]\w*|\.[A-Za-z_]\w*|\[\d+\]")


def _keyword_safe_chain(match: re.Match) -> str:
    """`self.class.conv` -> `getattr(self, "class").conv`."""
    links = _LINK.findall(match.group())
    out = links[0]
    for link in links[1:]:
        out = f'getattr({out}, "{link[1:]}")' if link[0] == "." and keyword.iskeyword(link[1:]) else out + link
    return out


# Names the generated forward must not rebind: fx names a value after its module (a child called `torch`
# gives `torch = self.torch(x)`), which would shadow the module's globals or `self` for the lines after it.
_GLOBALS = ("self", "torch", "nn", "operator", "F", "math")


def _reserve_globals(graph: fx.Graph) -> None:
    namespace = graph._graph_namespace  # fx has no public way to reserve a name
    for name in _GLOBALS:
        namespace.create_name(name, None)


def _attribute_line(attr: str, expr: str) -> str:
    return f"self.{attr} = {expr}" if attr.isidentifier() and not keyword.iskeyword(attr) \
        else f"self.add_module({attr!r}, {expr})"


def _class_name(text: str) -> str:
    name = "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", text) if part)
    return name if name[:1].isalpha() else "Net" + name


class _Generator:
    def __init__(self, tg: TypedGraph, model: nn.Module):
        self.tg = tg
        self.model = model
        self.steps = {s["id"]: s for mode in ("train", "eval") for s in model._plan[mode]}
        self.calls = [c for c in tg.calls() if c.id in self.steps]
        self.children: dict[str, list[str]] = defaultdict(list)
        for path in tg.modules:
            self.children[path.rpartition(".")[0]].append(path)
        self.first: dict[str, int] = {}
        for token in sorted(tg.invocations):
            self.first.setdefault(tg.invocations[token].path, token)
        self.opaque = self._tapped()
        self.class_of_body: dict[str, str] = {}
        self.classes: list[str] = []

    # ---- which block invocations get their own forward --------------------------------------
    def _tapped(self) -> set[str]:
        """Paths of containers whose inner values are read from outside, or that are sequences."""
        readers: dict[str, list] = defaultdict(list)
        for call in self.calls:
            for producer in call.inputs:
                readers[producer].append(call)
        outputs = {o for refs in self.tg.outputs.values() for o in refs}
        opaque = {inv.path for inv in self.tg.invocations.values() if inv.type == "Sequential"}
        for call in self.calls:
            for token in call.scope:
                inv = self.tg.invocations[token]
                if call.id == inv.output:
                    continue
                outside = [r for r in readers[call.id] if token not in r.scope]
                if outside or call.id in outputs:
                    opaque.add(inv.path)
        return opaque

    def _encapsulated(self, token: int) -> bool:
        return self.tg.invocations[token].path not in self.opaque

    # ---- module constructors ----------------------------------------------------------------
    def module_expr(self, path: str) -> str:
        decl = self.tg.modules[path]
        if decl.kind == "leaf":
            module = self.model.get_submodule(path)
            if isinstance(module, SplitConv):
                return module.source()
            return "nn." + repr(module)
        if decl.type == "Sequential":
            items = ", ".join(self.module_expr(child) for child in self.children[path])
            return f"nn.Sequential({items})"
        return f"{self.container_class(path)}()"

    def init_lines(self, path: str) -> list[str]:
        lines = []
        for child in self.children[path]:
            attr = child.rpartition(".")[2]
            expr = self.module_expr(child)
            lines.append(_attribute_line(attr, expr))
        return lines

    # ---- forwards ---------------------------------------------------------------------------
    def forward_source(self, base: str, token: int | None, inputs: list[str], output_refs: list[str],
                       live: set[str] | None, name: str = "forward") -> str:
        graph = fx.Graph()
        _reserve_globals(graph)
        names = ["x"] if len(inputs) == 1 else [f"x{i}" for i in range(len(inputs))]
        values = {ref: graph.placeholder(n) for ref, n in zip(inputs, names)}
        done: set[int] = set()
        for call in self.calls:
            if (live is not None and call.id not in live) or (token is not None and token not in call.scope):
                continue
            inner = self._inner_block(call, token)
            if inner is not None:
                if inner not in done:
                    done.add(inner)
                    inv = self.tg.invocations[inner]
                    args = tuple(values[i] for i in inv.inputs)
                    values[inv.output] = graph.call_module(self._relative(inv.path, base), args)
                continue
            args = [values[i] for i in call.inputs]
            if call.module is not None:
                values[call.id] = graph.call_module(self._relative(call.module, base), tuple(args))
            else:
                values[call.id] = REGISTRY[call.op].emit(graph, call.args, args, self.steps[call.id]["inplace"])
        result = [values[r] for r in output_refs]
        graph.output(result[0] if len(result) == 1 else tuple(result))
        code = graph.python_code(root_module="self").src
        code = _tidy(code).strip().replace("def forward(", f"def {name}(", 1)
        return "\n".join("    " + line for line in code.splitlines())

    def _inner_block(self, call, token: int | None) -> int | None:
        """The outermost encapsulated block invocation below `token` that `call` runs in."""
        scope = call.scope
        start = scope.index(token) + 1 if token is not None else 0
        for inner in scope[start:]:
            if self._encapsulated(inner):
                return inner
        return None

    @staticmethod
    def _relative(path: str, base: str) -> str:
        return path[len(base) + 1:] if base else path

    # ---- classes ----------------------------------------------------------------------------
    def container_class(self, path: str) -> str:
        token = self.first[path]
        inv = self.tg.invocations[token]
        body = ["    def __init__(self):", "        super().__init__()"]
        body += ["        " + line for line in self.init_lines(path)]
        if self._encapsulated(token):
            body += ["", self.forward_source(path, token, inv.inputs, [inv.output], None)]
        text = "\n".join(body)
        if text not in self.class_of_body:
            taken = {name for name in self.class_of_body.values()}
            name = _class_name(inv.type)
            k = 1
            while name in taken:
                k += 1
                name = f"{_class_name(inv.type)}_{k}"
            self.class_of_body[text] = name
            self.classes.append(f"class {name}(nn.Module):\n{text}\n")
        return self.class_of_body[text]

    def top_class(self) -> str:
        tg = self.tg
        name = _class_name(tg.name)
        lines = [f"class {name}(nn.Module):", "    def __init__(self):", "        super().__init__()"]
        lines += ["        " + line for line in self.init_lines("")]
        outs = tg.outputs
        if outs["train"] == outs["eval"]:
            lines += ["", self.forward_source("", None, [INPUT], outs["eval"], None)]
        else:
            lines += ["", "    def forward(self, x):",
                      "        return self.forward_train(x) if self.training else self.forward_eval(x)", ""]
            lines += [self.forward_source("", None, [INPUT], outs["train"], tg.live("train"), "forward_train"), ""]
            lines += [self.forward_source("", None, [INPUT], outs["eval"], tg.live("eval"), "forward_eval")]
        return name, "\n".join(lines) + "\n"

    def render(self) -> str:
        top_name, top = self.top_class()
        helpers = [inspect.getsource(SplitConv)] if any(
            isinstance(m, SplitConv) for m in self.model.modules()) else []
        shape = ", ".join(str(d) for d in self.tg.input_shape)
        parts = [
            f'"""{self.tg.name}: standalone PyTorch, generated by `archspec export --format python`.',
            "",
            "It does not import archspec. Its state_dict keys equal the archspec-built module's:",
            "    model = build(); model.load_state_dict(torch.load(PATH, weights_only=True))",
            f"Input: N x {shape}.",
            '"""',
            "",
            "import operator  # noqa: F401",
            "",
            "import torch",
            "from torch import nn",
            "",
            *(h + "\n" for h in helpers),
            *(c + "\n" for c in self.classes),
            top,
            "",
            "def build() -> nn.Module:",
            f'    """A new {top_name} with torch\'s default initialisation."""',
            f"    return {top_name}()",
            "",
        ]
        return "\n".join(parts)


def python_source(tg: TypedGraph, model: nn.Module) -> str:
    """The source text of a module equivalent to `model` (built from `tg`)."""
    return _Generator(tg, model).render()
