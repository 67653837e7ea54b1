"""Looking inside a trained model: which earlier characters each position attends to.

`attention_weights` runs the model over a text and returns the softmax weights of every layer and
head, computed from each block's own parameters on either path. `plot_attention` draws them as
heatmaps with the characters on the axes (matplotlib, the optional `viz` extra).
"""

import torch
from torch.nn import functional as F

from .attention import prepare_qk
from .errors import ScratchGPTError


@torch.no_grad()
def attention_weights(model, idx):
    """idx (1, T) -> weights (n_layer, n_head, T, T): row t is how query t spreads over keys."""
    config = model.config
    B, T = idx.shape
    x, rope = model.embed(idx)  # (B, T, C)
    maps = []
    for block in model.blocks:
        h = block.ln1(x)  # (B, T, C): what the attention of this block sees
        q, k = _queries_and_keys(block.sa, h, config)  # (B, nh, T, hs) each
        q, k = prepare_qk(q, k, config.qk_norm, rope)
        wei = q @ k.transpose(-2, -1) * q.shape[-1] ** -0.5  # (B, nh, T, T)
        wei = wei.masked_fill(torch.ones(T, T, dtype=torch.bool, device=idx.device).triu(1), float("-inf"))
        maps.append(F.softmax(wei, dim=-1)[0])  # (nh, T, T)
        x = block(x, rope)  # (B, T, C)
    return torch.stack(maps)  # (n_layer, nh, T, T)


def _queries_and_keys(sa, h, config):
    B, T, C = h.shape
    nh, hs = config.n_head, C // config.n_head
    if config.attention == "fast":
        q, k, _ = sa.qkv(h).split(C, dim=2)  # (B, T, C) each
        return (q.view(B, T, nh, hs).transpose(1, 2), k.view(B, T, nh, hs).transpose(1, 2))
    q = torch.stack([head.query(h) for head in sa.heads], dim=1)  # (B, nh, T, hs)
    k = torch.stack([head.key(h) for head in sa.heads], dim=1)  # (B, nh, T, hs)
    return q, k


def check_selection(config, layer, head):
    if layer is not None and not 0 <= layer < config.n_layer:
        raise ScratchGPTError(f"layer {layer} is out of range: the model has layers 0..{config.n_layer - 1}")
    if head is not None and not 0 <= head < config.n_head:
        raise ScratchGPTError(f"head {head} is out of range: the model has heads 0..{config.n_head - 1}")


def plot_attention(weights, text, path, layer=None, head=None):
    """Save heatmaps of `weights` (n_layer, n_head, T, T), one per layer and head (or the chosen ones)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ScratchGPTError("drawing attention maps needs matplotlib: pip install 'scratchgpt[viz]'") from None
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
