"""Looking inside a trained model: which tokens (characters or sub-words) each position attends to.

`attention_weights` runs a GPT or an encoder over a text and returns the softmax weights of every
layer and head, taken from the model's own attention modules (their readable face's `weights`; a
fast-face model is converted first, so there is one implementation of the weights to trust).
`translation_attention` does the same for an encoder-decoder, with its three kinds of attention:
the encoder's, the decoder's, and the cross-attention from target to source. `plot_attention` and
`plot_maps` draw them as heatmaps with the tokens on the axes (matplotlib, the optional `viz`
extra). `attention_panels` is what the `attention` command and the playground both show for a text:
the maps of any family with the tokens labelling their rows and columns.
"""

import torch

from ..errors import ConfigError, InputError
from ..inference.translate import encode_sources, translate
from ..models.convert import convert
from ..nn.modes import evaluating
from .drawing import pyplot


@torch.no_grad()
def attention_weights(model, idx):
    """idx (1, T) -> weights (n_layer, n_head, T, T): row t is how query t spreads over keys."""
    readable = model if model.config.attention == "readable" else convert(model, "readable")
    with evaluating(readable):
        x, rope = readable.embed(idx)  # (1, T, C)
        maps = []
        for block in readable.blocks:
            maps.append(block.sa.weights(block.ln1(x), rope=rope)[0])  # (nh, T, T): what this block sees
            x = block(x, rope=rope)  # (1, T, C)
    return torch.stack(maps)  # (n_layer, nh, T, T)


def check_selection(config, layer, head):
    if layer is not None and not 0 <= layer < config.n_layer:
        raise ConfigError(f"layer {layer} is out of range: the model has layers 0..{config.n_layer - 1}")
    if head is not None and not 0 <= head < config.n_head:
        raise ConfigError(f"head {head} is out of range: the model has heads 0..{config.n_head - 1}")


@torch.no_grad()
def translation_attention(model, src, tgt):
    """An encoder-decoder's attention over a source src (1, S) while it reads the target tgt (1, T)
    ([BOS] first): {"encoder": (n_layer, nh, S, S) the encoder's self-attention, "decoder":
    (n_layer, nh, T, T) the decoder's causal self-attention, "cross": (n_layer, nh, T, S) which
    source tokens each target position reads}."""
    readable = model if model.config.attention == "readable" else convert(model, "readable")
    maps = {"encoder": [], "decoder": [], "cross": []}
    with evaluating(readable):
        x, rope = readable.embed(src, "source")  # (1, S, C)
        for block in readable.encoder_blocks:
            maps["encoder"].append(block.sa.weights(block.ln1(x), rope=rope)[0])  # (nh, S, S)
            x = block(x, rope=rope)
        memory = readable.ln_encoder(x)  # (1, S, C)
        y, rope = readable.embed(tgt, "target")  # (1, T, C)
        for block in readable.decoder_blocks:
            maps["decoder"].append(block.sa.weights(block.ln1(y), rope=rope)[0])  # (nh, T, T)
            after_sa = y + block.sa(block.ln1(y), rope=rope)
            maps["cross"].append(block.cross.weights(block.ln2(after_sa), context=memory)[0])  # (nh, T, S)
            y = block(y, memory, None, rope=rope)
    return {name: torch.stack(m) for name, m in maps.items()}


def attention_panels(model, tokenizer, text, target=None):
    """(panels, translation) for `text`: each panel is (name, weights (n_layer, n_head, R, K), the R
    row tokens, the K column tokens). A GPT or an encoder gives one panel over the text's tokens; an
    encoder-decoder gives its encoder's, its decoder's and its cross-attention while it writes
    `target` (default: its own greedy translation, returned too; None for the other families)."""
    config = model.config
    if not text:
        raise InputError("the text must not be empty")
    if config.kind != "seq2seq":
        if target is not None:
            raise InputError("a target is for encoder-decoder runs")
        ids = tokenizer.encode(text)
        if len(ids) > config.block_size:
            raise InputError(f"the text has {len(ids)} tokens; the model sees at most block_size {config.block_size}")
        tokens = tokenizer.pieces(ids)  # a character, or a sub-word's text (" the", not GPT-2's "Ġthe")
        return [("", attention_weights(model, torch.tensor([ids])), tokens, tokens)], None  # ids: (1, T)
    src, _ = encode_sources(tokenizer, [text], config.block_size)
    translation = target if target is not None else translate(model, tokenizer, [text])[0]
    written = tokenizer.target.encode(translation)
    if len(written) + 1 > config.block_size:
        raise InputError(
            f"the target has {len(written)} tokens; the model writes at most block_size - 1 = {config.block_size - 1}"
        )
    bos, eos = (tokenizer.target.special_id(t) for t in ("[BOS]", "[EOS]"))
    maps = translation_attention(model, src, torch.tensor([[bos, *written]]))
    source = tokenizer.source.pieces(src[0].tolist())
    read = tokenizer.target.pieces([bos, *written])
    wrote = tokenizer.target.pieces([*written, eos])
    return [
        ("encoder", maps["encoder"], source, source),
        ("decoder", maps["decoder"], read, read),
        ("cross", maps["cross"], wrote, source),
    ], translation


def plot_attention(weights, text, path, layer=None, head=None):
    """Save heatmaps of `weights` (n_layer, n_head, T, T) over `text`, one per layer and head (or the
    chosen ones)."""
    plot_maps([("", weights, text, text)], path, layer, head)


def _labels(tokens):
    """Tokens as axis labels: spaces visible ("␣the"), control characters escaped ("\\n")."""
    return ["".join("␣" if c == " " else c if c.isprintable() else repr(c)[1:-1] for c in t) for t in tokens]


def plot_maps(panels, path, layer=None, head=None):
    """Save heatmaps, one row per layer: for each panel (name, weights (n_layer, n_head, R, K), the
    R row tokens, the K column tokens), its heads side by side (or the chosen layer and head)."""
    plt = pyplot("drawing attention maps")
    layers = range(panels[0][1].shape[0]) if layer is None else [layer]
    heads = range(panels[0][1].shape[1]) if head is None else [head]
    size = max(2.5, 0.18 * max(max(len(rows), len(cols)) for _, _, rows, cols in panels))
    columns = len(heads) * len(panels)
    fig, axes = plt.subplots(len(layers), columns, figsize=(size * columns, size * len(layers)), squeeze=False)
    for row, layer in enumerate(layers):
        for p, (name, weights, rows, cols) in enumerate(panels):
            for c, h in enumerate(heads):
                ax = axes[row][p * len(heads) + c]
                ax.imshow(weights[layer, h].cpu().numpy(), cmap="viridis", vmin=0, vmax=1)
                ax.set_title(f"{name + ', ' if name else ''}layer {layer}, head {h}", fontsize=9)
                rotation = 90 if max(map(len, cols)) > 1 else 0  # several characters: stand them up
                ax.set_xticks(range(len(cols)), _labels(cols), fontsize=7, rotation=rotation)
                ax.set_yticks(range(len(rows)), _labels(rows), fontsize=7)
                ax.set_xlabel("key (attended to)", fontsize=8)
                ax.set_ylabel("query", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
