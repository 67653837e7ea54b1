"""Building blocks of every model family, each with its readable and its fast face side by side.

    attention.py   Head, MultiHeadAttention (readable), FusedMultiHeadAttention (fast), KVCache:
                   causal, padded and cross-attention
    blocks.py      FeedForward and Block (pre-norm residuals, LayerNorm, dropout)
    positional.py  sinusoidal and rotary position encodings

This layer imports nothing of scratchgpt above it.
"""
