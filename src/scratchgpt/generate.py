"""Sampling text from a trained model, one token at a time.

The lecture's method (`cache="none"`): at every step, crop the context to the last block_size
tokens (the position table has no row beyond that), run the model over all of it, turn the last
position's logits into probabilities, draw the next token. Simple, and it recomputes the whole
context for every token.

With a key/value cache (fast path only) each new token runs through the model alone and attends
to the cached keys and values of the tokens before it. Past block_size, learned absolute
positions force a choice:

    "exact"   cache until the context is full, then the lecture's cropping: every later token
              re-encodes the last block_size tokens (their positions all shift by one). Same
              tokens as the lecture's method; no faster than it past block_size.
    "window"  (default) when the cache is full, keep the most recent half of the context,
              re-encode it once at positions 0.., and go on with the cache. The model then sees
              between block_size/2 and block_size tokens of context instead of always block_size,
              so the text differs from the lecture's method past block_size, at a fraction of
              the cost.

Sampling controls: temperature (0 is greedy), top-k, top-p (nucleus), several samples at once
(one batch, one seeded generator: reproducible), stop strings (the text ends before the first
one; not included).
"""

import torch
from torch.nn import functional as F

from .attention import KVCache
from .errors import ScratchGPTError, TokenizerError

CACHE_POLICIES = ("window", "exact", "none")


def check_sampling(max_new_tokens, temperature=1.0, top_k=None, top_p=None, num_samples=1,
                   cache="window"):
    if max_new_tokens < 0:
        raise ScratchGPTError(f"max_new_tokens must be at least 0, got {max_new_tokens}")
    if temperature < 0:
        raise ScratchGPTError(f"temperature must be at least 0 (0 is greedy), got {temperature}")
    if top_k is not None and top_k < 1:
        raise ScratchGPTError(f"top_k must be at least 1, got {top_k}")
    if top_p is not None and not 0 < top_p <= 1:
        raise ScratchGPTError(f"top_p must be in (0, 1], got {top_p}")
    if num_samples < 1:
        raise ScratchGPTError(f"num_samples must be at least 1, got {num_samples}")
    if cache not in CACHE_POLICIES:
        raise ScratchGPTError(f"cache must be one of {', '.join(CACHE_POLICIES)}, got {cache!r}")


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
        before = F.softmax(sorted_logits, dim=-1).cumsum(dim=-1) - F.softmax(sorted_logits, dim=-1)
        drop_sorted = before >= top_p  # mass before this token already reaches top_p; keeps >= 1
        logits = logits.masked_fill(drop_sorted.scatter(1, order, drop_sorted), float("-inf"))
    probs = F.softmax(logits, dim=-1)  # (B, V)
    return torch.multinomial(probs, num_samples=1, generator=generator)  # (B, 1)


@torch.no_grad()
def generate(model, idx, max_new_tokens, temperature=1.0, top_k=None, top_p=None, generator=None,
             cache="window"):
    """Yield each new token (B, 1), extending the context idx (B, T) one token at a time.

    The model samples in eval mode (no dropout); the caller's mode is restored when the generator
    finishes or is closed."""
    check_sampling(max_new_tokens, temperature, top_k, top_p, cache=cache)
    was_training = model.training
    model.eval()
    try:
        if cache == "none" or not model.supports_kv_cache:
            yield from _generate_uncached(model, idx, max_new_tokens, temperature, top_k, top_p, generator)
        else:
            yield from _generate_cached(model, idx, max_new_tokens, temperature, top_k, top_p, generator,
                                        exact=cache == "exact")
    finally:
        model.train(was_training)


def _generate_uncached(model, idx, max_new_tokens, temperature, top_k, top_p, generator):
    """The lecture's generate: the whole cropped context through the model for every token."""
    block_size = model.config.block_size
    for _ in range(max_new_tokens):
        idx_cond = idx[:, -block_size:]  # (B, <=block_size): crop to what positions cover
        logits, _ = model(idx_cond)  # (B, T, V)
        idx_next = sample_next(logits[:, -1, :], temperature, top_k, top_p, generator)  # (B, 1)
        idx = torch.cat((idx, idx_next), dim=1)  # (B, T+1)
        yield idx_next


def _generate_cached(model, idx, max_new_tokens, temperature, top_k, top_p, generator, exact):
    block_size = model.config.block_size
    dtype = next(model.parameters()).dtype
    kv = KVCache(model.config, idx.size(0), idx.device, dtype)
    keep = max(1, block_size // 2)  # context kept when the window slides
    context = idx[:, -block_size:]  # (B, T): everything the model still needs
    logits, _ = model(context, cache=kv)  # prefill: (B, T, V)
    for i in range(max_new_tokens):
        idx_next = sample_next(logits[:, -1, :], temperature, top_k, top_p, generator)  # (B, 1)
        yield idx_next
        if i == max_new_tokens - 1:
            break  # no logits needed after the last token
        context = torch.cat((context, idx_next), dim=1)[:, -block_size:]  # (B, <=block_size)
        if kv.length < block_size:
            logits, _ = model(idx_next, cache=kv)  # one token in: (B, 1, V)
        elif exact:
            logits, _ = model(context)  # the lecture's cropping: all positions shift
        else:
            context = context[:, -keep:]  # (B, keep)
            kv.reset()
            logits, _ = model(context, cache=kv)  # re-encode the kept half once


def _encode_prompt(tokenizer, prompt, num_samples, device):
    """An empty prompt starts from token 0, as the lecture does (a newline for Tiny Shakespeare)."""
    ids = tokenizer.encode(prompt) if prompt else [0]
    return torch.tensor([ids] * num_samples, dtype=torch.long, device=device)  # (B, T)


def check_stops(tokenizer, stop):
    for s in stop:
        if not s:
            raise ScratchGPTError("a stop string must not be empty")
        try:
            tokenizer.encode(s)
        except TokenizerError as e:
            raise ScratchGPTError(f"stop string {s!r} cannot be encoded: {e}") from None


def _generator(device, seed):
    """A generator of its own, so that sampling never touches torch's global random state."""
    generator = torch.Generator(device=device)
    if seed is None:
        generator.seed()  # a non-deterministic seed, for this generator only
    else:
        generator.manual_seed(seed)
    return generator


def sample_texts(model, tokenizer, prompt="", max_new_tokens=500, num_samples=1, temperature=1.0,
                 top_k=None, top_p=None, stop=(), seed=None, cache="window"):
    """`num_samples` continuations of the prompt (without it), generated as one batch."""
    check_sampling(max_new_tokens, temperature, top_k, top_p, num_samples, cache)
    check_stops(tokenizer, stop)
    device = next(model.parameters()).device
    idx = _encode_prompt(tokenizer, prompt, num_samples, device)
    texts, done = [""] * num_samples, [False] * num_samples
    for idx_next in generate(model, idx, max_new_tokens, temperature, top_k, top_p,
                             _generator(device, seed), cache):
        for i, token in enumerate(idx_next[:, 0].tolist()):
            if not done[i]:
                texts[i] += tokenizer.decode([token])
                done[i] = any(s in texts[i] for s in stop)
        if all(done):
            break
    return [_cut_at_stop(t, stop) for t in texts]


def stream_text(model, tokenizer, prompt="", max_new_tokens=500, temperature=1.0, top_k=None,
                top_p=None, stop=(), seed=None, cache="window"):
    """Yield one continuation of the prompt piece by piece, as it is generated.

    With stop strings, text that could be the start of one is held back until it is not.
    """
    check_sampling(max_new_tokens, temperature, top_k, top_p, 1, cache)
    check_stops(tokenizer, stop)
    device = next(model.parameters()).device
    idx = _encode_prompt(tokenizer, prompt, 1, device)
    hold = max((len(s) for s in stop), default=1) - 1
    text, sent = "", 0
    for idx_next in generate(model, idx, max_new_tokens, temperature, top_k, top_p,
                             _generator(device, seed), cache):
        text += tokenizer.decode(idx_next[0].tolist())
        if any(s in text for s in stop):
            break
        if len(text) - hold > sent:
            yield text[sent:len(text) - hold]
            sent = len(text) - hold
    text = _cut_at_stop(text, stop)
    if len(text) > sent:
        yield text[sent:]


def _cut_at_stop(text, stop):
    cut = min((text.find(s) for s in stop if s in text), default=len(text))
    return text[:cut]


def sample_text(model, tokenizer, prompt="", **kwargs):
    """The prompt followed by one generated continuation, as one string."""
    return prompt + "".join(stream_text(model, tokenizer, prompt, **kwargs))
