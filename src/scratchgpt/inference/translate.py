"""Translating texts with a trained encoder-decoder: texts in, texts out.

`translate` decodes a batch of texts, greedily (beam=1) or by beam search (beam.py);
`stream_translation` yields one text's translation piece by piece as greedy decoding writes it.
A source longer than block_size tokens is refused, never cut: a cut source has another
translation. Both run the model in eval mode and give the caller's mode back.
"""

import torch

from ..data.tokenizer import TextStream
from ..errors import InputError
from ..nn.modes import evaluating
from .beam import beam_search, greedy, greedy_steps


def encode_sources(tokenizer, texts, block_size, device="cpu"):
    """(src (B, S) padded with [PAD], src_mask (B, S) True on real tokens) of the texts."""
    rows = [tokenizer.source.encode(text) for text in texts]
    for i, row in enumerate(rows):
        if not row:
            raise InputError(f"text {i + 1} to translate is empty")
        if len(row) > block_size:
            raise InputError(
                f"text {i + 1} to translate has {len(row)} tokens; the model reads at most block_size {block_size}"
            )
    pad = tokenizer.source.special_id("[PAD]")
    width = max(map(len, rows))
    src = torch.tensor([row + [pad] * (width - len(row)) for row in rows], dtype=torch.long, device=device)
    return src, src != pad


def _ids(tokenizer):
    return tokenizer.target.special_id("[BOS]"), tokenizer.target.special_id("[EOS]")


def translate(model, tokenizer, texts, beam=1, alpha=0.6, max_len=None, batch_size=256):
    """The translation of each text: greedy decoding for beam=1, else beam search with length
    penalty alpha. max_len: the most target tokens (default block_size - 1, the most that fit)."""
    config = model.config
    max_len = config.block_size - 1 if max_len is None else max_len
    device = next(model.parameters()).device
    bos, eos = _ids(tokenizer)
    out = []
    with evaluating(model):  # decoding turns gradients off itself
        for start in range(0, len(texts), batch_size):
            src, mask = encode_sources(tokenizer, texts[start : start + batch_size], config.block_size, device)
            if beam == 1:
                out += greedy(model, src, mask, bos, eos, max_len)
            else:
                out += beam_search(model, src, mask, bos, eos, max_len, beam, alpha)[0]
    return [tokenizer.target.decode(ids) for ids in out]


def stream_translation(model, tokenizer, text, max_len=None):
    """Yield the greedy translation of one text, a piece (a token's text) at a time."""
    config = model.config
    bos, eos = _ids(tokenizer)
    src, mask = encode_sources(tokenizer, [text], config.block_size, next(model.parameters()).device)
    stream = TextStream(tokenizer.target)  # never half a character of a byte-level BPE
    with evaluating(model):
        for token in greedy_steps(model, src, mask, bos, eos, config.block_size - 1 if max_len is None else max_len):
            if token.item() == eos:
                break
            if piece := stream.add([token.item()]):
                yield piece
    if piece := stream.flush():
        yield piece
