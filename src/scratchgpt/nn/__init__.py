"""Building blocks of every model family: the readable face the lecture teaches, and the fast face
with the speed-ups it composes, each in a module of its own.

    attention.py          the lecture's pieces, readable: Head, MultiHeadAttention, FeedForward,
                          Block, DecoderBlock (causal, padded and cross-attention)
    fused.py              FusedMultiHeadAttention, the same function in one kernel; fuse_heads and
                          split_heads move weights between the faces
    kv_cache.py           KVCache (growing) and StaticKVCache (for a compiled step): incremental
                          decoding, cross-attention's source kept once
    attention_dropout.py  AttentionDropout: the fast face's dropout attention, compiled for the CPU
    dropout.py            Dropout: nn.Dropout with a cheaper random mask; drawing_masks for tests
    activations.py        the feed-forward's non-linearity by name: relu, gelu, gelu_tanh, relu2
    positional.py         sinusoidal and rotary position encodings; prepare_qk (QK-norm, rotary)
    modes.py              evaluating(model): eval mode for a with-block, the caller's mode restored after

This layer imports nothing of scratchgpt above it.
"""
