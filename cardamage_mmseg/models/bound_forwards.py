"""Forwards bound to a model's modules for the duration of a block.

Why this is ours: the export replaces a few upstream modules' forwards with
ones that compute the same values in a form the exporter keeps
(:mod:`.shape_generic`) or that does less work (:mod:`.stagewise_fusion`),
without changing module types or weights. :func:`bind_forwards` is that
binding, once: a forward is bound to each module whose exact type is in the
table (a subclass may compute otherwise) and that the table's test accepts,
and the modules' own forwards come back when the block ends.
"""
import contextlib
import types
from typing import Callable, Dict, Iterator, Optional, Tuple

from torch import nn

#: module type -> (the forward to bind, which modules of it; None: all)
ForwardTable = Dict[type, Tuple[Callable,
                                Optional[Callable[[nn.Module], bool]]]]


@contextlib.contextmanager
def bind_forwards(model: nn.Module, table: ForwardTable) -> Iterator[int]:
    """Within the block, ``model``'s modules listed in ``table`` run the
    table's forward (module docstring); yields how many were bound."""
    bound = []
    for module in model.modules():
        forward, applies = table.get(type(module), (None, None))
        if forward is not None and (applies is None or applies(module)):
            module.forward = types.MethodType(forward, module)
            bound.append(module)
    try:
        yield len(bound)
    finally:
        for module in bound:
            del module.forward
