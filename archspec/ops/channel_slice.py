from __future__ import annotations

from archspec.ops.registry import Args, NonNegInt, PosInt, Primitive, register


class SliceArgs(Args):
    start: NonNegInt = 0
    stop: PosInt


@register
class ChannelSlice(Primitive):
    """Channels `start:stop` of the input (`x[:, start:stop]`), e.g. the IN half of IBN-a. No module."""

    example = ({"start": 1, "stop": 3}, [(4, 2, 2)])

    name = "channel_slice"
    category = "shape"
    Args = SliceArgs

    def infer(self, args, shapes):
        channels = shapes[0][0]
        if not args.start < args.stop <= channels:
            raise ValueError(f"slice {args.start}:{args.stop} is not inside {channels} channels")
        return (args.stop - args.start, *shapes[0][1:])

    def key_args(self, args):
        return {"start": args.start, "stop": args.stop}

    def emit(self, graph, args, inputs, inplace=False):
        import operator

        index = (slice(None), slice(args.start, args.stop))
        return graph.call_function(operator.getitem, (inputs[0], index))
