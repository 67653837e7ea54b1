"""Looking inside a trained model: which earlier characters each position attends to.

`attention_weights` runs the model over a text and returns the softmax weights of every layer and
head, taken from the model's own attention modules (their readable face's `weights`; a fast-face
model is converted first, so there is one implementation of the weights to trust).
`plot_attention` draws them as heatmaps with the characters on the axes (matplotlib, the optional
`viz` extra).
"""

import torch

from ..errors import ConfigError, MissingExtra
from ..models.convert import convert


@torch.no_grad()
def attention_weights(model, idx):
    """idx (1, T) -> weights (n_layer, n_head, T, T): row t is how query t spreads over keys."""
    readable = model if model.config.attention == "readable" else convert(model, "readable")
    was_training = readable.training
    readable.eval()
    try:
        x, rope = readable.embed(idx)  # (1, T, C)
        maps = []
        for block in readable.blocks:
            maps.append(block.sa.weights(block.ln1(x), rope=rope)[0])  # (nh, T, T): what this block sees
            x = block(x, rope=rope)  # (1, T, C)
    finally:
        readable.train(was_training)
    return torch.stack(maps)  # (n_layer, nh, T, T)


def check_selection(config, layer, head):
    if layer is not None and not 0 <= layer < config.n_layer:
        raise ConfigError(f"layer {layer} is out of range: the model has layers 0..{config.n_layer - 1}")
    if head is not None and not 0 <= head < config.n_head:
        raise ConfigError(f"head {head} is out of range: the model has heads 0..{config.n_head - 1}")


def plot_attention(weights, text, path, layer=None, head=None):
    """Save heatmaps of `weights` (n_layer, n_head, T, T), one per layer and head (or the chosen ones)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise MissingExtra("drawing attention maps needs matplotlib: pip install 'scratchgpt[viz]'") from None
    layers = range(weights.shape[0]) if layer is None else [layer]
    heads = range(weights.shape[1]) if head is None else [head]
    labels = ["␣" if ch == " " else repr(ch)[1:-1] for ch in text]  # visible spaces and "\n"
    size = max(2.5, 0.18 * len(text))
    fig, axes = plt.subplots(len(layers), len(heads), figsize=(size * len(heads), size * len(layers)),
                             squeeze=False)
    for row, l in enumerate(layers):
        for col, h in enumerate(heads):
            ax = axes[row][col]
            ax.imshow(weights[l, h].cpu().numpy(), cmap="viridis", vmin=0, vmax=1)
            ax.set_title(f"layer {l}, head {h}", fontsize=9)
            ax.set_xticks(range(len(text)), labels, fontsize=7)
            ax.set_yticks(range(len(text)), labels, fontsize=7)
            ax.set_xlabel("key (attended to)", fontsize=8)
            ax.set_ylabel("query", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
