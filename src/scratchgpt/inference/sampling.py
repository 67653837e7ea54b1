"""How to pick the next token: the sampling settings, checked once, and the one function that uses them.

`Sampling` holds every setting of a generation (how many tokens, temperature, top-k, top-p, how many
samples at once, stop strings, seed, cache policy, compiled decoding or not) in one frozen
dataclass, validated when it is made, so the functions that generate pass it along whole.
`sample_next` turns the last position's logits into the next token ids: temperature 0 is greedy,
top-k keeps the k likeliest, top-p the smallest set whose probabilities reach p (always at least
one token).
"""

from dataclasses import dataclass

import torch
from torch.nn import functional as F

from ..errors import ConfigError, TokenizerError

CACHE_POLICIES = ("window", "exact", "none")


@dataclass(frozen=True)
class Sampling:
    """The settings of one generation call."""

    max_new_tokens: int = 500
    temperature: float = 1.0  # divides the logits; below 1 is more conservative, 0 is greedy
    top_k: int | None = None
    top_p: float | None = None
    num_samples: int = 1  # continuations generated at once, as one batch
    stop: tuple = ()  # texts that end a sample (not included)
    seed: int | None = None  # None: a fresh, non-deterministic seed
    cache: str = "window"  # key/value cache policy (generate.py): window, exact or none
    compile: bool = False  # decode each token with the compiled step (compiled.py)

    def __post_init__(self):
        object.__setattr__(self, "stop", tuple(self.stop))
        if self.max_new_tokens < 0:
            raise ConfigError(f"max_new_tokens must be at least 0, got {self.max_new_tokens}")
        if self.temperature < 0:
            raise ConfigError(f"temperature must be at least 0 (0 is greedy), got {self.temperature}")
        if self.top_k is not None and self.top_k < 1:
            raise ConfigError(f"top_k must be at least 1, got {self.top_k}")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise ConfigError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.num_samples < 1:
            raise ConfigError(f"num_samples must be at least 1, got {self.num_samples}")
        if self.cache not in CACHE_POLICIES:
            raise ConfigError(f"cache must be one of {', '.join(CACHE_POLICIES)}, got {self.cache!r}")
        if self.compile and self.cache == "none":
            raise ConfigError(
                "compile needs the key/value cache (cache window or exact); cache none is "
                "the lecture's uncached method, with no decode step to compile"
            )
        if any(not s for s in self.stop):
            raise ConfigError("a stop string must not be empty")

    def check_stops(self, tokenizer):
        """Refuse stop strings the tokenizer cannot encode (they could never appear)."""
        for s in self.stop:
            try:
                tokenizer.encode(s)
            except TokenizerError as e:
                raise ConfigError(f"stop string {s!r} cannot be encoded: {e}") from None


def sample_next(logits, temperature=1.0, top_k=None, top_p=None, generator=None):
    """Next token ids (B, 1) from last-position logits (B, V); temperature 0 means greedy."""
    if temperature == 0:
        return logits.argmax(dim=-1, keepdim=True)  # (B, 1)
    logits = logits.float() / temperature
    if top_k is not None:
        kth = torch.topk(logits, min(top_k, logits.size(-1))).values[:, [-1]]  # (B, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1:
        sorted_logits, order = torch.sort(logits, descending=True)  # (B, V)
        probs = F.softmax(sorted_logits, dim=-1)  # (B, V)
        drop_sorted = probs.cumsum(dim=-1) - probs >= top_p  # mass before this token reaches top_p; keeps >= 1
        logits = logits.masked_fill(drop_sorted.scatter(1, order, drop_sorted), float("-inf"))
    probs = F.softmax(logits, dim=-1)  # (B, V)
    return torch.multinomial(probs, num_samples=1, generator=generator)  # (B, 1)
