"""Heads on an encoder's outputs h (B, T, C): what a BERT-like model is trained to say.

    MaskedLMHead  the original token at every position (only masked ones carry loss): BERT's
                  transform (dense, GELU, LayerNorm), then the token table itself (tied) with an
                  output bias of its own
    SequenceHead  one output per sequence, from its [CLS] vector (or with pooling "mean", the mean
                  of its real tokens' vectors): BERT's pooler (dense + tanh), then a classifier
                  over num_labels classes (cross-entropy), or with num_labels = 1 a score (mean
                  squared error), as Hugging Face's BertForSequenceClassification
    TokenHead     one label per token (cross-entropy)

Every head: forward(h, targets=None, key_mask=None) -> (outputs, loss); key_mask (B, T) is True on
the real tokens (None: all are). A target of -100 (F.cross_entropy's
default ignore_index; the data side calls it IGNORE) carries no loss: unmasked positions for the
masked-LM head, padding for the token head.
"""

import torch
import torch.nn as nn
from torch.nn import functional as F

from ..nn.dropout import Dropout


class MaskedLMHead(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.dense = nn.Linear(config.n_embd, config.n_embd)
        self.ln = nn.LayerNorm(config.n_embd)
        self.decoder = nn.Linear(config.n_embd, config.vocab_size)  # its weight: the token table's

    def forward(self, h, targets=None, key_mask=None):
        logits = self.decoder(self.ln(F.gelu(self.dense(h))))  # (B, T, C) -> (B, T, V)
        if targets is None:
            return logits, None
        return logits, F.cross_entropy(logits.flatten(0, 1), targets.flatten())


class SequenceHead(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.dense = nn.Linear(config.n_embd, config.n_embd)  # the pooler
        self.dropout = Dropout(config.dropout)
        self.classifier = nn.Linear(config.n_embd, config.num_labels)
        self.pooling = config.pooling

    def forward(self, h, targets=None, key_mask=None):
        if self.pooling == "mean":
            real = torch.ones_like(h[..., 0]) if key_mask is None else key_mask.to(h.dtype)  # (B, T)
            summary = (h * real[..., None]).sum(1) / real.sum(1, keepdim=True)  # (B, C): mean of the real tokens
        else:
            summary = h[:, 0]  # (B, C): position 0 holds [CLS] (padding is on the right)
        pooled = torch.tanh(self.dense(summary))  # (B, C)
        out = self.classifier(self.dropout(pooled))  # (B, num_labels)
        if out.shape[-1] == 1:
            out = out.squeeze(-1)  # (B,): one score per sequence, not (B, 1), which would broadcast
            return out, None if targets is None else F.mse_loss(out, targets.to(out.dtype))
        return out, None if targets is None else F.cross_entropy(out, targets)


class TokenHead(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.dropout = Dropout(config.dropout)
        self.classifier = nn.Linear(config.n_embd, config.num_labels)

    def forward(self, h, targets=None, key_mask=None):
        logits = self.classifier(self.dropout(h))  # (B, T, num_labels)
        if targets is None:
            return logits, None
        return logits, F.cross_entropy(logits.flatten(0, 1), targets.flatten())


HEADS = {"mlm": MaskedLMHead, "sequence": SequenceHead, "token": TokenHead}
