"""The scores fine-tuned models are reported by, written out (each a few lines of arithmetic).

accuracy, macro_f1           classification: the share right; the mean over classes of F1
binary_prf                   token labelling: precision, recall and F1 of the positive class
word_accuracy, span_prf      word tagging: the share of words right; entity precision, recall and F1
rmse, spearman               regression: root mean squared error; rank correlation
translation_scores           translation: BLEU and chrF, computed by sacrebleu
"""

import math

import torch

from ..data.tagged import chunks
from ..errors import MissingExtra


def accuracy(predicted, actual):
    return (torch.as_tensor(predicted) == torch.as_tensor(actual)).float().mean().item()


def _f1(tp, fp, fn):
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def macro_f1(predicted, actual, num_classes):
    """The mean F1 of every class that occurs in `actual` or `predicted`."""
    predicted, actual = torch.as_tensor(predicted), torch.as_tensor(actual)
    scores = []
    for c in range(num_classes):
        tp = ((predicted == c) & (actual == c)).sum().item()
        fp = ((predicted == c) & (actual != c)).sum().item()
        fn = ((predicted != c) & (actual == c)).sum().item()
        if tp or fp or fn:
            scores.append(_f1(tp, fp, fn))
    return sum(scores) / len(scores)


def binary_prf(predicted, actual):
    """(precision, recall, F1) of label 1 against label 0 (labels are 0/1 tensors of one shape)."""
    predicted, actual = torch.as_tensor(predicted).bool(), torch.as_tensor(actual).bool()
    tp = (predicted & actual).sum().item()
    fp = (predicted & ~actual).sum().item()
    fn = (~predicted & actual).sum().item()
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return precision, recall, _f1(tp, fp, fn)


def word_accuracy(predicted, actual):
    """The share of words whose predicted tag is the actual one (sentences: lists of tags)."""
    pairs = [(p, a) for ps, as_ in zip(predicted, actual, strict=True) for p, a in zip(ps, as_, strict=True)]
    return sum(p == a for p, a in pairs) / len(pairs)


def span_prf(predicted, actual):
    """(precision, recall, F1) of the entities of BIO tags (sentences: lists of tags), as conlleval
    counts them: a predicted entity is right when an actual one has its exact span and type."""
    guessed = {(i, *chunk) for i, tags in enumerate(predicted) for chunk in chunks(tags)}
    wanted = {(i, *chunk) for i, tags in enumerate(actual) for chunk in chunks(tags)}
    tp = len(guessed & wanted)
    precision = tp / len(guessed) if guessed else 0.0
    recall = tp / len(wanted) if wanted else 0.0
    return precision, recall, _f1(tp, len(guessed) - tp, len(wanted) - tp)


def rmse(predicted, actual):
    diff = torch.as_tensor(predicted, dtype=torch.float64) - torch.as_tensor(actual, dtype=torch.float64)
    return math.sqrt((diff**2).mean().item())


def _ranks(x):
    """Ranks 1..n of x, ties sharing their mean rank."""
    x = torch.as_tensor(x, dtype=torch.float64)
    order = torch.argsort(x)
    ranks = torch.empty_like(x)
    ranks[order] = torch.arange(1, len(x) + 1, dtype=torch.float64)
    for value in torch.unique(x):
        tied = x == value
        ranks[tied] = ranks[tied].mean()
    return ranks


def spearman(predicted, actual):
    """Spearman's rank correlation: Pearson's correlation of the ranks (ties get mean ranks)."""
    a, b = _ranks(predicted), _ranks(actual)
    a, b = a - a.mean(), b - b.mean()
    denominator = math.sqrt((a**2).sum().item() * (b**2).sum().item())
    return (a * b).sum().item() / denominator if denominator else 0.0


def translation_scores(hypotheses, references):
    """Corpus-level BLEU and chrF of the hypotheses against one reference each, by sacrebleu (the
    reference implementation, so the numbers compare with published ones), with their signatures."""
    try:
        from sacrebleu.metrics import BLEU, CHRF
    except ImportError:
        raise MissingExtra("BLEU and chrF need sacrebleu: pip install 'scratchgpt[translate]'") from None
    bleu, chrf = BLEU(), CHRF()
    return {
        "bleu": bleu.corpus_score(hypotheses, [references]).score,
        "chrf": chrf.corpus_score(hypotheses, [references]).score,
        "bleu_signature": str(bleu.get_signature()),
        "chrf_signature": str(chrf.get_signature()),
    }
