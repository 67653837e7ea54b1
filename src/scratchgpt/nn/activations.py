"""The feed-forward's non-linearity, by name (`config.activation`): the lecture's ReLU, GELU,
GPT-2's tanh GELU, or the speedruns' relu(x)^2."""

import torch
import torch.nn as nn


class _ReLUSquaredFunction(torch.autograd.Function):
    """relu(x)^2 with its derivative 2 relu(x) written out: half the memory passes of autograd's."""

    @staticmethod
    def forward(ctx, x):
        r = torch.relu(x)
        ctx.save_for_backward(r)
        return r * r

    @staticmethod
    def backward(ctx, grad):
        (r,) = ctx.saved_tensors
        return grad * (2 * r)


class ReLUSquared(nn.Module):
    """relu(x)^2: the feed-forward non-linearity of the modded-nanogpt speedruns."""

    def forward(self, x):
        return _ReLUSquaredFunction.apply(x)


class TanhGELU(nn.GELU):
    """GELU by its tanh approximation, as GPT-2 computes it (Hugging Face's "gelu_new")."""

    def __init__(self):
        super().__init__(approximate="tanh")


ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "relu2": ReLUSquared, "gelu_tanh": TanhGELU}
