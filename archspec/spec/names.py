"""Which node names can become module attributes.

A node's name is set as an attribute of its parent module, so torch refuses every name that
`nn.Module` already owns (`training`, `forward`, `state_dict`, ...), and the built model's own methods
would be shadowed by others. `input` (and `input0`, `input1`, ... inside blocks) names the network's or
the block's input, so a node of that name would silently replace it. This module lists those names as
literals so that `archspec validate` can refuse them without importing torch; a test checks the list
against the installed torch.
"""

from __future__ import annotations

import re

# dir(nn.Module) and the attributes of a fresh nn.Module instance (torch 2.4 .. 2.14), plus names that
# some torch releases add (`ipu`, `mtia`, `xpu`, `set_submodule`, `_compiled_call_impl`).
TORCH_MODULE_ATTRIBUTES = frozenset("""
T_destination __annotations__ __call__ __class__ __delattr__ __dict__ __dir__ __doc__ __eq__ __format__
__ge__ __getattr__ __getattribute__ __getstate__ __gt__ __hash__ __init__ __init_subclass__ __le__ __lt__
__module__ __ne__ __new__ __reduce__ __reduce_ex__ __repr__ __setattr__ __setstate__ __sizeof__ __str__
__subclasshook__ __weakref__ _apply _backward_hooks _backward_pre_hooks _buffers _call_impl
_compiled_call_impl _forward_hooks _forward_hooks_always_called _forward_hooks_with_kwargs
_forward_pre_hooks _forward_pre_hooks_with_kwargs _get_backward_hooks _get_backward_pre_hooks _get_name
_is_full_backward_hook _load_from_state_dict _load_state_dict_post_hooks _load_state_dict_pre_hooks
_maybe_warn_non_full_backward_hook _modules _named_members _non_persistent_buffers_set _parameters
_register_load_state_dict_pre_hook _register_state_dict_hook _replicate_for_data_parallel
_save_to_state_dict _slow_forward _state_dict_hooks _state_dict_pre_hooks _version _wrapped_call_impl
add_module apply bfloat16 buffers call_super_init children compile cpu cuda double dump_patches eval
extra_repr float forward get_buffer get_extra_state get_parameter get_submodule half ipu load_state_dict
modules mtia named_buffers named_children named_modules named_parameters parameters register_backward_hook
register_buffer register_forward_hook register_forward_pre_hook register_full_backward_hook
register_full_backward_pre_hook register_load_state_dict_post_hook register_load_state_dict_pre_hook
register_module register_parameter register_state_dict_post_hook register_state_dict_pre_hook
requires_grad_ set_extra_state set_submodule share_memory state_dict to to_empty train training type xpu
zero_grad
""".split())

# Attributes of the built model class itself (archspec.backends.torch_builder.ArchspecModel).
MODEL_ATTRIBUTES = frozenset({"arch_name", "compile_forward", "generated_code", "_plan", "_train_forward",
                              "_eval_forward", "_graph_modules"})

_INPUT = re.compile(r"input\d*")
_PRIVATE = "_archspec"  # attributes that archspec's own module classes keep


def reserved_reason(name: str) -> str | None:
    """Why `name` cannot name a node, or None when it can."""
    if _INPUT.fullmatch(name):
        return f"{name!r} names the input (of the network, or of a block), so a node of that name would replace it"
    if name in TORCH_MODULE_ATTRIBUTES:
        return f"{name!r} is an attribute of every torch.nn.Module, so torch cannot register a module under it"
    if name in MODEL_ATTRIBUTES:
        return f"{name!r} is an attribute of the built archspec model"
    if name.startswith("__"):
        return f"{name!r} starts with '__': Python and torch keep such names for themselves"
    if name.startswith(_PRIVATE):
        return f"{name!r} starts with {_PRIVATE!r}, and such names are archspec's own attributes"
    return None


def check_node_name(name: str) -> str:
    """A pydantic validator: refuse reserved node names with the reason."""
    from pydantic_core import PydanticCustomError

    reason = reserved_reason(name)
    if reason is not None:
        raise PydanticCustomError("reserved_name", "{reason}; pick another name", {"reason": reason})
    return name
