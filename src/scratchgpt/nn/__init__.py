"""Building blocks of every model family: the readable face the lecture teaches, and the fast face
with the speed-ups it composes, each in a module of its own.

    attention.py          the lecture's, readable: Head, MultiHeadAttention, FeedForward, Block, DecoderBlock
    fused.py              FusedMultiHeadAttention, in one kernel; fuse_heads, split_heads: weights between faces
    kv_cache.py           KVCache and StaticKVCache (a compiled step's): decoding, cross-attention's source
    attention_dropout.py  AttentionDropout: the fast face's dropout attention, compiled for the CPU
    dropout.py            Dropout: nn.Dropout with a cheaper random mask; drawing_masks for tests
    activations.py        the feed-forward's non-linearity by name: relu, gelu, gelu_tanh, relu2
    positional.py         sinusoidal and rotary position encodings; prepare_qk (QK-norm, rotary)
    modes.py              evaluating(model): eval mode for a with-block, the caller's mode restored after

This layer imports nothing of scratchgpt above it.
"""
