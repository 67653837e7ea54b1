"""The BERT-like encoder: the lecture's second transformer.

Shapes: B batch, T time, C channels (n_embd), V vocabulary size.

The GPT's pieces without the causal mask: token + position embeddings (a learned table; the
sinusoidal encoding or rotary as options), Blocks whose attention sees every real token of the
sequence (`key_mask` (B, T) hides the padding), a final LayerNorm, then a head (heads.py) chosen by
the task: masked-LM for pretraining, a sequence or a token head for fine-tuning. Sequences are
`[CLS] text [SEP]` followed by `[PAD]`s.

Contract: forward(idx, targets=None, key_mask=None) -> (outputs, loss), outputs as the head says.
"""

import torch
import torch.nn as nn

from ..errors import CheckpointError, InputError
from ..nn.attention import Block
from ..nn.positional import sinusoidal_encoding, with_positions
from .gpt import Model, init_weights
from .heads import HEADS


class EncoderModel(Model):
    supports_kv_cache = False  # an encoder reads its whole input at once

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.token_embedding_table = nn.Embedding(config.vocab_size, config.n_embd)
        if config.position == "sinusoidal":  # fixed, so not saved: computed again on load
            self.register_buffer(
                "position_embedding_table", sinusoidal_encoding(config.block_size, config.n_embd), persistent=False
            )
        else:  # learned, or rotary: no table
            learned = config.position == "learned"
            self.position_embedding_table = nn.Embedding(config.block_size, config.n_embd) if learned else None
        self.blocks = nn.ModuleList([Block(config, causal=False) for _ in range(config.n_layer)])
        self.ln_f = nn.LayerNorm(config.n_embd)
        self.head = HEADS[config.head](config)
        self.apply(init_weights)
        # The masked-LM head predicts tokens with the token table itself (copy -> original).
        self.tied_weights = {"head.decoder.weight": "token_embedding_table.weight"} if config.head == "mlm" else {}
        if config.head == "mlm":
            self.head.decoder.weight = self.token_embedding_table.weight

    def embed(self, idx):
        """idx (B, T) -> (x (B, T, C), rope: rotary (cos, sin) or None)."""
        positions = torch.arange(idx.shape[1], device=idx.device)  # (T,)
        return with_positions(
            self.token_embedding_table(idx),
            positions,
            self.config.position,
            self.config.n_embd // self.config.n_head,
            self.position_embedding_table,
        )

    def encode(self, idx, key_mask=None):
        """idx (B, T), key_mask (B, T) True on real tokens -> h (B, T, C), one vector per token."""
        if idx.shape[1] > self.config.block_size:
            raise InputError(f"sequence of {idx.shape[1]} tokens is longer than block_size {self.config.block_size}")
        x, rope = self.embed(idx)  # (B, T, C)
        for block in self.blocks:
            x = block(x, key_mask=key_mask, rope=rope)  # (B, T, C)
        return self.ln_f(x)  # (B, T, C)

    def forward(self, idx, targets=None, key_mask=None):
        return self.head(self.encode(idx, key_mask), targets, key_mask)

    def load_pretrained(self, pretrained):
        """Take every weight but the head's from another EncoderModel of the same shape (a
        pretrained one): fine-tuning starts from what pretraining learned; the head starts fresh."""
        state = {k: v for k, v in pretrained.state_dict().items() if not k.startswith("head.")}
        missing, unexpected = self.load_state_dict(state, strict=False)
        if unexpected or not all(k.startswith("head.") for k in missing):
            raise CheckpointError(f"the pretrained encoder does not fit: missing {missing}, unexpected {unexpected}")
