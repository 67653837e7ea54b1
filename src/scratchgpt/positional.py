"""Positional encodings. Attention alone is permutation-equivariant: shuffle the tokens and the
outputs shuffle the same way. Adding a vector that depends on the position breaks that symmetry.

The GPT learns its table (`position_embedding_table`, one row per position up to block_size).
"Attention Is All You Need" uses a fixed one instead, which exists for any position:

    PE[pos, 2i]   = sin(pos / 10000^(2i / C))
    PE[pos, 2i+1] = cos(pos / 10000^(2i / C))
"""

import torch


def sinusoidal_encoding(num_positions, n_embd, base=10000.0):
    """(num_positions, n_embd) float32 table; computed in float32 whatever the default dtype."""
    position = torch.arange(num_positions, dtype=torch.float32)[:, None]  # (T, 1)
    i = torch.arange(0, n_embd, 2, dtype=torch.float32)  # (ceil(C/2),): the even channels 2i
    angle = position / base ** (i / n_embd)  # (T, ceil(C/2))
    pe = torch.zeros(num_positions, n_embd, dtype=torch.float32)
    pe[:, 0::2] = torch.sin(angle)
    pe[:, 1::2] = torch.cos(angle[:, : n_embd // 2])
    return pe
