"""Building blocks of every model family, each with its readable and its fast face side by side.

    attention.py   Head, MultiHeadAttention (readable), FusedMultiHeadAttention (fast), KVCache:
                   causal, padded and cross-attention
    blocks.py      FeedForward and Block (pre-norm residuals, LayerNorm, dropout)
    modes.py       evaluating(model): eval mode for a with-block, the caller's mode restored after
    positional.py  sinusoidal and rotary position encodings

This layer imports nothing of scratchgpt above it.
"""
