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

`compile=True` decodes each cached token with the model's forward compiled (compiled.py) over a
static cache: same tokens, without the per-op overhead; prefill, the window's re-encoding and the
exact policy's cropping stay eager.

The sampling settings (sampling.py) arrive as one `Sampling`: temperature (0 is greedy), top-k,
top-p, several samples at once (one batch, one seeded generator: reproducible), stop strings (the
text ends before the first one; not included). The public functions also take its fields as
keywords. Sampling runs in eval mode and never touches torch's global random state.

Text comes out of the running ids through a `TextStream`: with byte-level BPE a token may end in the
middle of a character, and a stream never shows half of one.
"""

import torch

from ..data.tokenizer import TextStream
from ..errors import ConfigError
from ..nn.kv_cache import KVCache
from ..nn.modes import evaluating
from .compiled import Decoder, check_compilable
from .sampling import Sampling, sample_next


def generate(
    model,
    idx,
    max_new_tokens,
    temperature=1.0,
    top_k=None,
    top_p=None,
    generator=None,
    cache="window",
    compile=False,
    decoder=None,
):
    """Yield each new token (B, 1), extending the context idx (B, T) one token at a time: the
    lecture's generate, as a stream. With compile, `decoder` is the model's Decoder to reuse (one is
    made, and compiled, when it is None)."""
    sampling = Sampling(max_new_tokens, temperature, top_k, top_p, cache=cache, compile=compile)
    yield from _generate(model, idx, sampling, generator, decoder)


@torch.no_grad()  # on a generator: gradients are off only while it runs, not between tokens
def _generate(model, idx, s, generator, decoder=None):
    """generate() with its settings checked: the model samples in eval mode (no dropout), and the
    caller's mode is restored when the stream ends or is closed."""
    if s.compile:
        check_compilable(model.config)
        decoder = decoder or Decoder(model)
        if decoder.model is not model:
            raise ValueError("the decoder given was made for another model")
    with evaluating(model):
        if s.cache == "none" or not model.supports_kv_cache:
            yield from _generate_uncached(model, idx, s, generator)
        elif s.compile:
            dtype = next(model.parameters()).dtype
            with decoder.cache(idx.size(0), dtype) as kv:
                yield from _generate_cached(model, idx, s, generator, s.cache == "exact", kv, decoder)
        else:
            yield from _generate_cached(model, idx, s, generator, exact=s.cache == "exact")


def _generate_uncached(model, idx, s, generator):
    """The lecture's generate: the whole cropped context through the model for every token."""
    block_size = model.config.block_size
    for _ in range(s.max_new_tokens):
        idx_cond = idx[:, -block_size:]  # (B, <=block_size): crop to what positions cover
        logits, _ = model(idx_cond)  # (B, T, V)
        idx_next = sample_next(logits[:, -1, :], s.temperature, s.top_k, s.top_p, generator)  # (B, 1)
        idx = torch.cat((idx, idx_next), dim=1)  # (B, T+1)
        yield idx_next


def _generate_cached(model, idx, s, generator, exact, kv=None, decoder=None):
    """The cache policies; `decoder` (with its static cache kv) decodes the one-token steps."""
    block_size = model.config.block_size
    if kv is None:
        kv = KVCache(model.config, idx.size(0), idx.device, next(model.parameters()).dtype)
    step = decoder if decoder is not None else lambda idx_next, cache: model(idx_next, cache=cache)
    keep = max(1, block_size // 2)  # context kept when the window slides
    context = idx[:, -block_size:]  # (B, T): everything the model still needs
    logits, _ = model(context, cache=kv)  # prefill: (B, T, V)
    filled = context.size(1)  # kv.length, counted here: a static cache's is a tensor
    for i in range(s.max_new_tokens):
        idx_next = sample_next(logits[:, -1, :], s.temperature, s.top_k, s.top_p, generator)  # (B, 1)
        yield idx_next
        if i == s.max_new_tokens - 1:
            break  # no logits needed after the last token
        context = torch.cat((context, idx_next), dim=1)[:, -block_size:]  # (B, <=block_size)
        if filled < block_size:
            logits, _ = step(idx_next, kv)  # one token in: (B, 1, V)
            filled += 1
        elif exact:
            logits, _ = model(context)  # the lecture's cropping: all positions shift
        else:
            context = context[:, -keep:]  # (B, keep)
            kv.reset()
            logits, _ = model(context, cache=kv)  # re-encode the kept half once
            filled = keep


def _settings(sampling, options):
    """The Sampling given, or one made from its fields as keywords (not both)."""
    if sampling is not None and options:
        raise TypeError("pass a Sampling or its fields as keywords, not both")
    return sampling if sampling is not None else Sampling(**options)


def start(model, tokenizer, prompt, s):
    """Check the stop strings and the prompt; (context (B, T), a generator of its own). An empty
    prompt starts from token 0, as the lecture does (a newline for Tiny Shakespeare's characters);
    with sub-word tokens, from a newline."""
    s.check_stops(tokenizer)
    device = next(model.parameters()).device
    ids = tokenizer.encode(prompt) if prompt else _empty_prompt(tokenizer)
    idx = torch.tensor([ids] * s.num_samples, dtype=torch.long, device=device)  # (B, T)
    generator = torch.Generator(device=device)
    if s.seed is None:
        generator.seed()  # a non-deterministic seed, for this generator only
    else:
        generator.manual_seed(s.seed)
    return idx, generator


def _empty_prompt(tokenizer):
    if tokenizer.kind == "char":
        return [0]
    newline = tokenizer.encode("\n")
    return newline if len(newline) == 1 else [0]


def sample_texts(model, tokenizer, prompt="", sampling=None, *, decoder=None, **options):
    """`num_samples` continuations of the prompt (without it), generated as one batch; `decoder`:
    the model's Decoder to reuse with compile."""
    s = _settings(sampling, options)
    idx, generator = start(model, tokenizer, prompt, s)
    texts, done = [""] * s.num_samples, [False] * s.num_samples
    streams = [TextStream(tokenizer) for _ in range(s.num_samples)]
    for idx_next in _generate(model, idx, s, generator, decoder):
        for i, token in enumerate(idx_next[:, 0].tolist()):
            if not done[i]:
                texts[i] += streams[i].add([token])
                done[i] = any(stop in texts[i] for stop in s.stop)
        if all(done):
            break
    texts = [t if d else t + stream.flush() for t, d, stream in zip(texts, done, streams)]
    return [_cut_at_stop(t, s.stop) for t in texts]


def stream_text(model, tokenizer, prompt="", sampling=None, *, decoder=None, **options):
    """Yield one continuation of the prompt piece by piece, as it is generated (see Continuation);
    `decoder`: as in sample_texts."""
    s = _settings(sampling, options)
    if s.num_samples != 1:
        raise ConfigError("stream_text streams one sample; use sample_texts for several")
    idx, generator = start(model, tokenizer, prompt, s)
    text = Continuation(tokenizer, s.stop)
    for idx_next in _generate(model, idx, s, generator, decoder):
        piece = text.add(idx_next[0].tolist())
        if piece:
            yield piece
        if text.stopped:
            break
    rest = text.finish()
    if rest:
        yield rest


class Continuation:
    """One continuation's text as its tokens arrive, in pieces ready to show.

    A character cut between tokens is held back until it is complete (TextStream); with stop
    strings, text that could be the start of one is held back until it is not, and the text ends
    before the first stop string (not included)."""

    def __init__(self, tokenizer, stop=()):
        self.stop, self.stream = stop, TextStream(tokenizer)
        self.hold = max((len(s) for s in stop), default=1) - 1
        self.text, self.sent, self.stopped = "", 0, False

    def add(self, ids):
        """The piece that the next tokens `ids` make ready (maybe ""); `stopped` once a stop string appears."""
        self.text += self.stream.add(ids)  # complete characters only
        if any(s in self.text for s in self.stop):
            self.stopped = True
            return ""
        if len(self.text) - self.hold <= self.sent:
            return ""
        piece, self.sent = self.text[self.sent : len(self.text) - self.hold], len(self.text) - self.hold
        return piece

    def finish(self):
        """The rest, once no token follows: what was held back, cut at a stop string."""
        if not self.stopped:
            self.text += self.stream.flush()
        self.text = _cut_at_stop(self.text, self.stop)
        rest, self.sent = self.text[self.sent :], len(self.text)
        return rest


def _cut_at_stop(text, stop):
    cut = min((text.find(s) for s in stop if s in text), default=len(text))
    return text[:cut]


def sample_text(model, tokenizer, prompt="", sampling=None, *, decoder=None, **options):
    """The prompt followed by one generated continuation, as one string."""
    return prompt + "".join(stream_text(model, tokenizer, prompt, sampling, decoder=decoder, **options))
