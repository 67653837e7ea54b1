"""Moving a trained model between the readable and the fast attention face.

Every attention module of a model converts on its own (`nn.fused.fuse_heads` and
`split_heads`), so any model built from them converts, whatever its family: the modules of the
target model say where they are and what they need (their head count, their causal mask).
"""

import dataclasses

from ..nn.attention import MultiHeadAttention
from ..nn.fused import FusedMultiHeadAttention, fuse_heads, split_heads
from .registry import build_model


def convert(model, attention):
    """A new model of the same family with `attention` ("readable" or "fast") and the same weights."""
    converted = build_model(dataclasses.replace(model.config, attention=attention))
    converted.to(next(model.parameters()).device)
    state = model.state_dict()
    if model.config.attention != attention:
        state = _convert_state(state, converted)
    converted.load_state_dict(state)
    return converted


def to_fast_state(state, config):
    """The state dict of a readable-face model of `config`, in the fast face's layout."""
    return _convert_state(state, build_model(dataclasses.replace(config, attention="fast")))


def to_readable_state(state, config):
    """The state dict of a fast-face model of `config`, in the readable face's (the lecture's) layout."""
    return _convert_state(state, build_model(dataclasses.replace(config, attention="readable")))


def _convert_state(state, target):
    """`state` in the layout of the model `target`, whose attention modules are all of the other face."""
    state = dict(state)
    for name, module in target.named_modules():
        prefix = name + "."
        if isinstance(module, FusedMultiHeadAttention):
            fuse_heads(state, prefix, module.n_head)
        elif isinstance(module, MultiHeadAttention):
            head = module.heads[0]
            split_heads(state, prefix, len(module.heads), head.tril if head.causal else None)
    return state
