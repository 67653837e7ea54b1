"""Texts as the encoder reads them: `[CLS] text [SEP]`, cut to block_size, padded on the right
with `[PAD]` to the longest in the batch, with a key mask that is True on the real tokens."""

import torch

from .masking import IGNORE


def frame(tokenizer, text, block_size):
    """The ids of [CLS] text [SEP], the text cut so that the whole fits in block_size."""
    ids = tokenizer.encode(text)[: block_size - 2]
    return [tokenizer.special_id("[CLS]"), *ids, tokenizer.special_id("[SEP]")]


def frame_labels(labels, block_size):
    """Per-token labels aligned with frame(): none for [CLS] and [SEP]."""
    return [IGNORE, *labels[: block_size - 2], IGNORE]


def pad(rows, value, device="cpu"):
    """Lists of ids (or labels) -> (B, L) on `device`, padded on the right with `value`."""
    width = max(len(row) for row in rows)
    return torch.tensor([row + [value] * (width - len(row)) for row in rows], dtype=torch.long, device=device)


def batch_texts(tokenizer, texts, block_size, device="cpu"):
    """(ids (B, L), key_mask (B, L)) of framed, padded texts."""
    ids = pad([frame(tokenizer, t, block_size) for t in texts], tokenizer.special_id("[PAD]"), device)
    return ids, ids != tokenizer.special_id("[PAD]")
