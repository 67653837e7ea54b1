"""The BERT-like encoder: masking, the model and its heads on both faces, the built-in data, and
pretrain -> fine-tune -> predict through the library."""

import dataclasses
import json

import pytest
import safetensors.torch
import torch
from helpers import quiet
from torch.nn import functional as F

from scratchgpt import EncoderConfig, TrainConfig, build_model, convert, load_model, preset, train
from scratchgpt.config import fine_tuning_model
from scratchgpt.data.masking import IGNORE, mask_tokens
from scratchgpt.data.sequences import batch_texts
from scratchgpt.data.speeches import SPEAKERS, name_labels, name_words, pretraining_text, speaker_examples, speeches
from scratchgpt.data.tokenizer import SPECIALS, CharTokenizer, load_tokenizer, save_tokenizer
from scratchgpt.errors import ConfigError, TrainingInterrupted
from scratchgpt.inference.predict import fill, predict, windows
from scratchgpt.rundir import load_weights, save_weights
from scratchgpt.training import baselines, scores
from scratchgpt.training.labelling import SequenceTask

TOKENIZER = CharTokenizer.from_text("abcdefghij ,.").with_specials()


# ---------------------------------------------------------------------------------------------
# Special tokens and masking


def test_special_tokens_come_after_the_characters_and_round_trip(tmp_path):
    plain = CharTokenizer.from_text("abc")
    tok = plain.with_specials()
    assert tok.encode("cab") == plain.encode("cab")  # a character keeps its id
    assert tok.decode(tok.encode("a[MASK]b[PAD]")) == "a[MASK]b[PAD]"
    assert tok.encode("a[MASK]") == [0, tok.special_id("[MASK]")]
    assert tok.encode("az") == [0, tok.special_id("[UNK]")]  # unknown characters are [UNK], not an error
    assert tok.vocab_size == 3 + len(SPECIALS)
    save_tokenizer(tok, tmp_path / "t.json")
    again = load_tokenizer(tmp_path / "t.json")
    assert again.chars == tok.chars and again.specials == list(SPECIALS)


def test_masking_follows_bert_15_80_10_10_and_never_touches_specials():
    g = torch.Generator().manual_seed(0)
    num_chars, mask_id = 60, 64
    ids = torch.randint(num_chars, (400, 250), generator=g)
    maskable = torch.ones_like(ids, dtype=torch.bool)
    maskable[:, :2] = False  # say [CLS] and another special
    ids[:, :2] = 62
    inputs, labels = mask_tokens(ids, maskable, mask_id, num_chars, torch.Generator().manual_seed(1))
    chosen = labels != IGNORE
    assert not chosen[:, :2].any() and torch.equal(inputs[:, :2], ids[:, :2])  # specials untouched
    assert torch.equal(labels[chosen], ids[chosen])  # labels: the originals, where chosen only
    assert torch.equal(inputs[~chosen], ids[~chosen])
    rate = chosen.sum().item() / maskable.sum().item()
    assert abs(rate - 0.15) < 0.004  # 400 x 248 tokens: the standard error is 0.0007
    as_mask = (inputs[chosen] == mask_id).float().mean().item()
    kept = (inputs[chosen] == ids[chosen]).float().mean().item()
    swapped = 1 - as_mask - kept
    assert abs(as_mask - 0.8) < 0.01
    assert abs(kept - (0.1 + 0.1 / num_chars)) < 0.01  # a random character may be the same one
    assert abs(swapped - (0.1 - 0.1 / num_chars)) < 0.01
    assert inputs[chosen & (inputs != mask_id)].max() < num_chars  # random ones are characters


def test_masking_is_seeded_and_chooses_at_least_one_token_per_sequence():
    ids = torch.randint(10, (50, 4))
    maskable = torch.ones_like(ids, dtype=torch.bool)
    a = mask_tokens(ids, maskable, 11, 10, torch.Generator().manual_seed(3))
    b = mask_tokens(ids, maskable, 11, 10, torch.Generator().manual_seed(3))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert ((a[1] != IGNORE).sum(1) >= 1).all()  # 4 tokens at 15%: many rows would have none


# ---------------------------------------------------------------------------------------------
# The model and its heads

CONFIGS = {
    "mlm": {"head": "mlm", "num_labels": 0},
    "classes": {"head": "sequence", "num_labels": 3, "labels": ("a", "b", "c")},
    "classes, mean": {"head": "sequence", "num_labels": 3, "labels": ("a", "b", "c"), "pooling": "mean"},
    "score": {"head": "sequence", "num_labels": 1},
    "tokens": {"head": "token", "num_labels": 2, "labels": ("other", "name")},
}


def encoder(attention="fast", seed=0, **fields):
    torch.manual_seed(seed)
    config = EncoderConfig(
        vocab_size=TOKENIZER.vocab_size,
        block_size=24,
        n_embd=32,
        n_head=4,
        n_layer=2,
        dropout=0.0,
        attention=attention,
        **fields,
    )
    return build_model(config).eval()


@pytest.mark.parametrize("position", ["learned", "sinusoidal", "rotary"])
@pytest.mark.parametrize("head", CONFIGS)
def test_readable_and_fast_encoders_agree_with_every_head(head, position):
    fast = encoder(position=position, **CONFIGS[head])
    readable = convert(fast, "readable")
    ids, mask = batch_texts(TOKENIZER, ["abc def", "ghij, abc. defg hij", "a"], 24)
    with torch.no_grad():
        assert (readable(ids, key_mask=mask)[0] - fast(ids, key_mask=mask)[0]).abs().max() <= 1e-5
    assert convert(readable, "fast").state_dict().keys() == fast.state_dict().keys()


@pytest.mark.parametrize("head", CONFIGS)
def test_padding_changes_no_real_positions_output(head):
    model = encoder(**CONFIGS[head])
    alone, alone_mask = batch_texts(TOKENIZER, ["abc def"], 24)
    padded, padded_mask = batch_texts(TOKENIZER, ["abc def", "a much longer text, ij"], 24)
    assert padded.shape[1] > alone.shape[1]
    with torch.no_grad():
        out_alone = model(alone, key_mask=alone_mask)[0][0]
        out_padded = model(padded, key_mask=padded_mask)[0][0]
    if head in ("mlm", "tokens"):
        out_padded = out_padded[: alone.shape[1]]  # the real positions
    assert torch.allclose(out_alone, out_padded, atol=1e-5)


def test_the_encoder_sees_both_ways():
    model = encoder(**CONFIGS["tokens"])
    ids, _ = batch_texts(TOKENIZER, ["abcdefghij"], 24)
    changed = ids.clone()
    changed[0, -2] = TOKENIZER.encode("a")[0]  # the last character
    with torch.no_grad():
        assert not torch.allclose(model(ids)[0][0, 1], model(changed)[0][0, 1], atol=1e-4)


def test_the_masked_lm_head_is_tied_to_the_token_table_with_its_own_bias(tmp_path):
    model = encoder(**CONFIGS["mlm"])
    assert model.head.decoder.weight is model.token_embedding_table.weight
    assert model.head.decoder.bias.shape == (TOKENIZER.vocab_size,)
    save_weights(tmp_path / "model.safetensors", model)
    assert "head.decoder.weight" not in safetensors.torch.load_file(tmp_path / "model.safetensors")
    loaded = encoder(seed=1, **CONFIGS["mlm"])
    load_weights(tmp_path / "model.safetensors", loaded)
    assert loaded.head.decoder.weight is loaded.token_embedding_table.weight
    assert torch.equal(loaded.head.decoder.weight, model.token_embedding_table.weight)


def test_regression_loss_is_mean_squared_error_over_one_score_per_text():
    model = encoder(**CONFIGS["score"])
    with torch.no_grad():
        model.head.dense.weight.zero_()
        model.head.dense.bias.zero_()  # pooled vector 0 ...
        model.head.classifier.bias.fill_(2.0)  # ... so every score is the bias: 2
    ids, mask = batch_texts(TOKENIZER, ["abc", "defgh"], 24)
    scores_, loss = model(ids, torch.tensor([1.0, 4.0]), mask)
    assert scores_.shape == (2,)  # not (2, 1), which would broadcast against the targets
    assert loss.item() == pytest.approx(((2 - 1) ** 2 + (2 - 4) ** 2) / 2)
    assert loss.item() == pytest.approx(F.mse_loss(scores_, torch.tensor([1.0, 4.0])).item())


def test_the_sequence_head_reads_the_cls_position():
    model = encoder(**CONFIGS["classes"])
    ids, mask = batch_texts(TOKENIZER, ["abc"], 24)
    with torch.no_grad():
        h = model.encode(ids, mask)
        expected = model.head.classifier(torch.tanh(model.head.dense(h[:, 0])))
    assert torch.allclose(model(ids, key_mask=mask)[0], expected)


def test_the_sequence_head_with_mean_pooling_reads_the_mean_of_the_real_tokens():
    model = encoder(**CONFIGS["classes, mean"])
    ids, mask = batch_texts(TOKENIZER, ["abc", "defghij"], 24)  # "abc" padded with 4 [PAD]s
    with torch.no_grad():
        h = model.encode(ids, mask)
        expected = model.head.classifier(torch.tanh(model.head.dense(h[0, :5].mean(0))))  # [CLS] abc [SEP]
    assert torch.allclose(model(ids, key_mask=mask)[0][0], expected, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# Texts longer than the block


def test_windows_are_the_fewest_that_cover_the_text_evenly_spread():
    assert windows(5, 10) == [0] and windows(10, 10) == [0]
    assert windows(11, 10) == [0, 1]
    assert windows(25, 10) == [0, 8, 15]
    for n in range(1, 60):
        starts = windows(n, 7)
        assert len(starts) == max(1, -(-n // 7))  # the fewest: ceil(n / 7)
        covered = {i for start in starts for i in range(start, start + 7)}
        assert covered >= set(range(n)) and max(starts) + 7 <= max(n, 7)  # all of it, nothing past it


LONG_TEXTS = ["abcdefghij abcdefghij abc", "c, a.", "jihgfedcba, jihgfedcba."]  # labels 0, 1, 0


def long_texts_task(block_size=12):  # windows of 10 characters
    examples = {split: [(t, i % 2) for i, t in enumerate(LONG_TEXTS)] for split in ("train", "val", "test")}
    return SequenceTask("toy", examples, TOKENIZER, block_size, ("x", "y"), {})


def test_a_random_batch_reads_a_seeded_random_window_of_each_long_text():
    task = long_texts_task()
    first = task.batch("train", 64, torch.Generator().manual_seed(5), "cpu")
    again = task.batch("train", 64, torch.Generator().manual_seed(5), "cpu")
    assert all(torch.equal(x, y) for x, y in zip(first, again))
    cls, sep = TOKENIZER.special_id("[CLS]"), TOKENIZER.special_id("[SEP]")
    seen = set()
    for row, real, target in zip(*(t.tolist() for t in first)):
        row = row[: sum(real)]
        assert row[0] == cls and row[-1] == sep
        window = TOKENIZER.decode(row[1:-1])
        [owner] = [i for i, t in enumerate(LONG_TEXTS) if window in t and len(window) == min(10, len(t))]
        assert target == owner % 2  # a piece of 10 characters of its own text, or all of a short one
        seen.add(window)
    assert len(seen) > 5  # the windows move


def test_the_scores_read_a_long_text_as_the_mean_of_its_windows():
    task = long_texts_task()
    config = dataclasses.replace(encoder(head="sequence", num_labels=2, labels=("x", "y")).config, block_size=12)
    model = build_model(config).eval()  # the task's block: windows of 10 characters
    [out], loss = task.outputs(model, "val", "cpu")
    assert out.shape == (3, 2)
    for i, text in enumerate(LONG_TEXTS):
        ids = TOKENIZER.encode(text)
        rows = [
            [TOKENIZER.special_id("[CLS]"), *ids[s : s + 10], TOKENIZER.special_id("[SEP]")]
            for s in windows(len(ids), 10)
        ]
        with torch.no_grad():
            expected = torch.stack([model(torch.tensor([row]))[0][0] for row in rows]).mean(0)  # (2,)
        assert torch.allclose(out[i], expected, atol=1e-5)
    assert loss == pytest.approx(F.cross_entropy(out, torch.tensor([0, 1, 0])).item(), abs=1e-5)


# ---------------------------------------------------------------------------------------------
# Built-in data


@pytest.fixture(scope="module")
def play(shakespeare):
    return shakespeare.read_text(encoding="utf-8")


def test_speeches_split_is_fixed_stratified_and_the_8_speakers(play):
    found = speeches(play)
    assert speeches(play) == found  # fixed
    counts = {split: len(speaker_examples(found, split)) for split in ("train", "val", "test")}
    assert 1250 <= sum(counts.values()) <= 1350 and counts["val"] == counts["test"] > 100
    for speaker in SPEAKERS:
        held = [s for s in found if s.speaker == speaker and s.split == "test"]
        total = [s for s in found if s.speaker == speaker]
        assert len(held) == round(0.1 * len(total))  # stratified


def test_no_held_out_speech_is_in_the_pretraining_text(play):
    text = pretraining_text(play)
    held_out = [s for s in speeches(play) if s.split != "train"]
    assert held_out and not any(s.text in text for s in held_out if len(s.text) > 40)
    kept = [s for s in speeches(play) if s.split == "train"]
    assert all(s.text in text for s in kept[:200])
    assert len(text) < 0.85 * len(play)


def test_name_labels_mark_the_characters_of_speakers_names(play):
    names = name_words(speeches(play))
    assert {"Romeo", "Juliet", "Gloucester", "Isabella", "Capulet"} <= names
    assert not {"King", "Duke", "Lady", "Of", "Iii"} & names  # titles and numerals are not names
    text = "O Romeo, Romeo! the king romeo"
    labels = name_labels(text, names)
    assert "".join(ch for ch, label in zip(text, labels) if label) == "RomeoRomeo"  # lower case is no name


def test_scores_on_hand_examples():
    assert scores.accuracy([0, 1, 1, 2], [0, 1, 2, 2]) == 0.75
    # class 0: F1 1; class 1: tp 1 fp 1 fn 0 -> 2/3; class 2: tp 1 fp 0 fn 1 -> 2/3
    assert scores.macro_f1([0, 1, 1, 2], [0, 1, 2, 2], 3) == pytest.approx((1 + 2 / 3 + 2 / 3) / 3)
    assert scores.binary_prf([1, 1, 0, 0], [1, 0, 1, 0]) == (0.5, 0.5, 0.5)
    assert scores.rmse([1.0, 3.0], [2.0, 1.0]) == pytest.approx(((1 + 4) / 2) ** 0.5)
    assert scores.spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert scores.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert scores.spearman([1, 2, 3], [1, 3, 2]) == pytest.approx(0.5)
    assert scores.spearman([1, 1, 2], [1, 2, 3]) == pytest.approx(0.8660254)  # ties share their rank


def test_baselines_on_a_toy_problem():
    texts = ["aaab", "aaba", "abaa", "bbba", "bbab", "babb"]
    labels = [0, 0, 0, 1, 1, 1]
    assert baselines.majority([1, 0, 1], 2) == [1, 1]
    assert baselines.bag_of_characters(texts, labels, ["aaaa", "bbbb", "aab"], 2) == [0, 1, 0]


# ---------------------------------------------------------------------------------------------
# Pretrain, fine-tune, predict


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    model_config, train_config = preset("tiny-encoder")
    out = tmp_path_factory.mktemp("encoder") / "mlm"
    train(model_config, train_config, out, progress=False, log=quiet)
    return out


def test_a_pretrained_run_loads_in_its_readable_face_with_the_same_outputs(pretrained):
    fast, tokenizer, _, _ = load_model(pretrained)
    readable, _, config, _ = load_model(pretrained, attention="readable")
    assert config.attention == "readable"
    idx = torch.tensor([tokenizer.encode("to be or not to be")])
    assert torch.allclose(readable(idx)[0], fast(idx)[0], atol=1e-5)


def finetune_config(task, **changes):
    _, train_config = preset("finetune-tiny")
    return dataclasses.replace(train_config, task=task, **changes)


def test_pretraining_scores_masked_characters_deterministically(pretrained):
    model, tokenizer, config, info = load_model(pretrained)
    assert config.head == "mlm" and tokenizer.specials == list(SPECIALS)
    assert info["source"].endswith(".txt") and "pretraining" in info["source"]
    from scratchgpt.training.tasks import build_task

    task = build_task(config, TrainConfig(task="mlm"), tokenizer=tokenizer)
    first, second = task.evaluate(model, "cpu"), task.evaluate(model, "cpu")
    assert first == second and first["val_masked"] > 10_000
    guesses = fill(model, tokenizer, "To be or not to b[MASK]")
    assert len(guesses) == 1 and len(guesses[0]) == 5
    assert sum(p for _, p in guesses[0]) <= 1.0 and all("[" not in t for t, _ in guesses[0])


@pytest.mark.parametrize("task", ["speakers", "names", "classify", "regress"])
def test_fine_tune_save_load_predict_round_trip(pretrained, tmp_path, task):
    model_config = fine_tuning_model(load_model(pretrained)[2], preset("finetune-tiny")[0])
    result = train(
        model_config, finetune_config(task), tmp_path / task, pretrained=pretrained, progress=False, log=quiet
    )
    assert {"val_loss", "test_loss"} <= result.scores.keys()
    model, tokenizer, config, info = load_model(tmp_path / task)
    assert info["pretrained"] == str(pretrained.resolve())
    assert tokenizer.chars == load_model(pretrained)[1].chars  # the pretrained vocabulary
    texts = ["The food was outstanding. The staff were wonderful.", "O Romeo, Romeo!"]
    again = load_model(tmp_path / task)[0]
    assert predict(model, tokenizer, texts) == predict(again, tokenizer, texts)
    if task == "speakers":
        assert config.labels == SPEAKERS
    if task == "regress":
        assert config.num_labels == 1 and "score" in predict(model, tokenizer, texts)[0]


@pytest.mark.parametrize(
    "task, scores_",
    [("names", {"val_precision", "val_recall", "val_f1"}), ("classify", {"val_accuracy", "val_macro_f1"})],
)
def test_every_estimate_logs_the_val_scores_of_the_model_at_that_step(pretrained, tmp_path, task, scores_):
    model_config = fine_tuning_model(load_model(pretrained)[2], preset("finetune-tiny")[0])
    config = finetune_config(task, max_iters=20, eval_interval=20)  # one estimate: its model is the kept one
    result = train(model_config, config, tmp_path / task, pretrained=pretrained, progress=False, log=quiet)
    records = [json.loads(line) for line in (tmp_path / task / "metrics.jsonl").read_text().splitlines()]
    [estimate] = [r for r in records if r["kind"] == "eval"]
    assert scores_ <= estimate.keys() and "test_f1" not in estimate and "test_accuracy" not in estimate
    assert {k: estimate[k] for k in scores_} == pytest.approx({k: result.scores[k] for k in scores_})


def test_fine_tuning_starts_from_the_pretrained_encoder_and_a_fresh_head(pretrained, tmp_path):
    source = load_model(pretrained)[0]
    model_config = fine_tuning_model(source.config, preset("finetune-tiny")[0])
    train(
        model_config,
        finetune_config("speakers", max_iters=0),
        tmp_path / "zero",
        pretrained=pretrained,
        progress=False,
        log=quiet,
    )
    tuned = load_model(tmp_path / "zero")[0]
    for name, value in source.state_dict().items():
        if not name.startswith("head."):
            assert torch.equal(tuned.state_dict()[name], value), name


def test_a_fine_tuning_run_resumes_exactly(pretrained, tmp_path, interrupt_at):
    model_config = fine_tuning_model(load_model(pretrained)[2], preset("finetune-tiny")[0])
    config = finetune_config("speakers", max_iters=20, eval_interval=5)
    straight = train(model_config, config, tmp_path / "straight", pretrained=pretrained, progress=False, log=quiet)
    interrupt_at(12)
    with pytest.raises(TrainingInterrupted):
        train(model_config, config, tmp_path / "split", pretrained=pretrained, progress=False, log=quiet)
    saved = load_model(tmp_path / "split")[2]
    resumed = train(saved, config, tmp_path / "split", resume=True, progress=False, log=quiet)
    assert resumed.scores == straight.scores


def test_fill_and_predict_refuse_the_wrong_model(pretrained):
    model, tokenizer, _, _ = load_model(pretrained)
    with pytest.raises(ConfigError, match="no \\[MASK\\] to fill"):
        fill(model, tokenizer, "no mask here")
    with pytest.raises(ConfigError, match="predict needs a fine-tuned encoder"):
        predict(model, tokenizer, ["a text"])
