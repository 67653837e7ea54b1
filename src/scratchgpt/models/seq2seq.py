"""The encoder-decoder: the lecture's third transformer, for translation.

Shapes: B batch, S source length, T target length, C channels (n_embd), V target vocabulary size.

"Attention Is All You Need" in the house's pieces. The encoder reads the whole source at once
(Blocks with `causal=False`; `src_mask` (B, S) hides the padding) and gives `memory`, one vector
per source token. The decoder writes the target one token after another, each DecoderBlock
attending three ways in turn: causal self-attention over the target so far, cross-attention over
the memory (queries from the target, keys and values from the source), then feed-forward. The
target starts with [BOS]; training is teacher forcing (the decoder reads the true target shifted
right and predicts every next token at once); decoding (inference/beam.py) feeds back its own
tokens, with a KV cache.

As in the paper: token embeddings scaled by sqrt(C) plus the sinusoidal encoding (a learned table
or rotary as options); the target embedding shared with the output layer (`tie_embeddings`), and
with the source's when the vocabulary is shared (`shared_vocab`); label smoothing in the loss.
Unlike the paper, blocks are pre-norm with a final LayerNorm per stack, as the GPT's: it trains
without the paper's long warm-up.

Contract: forward(src, tgt, targets=None, src_mask=None) -> (logits (B, T, V), loss).
"""

import math

import torch
import torch.nn as nn
from torch.nn import functional as F

from ..errors import InputError
from ..nn.attention import Block, DecoderBlock
from ..nn.positional import sinusoidal_encoding, with_positions
from .gpt import Model, init_weights


class Seq2SeqModel(Model):
    def __init__(self, config):
        super().__init__()
        self.config = config
        C = config.n_embd
        self.target_embedding_table = nn.Embedding(config.vocab_size, C)
        self.source_embedding_table = (
            self.target_embedding_table if config.shared_vocab else nn.Embedding(config.src_vocab_size, C)
        )
        learned = config.position == "learned"  # a table per side; else one sinusoidal table, or rotary's none
        self.source_position_table = nn.Embedding(config.block_size, C) if learned else None
        self.target_position_table = nn.Embedding(config.block_size, C) if learned else None
        if config.position == "sinusoidal":  # fixed, so not saved: computed again on load
            self.register_buffer("position_table", sinusoidal_encoding(config.block_size, C), persistent=False)
        else:
            self.position_table = None
        self.encoder_blocks = nn.ModuleList([Block(config, causal=False) for _ in range(config.n_layer)])
        self.ln_encoder = nn.LayerNorm(C)
        self.decoder_blocks = nn.ModuleList([DecoderBlock(config) for _ in range(config.n_layer)])
        self.ln_decoder = nn.LayerNorm(C)
        self.lm_head = nn.Linear(C, config.vocab_size)
        self.apply(init_weights)
        for table in (self.source_embedding_table, self.target_embedding_table):
            nn.init.normal_(table.weight, std=C**-0.5)  # times sqrt(C) in embed(): unit scale, as the positions
        self.tied_weights = {}  # copy -> original: saved once, aliased again on load
        if config.shared_vocab:
            self.tied_weights["source_embedding_table.weight"] = "target_embedding_table.weight"
        if config.tie_embeddings:
            self.lm_head.weight = self.target_embedding_table.weight
            self.tied_weights["lm_head.weight"] = "target_embedding_table.weight"

    def embed(self, idx, side, start=0):
        """idx (B, L) of the source or target `side`, at positions start.. -> (x (B, L, C), rope or None)."""
        tokens = self.source_embedding_table if side == "source" else self.target_embedding_table
        learned = self.source_position_table if side == "source" else self.target_position_table
        positions = torch.arange(start, start + idx.shape[1], device=idx.device)  # (L,)
        x = tokens(idx) * math.sqrt(self.config.n_embd)  # (B, L, C)
        return with_positions(
            x,
            positions,
            self.config.position,
            self.config.n_embd // self.config.n_head,
            learned if learned is not None else self.position_table,
        )

    def encode(self, src, src_mask=None):
        """src (B, S), src_mask (B, S) True on real tokens -> memory (B, S, C)."""
        if src.shape[1] > self.config.block_size:
            raise InputError(f"source of {src.shape[1]} tokens is longer than block_size {self.config.block_size}")
        x, rope = self.embed(src, "source")  # (B, S, C)
        for block in self.encoder_blocks:
            x = block(x, key_mask=src_mask, rope=rope)  # (B, S, C)
        return self.ln_encoder(x)  # (B, S, C)

    def decode(self, tgt, memory, src_mask=None, cache=None):
        """tgt (B, T) target tokens so far ([BOS] first) -> logits (B, T, V) of each next token.
        With a KVCache (fast face only), tgt holds just the tokens after the cached ones."""
        start = 0 if cache is None else cache.length
        if start + tgt.shape[1] > self.config.block_size:
            raise InputError(
                f"target of {start + tgt.shape[1]} tokens is longer than block_size {self.config.block_size}"
            )
        x, rope = self.embed(tgt, "target", start)  # (B, T, C)
        for layer, block in enumerate(self.decoder_blocks):
            x = block(x, memory, src_mask, rope=rope, cache=cache, layer=layer)  # (B, T, C)
        if cache is not None:
            cache.advance(tgt.shape[1])
        return self.lm_head(self.ln_decoder(x))  # (B, T, V)

    def forward(self, src, tgt, targets=None, src_mask=None):
        """Teacher forcing: src (B, S), tgt (B, T) the targets shifted right ([BOS] first), targets
        (B, T) the next tokens (-100, cross_entropy's ignore_index, on padding) -> (logits (B, T, V),
        mean loss or None). Label smoothing is a training loss: in eval mode the loss is plain."""
        logits = self.decode(tgt, self.encode(src, src_mask), src_mask)  # (B, T, V)
        if targets is None:
            return logits, None
        loss = F.cross_entropy(
            logits.flatten(0, 1),
            targets.flatten(),
            label_smoothing=self.config.label_smoothing if self.training else 0.0,
        )
        return logits, loss
