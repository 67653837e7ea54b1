"""The tag task: a label per word (a part of speech, a named entity) from the user's file of tagged
sentences (data/tagged.py), learned by the encoder's token head.

Which piece carries a word's tag. The encoder labels its own tokens (characters, or sub-words
with --tokenizer bpe), and a word is one or more of them. The FIRST piece of each word carries the
word's tag and every other piece gets IGNORE (no loss, no score), as Hugging Face's run_ner does
with label_all_tokens=False, because:
- the encoder is bidirectional, so the first piece sees the whole word (and the words around it);
- each word counts once in the loss, whatever its length (a long word does not outweigh a short
  one, and a word is not scored by how many pieces its spelling needs);
- decoding is one lookup per word, with no vote between its pieces to settle.

A sentence longer than the block is never cut: a training batch takes a random window of
block_size - 2 pieces of it (drawn with the batch generator, as SequenceTask does), and the scores
and `predict` read the fewest evenly spread windows that cover it, each piece's logits averaged
over the windows that hold it (`token_outputs_over_windows`), so every word is scored.

The tag set is the train split's (sorted; a run's own, when it is evaluated). A word of val or
test whose tag train never had counts as wrong (the model cannot say it) and carries no loss:
unlike a classifier's unknown label, it is not an error, since a rare tag of a large tag set
(Brown's 472) easily falls outside train.

Scores: word accuracy over every word of a split, and where the tags are BIO/IOB, entity
precision, recall and F1 by conlleval's rules (an entity counts when its span and type are exact).
"""

from typing import NamedTuple

import torch
from torch.nn import functional as F

from ..data.masking import IGNORE
from ..data.sequences import pad
from ..data.tagged import is_chunk_tagging, word_pieces
from ..inference.predict import token_outputs_over_windows
from . import scores
from .labelling import _LabelledTask

TRACKED = 500  # val sentences scored at each estimate (the final scores read every sentence)


class Words(NamedTuple):
    """A sentence's targets: where each word's piece is, its tag, and its tag's output (IGNORE for
    a tag the model does not know)."""

    firsts: list
    tags: tuple
    label_ids: list


def piece_labels(n, words):
    """The labels of a sentence's n pieces: each word's label at its first piece, IGNORE elsewhere."""
    labels = [IGNORE] * n
    for first, label in zip(words.firsts, words.label_ids):
        labels[first] = label
    return labels


class TagTask(_LabelledTask):
    """A label per word, from the token head's outputs at each word's first piece."""

    head = "token"

    def __init__(self, name, examples, tokenizer, block_size, labels, data_info):
        self._encoded = {}  # each word's pieces, shared by the splits (word_pieces' cache)
        super().__init__(name, examples, tokenizer, block_size, labels, data_info)
        self.model_settings["label_words"] = True
        self.chunked = is_chunk_tagging(labels)

    def _prepare(self, pairs):
        """(the pieces of each sentence, whole; its Words) of a split's (words, tags) pairs."""
        index = {tag: k for k, tag in enumerate(self.labels)}
        rows, targets = [], []
        for words, tags in pairs:
            ids, firsts = word_pieces(self.tokenizer, words, self._encoded)
            rows.append(ids)
            targets.append(Words(firsts, tags, [index.get(t, IGNORE) for t in tags]))
        return rows, targets

    def summary(self):
        counts = ", ".join(f"{sum(len(w.tags) for w in self.targets[s]):,} {s}" for s in self.rows)
        return f"{super().summary()}; words: {counts}; {len(self.labels)} tags"

    def batch(self, split, batch_size, generator, device):
        index = torch.randint(len(self.rows[split]), (batch_size,), generator=generator).tolist()
        rows, labels = [], []
        for i in index:
            ids = self.rows[split][i]
            start = self._window_start(len(ids), generator)
            window = slice(start, start + self.width)
            rows.append([self.cls, *ids[window], self.sep])
            labels.append([IGNORE, *piece_labels(len(ids), self.targets[split][i])[window], IGNORE])
        ids = pad(rows, self.pad_id, device)  # (B, L)
        return ids, ids != self.pad_id, pad(labels, IGNORE, device)  # labels (B, L)

    def batch_tokens(self, batch_size):
        rows = self.rows["train"]
        return round(batch_size * sum(min(len(r), self.width) + 2 for r in rows) / len(rows))

    def word_logits(self, model, split, device, start=0, stop=None):
        """[(W, K)]: the logits at each word's piece, for sentences start..stop of `split`."""
        rows = self.rows[split][start:stop]
        outs = token_outputs_over_windows(model, rows, self.cls, self.sep, self.pad_id, device)  # [(n, K)]
        return [out[words.firsts] for out, words in zip(outs, self.targets[split][start:stop])]

    def track(self, model, device):
        """The val scores of the first TRACKED sentences (a whole val split of Brown takes as long
        as about 80 training steps): the curve of what counts."""
        return {k: v for k, v in self._split_scores(model, "val", device, TRACKED).items() if k != "val_loss"}

    def _split_scores(self, model, split, device, stop=None, chunk=256):
        """The loss, word accuracy and (BIO tags) entity precision, recall and F1 over the sentences
        of `split` (the first `stop` of them; None: all), `chunk` sentences at a time (so memory does
        not grow with the split)."""
        predicted, total, known = [], 0.0, 0
        n = len(self.rows[split][:stop])
        for start in range(0, n, chunk):
            end = min(start + chunk, n)
            logits = self.word_logits(model, split, device, start, end)
            for out in logits:
                predicted.append([self.labels[k] for k in out.argmax(-1).tolist()])
            wanted = torch.tensor([k for w in self.targets[split][start:end] for k in w.label_ids])
            total += F.cross_entropy(torch.cat(logits), wanted, reduction="sum").item()  # IGNORE: no loss
            known += int((wanted != IGNORE).sum())
        actual = [w.tags for w in self.targets[split][:n]]
        found = {
            f"{split}_loss": total / max(known, 1),
            f"{split}_word_accuracy": scores.word_accuracy(predicted, actual),
        }
        if self.chunked:
            precision, recall, f1 = scores.span_prf(predicted, actual)
            found.update({f"{split}_span_precision": precision, f"{split}_span_recall": recall, f"{split}_span_f1": f1})
        return found

    def report(self, s):
        words = f"test split: word accuracy {s['test_word_accuracy']:.1%} (val {s['val_word_accuracy']:.1%})"
        if not self.chunked:
            return words
        return (
            f"{words}; entities: precision {s['test_span_precision']:.3f}, recall {s['test_span_recall']:.3f}, "
            f"F1 {s['test_span_f1']:.3f} (val F1 {s['val_span_f1']:.3f})"
        )
