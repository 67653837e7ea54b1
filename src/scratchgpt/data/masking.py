"""BERT's masking: what the encoder learns from in pretraining.

Of the tokens that are not special ([CLS], [SEP], [PAD], ...), 15% are chosen; a chosen token is
replaced by [MASK] 80% of the time, by a random character 10% of the time, and left as it is 10%
of the time (so the model cannot tell which tokens it is asked about, and must represent them all).
The labels are the original ids at the chosen positions and IGNORE everywhere else: only chosen
tokens carry loss. Every sequence gets at least one chosen token. All randomness comes from the
`generator` passed in, the loop's batch generator, so an exact resume restores it.
"""

import torch

IGNORE = -100  # the label of a position that carries no loss: F.cross_entropy's default ignore_index


def mask_tokens(ids, maskable, mask_id, num_chars, generator, rate=0.15):
    """ids (B, T), maskable (B, T) bool (False on special tokens) -> (inputs (B, T), labels (B, T)).

    Random replacements are drawn from the character ids 0 .. num_chars-1 (never a special token).
    """
    B, T = ids.shape
    draw = torch.rand(B, T, generator=generator)  # (B, T)
    chosen = (draw < rate) & maskable
    # a sequence with nothing chosen gets the maskable token that came closest to being chosen
    fallback = torch.where(maskable, draw, torch.full_like(draw, 2.0)).argmin(dim=1)  # (B,)
    none = ~chosen.any(dim=1) & maskable.any(dim=1)
    chosen[none, fallback[none]] = True
    action = torch.rand(B, T, generator=generator)  # (B, T): which of the three replacements
    random_chars = torch.randint(num_chars, (B, T), generator=generator)
    inputs = ids.clone()
    inputs[chosen & (action < 0.8)] = mask_id
    swap = chosen & (action >= 0.8) & (action < 0.9)
    inputs[swap] = random_chars[swap]
    labels = torch.where(chosen, ids, torch.full_like(ids, IGNORE))
    return inputs, labels
