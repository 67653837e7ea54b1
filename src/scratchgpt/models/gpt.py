"""Language models: the lecture's bigram baseline and the GPT.

Shapes: B batch, T time, C channels (n_embd), V vocabulary size.

Every model here keeps one contract: `forward(idx, targets=None) -> (logits, loss)` with idx (B, T)
token ids, logits (B, T, V), and loss the mean cross-entropy (None without targets).
"""

import torch
import torch.nn as nn
from torch.nn import functional as F

from ..errors import CheckpointError, InputError
from ..nn.attention import Block
from ..nn.positional import rotary_angles


def _loss(logits, targets):
    if targets is None:
        return None
    B, T, V = logits.shape
    return F.cross_entropy(logits.view(B * T, V), targets.view(B * T))


class Model(nn.Module):
    """What every model family has beside its forward: its size, and whether it decodes with a KVCache."""

    @property
    def supports_kv_cache(self):
        """Only the fast attention face keeps keys and values for incremental decoding."""
        return self.config.attention == "fast"

    def num_parameters(self):
        """The number of parameters, a tied matrix counted once."""
        return sum(p.numel() for p in self.parameters())


class BigramLanguageModel(Model):
    """Each token reads the logits of the next token straight off a (V, V) lookup table.

    The lecture's first model and the baseline every later loss is compared with. It trains,
    samples and evaluates through the same loop, CLI and run directory as the GPT
    (`scratchgpt train --model bigram`); block_size only sets the length of its training windows.
    """

    tied_weights = {}  # copy -> original: none here
    supports_kv_cache = False  # nothing to cache: the next token depends on the last one only

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.token_embedding_table = nn.Embedding(config.vocab_size, config.vocab_size)

    def forward(self, idx, targets=None):
        logits = self.token_embedding_table(idx)  # (B, T) -> (B, T, V)
        return logits, _loss(logits, targets)


class GPTLanguageModel(Model):
    """Decoder-only transformer: token + position embeddings, n_layer Blocks, LayerNorm, lm_head.

    The speedrun options of ModelConfig change pieces, not the plan: rotary positions replace the
    position table, `tie_embeddings` makes lm_head reuse the token table, `zero_init` starts every
    residual branch's output projection at zero (each block starts as the identity).
    """

    def __init__(self, config):
        super().__init__()
        self.config = config
        # With tie_embeddings, lm_head.weight is token_embedding_table.weight (copy -> original);
        # a checkpoint stores the tensor once.
        self.tied_weights = {"lm_head.weight": "token_embedding_table.weight"} if config.tie_embeddings else {}
        self.token_embedding_table = nn.Embedding(config.vocab_size, config.n_embd)
        learned = config.position == "learned"  # else rotary: no table, attention turns q and k
        self.position_embedding_table = nn.Embedding(config.block_size, config.n_embd) if learned else None
        self.blocks = nn.Sequential(*[Block(config) for _ in range(config.n_layer)])
        self.ln_f = nn.LayerNorm(config.n_embd)  # final layer norm
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=config.lm_head_bias)
        self.apply(init_weights)
        if config.tie_embeddings:
            self.lm_head.weight = self.token_embedding_table.weight  # one (V, C) matrix, both ways
        if config.zero_init:
            for block in self.blocks:
                nn.init.zeros_(block.sa.proj.weight)
                nn.init.zeros_(block.ffwd.proj.weight)

    def embed(self, idx, start=0):
        """idx (B, T) at positions start.. -> (x (B, T, C), rope: rotary (cos, sin) or None). start
        is an int, a 0-d long tensor (a static KVCache's length: the same graph at every position),
        or a (B,) long tensor, one start per row (a slot KVCache's: each sequence at its own)."""
        positions = torch.arange(idx.shape[1], device=idx.device)  # (T,)
        if torch.is_tensor(start) and start.dim() == 1:
            positions = start[:, None] + positions  # (B, T)
        else:
            positions = start + positions  # (T,)
        x = self.token_embedding_table(idx)  # (B, T, C)
        if self.position_embedding_table is None:  # rotary: the angles attention turns q and k by
            return x, rotary_angles(positions, self.config.n_embd // self.config.n_head)
        return x + self.position_embedding_table(positions), None  # (T, C) broadcast over B

    def forward(self, idx, targets=None, cache=None):
        """idx (B, T) -> (logits (B, T, V), loss). With a KVCache (fast path only), idx holds just
        the tokens after the cached ones, at positions cache.length .. cache.length + T - 1 (with a
        static cache, a 0-d tensor that the caller keeps within block_size)."""
        B, T = idx.shape
        start = 0 if cache is None else cache.length
        if not torch.is_tensor(start) and start + T > self.config.block_size:
            raise InputError(f"sequence of {start + T} tokens is longer than block_size {self.config.block_size}")
        x, rope = self.embed(idx, start)  # (B, T, C)
        for layer, block in enumerate(self.blocks):
            x = block(x, rope=rope, cache=cache, layer=layer)  # (B, T, C)
        if cache is not None:
            cache.advance(T)
        x = self.ln_f(x)  # (B, T, C)
        logits = self.lm_head(x)  # (B, T, V)
        return logits, _loss(logits, targets)

    def load_pretrained(self, pretrained):
        """Take every weight from another GPT of the same settings (one loaded from a Hugging Face
        GPT-2 by `train --init-from`): training starts from what it learned."""
        try:
            self.load_state_dict(pretrained.state_dict())
        except RuntimeError as e:
            raise CheckpointError(f"the pretrained GPT does not fit: {str(e).strip().splitlines()[0]}") from None


def init_weights(module):
    """The lecture's initialisation: normal(0, 0.02) for Linear and Embedding weights, zero biases."""
    if isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Embedding):
        nn.init.normal_(module.weight, mean=0.0, std=0.02)
