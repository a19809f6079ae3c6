"""The generator's own model of a spec: what the network it wrote *means*, independent of archspec.

The spec generator (specgen.py) builds, next to each YAML node, one of these small records, with every
value already concrete (channels, strides, weight shapes). `expected_state` lists the state_dict keys and
shapes the spec must produce, in order; `Runner` evaluates the network from a state_dict with the
reference ops. Both follow the spec language's documented rules, written here a second time:
- a node reads the previous one unless it names its inputs;
- a false `when` makes a node absent: the chain goes on from the node before it, and its name stands for
  its first input unless a node of that name exists;
- `seq` items take indices in order, absent ones none; `repeat` gives stride 1 after the first repeat;
- `call` runs another node's module again; `hold` makes a module that nothing calls.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from differential.ref_ops import OPS


def holds(when: str | None, env: dict) -> bool:
    """The generator writes only these conditions."""
    if when is None:
        return True
    return {"flag": env["flag"], "not flag": not env["flag"], "true": True, "false": False}[when]


@dataclass
class Op:
    """A primitive call. `weights` maps a torch tensor name to its shape ({} for functions)."""

    op: str
    args: dict
    weights: dict = field(default_factory=dict)
    module: bool = True  # whether it is a module (has a key); functional ops are not
    name: str | None = None
    refs: list[str] | None = None
    when: str | None = None
    hold: bool = False


@dataclass
class Seq:
    items: list
    name: str | None = None
    refs: list[str] | None = None
    when: str | None = None


@dataclass
class Block:
    """An instance of a composite block: its body runs under the instance's name with `env`."""

    body: list
    env: dict
    name: str | None = None
    refs: list[str] | None = None
    when: str | None = None
    sequence: bool = False  # the block is a single unnamed seq: it is itself the nn.Sequential


@dataclass
class Call:
    """`call: target`: the target node's module again, on other inputs."""

    target: str
    name: str | None = None
    refs: list[str] | None = None
    when: str | None = None


# ---- expected state_dict ------------------------------------------------------------------------

def expected_state(body: list, env: dict, prefix: str = "") -> list[tuple[str, tuple]]:
    out: list[tuple[str, tuple]] = []
    _state_body(body, env, prefix, out)
    return out


def _state_body(body, env, prefix, out):
    for node in body:
        if holds(node.when, env):
            _state_node(node, env, prefix + (node.name or ""), out)


def _state_node(node, env, path, out):
    if isinstance(node, Op):
        out.extend((f"{path}.{k}", s) for k, s in node.weights.items())
    elif isinstance(node, Seq):
        _state_items(node.items, env, path + ".", out)
    elif isinstance(node, Block):
        if node.sequence:
            _state_items(node.body, node.env, path + ".", out)
        else:
            _state_body(node.body, node.env, path + ".", out)


def _state_items(items, env, prefix, out):
    index = 0
    for item in items:
        if holds(item.when, env):
            _state_node(item, env, f"{prefix}{index}", out)
            index += 1


# ---- evaluation ---------------------------------------------------------------------------------

class Runner:
    """Evaluates intent records from a state_dict (float64 tensors) with the reference ops."""

    def __init__(self, state: dict, training: bool):
        self.training = training
        self.state = state

    def weights(self, path: str) -> dict:
        """The tensors under a module path, by their names relative to it (`grouped_conv.0.weight`)."""
        return {k[len(path) + 1:]: v for k, v in self.state.items() if k.startswith(path + ".")}

    def body(self, body: list, env: dict, prefix: str, x, names_out: dict | None = None):
        names: dict = {"input": x}
        present: set = set()
        modules: dict = {}  # name -> (record, path, env): what `call:` reruns
        prev = x
        for node in body:
            xs = [names[r] for r in node.refs] if node.refs else [prev]
            if not holds(node.when, env):
                if node.name and node.name not in present:
                    names[node.name] = xs[0]
                continue  # the chain goes on from the node before
            if isinstance(node, Op) and node.hold:
                present.add(node.name)
                names[node.name] = xs[0]
                continue  # made, never called: the next node reads this one's input
            path = prefix + node.name if node.name else None
            if isinstance(node, Call):
                target, tpath, tenv = modules[node.target]
                out = self.node(target, tenv, tpath, xs)
            else:
                out = self.node(node, env, path, xs)
                if node.name:
                    modules[node.name] = (node, path, env)
            if node.name:
                names[node.name] = out
                present.add(node.name)
            prev = out
        if names_out is not None:
            names_out.update(names)
        return prev

    def node(self, node, env, path, xs):
        if isinstance(node, Op):
            weights = self.weights(path) if node.module and node.weights else {}
            return OPS[node.op](node.args, xs, weights, self.training)
        if isinstance(node, Seq):
            return self.items(node.items, env, path + ".", xs[0])
        if node.sequence:
            return self.items(node.body, node.env, path + ".", xs[0])
        return self.body(node.body, node.env, path + ".", xs[0])

    def items(self, items, env, prefix, x):
        index = 0
        for item in items:
            if holds(item.when, env):
                x = self.node(item, env, f"{prefix}{index}", [x])
                index += 1
        return x
