"""Seeded mutations of specs, at the text level and at the data level."""

from __future__ import annotations

import copy
import random
from typing import Any

import yaml

TOKENS = ["[", "]", "{", "}", ":", ": ", "- ", "&a ", "*a", "!!python/object/apply:os.system ['id']", "<<: {}",
          "9**9**9", "-1", "0", "1e400", ".nan", "'", '"', "\t", "\\", "%TAG ! x\n", "---\n", "? ", "|", ">", "#",
          "\x00", "é", "10**9", "[[[[[[[[", "}}}}", "~", "null", "yes", "0x7fffffffffffffffffff", "from: ", "when: "]
VALUES: list[Any] = [-1, 0, 1, 3, 10**9, 2**62, 3.5, -0.0, "x", "", "9**9**9", "in_channels * 10**6", "input",
                     [], {}, None, True, False, [1, 2, 3], [[[[1]]]], {"block": "relu"}, "layers[99]", "relu",
                     "Bottleneck", "conv2d", "a" * 300, [0] * 50, {"seq": [{"block": "relu"}]}, "1/0", "[1] * 5000"]
KEYS = ["block", "from", "when", "repeat", "table", "seq", "call", "name", "out", "kernel", "stride", "in_channels",
        "hold", "input_shape", "zzz", "nodes", "params", "rows", "columns"]


def mutate_text(text: str, rng: random.Random) -> str:
    lines = text.splitlines(keepends=True) or [""]
    op = rng.randrange(6)
    i = rng.randrange(len(lines))
    if op == 0:
        del lines[i]
    elif op == 1:
        lines.insert(i, lines[rng.randrange(len(lines))])
    elif op == 2:
        line = lines[i]
        j = rng.randrange(len(line) + 1)
        lines[i] = line[:j] + rng.choice(TOKENS) + line[j:]
    elif op == 3:
        line = lines[i]
        if line:
            j = rng.randrange(len(line))
            lines[i] = line[:j] + chr(rng.randrange(32, 127)) + line[j + 1:]
    elif op == 4:
        k = rng.randrange(len(lines))
        lines[i], lines[k] = lines[k], lines[i]
    else:
        lines = lines[: rng.randrange(len(lines) + 1)]
    return "".join(lines)


def _containers(data: Any, path: tuple = ()) -> list[tuple[tuple, Any]]:
    found = []
    if isinstance(data, (dict, list)):
        found.append((path, data))
        items = data.items() if isinstance(data, dict) else enumerate(data)
        for key, value in items:
            found.extend(_containers(value, path + (key,)))
    return found


def _value(rng: random.Random) -> Any:
    return copy.deepcopy(rng.choice(VALUES))


def mutate_data(data: Any, rng: random.Random) -> Any:
    containers = _containers(data)
    if not containers:
        return _value(rng)
    _, target = rng.choice(containers)
    keys = list(target.keys()) if isinstance(target, dict) else list(range(len(target)))
    op = rng.randrange(4)
    if op == 0 and keys:
        target[rng.choice(keys)] = _value(rng)
    elif op == 1 and keys:
        del target[rng.choice(keys)]
    elif op == 2:
        if isinstance(target, dict):
            target[rng.choice(KEYS)] = _value(rng)
        else:
            target.insert(rng.randrange(len(target) + 1), copy.deepcopy(rng.choice(VALUES + target[:1])))
    elif keys:
        target[rng.choice(keys)] = copy.deepcopy(target[rng.choice(keys)])
    return data


def mutated(text: str, rng: random.Random) -> str:
    if rng.random() < 0.5:
        return mutate_text(text, rng)
    data = yaml.safe_load(text)
    for _ in range(rng.randrange(1, 4)):
        data = mutate_data(data, rng)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
