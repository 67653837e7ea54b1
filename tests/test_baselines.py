"""The real-data baselines: TF-IDF with ridge or logistic regression (its strength chosen on val by
the caller's score), and the most frequent tag per word."""

import statistics

from scratchgpt.training.baselines import STRENGTHS, most_frequent_tag, tfidf_model

GOOD, BAD = ["a good film", "good and kind", "so good"], ["a bad film", "bad and cruel", "so bad"]


def test_the_most_frequent_tag_of_each_word_and_of_all_for_unseen_words():
    tag = most_frequent_tag(
        [
            (["the", "run"], ["at", "nn"]),
            (["we", "run"], ["ppss", "vb"]),
            (["they", "run", "the", "race"], ["ppss", "vb", "at", "nn"]),
            (["a", "tie"], ["at", "nn"]),
            (["tie", "it"], ["vb", "ppo"]),
            (["dogs"], ["nns"]),
            (["dog"], ["nn"]),
        ]
    )
    # run: vb twice, nn once; tie: nn and vb once each, the first seen wins; zebra: unseen, so the
    # most frequent tag of all (nn 4 times, at and vb 3)
    assert tag(["run", "tie", "zebra", "the"]) == ["vb", "nn", "nn", "at"]


def test_tfidf_labels_learn_the_words_that_decide():
    train = (GOOD * 3 + BAD * 3, ["pos"] * 9 + ["neg"] * 9)
    predict, strength = tfidf_model(train, (["good", "bad"], ["pos", "neg"]), False, _accuracy)
    assert predict(["a good day", "a bad day"]) == ["pos", "neg"] and strength in STRENGTHS


def test_tfidf_regression_strength_is_the_one_the_val_score_prefers():
    train = (GOOD * 3 + BAD * 3, [2.0] * 9 + [-2.0] * 9)
    val = (["good film", "bad film"], [2.0, -2.0])
    spread = lambda predicted, actual: statistics.pstdev(predicted)  # the least shrunk predictions
    shrunk = lambda predicted, actual: -statistics.pstdev(predicted)  # the most shrunk
    fit, weakest = tfidf_model(train, val, True, spread)
    _, strongest = tfidf_model(train, val, True, shrunk)
    assert (weakest, strongest) == (min(STRENGTHS), max(STRENGTHS))
    good, bad = fit(["good", "bad"])
    assert good > 1 and bad < -1


def _accuracy(predicted, actual):
    return sum(p == a for p, a in zip(predicted, actual)) / len(actual)
