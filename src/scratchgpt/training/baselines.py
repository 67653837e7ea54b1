"""Baselines a fine-tuned classifier has to beat, scored the same way on the same test split.

majority           always the most frequent label of the training split
bag_of_characters  multinomial logistic regression on how often each character occurs in the
                   text (order thrown away), with an L2 penalty, fitted by L-BFGS: what a text
                   classifier gets without a transformer
"""

import collections

import torch
from torch.nn import functional as F


def majority(train_labels, count):
    """`count` predictions of the training split's most frequent label (the smallest on a tie)."""
    counts = collections.Counter(train_labels)
    best = min(counts, key=lambda label: (-counts[label], label))
    return [best] * count


def _features(texts, alphabet):
    """(N, A + 1): each text's share of each character of `alphabet`, and its length (scaled)."""
    index = {ch: i for i, ch in enumerate(alphabet)}
    x = torch.zeros(len(texts), len(alphabet) + 1)
    for row, text in enumerate(texts):
        for ch in text:
            if ch in index:
                x[row, index[ch]] += 1
        x[row, :-1] /= max(1, len(text))
        x[row, -1] = len(text) / 100
    return x


def bag_of_characters(train_texts, train_labels, test_texts, num_classes, l2=1e-3, steps=200):
    """Predicted labels (ints) of `test_texts` by a logistic regression on character frequencies."""
    alphabet = sorted(set("".join(train_texts)))
    x, y = _features(train_texts, alphabet), torch.tensor(train_labels)
    mean, std = x.mean(0), x.std(0) + 1e-6
    x = (x - mean) / std
    weight = torch.zeros(x.shape[1], num_classes, requires_grad=True)
    bias = torch.zeros(num_classes, requires_grad=True)
    optimizer = torch.optim.LBFGS([weight, bias], max_iter=steps, line_search_fn="strong_wolfe")

    def objective():
        optimizer.zero_grad()
        loss = F.cross_entropy(x @ weight + bias, y) + l2 * (weight**2).sum()
        loss.backward()
        return loss

    optimizer.step(objective)
    with torch.no_grad():
        test = (_features(test_texts, alphabet) - mean) / std
        return (test @ weight + bias).argmax(-1).tolist()
