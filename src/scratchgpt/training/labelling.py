"""Fine-tuning tasks: a label or a score per text (the sequence head), or a label per character
(the token head), learned from examples split into train, val and test.

    SequenceTask  speakers (who speaks?), classify (the user's labels), regress (the user's scores)
    TokenTask     names (which characters belong to a speaker's name)
    (TagTask      tag, a label per word: tagging.py, on the same base)

Texts are framed as the encoder reads them (data/sequences.py); a batch draws B examples of a
split with the loop's generator (so resume stays exact) and pads them to the longest. The final
scores are deterministic: every example of the val and the test split, in order. A sequence task
reads a text longer than the block as windows of it (SequenceTask); a token task cuts it.
"""

import torch
from torch.nn import functional as F

from ..data.masking import IGNORE
from ..data.sequences import frame, frame_labels, pad
from ..inference.predict import mean_over_windows
from ..nn.modes import evaluating
from . import scores


class _LabelledTask:
    """What sequence and token tasks share: framed examples, their batches, the model config they need."""

    def __init__(self, name, examples, tokenizer, block_size, labels, data_info):
        self.name, self.tokenizer, self.labels, self.data_info = name, tokenizer, labels, data_info
        self.block_size = block_size
        self.model_settings = {"vocab_size": tokenizer.vocab_size, "head": self.head, "labels": tuple(labels or ())}
        self.model_settings["num_labels"] = len(labels) if labels else 1  # a score: one output
        self.pad_id = tokenizer.special_id("[PAD]")
        self.cls, self.sep = tokenizer.special_id("[CLS]"), tokenizer.special_id("[SEP]")
        self.width = block_size - 2  # the tokens of a window, between [CLS] and [SEP]
        prepared = {split: self._prepare(pairs) for split, pairs in examples.items()}
        self.rows = {split: rows for split, (rows, _) in prepared.items()}
        self.targets = {split: targets for split, (_, targets) in prepared.items()}

    def _prepare(self, pairs):
        """(rows, targets) of a split's (text, target) pairs: each text framed (cut to the block),
        the targets as `_targets` makes them."""
        rows = [frame(self.tokenizer, text, self.block_size) for text, _ in pairs]
        return rows, self._targets([t for _, t in pairs])

    def summary(self):
        counts = ", ".join(f"{len(rows):,} {split}" for split, rows in self.rows.items())
        return f"{self.name} examples: {counts}"

    def _batch_of(self, split, index, device):
        rows = [self.rows[split][i] for i in index]
        ids = pad(rows, self.pad_id, device)  # (B, L)
        return ids, ids != self.pad_id, self._batch_targets(split, index, device)

    def batch(self, split, batch_size, generator, device):
        index = torch.randint(len(self.rows[split]), (batch_size,), generator=generator).tolist()
        return self._batch_of(split, index, device)

    def _window_start(self, n, generator):
        """Where a random window of self.width of n tokens starts (0 when they fit), drawn with the
        batch's generator (data augmentation, and resume stays exact)."""
        spare = n - self.width  # > 0: a long text
        return torch.randint(spare + 1, (1,), generator=generator).item() if spare > 0 else 0

    def loss(self, forward, batch):
        ids, key_mask, targets = batch
        return forward(ids, targets, key_mask)[1]

    def batch_tokens(self, batch_size):
        rows = self.rows["train"]
        return round(batch_size * sum(map(len, rows)) / len(rows))  # the mean example's tokens

    def evaluate(self, model, device):
        return {**self._split_scores(model, "val", device), **self._split_scores(model, "test", device)}

    def track(self, model, device):
        """The val split's scores (not its loss, which the estimate has): a curve of what counts."""
        return {k: v for k, v in self._split_scores(model, "val", device).items() if k != "val_loss"}

    def sample(self, model, max_tokens, seed):
        return ""


class SequenceTask(_LabelledTask):
    """A label (labels given) or a score (labels None) per text, from the sequence head's pooled
    vector ([CLS]'s, or the mean of the tokens').

    A text longer than a window (block_size - 2 tokens, between [CLS] and [SEP]) is read whole:
    a random batch takes a random window of it each time (drawn with the batch's generator: data
    augmentation, and resume stays exact), and the scores take the mean of the outputs of the
    fewest evenly spread windows that cover it (`mean_over_windows`)."""

    head = "sequence"

    def __init__(self, name, examples, tokenizer, block_size, labels, data_info):
        super().__init__(name, examples, tokenizer, block_size, labels, data_info)
        self.ids = {split: [tokenizer.encode(text) for text, _ in pairs] for split, pairs in examples.items()}

    def batch(self, split, batch_size, generator, device):
        index = torch.randint(len(self.rows[split]), (batch_size,), generator=generator).tolist()
        rows = []
        for i in index:
            ids = self.ids[split][i]
            start = self._window_start(len(ids), generator)
            rows.append([self.cls, *ids[start : start + self.width], self.sep])
        ids = pad(rows, self.pad_id, device)  # (B, L)
        return ids, ids != self.pad_id, self._batch_targets(split, index, device)

    def outputs(self, model, split, device):
        """([the mean output over each example's windows, (N, K) or (N,)], the loss of those means)."""
        out = mean_over_windows(model, self.ids[split], self.cls, self.sep, self.pad_id, device)
        actual = self.targets[split]
        loss = F.mse_loss(out, actual) if self.labels is None else F.cross_entropy(out, actual)
        return [out], loss.item()

    def _targets(self, targets):
        if self.labels is None:
            return torch.tensor(targets, dtype=torch.float32)
        return torch.tensor([t if isinstance(t, int) else self.labels.index(t) for t in targets])

    def _batch_targets(self, split, index, device):
        return self.targets[split][list(index)].to(device)

    def _split_scores(self, model, split, device):
        outs, loss = self.outputs(model, split, device)
        out, actual = torch.cat(outs), self.targets[split]
        if self.labels is None:
            return {
                f"{split}_loss": loss,
                f"{split}_rmse": scores.rmse(out, actual),
                f"{split}_spearman": scores.spearman(out, actual),
            }
        predicted = out.argmax(-1)
        return {
            f"{split}_loss": loss,
            f"{split}_accuracy": scores.accuracy(predicted, actual),
            f"{split}_macro_f1": scores.macro_f1(predicted, actual, len(self.labels)),
        }

    def report(self, s):
        if self.labels is None:
            return (
                f"test split: RMSE {s['test_rmse']:.3f}, Spearman {s['test_spearman']:.3f} "
                f"(val: {s['val_rmse']:.3f}, {s['val_spearman']:.3f})"
            )
        return (
            f"test split: accuracy {s['test_accuracy']:.1%}, macro-F1 {s['test_macro_f1']:.3f} "
            f"(val: {s['val_accuracy']:.1%}, {s['val_macro_f1']:.3f})"
        )


class TokenTask(_LabelledTask):
    """A label per character (0 or 1), from each character's vector."""

    head = "token"

    def _targets(self, targets):
        return [frame_labels(t, self.block_size) for t in targets]  # per example, framed

    def _batch_targets(self, split, index, device):
        return pad([self.targets[split][i] for i in index], IGNORE, device)  # (B, L)

    @torch.no_grad()
    def _split_scores(self, model, split, device, batch_size=64):
        """The loss, and the precision, recall and F1 of the name characters, over every example of `split`."""
        n, total, predicted, actual = len(self.rows[split]), 0.0, [], []
        with evaluating(model):
            for start in range(0, n, batch_size):
                index = range(start, min(start + batch_size, n))
                ids, key_mask, labels = self._batch_of(split, index, device)  # labels (b, L)
                out, loss = model(ids, labels, key_mask)  # (b, L, 2)
                total += loss.item() * len(index)
                real = labels != IGNORE
                predicted.append(out.argmax(-1)[real].cpu())
                actual.append(labels[real].cpu())
        precision, recall, f1 = scores.binary_prf(torch.cat(predicted), torch.cat(actual))
        return {
            f"{split}_loss": total / n,
            f"{split}_precision": precision,
            f"{split}_recall": recall,
            f"{split}_f1": f1,
        }

    def report(self, s):
        return (
            f"test split, name characters: precision {s['test_precision']:.3f}, recall "
            f"{s['test_recall']:.3f}, F1 {s['test_f1']:.3f} (val F1 {s['val_f1']:.3f})"
        )
