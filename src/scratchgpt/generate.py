"""Sampling text from a trained model, one token at a time, as the lecture does.

At each step the context is cropped to the last block_size tokens (the position table has no row
beyond that), the model's logits for the last position become a probability distribution, and
the next token is drawn from it.
"""

import torch
from torch.nn import functional as F

from .errors import ScratchGPTError


def check_sampling(max_new_tokens, temperature, top_k):
    if max_new_tokens < 0:
        raise ScratchGPTError(f"max_new_tokens must be at least 0, got {max_new_tokens}")
    if temperature < 0:
        raise ScratchGPTError(f"temperature must be at least 0 (0 is greedy), got {temperature}")
    if top_k is not None and top_k < 1:
        raise ScratchGPTError(f"top_k must be at least 1, got {top_k}")


def sample_next(logits, temperature=1.0, top_k=None, generator=None):
    """Next token ids (B, 1) from last-position logits (B, V); temperature 0 means greedy."""
    if temperature == 0:
        return logits.argmax(dim=-1, keepdim=True)  # (B, 1)
    logits = logits / temperature
    if top_k is not None:
        kth = torch.topk(logits, min(top_k, logits.size(-1))).values[:, [-1]]  # (B, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = F.softmax(logits.float(), dim=-1)  # (B, V)
    return torch.multinomial(probs, num_samples=1, generator=generator)  # (B, 1)


@torch.no_grad()
def generate(model, idx, max_new_tokens, temperature=1.0, top_k=None, generator=None):
    """Yield each new token (B, 1), extending the context idx (B, T) one token at a time."""
    check_sampling(max_new_tokens, temperature, top_k)
    block_size = model.config.block_size
    for _ in range(max_new_tokens):
        idx_cond = idx[:, -block_size:]  # (B, <=block_size): crop to what positions cover
        logits, _ = model(idx_cond)  # (B, T, V)
        idx_next = sample_next(logits[:, -1, :], temperature, top_k, generator)  # (B, 1)
        idx = torch.cat((idx, idx_next), dim=1)  # (B, T+1)
        yield idx_next


def stream_text(model, tokenizer, prompt="", max_new_tokens=500, temperature=1.0, top_k=None,
                seed=None):
    """Yield the generated text piece by piece (the prompt itself is not repeated).

    An empty prompt starts from token 0, as the lecture does (a newline for Tiny Shakespeare).
    """
    check_sampling(max_new_tokens, temperature, top_k)
    device = next(model.parameters()).device
    ids = tokenizer.encode(prompt) if prompt else [0]
    generator = torch.Generator(device=device)
    generator.manual_seed(seed if seed is not None else torch.seed())
    idx = torch.tensor([ids], dtype=torch.long, device=device)  # (1, T)
    for idx_next in generate(model, idx, max_new_tokens, temperature, top_k, generator):
        yield tokenizer.decode(idx_next[0].tolist())


def sample_text(model, tokenizer, prompt="", **kwargs):
    """The prompt followed by the generated text, as one string."""
    return prompt + "".join(stream_text(model, tokenizer, prompt, **kwargs))
