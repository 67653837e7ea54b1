"""Fewer bytes per token: a GPT's Linear weights in bf16 or int8, for decoding.

A batch-1 decode step reads every Linear weight once per token (compiled.py), so its floor is the
weights' bytes over the memory's speed. Storing them smaller lowers that floor:

    f32   the weights as trained, 4 bytes each (the model itself, untouched)
    bf16  each weight rounded to bfloat16, 2 bytes: the product takes x in bf16 and gives bf16,
          cast back to float32
    int8  per output row (channel), the weights scaled into -127..127 by max|w| / 127 and rounded,
          1 byte each plus one float32 scale per row: torch's `_weight_int8pack_mm` (gpt-fast's
          CPU path) multiplies x by them and applies the scales, without a float32 copy of W

Only the Linears change (attention's qkv and proj, the feed-forward's two, lm_head); embeddings,
LayerNorms, attention itself and the key/value cache stay float32, and the logits are float32, so
generation, the cache and the compiled step (which skips these modules: they are not nn.Linear)
work unchanged. The tokens are not the float32 model's: the weights are rounded. Decoding only:
nothing here trains or saves.
"""

import copy

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import ConfigError, a_or_an

WEIGHTS = ("f32", "bf16", "int8")


class BF16Linear(nn.Module):
    """A Linear whose weight (out, in) is stored in bfloat16; the bias stays float32."""

    def __init__(self, linear):
        super().__init__()
        self.register_buffer("weight", linear.weight.detach().to(torch.bfloat16).clone())  # (out, in)
        self.register_buffer("bias", None if linear.bias is None else linear.bias.detach().float().clone())

    def forward(self, x):
        y = F.linear(x.to(torch.bfloat16), self.weight).to(x.dtype)  # (..., in) -> (..., out)
        return y if self.bias is None else y + self.bias


class Int8Linear(nn.Module):
    """A Linear whose weight is int8 (out, in) times a float32 scale per output row (out,)."""

    def __init__(self, linear):
        super().__init__()
        w = linear.weight.detach().float()  # (out, in)
        scales = w.abs().amax(dim=1).clamp(min=1e-12) / 127  # (out,): the row's largest maps to 127
        self.register_buffer("weight", torch.round(w / scales[:, None]).clamp(-127, 127).to(torch.int8))
        self.register_buffer("scales", scales)
        self.register_buffer("bias", None if linear.bias is None else linear.bias.detach().float().clone())

    def forward(self, x):
        *lead, C = x.shape
        rows = x.reshape(-1, C).contiguous()  # (N, in): the kernel takes a contiguous matrix
        y = torch.ops.aten._weight_int8pack_mm(rows, self.weight, self.scales)  # (N, out)
        y = y.view(*lead, -1)  # (..., out)
        return y if self.bias is None else y + self.bias


QUANTISED = {"bf16": BF16Linear, "int8": Int8Linear}


def check_weights(config, weights):
    """Refuse, in one line, weights that are not among WEIGHTS, or a model without Linears to shrink."""
    if weights not in WEIGHTS:
        raise ConfigError(f"unknown weights {weights!r}; choose from {', '.join(WEIGHTS)}")
    if weights != "f32" and config.kind != "gpt":
        what = "a bigram model" if config.kind == "bigram" else f"{a_or_an(config.kind)} model"
        raise ConfigError(f"--weights {weights} shrinks a GPT's Linear weights for decoding, not {what}'s")


def with_weights(model, weights):
    """The model with its Linear weights stored as `weights` (WEIGHTS): with "f32" the model itself,
    else a converted copy in eval mode; the model given is never changed."""
    check_weights(model.config, weights)
    if weights == "f32":
        return model
    quantised = copy.deepcopy(model).eval()
    make = QUANTISED[weights]
    for module in list(quantised.modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, nn.Linear):
                setattr(module, child_name, make(child))
    return quantised


def linear_bytes(model):
    """Bytes of every Linear's weights, scales and biases: what one batch-1 decode step reads
    beside the few embedding rows, LayerNorms and the cache."""
    total = 0
    for module in model.modules():
        if isinstance(module, (nn.Linear, BF16Linear, Int8Linear)):
            total += sum(t.numel() * t.element_size() for t in module.buffers(recurse=False))
            total += sum(p.numel() * p.element_size() for p in module.parameters(recurse=False))
    return total
