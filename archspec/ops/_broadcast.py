"""Broadcasting shape rule shared by the element-wise merges."""

from archspec.ops.registry import Shape, format_shape


def broadcast(shapes: list[Shape], what: str) -> Shape:
    rank = max(len(s) for s in shapes)
    out = []
    for dims in zip(*[(1,) * (rank - len(s)) + tuple(s) for s in shapes]):
        sizes = {d for d in dims if d != 1}
        if len(sizes) > 1:
            listed = ", ".join(format_shape(s) for s in shapes)
            raise ValueError(f"{what} inputs do not match: {listed}")
        out.append(sizes.pop() if sizes else 1)
    return tuple(out)
