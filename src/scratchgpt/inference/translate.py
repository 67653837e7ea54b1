"""Translating texts with a trained encoder-decoder: texts in, texts out.

`translate` decodes a batch of texts, greedily (beam=1) or by beam search (beam.py);
`stream_translation` yields one text's translation piece by piece as greedy decoding writes it.
Both run the model in eval mode and give the caller's mode back.

A source longer than block_size tokens is refused, never cut: a cut source has another
translation. With `split`, such a source is translated in pieces instead (`split_source`): cut
after the ends of its sentences (. ! ? or a line break, then whitespace), as many whole sentences
a piece as fit in block_size tokens; a sentence longer than that is cut after its commas, semicolons
and colons the same way. The pieces' translations are joined with the whitespace that separated
them. A piece that still does not fit (no such mark within block_size tokens) is refused with its
length, before anything is translated. A text that fits is translated whole either way.
"""

import re

import torch

from ..data.tokenizer import TextStream
from ..errors import InputError
from ..nn.modes import evaluating
from .beam import beam_search, greedy, greedy_steps

# Where split_source may cut, at the whitespace (group 1, or 2) after: the end of a sentence (. ! ?
# or an ellipsis, with any closing quotes or brackets) or a line break; inside a sentence, a comma,
# semicolon or colon (Latin, Arabic or CJK).
CLOSERS = "\"')\\]\u00bb\u201d\u2019"
SENTENCE_END = re.compile(rf"[.!?\u2026]+[{CLOSERS}]*(\s+)|(\s*\n\s*)")
CLAUSE_END = re.compile(rf"[,;:\u060c\u3001]+[{CLOSERS}]*(\s+)")


def _cut(text, pattern):
    """[(segment, the whitespace after it)]: `text` cut at the whitespace group of each match."""
    parts, start = [], 0
    for match in pattern.finditer(text):
        gap = match.lastindex and match.span(match.lastindex)
        if gap and gap[0] > start:
            parts.append((text[start : gap[0]], text[gap[0] : gap[1]]))
            start = gap[1]
    return parts + [(text[start:], "")] if start < len(text) else parts


def split_source(tokenizer, text, block_size, number=1):
    """[(piece, the whitespace after it)]: `text` whole if it fits in block_size source tokens,
    else cut into pieces that do (see the module's docstring). `number` names the text in errors."""
    length = lambda piece: len(tokenizer.source.encode(piece))  # noqa: E731
    if not text.strip():
        raise InputError(f"text {number} to translate is empty")
    if length(text) <= block_size:
        return [(text, "")]
    pieces, current = [], None  # current: the piece being filled, (text, gap)

    def add(segment, gap):
        nonlocal current
        if current is not None and length(current[0] + current[1] + segment) <= block_size:
            current = (current[0] + current[1] + segment, gap)
            return
        if current is not None:
            pieces.append(current)
        if length(segment) > block_size:
            raise InputError(
                f"text {number} to translate has a piece of {length(segment)} tokens with no sentence end "
                f"or comma to cut it at within block_size {block_size}: "
                + repr(segment if len(segment) <= 40 else segment[:40] + "...")
            )
        current = (segment, gap)

    for sentence, gap in _cut(text, SENTENCE_END):
        if length(sentence) <= block_size:
            add(sentence, gap)
        else:  # a sentence of its own pieces, cut after its commas, semicolons and colons
            if current is not None:
                pieces.append(current)
                current = None
            clauses = _cut(sentence, CLAUSE_END)
            clauses[-1] = (clauses[-1][0], gap)
            for clause, clause_gap in clauses:
                add(clause, clause_gap)
            pieces.append(current)
            current = None
    return pieces + ([current] if current is not None else [])


SPLIT_HINT = ' (--split, or "split": true in the API, translates it in pieces cut at sentence ends)'


def encode_sources(tokenizer, texts, block_size, device="cpu", hint=""):
    """(src (B, S) padded with [PAD], src_mask (B, S) True on real tokens) of the texts; `hint` ends
    the refusal of a text longer than block_size."""
    rows = [tokenizer.source.encode(text) for text in texts]
    for i, row in enumerate(rows):
        if not row:
            raise InputError(f"text {i + 1} to translate is empty")
        if len(row) > block_size:
            raise InputError(
                f"text {i + 1} to translate has {len(row)} tokens; the model reads at most block_size {block_size}"
                + hint
            )
    pad = tokenizer.source.special_id("[PAD]")
    width = max(map(len, rows))
    src = torch.tensor([row + [pad] * (width - len(row)) for row in rows], dtype=torch.long, device=device)
    return src, src != pad


def _ids(tokenizer):
    return tokenizer.target.special_id("[BOS]"), tokenizer.target.special_id("[EOS]")


def translate(model, tokenizer, texts, beam=1, alpha=0.6, max_len=None, batch_size=256, split=False):
    """The translation of each text: greedy decoding for beam=1, else beam search with length
    penalty alpha. max_len: the most target tokens (default block_size - 1, the most that fit).
    split: a text longer than block_size is translated in pieces (split_source), not refused."""
    config = model.config
    if split:
        pieces = [split_source(tokenizer, text, config.block_size, i) for i, text in enumerate(texts, 1)]
        outputs = iter(
            translate(model, tokenizer, [p for ps in pieces for p, _ in ps], beam, alpha, max_len, batch_size)
        )
        return ["".join(next(outputs) + gap for _, gap in ps) for ps in pieces]
    max_len = config.block_size - 1 if max_len is None else max_len
    device = next(model.parameters()).device
    bos, eos = _ids(tokenizer)
    out = []
    with evaluating(model):  # decoding turns gradients off itself
        for start in range(0, len(texts), batch_size):
            src, mask = encode_sources(
                tokenizer, texts[start : start + batch_size], config.block_size, device, SPLIT_HINT
            )
            if beam == 1:
                out += greedy(model, src, mask, bos, eos, max_len)
            else:
                out += beam_search(model, src, mask, bos, eos, max_len, beam, alpha)[0]
    return [tokenizer.target.decode(ids) for ids in out]


def stream_translation(model, tokenizer, text, max_len=None, split=False):
    """Yield the greedy translation of one text, a piece (a token's text) at a time; with `split`, a
    text longer than block_size is translated in pieces (split_source), each streamed in turn."""
    config = model.config
    pieces = split_source(tokenizer, text, config.block_size) if split else [(text, "")]
    device = next(model.parameters()).device
    sources = [encode_sources(tokenizer, [p], config.block_size, device, SPLIT_HINT) for p, _ in pieces]
    bos, eos = _ids(tokenizer)
    for (src, mask), (_, gap) in zip(sources, pieces):
        stream = TextStream(tokenizer.target)  # never half a character of a byte-level BPE
        with evaluating(model):
            for token in greedy_steps(
                model, src, mask, bos, eos, config.block_size - 1 if max_len is None else max_len
            ):
                if token.item() == eos:
                    break
                if piece := stream.add([token.item()]):
                    yield piece
        if piece := stream.flush():
            yield piece
        if gap:
            yield gap
