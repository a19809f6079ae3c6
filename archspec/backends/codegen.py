"""Forward programs -> Python source, through torch.fx's code generator.

One generator serves the runtime classes (compiled once per distinct program) and the standalone
Python export. The source carries only what validation let through: node names (identifiers, checked
against a closed pattern and the reserved list), primitive names from the registry, and the literals of
typed primitive args, which fx writes with repr().
"""

from __future__ import annotations

import hashlib
import keyword
import linecache
import re
from collections.abc import Callable

import torch
from torch import fx

from archspec.backends.forwards import Forward
from archspec.ops import REGISTRY

# Names the generated forward must not rebind: fx names a value after its module (a child called `torch`
# gives `torch = self.torch(x)`), which would shadow the module's globals or `self` for the lines after it.
_GLOBALS = ("self", "torch", "nn", "operator", "F", "math")
_FREE = re.compile(r";\s+(?:\w+ = )+None")
_INDEX = re.compile(r'getattr\(([\w.\[\]]+), "(\d+)"\)')
_CHAIN = re.compile(r"\b[A-Za-z_]\w*(?:\.[A-Za-z_]\w*|\[\d+\])+")
_LINK = re.compile(r"^[A-Za-z_]\w*|\.[A-Za-z_]\w*|\[\d+\]")


def fx_graph(forward: Forward) -> fx.Graph:
    """The forward as an fx graph over child modules (call_module) and registry functions."""
    graph = fx.Graph()
    namespace = graph._graph_namespace  # fx has no public way to reserve a name
    for name in _GLOBALS:
        namespace.create_name(name, None)
    names = ["x"] if len(forward.inputs) == 1 else [f"x{i}" for i in range(len(forward.inputs))]
    values = {ref: graph.placeholder(n) for ref, n in zip(forward.inputs, names)}
    if forward.channels_last:
        first = forward.inputs[0]
        values[first] = graph.call_method("contiguous", (values[first],), {"memory_format": torch.channels_last})
    for step in forward.steps:
        inputs = [values[i] for i in step.inputs]
        if step.target is not None:
            values[step.value] = graph.call_module(step.target, tuple(inputs))
        else:
            values[step.value] = REGISTRY[step.op].emit(graph, step.args, inputs, step.inplace)
    result = [values[o] for o in forward.outputs]
    if forward.channels_last:
        result = [graph.call_method("contiguous", (r,)) for r in result]
    graph.output(result[0] if len(result) == 1 else tuple(result))
    graph.lint()
    return graph


def tidy(code: str) -> str:
    """Drop fx's `x = None` frees, write `getattr(self.seq, "0")` as `self.seq[0]`, and reach children named
    by a Python keyword (`class`; torch accepts it) with getattr."""
    code = "\n".join(_one_statement_per_line(line) for line in _FREE.sub("", code).splitlines())
    while True:
        tidier = _INDEX.sub(r"\1[\2]", code)
        if tidier == code:
            return _CHAIN.sub(_keyword_safe_chain, code)
        code = tidier


def _one_statement_per_line(line: str) -> str:
    """fx writes `bn3 += downsample;  iadd = bn3` on one line; a person writes two. Its separator is `;  `,
    and a line with a quote is left alone (a `;` could sit in a string)."""
    if ";  " not in line or '"' in line or "'" in line:
        return line
    indent = line[:len(line) - len(line.lstrip())]
    return "\n".join(indent + part.strip() for part in line.split(";  "))


def _keyword_safe_chain(match: re.Match) -> str:
    """`self.class.conv` -> `getattr(self, "class").conv`."""
    links = _LINK.findall(match.group())
    out = links[0]
    for link in links[1:]:
        out = f'getattr({out}, "{link[1:]}")' if link[0] == "." and keyword.iskeyword(link[1:]) else out + link
    return out


def forward_source(forward: Forward, name: str = "forward", readable: bool = True) -> tuple[str, dict]:
    """(source of `def NAME(self, x...)`, the globals it needs). `readable=False` keeps fx's early frees
    (`x = None`) and `getattr(seq, "0")`, which is one lookup where `seq[0]` walks the sequence."""
    code = fx_graph(forward).python_code(root_module="self")
    source = tidy(code.src) if readable else _CHAIN.sub(_keyword_safe_chain, code.src)
    source = source.strip().replace("def forward(", f"def {name}(", 1)
    return source + "\n", dict(code.globals)


def compile_method(forward: Forward, owner: str, name: str = "forward") -> Callable:
    """A function `NAME(self, x...)` that runs `forward`, compiled once. Its source is registered with
    linecache (as fx does), so tracebacks, `inspect.getsource` and debuggers show the generated lines."""
    source, namespace = forward_source(forward, name, readable=False)
    digest = hashlib.sha1(source.encode()).hexdigest()[:12]
    filename = f"<archspec-generated {owner}.{name} {digest}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    # Generated from validated identifiers and registry code only (module docstring); never spec text.
    exec(compile(source, filename, "exec"), namespace)  # hazard-ok: generated code, see the comment above
    function = namespace[name]
    function.__qualname__ = f"{owner}.{name}"
    return function
