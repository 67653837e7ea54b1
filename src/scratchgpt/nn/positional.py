"""Positional encodings. Attention alone is permutation-equivariant: shuffle the tokens and the
outputs shuffle the same way. Adding a vector that depends on the position breaks that symmetry.

The GPT learns its table (`position_embedding_table`, one row per position up to block_size).
"Attention Is All You Need" uses a fixed one instead, which exists for any position:

    PE[pos, 2i]   = sin(pos / 10000^(2i / C))
    PE[pos, 2i+1] = cos(pos / 10000^(2i / C))

Rotary position embeddings (RoPE) add nothing to x. They rotate each head's queries and keys
instead: channel pair (j, j + hs/2) of the vector at position `pos` turns by the angle
pos / 10000^(2j / hs). A rotation keeps lengths, and q_m . k_n then depends on m - n only, so
attention sees relative positions. That does not make a sliding window over the key/value cache
exact: from the second layer on, a cached key was computed from the context its token saw, which
the window has since dropped.
"""

import torch
from torch.nn import functional as F


def sinusoidal_encoding(num_positions, n_embd, base=10000.0):
    """(num_positions, n_embd) float32 table; computed in float32 whatever the default dtype."""
    position = torch.arange(num_positions, dtype=torch.float32)[:, None]  # (T, 1)
    i = torch.arange(0, n_embd, 2, dtype=torch.float32)  # (ceil(C/2),): the even channels 2i
    angle = position / base ** (i / n_embd)  # (T, ceil(C/2))
    pe = torch.zeros(num_positions, n_embd, dtype=torch.float32)
    pe[:, 0::2] = torch.sin(angle)
    pe[:, 1::2] = torch.cos(angle[:, : n_embd // 2])
    return pe


def rotary_angles(positions, head_size, base=10000.0):
    """(cos, sin), each (T, hs/2) float32, for the integer positions (T,); for positions (B, T), one
    row per sequence, each (B, 1, T, hs/2), to broadcast over the heads of (B, nh, T, hs)."""
    j = torch.arange(0, head_size, 2, dtype=torch.float32, device=positions.device)  # (hs/2,)
    angle = positions.to(torch.float32)[..., None] / base ** (j / head_size)  # (T, hs/2) or (B, T, hs/2)
    if angle.dim() == 3:
        angle = angle[:, None]  # (B, 1, T, hs/2)
    return angle.cos(), angle.sin()


def apply_rotary(x, cos, sin):
    """Rotate x (..., T, hs) by the angles of its positions; cos, sin (T, hs/2). Same shape out."""
    x1, x2 = x.chunk(2, dim=-1)  # (..., T, hs/2) each: the two halves of every channel pair
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)  # (..., T, hs)


def prepare_qk(t, qk_norm, rope):
    """Queries or keys t (..., T, hs) before their scores: QK-norm (RMS-normalised, a speedrun
    option), then turned by the rotary angles rope = (cos, sin), if any; the same shape back."""
    if qk_norm:
        t = F.rms_norm(t, t.shape[-1:])
    if rope is not None:
        t = apply_rotary(t, *rope)
    return t


def with_positions(x, positions, position, head_size, table=None):
    """Token embeddings x (B, T, C) at integer positions (T,) -> (x, rope): a learned `table` (an
    nn.Embedding) or a sinusoidal one (a (T_max, C) tensor) is added to x; rotary positions add
    nothing and return the angles (cos, sin) that attention turns queries and keys by."""
    if position == "rotary":
        return x, rotary_angles(positions, head_size)
    pe = table(positions) if position == "learned" else table[positions].to(x.dtype)  # (T, C)
    return x + pe, None  # broadcast over B
