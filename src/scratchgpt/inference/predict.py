"""What an encoder says about a text: a fine-tuned one's label, score, per-character labels or
per-word tags (`predict`), a pretrained one's guesses for each [MASK] (`fill`). Texts are framed as
in training (`[CLS] text [SEP]`). A sequence head reads a long text as the mean over windows of it
(`mean_over_windows`, also the fine-tuning's scores); a word tagger (`label_words`) reads every
piece of a long text, its logits averaged over the windows that hold it
(`token_outputs_over_windows`, also the tag task's scores); the per-character labeller cuts a text
to block_size. The model runs in eval mode and the caller's mode comes back.
"""

import itertools
import math

import torch
from torch.nn import functional as F

from ..data.sequences import batch_texts, pad
from ..data.tagged import chunks, is_chunk_tagging, word_pieces
from ..errors import ConfigError
from ..nn.modes import evaluating


def windows(n, width):
    """The starts of the fewest windows of `width` tokens, evenly spread, that cover n tokens."""
    if n <= width:
        return [0]
    k = math.ceil(n / width)  # k windows cover n tokens when their k - 1 gaps are at most width
    return [round(j * (n - width) / (k - 1)) for j in range(k)]


def _window_rows(texts, width, cls, sep):
    """Every window of every text (lists of token ids) framed as `[CLS] window [SEP]`, with
    (the index of its text, its start)."""
    rows, where = [], []
    for i, ids in enumerate(texts):
        for start in windows(len(ids), width):
            rows.append([cls, *ids[start : start + width], sep])
            where.append((i, start))
    return rows, where


def _outputs(model, rows, pad_id, device, batch_size):
    """The model's outputs for `rows`, batch_size rows at a time, as float32 on the CPU."""
    with evaluating(model), torch.no_grad():
        for start in range(0, len(rows), batch_size):
            ids = pad(rows[start : start + batch_size], pad_id, device)  # (b, L)
            yield model(ids, key_mask=ids != pad_id)[0].float().cpu()  # (b, K), (b,) or (b, L, K)


def mean_over_windows(model, texts, cls, sep, pad_id, device, batch_size=64):
    """The outputs of a sequence head for texts of any length (lists of token ids): for each, the
    mean of the outputs of `[CLS] window [SEP]` over its `windows` of block_size - 2 tokens.
    Returns (N, K) for classes, (N,) for scores, on the CPU."""
    rows, where = _window_rows(texts, model.config.block_size - 2, cls, sep)
    out = torch.cat(list(_outputs(model, rows, pad_id, device, batch_size)))  # (R, K) or (R,): one per window
    owner = torch.tensor([i for i, _ in where])  # (R,)
    counts = torch.bincount(owner, minlength=len(texts)).float()  # (N,) windows per text
    total = torch.zeros(len(texts), *out.shape[1:]).index_add_(0, owner, out)  # (N, K) or (N,)
    return total / (counts[:, None] if total.dim() == 2 else counts)


def token_outputs_over_windows(model, texts, cls, sep, pad_id, device, batch_size=64):
    """The outputs of a token head for texts of any length (lists of token ids): for each, (n, K),
    each token's logits averaged over the `windows` of block_size - 2 tokens that hold it (one
    window, for a text that fits). So no token goes unread. On the CPU."""
    rows, where = _window_rows(texts, model.config.block_size - 2, cls, sep)
    order = sorted(range(len(rows)), key=lambda r: len(rows[r]))  # like lengths batched together: less padding
    rows, where = [rows[r] for r in order], [where[r] for r in order]
    lengths = [len(ids) for ids in texts]
    offsets = [0, *itertools.accumulate(lengths)]  # text i's tokens are rows offsets[i]: offsets[i + 1] below
    total = torch.zeros(offsets[-1], model.config.num_labels)  # (N, K): every token of every text
    count = torch.zeros(offsets[-1], 1)  # (N, 1): the windows holding each token
    done = 0
    for out in _outputs(model, rows, pad_id, device, batch_size):  # (b, L, K)
        for j, (i, start) in enumerate(where[done : done + len(out)]):
            n = len(rows[done + j]) - 2  # the window's tokens, between [CLS] and [SEP]
            total[offsets[i] + start : offsets[i] + start + n] += out[j, 1 : 1 + n]
            count[offsets[i] + start : offsets[i] + start + n] += 1
        done += len(out)
    return list(torch.split(total / count, lengths))  # [(n, K)]


def predict(model, tokenizer, texts, batch_size=64):
    """One dict per text: {"label", "probabilities"} for classes, {"score"} for a regression,
    {"labels", "spans"} (per-character labels, and the text of each run of non-"other" labels) for
    a token head, or for a word tagger {"words", "tags", "spans"}: the text split on whitespace, a
    tag per word, and the entities of BIO tags ({"start", "end", "type", "text"}, in words; none
    when the tags are not BIO)."""
    config = model.config
    if config.head == "mlm":
        raise ConfigError("predict needs a fine-tuned encoder; a pretrained (masked-LM) one can fill: scratchgpt fill")
    device = next(model.parameters()).device
    if config.head == "sequence":
        out = mean_over_windows(
            model,
            [tokenizer.encode(t) for t in texts],
            tokenizer.special_id("[CLS]"),
            tokenizer.special_id("[SEP]"),
            tokenizer.special_id("[PAD]"),
            device,
            batch_size,
        )
        return [_describe(config, text, out[i], None) for i, text in enumerate(texts)]
    if config.label_words:
        return _tag_words(model, tokenizer, texts, device, batch_size)
    results = []
    for start in range(0, len(texts), batch_size):
        chunk = texts[start : start + batch_size]
        ids, key_mask = batch_texts(tokenizer, chunk, config.block_size, device)
        with evaluating(model), torch.no_grad():
            out = model(ids, key_mask=key_mask)[0].float().cpu()
        for i, text in enumerate(chunk):
            results.append(_describe(config, text, out[i], int(key_mask[i].sum()) - 2))
    return results


def _describe(config, text, out, length):
    if config.head == "sequence" and config.num_labels == 1:
        return {"score": out.item()}
    if config.head == "sequence":
        probs = F.softmax(out, dim=-1).tolist()
        return {"label": config.labels[int(out.argmax())], "probabilities": dict(zip(config.labels, probs))}
    labels = [config.labels[i] for i in out[1 : 1 + length].argmax(-1).tolist()]  # skip [CLS]
    spans, start = [], None
    for i, label in enumerate(labels + [config.labels[0]]):
        if label != config.labels[0] and start is None:
            start = i
        elif label == config.labels[0] and start is not None:
            spans.append({"start": start, "end": i, "text": text[start:i]})
            start = None
    return {"labels": labels, "spans": spans}


def _tag_words(model, tokenizer, texts, device, batch_size):
    labels, cache, results = model.config.labels, {}, []
    specials = [tokenizer.special_id(t) for t in ("[CLS]", "[SEP]", "[PAD]")]
    chunked = is_chunk_tagging(labels)
    for start in range(0, len(texts), batch_size):
        sentences = [text.split() for text in texts[start : start + batch_size]]
        encoded = [word_pieces(tokenizer, words, cache) for words in sentences]
        outs = token_outputs_over_windows(model, [ids for ids, _ in encoded], *specials, device, batch_size)
        for words, (_, firsts), out in zip(sentences, encoded, outs):
            tags = [labels[k] for k in out[firsts].argmax(-1).tolist()]  # (W, K) at each word's piece
            spans = [
                {"start": a, "end": b, "type": kind, "text": " ".join(words[a:b])}
                for a, b, kind in (chunks(tags) if chunked else [])
            ]
            results.append({"words": words, "tags": tags, "spans": spans})
    return results


def fill(model, tokenizer, text, top_k=5):
    """For each [MASK] of `text`, in order: [(token, probability)] of the top_k guesses."""
    config = model.config
    if config.head != "mlm":
        raise ConfigError(
            f"fill needs a pretrained (masked-LM) encoder; this one has a {config.head} head (use scratchgpt predict)"
        )
    if top_k < 1:
        raise ConfigError(f"top_k must be at least 1, got {top_k}")
    mask = tokenizer.special_id("[MASK]")
    wanted = tokenizer.encode(text).count(mask)
    if wanted == 0:
        raise ConfigError("the text has no [MASK] to fill")
    ids, key_mask = batch_texts(tokenizer, [text], config.block_size, next(model.parameters()).device)
    if int((ids == mask).sum()) < wanted:
        raise ConfigError(f"a [MASK] lies past the first {config.block_size - 2} tokens the model reads")
    with evaluating(model), torch.no_grad():
        logits = model(ids, key_mask=key_mask)[0][0].float().cpu()  # (L, V)
    characters = tokenizer.text_vocab_size  # guesses are text (characters, sub-words), never special tokens
    guesses = []
    for position in (ids[0] == mask).nonzero()[:, 0].tolist():
        probs = F.softmax(logits[position, :characters], dim=-1)
        top = torch.topk(probs, min(top_k, characters))
        guesses.append(list(zip(tokenizer.pieces(top.indices.tolist()), top.values.tolist())))
    return guesses
