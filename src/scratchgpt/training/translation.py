"""Translation: the encoder-decoder's task, on generated pairs or the user's.

A batch is B pairs: sources padded with [PAD] (B, S) and their mask, targets as the decoder reads
them, [BOS] target (B, T), and as it predicts them, target [EOS] (B, T), padding carrying no loss.
A generated task (dates, numbers, copy, reverse) draws fresh training pairs for every batch from
the loop's generator (so resume stays exact) and never a key of the val or test split; the user's
pairs are split once (data/pairs.py). Pairs longer than block_size are left out and counted by
split; the summary (the run's first log line) says how many, the longest, and the --block-size that
would keep 99% or all of them (or --tokenizer bpe, for characters), and config.json records it; the
final report says how many test pairs were not scored.

The final scores decode the val and test splits greedily (or with `beam`): exact match, and
sacrebleu's corpus chrF and BLEU, next to the chrF of copying the source (what a model that learned
nothing but to repeat would get).
"""

import math
import random

import torch
from torch.nn import functional as F

from ..data.masking import IGNORE
from ..data.pairs import GENERATORS, SPLITS, generate
from ..errors import DataError, MissingExtra
from ..inference.translate import translate
from ..nn.modes import evaluating
from . import scores

TRACKED = 200  # val pairs decoded at each estimate
LENGTH_SAMPLE = 1000  # fresh train pairs of a generated task drawn to count those longer than block_size


class TranslationTask:
    def __init__(self, name, tokenizer, block_size, pairs, data_info, skipped=None):
        """`pairs`: {split: [(source, target)]}, the user's, or a generated task's val and test sets."""
        self.name, self.tokenizer, self.block_size = name, tokenizer, block_size
        self.generated = name in GENERATORS
        self.model_settings = {"src_vocab_size": tokenizer.source.vocab_size, "vocab_size": tokenizer.target.vocab_size}
        self.data_info, self.skipped = data_info, skipped
        self.pairs, self.too_long, needs = {}, {}, []
        for split, split_pairs in pairs.items():
            split_needs = [self.need(p) for p in split_pairs]
            self.pairs[split] = [p for p, n in zip(split_pairs, split_needs) if n <= block_size]
            self.too_long[split] = len(split_pairs) - len(self.pairs[split])
            needs += split_needs
        # the block that every pair needs, and 99% of them (what the summary suggests when some are left out)
        self.longest = max(needs, default=0)
        self.covers_99 = sorted(needs)[math.ceil(0.99 * len(needs)) - 1] if needs else 0
        if self.generated:  # fresh train pairs too long are drawn again: how many, from a fixed sample
            drawn = generate(name, "train", LENGTH_SAMPLE, random.Random(0))
            self.redrawn = sum(self.need(p) > block_size for p in drawn) / LENGTH_SAMPLE
        dropped = sum(self.too_long.values())
        if not self.generated:  # what did not make it into training, recorded in config.json
            self.data_info = {
                **data_info,
                "dropped": {**(skipped.counts if skipped else {}), "pairs longer than block_size": dropped},
                "longer_than_block": {
                    "block_size": block_size,
                    **self.too_long,
                    "longest": self.longest,
                    "block_for_99%": self.covers_99,
                },
            }
        empty = [split for split in SPLITS if split in self.pairs and not self.pairs[split]]
        if empty:
            more = [] if self.generated else ["give more pairs"]
            hint = ", or ".join(more + ([f"a larger --block-size: {self._hint()}"] if dropped else []))
            raise DataError(
                f"{data_info.get('source', name)}: no {' or '.join(empty)} pairs (a key's split is "
                f"fixed by its hash, 80/10/10; {hint})"
            )
        self.pad, self.bos, self.eos = (tokenizer.target.special_id(t) for t in ("[PAD]", "[BOS]", "[EOS]"))
        self.src_pad = tokenizer.source.special_id("[PAD]")

    def need(self, pair):
        """The block_size a pair needs: its source's tokens, and its target's with [EOS] (or [BOS])."""
        source, target = pair
        return max(len(self.tokenizer.source.encode(source)), len(self.tokenizer.target.encode(target)) + 1)

    def _unit(self):
        return "characters" if self.tokenizer.source.kind == "char" else "tokens"

    def _hint(self):
        """What would keep the pairs that block_size leaves out."""
        keeps = (
            f"--block-size {self.covers_99} keeps 99%, {self.longest} every pair"
            if self.covers_99 > self.block_size
            else f"--block-size {self.longest} keeps every pair"
        )
        subwords = self.tokenizer.source.kind == "char" and self.tokenizer.target.kind == "char"
        return f"the longest needs {self.longest} {self._unit()}: {keeps}" + (
            "; or --tokenizer bpe, fewer tokens a pair" if subwords else ""
        )

    def summary(self):
        counts = ", ".join(f"{len(self.pairs[s]):,} {s}" for s in SPLITS if s in self.pairs)
        what = f"{self.name} pairs: fresh ones every step, " if self.generated else "pairs: "
        too_long = ", ".join(f"{self.too_long[s]:,} {s}" for s in SPLITS if self.too_long.get(s))
        redrawn = self.generated and self.redrawn > 0
        return (
            f"{what}{counts}"
            + (
                f"; skipped as longer than block_size {self.block_size} {self._unit()}: {too_long} pairs "
                f"({self._hint()})"
                if too_long
                else ""
            )
            + (
                f"; about {self.redrawn:.1%} of fresh train pairs are longer than block_size {self.block_size} "
                "and drawn again"
                if redrawn
                else ""
            )
            + (f"; skipped {self.skipped}" if self.skipped and self.skipped.counts else "")
        )

    def _collate(self, pairs, device):
        """(src (B, S), src_mask (B, S), tgt (B, T) = [BOS] target, targets (B, T) = target [EOS])."""
        sources = [self.tokenizer.source.encode(s) for s, _ in pairs]
        targets = [self.tokenizer.target.encode(t) for _, t in pairs]
        S, T = max(map(len, sources)), max(map(len, targets)) + 1
        src = torch.tensor([s + [self.src_pad] * (S - len(s)) for s in sources])
        tgt = torch.tensor([[self.bos, *t] + [self.pad] * (T - 1 - len(t)) for t in targets])
        nxt = torch.tensor([[*t, self.eos] + [IGNORE] * (T - 1 - len(t)) for t in targets])
        return src.to(device), (src != self.src_pad).to(device), tgt.to(device), nxt.to(device)

    def batch(self, split, batch_size, generator, device):
        if self.generated and split == "train":
            rng = random.Random(torch.randint(2**62, (1,), generator=generator).item())
            pairs = []
            while len(pairs) < batch_size:
                drawn = generate(self.name, "train", batch_size - len(pairs), rng)
                pairs += [p for p in drawn if self.need(p) <= self.block_size]
        else:
            index = torch.randint(len(self.pairs[split]), (batch_size,), generator=generator).tolist()
            pairs = [self.pairs[split][i] for i in index]
        return self._collate(pairs, device)

    def loss(self, forward, batch):
        src, src_mask, tgt, targets = batch
        return forward(src, tgt, targets, src_mask)[1]

    def batch_tokens(self, batch_size):
        pairs = self.pairs["val" if self.generated else "train"]
        return round(batch_size * sum(len(s) + len(t) + 1 for s, t in pairs) / len(pairs))

    @torch.no_grad()
    def _loss(self, model, split, device, batch_size=256):
        """The mean loss per target token of `split`, teacher-forced."""
        total, count = 0.0, 0
        with evaluating(model):
            for start in range(0, len(self.pairs[split]), batch_size):
                src, src_mask, tgt, targets = self._collate(self.pairs[split][start : start + batch_size], device)
                logits, _ = model(src, tgt, src_mask=src_mask)
                total += F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), reduction="sum").item()
                count += (targets != IGNORE).sum().item()
        return total / count

    def exact_match(self, model, pairs, beam=1):
        """(the share of pairs translated exactly, the translations)."""
        outputs = translate(model, self.tokenizer, [s for s, _ in pairs], beam=beam)
        return sum(o == t for o, (_, t) in zip(outputs, pairs)) / len(pairs), outputs

    def evaluate(self, model, device, beam=1):
        """Exact match on val and test, chrF and BLEU on test beside the copy-the-source chrF (these
        two need sacrebleu: without it they are left out, and the report says how to get them)."""
        val_exact, _ = self.exact_match(model, self.pairs["val"], beam)
        test = self.pairs["test"]
        test_exact, outputs = self.exact_match(model, test, beam)
        result = {
            "val_loss": self._loss(model, "val", device),
            "val_exact": val_exact,
            "test_exact": test_exact,
            "test_pairs": len(test),
            "test_longer": self.too_long.get("test", 0),  # left out: longer than block_size, not scored
            "beam": beam,
        }
        references = [t for _, t in test]
        try:
            ours = scores.translation_scores(outputs, references)
            copied = scores.translation_scores([s for s, _ in test], references)
        except MissingExtra as e:
            return {**result, "missing": str(e)}
        return {
            **result,
            "test_chrf": ours["chrf"],
            "test_bleu": ours["bleu"],
            "copy_chrf": copied["chrf"],
            "chrf_signature": ours["chrf_signature"],
            "bleu_signature": ours["bleu_signature"],
        }

    def track(self, model, device):
        """Exact match on the first TRACKED val pairs, greedily: the curve of what counts."""
        return {"val_exact": self.exact_match(model, self.pairs["val"][:TRACKED])[0]}

    def report(self, s):
        longer = s.get("test_longer", 0)
        head = (
            f"test split, {s['test_pairs']:,} pairs"
            + (f" ({longer:,} longer than block_size not scored)" if longer else "")
            + ("" if s["beam"] == 1 else f", beam {s['beam']}")
            + ": "
        )
        if "missing" in s:
            return (
                f"{head}exact match {s['test_exact']:.1%}; val exact match {s['val_exact']:.1%} "
                f"(no chrF or BLEU: {s['missing']})"
            )
        return (
            f"{head}exact match {s['test_exact']:.1%}, chrF {s['test_chrf']:.1f}, BLEU {s['test_bleu']:.1f} "
            f"(copying the source: chrF {s['copy_chrf']:.1f}); val exact match {s['val_exact']:.1%}\n"
            f"  sacrebleu signatures: chrF {s['chrf_signature']}; BLEU {s['bleu_signature']}"
        )

    def sample(self, model, max_tokens, seed):
        """The first max_tokens test pairs: source, the model's translation, and the reference."""
        pairs = self.pairs["test"][:max_tokens]
        if not pairs:
            return ""
        outputs = translate(model, self.tokenizer, [s for s, _ in pairs])
        return "".join(
            f"{'✓' if o == t else '✗'} {s}  →  {o}" + ("" if o == t else f"  (reference: {t})") + "\n"
            for (s, t), o in zip(pairs, outputs)
        )
