"""Decoding an encoder-decoder: from a source to the likeliest target, token by token.

Shapes: B sources, K beams, S source length, V target vocabulary size.

Greedy decoding appends the single likeliest next token until [EOS] (or max_len tokens). Beam
search keeps the K likeliest partial targets instead: at each step every kept target is extended
by every token, and the K best extensions by total log-probability stay. An extension that ends
with [EOS] leaves the beam as a finished hypothesis, so the beam shrinks; a source is done when
its beam is empty, or when no target still in it can beat the best finished one (log-probabilities
only fall as a target grows, so the bound is exact). The best finished hypothesis wins, compared
by log-probability / lp(length), the length penalty of Wu et al. (2016):

    lp(L) = ((5 + L) / 6) ** alpha      (alpha = 0: no penalty; larger alpha favours longer targets)

With K = 1 this is greedy decoding exactly.

Both run every source of a batch at once, encode each source once, and with the fast face keep a
KVCache: the decoder's self-attention keys and values grow by one token a step, the
cross-attention keys and values of the source are computed on the first step and reused. Without
a cache (the readable face, or `cache=False`) every step runs the decoder over the whole target so
far: the same tokens, more work.
"""

import torch
from torch.nn import functional as F

from ..errors import ConfigError
from ..nn.kv_cache import KVCache


def _start(model, src, src_mask, repeat, cache):
    """(memory, mask) of the sources, each row repeated `repeat` times, and a KVCache or None."""
    memory = model.encode(src, src_mask).repeat_interleave(repeat, 0)  # (B * repeat, S, C)
    mask = None if src_mask is None else src_mask.repeat_interleave(repeat, 0)  # (B * repeat, S)
    use_cache = cache and model.supports_kv_cache
    kv = KVCache(model.config, memory.shape[0], memory.device, memory.dtype) if use_cache else None
    return memory, mask, kv


def _next_logits(model, tokens, memory, mask, kv):
    """The logits (N, V) of the next token after tokens (N, t)."""
    step = tokens[:, -1:] if kv is not None else tokens  # with a cache, only the newest token
    return model.decode(step, memory, mask, cache=kv)[:, -1].float()  # (N, V)


def _check(model, max_len):
    if not 1 <= max_len <= model.config.block_size - 1:
        raise ConfigError(f"max_len must be in 1..{model.config.block_size - 1} (block_size - 1), got {max_len}")


@torch.no_grad()
def greedy_steps(model, src, src_mask, bos, eos, max_len, cache=True):
    """Yield the next token of every source (B,) at each step until every one has ended with eos
    (an ended source then gets eos again) or max_len steps. The model must be in eval mode."""
    _check(model, max_len)
    memory, mask, kv = _start(model, src, src_mask, 1, cache)
    tokens = torch.full((src.shape[0], 1), bos, dtype=torch.long, device=src.device)  # (B, 1)
    done = torch.zeros(src.shape[0], dtype=torch.bool, device=src.device)  # (B,)
    for _ in range(max_len):
        nxt = _next_logits(model, tokens, memory, mask, kv).argmax(-1)  # (B,)
        nxt = torch.where(done, torch.full_like(nxt, eos), nxt)
        yield nxt
        tokens = torch.cat([tokens, nxt[:, None]], dim=1)  # (B, t + 1)
        done |= nxt == eos
        if done.all():
            return


def greedy(model, src, src_mask, bos, eos, max_len, cache=True):
    """The greedy targets of the sources src (B, S): one list of token ids each, without [BOS]
    and [EOS] (a target that reached max_len tokens without [EOS] is cut there)."""
    steps = list(greedy_steps(model, src, src_mask, bos, eos, max_len, cache))
    out = torch.stack(steps, dim=1).tolist() if steps else [[] for _ in range(src.shape[0])]  # (B, t)
    return [row[: row.index(eos)] if eos in row else row for row in out]


def length_penalty(length, alpha):
    return ((5.0 + length) / 6.0) ** alpha


@torch.no_grad()
def beam_search(model, src, src_mask, bos, eos, max_len, beam=4, alpha=0.6, cache=True):
    """The best target of each source src (B, S) by beam search: (targets, scores), targets a list
    of token ids per source (no [BOS], no [EOS]), scores their log-probability / lp(length)
    (length counting the [EOS]). The model must be in eval mode."""
    _check(model, max_len)
    if beam < 1:
        raise ConfigError(f"beam must be at least 1, got {beam}")
    if alpha < 0:
        raise ConfigError(f"the length penalty alpha must be at least 0, got {alpha}")
    B, K, device = src.shape[0], beam, src.device
    memory, mask, kv = _start(model, src, src_mask, K, cache)
    tokens = torch.full((B * K, 1), bos, dtype=torch.long, device=device)  # (B K, 1): beam k of source b at b K + k
    scores = torch.full((B, K), float("-inf"), device=device)  # total log-probability of each kept target
    scores[:, 0] = 0.0  # at first one beam per source: [BOS] alone
    best = [(float("-inf"), []) for _ in range(B)]  # the best finished (normalised score, tokens) per source
    for t in range(1, max_len + 1):
        logp = F.log_softmax(_next_logits(model, tokens, memory, mask, kv), dim=-1)  # (B K, V)
        V = logp.shape[-1]
        candidates = (scores.view(B * K, 1) + logp).view(B, K * V)  # every extension of every beam
        scores, index = candidates.topk(K, dim=-1)  # (B, K) each: the K best extensions
        origin, token = index // V, index % V  # the beam each extends, and the token it adds
        rows = (torch.arange(B, device=device)[:, None] * K + origin).flatten()  # (B K,)
        tokens = torch.cat([tokens[rows], token.view(B * K, 1)], dim=1)  # (B K, t + 1)
        if kv is not None:
            kv.reorder(rows)
        ended = (token == eos) & scores.isfinite()  # (B, K): these leave the beam finished
        if t == max_len:
            ended = scores.isfinite()  # out of room: every kept target ends here
        for b, k in ended.nonzero().tolist():
            score = scores[b, k].item() / length_penalty(t, alpha)
            if score > best[b][0]:
                body = tokens[b * K + k, 1:].tolist()
                best[b] = (score, body[:-1] if body[-1] == eos else body)
        scores = scores.masked_fill(ended, float("-inf"))
        # a kept target's score can only fall, and lp grows at most to lp(max_len): its best hope
        hope = scores.max(dim=-1).values / length_penalty(max_len, alpha)  # (B,)
        finished = torch.tensor([b[0] for b in best], device=device)
        if bool((hope <= finished).all()):
            break
    return [b[1] for b in best], [b[0] for b in best]


@torch.no_grad()
def sequence_score(model, src, src_mask, target, bos, eos, alpha=0.6):
    """log p(target + [EOS] | source) / lp(len(target) + 1) for one source src (1, S) and one
    target (a list of ids, no [BOS]/[EOS]): the score beam_search ranks targets by."""
    tgt = torch.tensor([[bos, *target]], device=src.device)  # (1, L)
    nxt = torch.tensor([[*target, eos]], device=src.device)  # (1, L)
    logp = F.log_softmax(model(src, tgt, src_mask=src_mask)[0].float(), dim=-1)  # (1, L, V)
    total = logp.gather(-1, nxt[..., None]).sum().item()
    return total / length_penalty(len(target) + 1, alpha)
