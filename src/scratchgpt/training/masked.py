"""Masked-token modelling: BERT's pretraining task, on characters.

A batch is B random windows of the training text framed as `[CLS] window [SEP]` (block_size tokens,
no padding), with 15% of the characters chosen and masked as BERT does (data/masking.py); the model
predicts the original characters at the chosen positions. The final score is deterministic: every
non-overlapping window of the validation text, masked with one fixed seed, scored by loss and by
accuracy over the chosen positions.
"""

from pathlib import Path

import torch
from torch.nn import functional as F

from ..data.corpus import check_long_enough, get_batch
from ..data.masking import IGNORE, mask_tokens
from ..nn.modes import evaluating

EVAL_SEED = 1234  # the masks of the final score: the same for every run and every model


class MaskedTokenTask:
    name = "mlm"

    def __init__(self, corpus, tokenizer, block_size):
        self.tokenizer = tokenizer
        self.model_settings = {"vocab_size": tokenizer.vocab_size, "head": "mlm", "num_labels": 0, "labels": ()}
        self.data_info = {"source": str(Path(corpus.source).resolve()), "sha256": corpus.sha256}
        self.splits = dict(zip(("train", "val"), corpus.split()))  # text ids, as the tokenizer's
        self.window = block_size - 2  # characters between [CLS] and [SEP]
        check_long_enough({"training": self.splits["train"], "validation": self.splits["val"]}, self.window)
        self.cls, self.sep, self.mask = (tokenizer.special_id(t) for t in ("[CLS]", "[SEP]", "[MASK]"))

    def summary(self):
        return f"{len(self.splits['train']):,} training tokens"

    def _masked(self, windows, generator):
        """windows (B, w) of characters -> (inputs, labels) (B, w + 2), framed and masked."""
        B = windows.shape[0]
        ids = torch.cat([torch.full((B, 1), self.cls), windows, torch.full((B, 1), self.sep)], dim=1)  # (B, T)
        maskable = torch.ones_like(ids, dtype=torch.bool)
        maskable[:, [0, -1]] = False  # never [CLS] or [SEP]
        return mask_tokens(ids, maskable, self.mask, self.tokenizer.text_vocab_size, generator)

    def batch(self, split_name, batch_size, generator, device):
        windows, _ = get_batch(self.splits[split_name], self.window, batch_size, generator)  # (B, w)
        inputs, labels = self._masked(windows, generator)
        return inputs.to(device), labels.to(device)

    def loss(self, forward, batch):
        inputs, labels = batch
        return forward(inputs, labels)[1]

    def batch_tokens(self, batch_size):
        return batch_size * (self.window + 2)

    def _val_windows(self):
        data = self.splits["val"]
        n = len(data) // self.window
        return torch.from_numpy(data[: n * self.window].astype("int64")).view(n, self.window)  # (n, w)

    @torch.no_grad()
    def _score(self, model, windows, device):
        """Loss and accuracy over the chosen positions of `windows` (n, w), masked with EVAL_SEED."""
        inputs, labels = self._masked(windows, torch.Generator().manual_seed(EVAL_SEED))
        total, right, count = 0.0, 0, 0
        with evaluating(model):
            for start in range(0, len(inputs), 64):
                x, y = inputs[start : start + 64].to(device), labels[start : start + 64].to(device)
                logits, _ = model(x)  # (b, T, V)
                chosen = y != IGNORE
                total += F.cross_entropy(logits[chosen].float(), y[chosen], reduction="sum").item()
                right += (logits[chosen].argmax(-1) == y[chosen]).sum().item()
                count += chosen.sum().item()
        return {"val_loss": total / count, "val_accuracy": right / count, "val_masked": count}

    def evaluate(self, model, device):
        return self._score(model, self._val_windows(), device)

    def track(self, model, device):
        """The accuracy on the masked characters of the first 64 validation windows: a cheap curve."""
        return {"val_accuracy": self._score(model, self._val_windows()[:64], device)["val_accuracy"]}

    def report(self, scores):
        unit = "characters" if self.tokenizer.kind == "char" else "tokens"
        return (
            f"validation text, {scores['val_masked']:,} masked {unit}: loss "
            f"{scores['val_loss']:.4f}, accuracy {scores['val_accuracy']:.1%}"
        )

    @torch.no_grad()
    def sample(self, model, max_tokens, seed):
        """The start of the validation text as the model saw it (each [MASK] drawn as "_", each
        newline as "↵"), the model's fill of every chosen character, and the original."""
        if max_tokens == 0:
            return ""
        window = self._val_windows()[:1, :max_tokens]  # (1, w')
        inputs, labels = self._masked(window, torch.Generator().manual_seed(seed))  # (1, w' + 2)
        with evaluating(model):
            logits, _ = model(inputs.to(next(model.parameters()).device))
        filled = torch.where(labels != IGNORE, logits.argmax(-1).cpu(), inputs)
        seen = self.tokenizer.decode(inputs[0, 1:-1].tolist()).replace("[MASK]", "_")
        lines = {
            "masked": seen,
            "filled": self.tokenizer.decode(filled[0, 1:-1].tolist()),
            "original": self.tokenizer.decode(window[0].tolist()),
        }
        return "".join(f"{name + ':':10}{text.replace(chr(10), '↵')}\n" for name, text in lines.items())
