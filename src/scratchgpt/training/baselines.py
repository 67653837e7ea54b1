"""Baselines a fine-tuned classifier has to beat, scored the same way on the same test split.

majority           always the most frequent label of the training split
bag_of_characters  multinomial logistic regression on how often each character occurs in the
                   text (order thrown away), with an L2 penalty, fitted by L-BFGS: what a text
                   classifier gets without a transformer
tfidf_model        what a practitioner tries first on real labelled text: TF-IDF of words (1-2
                   grams) and characters (2-5 grams) with ridge regression for scores or logistic
                   regression for labels (scikit-learn: pip install 'scratchgpt[baselines]')
most_frequent_tag  each word's most frequent tag in the training sentences (an unseen word: the
                   most frequent tag of all)
"""

import collections

import torch
from torch.nn import functional as F

from ..errors import MissingExtra


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


STRENGTHS = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0)  # ridge's alpha, or logistic regression's C


def tfidf_model(train, val, regression, score):
    """(predict, strength): TF-IDF features of the `train` texts, and the ridge regression (scores)
    or logistic regression (labels) on them whose regularisation `score(predicted, actual)` finds
    best on `val`. `train` and `val` are (texts, targets); predict(texts) is a list of targets."""
    try:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression, Ridge
        from sklearn.pipeline import FeatureUnion, make_pipeline
    except ImportError:
        raise MissingExtra("the TF-IDF baselines need scikit-learn: pip install 'scratchgpt[baselines]'") from None

    def fitted(strength):
        features = FeatureUnion(
            [
                ("words", TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)),
                ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2)),
            ]
        )
        model = Ridge(alpha=strength) if regression else LogisticRegression(C=strength, max_iter=5000)
        return make_pipeline(features, model).fit(*train)

    models = {strength: fitted(strength) for strength in STRENGTHS}
    strength = max(STRENGTHS, key=lambda s: score(list(models[s].predict(val[0])), list(val[1])))
    return (lambda texts: list(models[strength].predict(texts))), strength


def most_frequent_tag(sentences):
    """tag(words) -> tags: each word's most frequent tag in `sentences` ((words, tags) pairs; the
    first seen wins a tie), and for a word they lack, the most frequent tag of all."""
    seen, overall = collections.defaultdict(collections.Counter), collections.Counter()
    for words, tags in sentences:
        for word, tag in zip(words, tags):
            seen[word][tag] += 1
            overall[tag] += 1
    fallback = overall.most_common(1)[0][0]
    best = {word: tags.most_common(1)[0][0] for word, tags in seen.items()}
    return lambda words: [best.get(word, fallback) for word in words]
