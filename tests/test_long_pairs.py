"""Pairs longer than the block: counted by split and explained when training, a preset whose block
holds long real pairs, and translating a source longer than the block (refused, or with split in
pieces cut at sentence ends)."""

import contextlib
import io
import json

import pytest
import torch
from helpers import fails

from scratchgpt.cli import main
from scratchgpt.config import PRESETS, Seq2SeqConfig, apply_overrides, preset
from scratchgpt.data.pairs import SPLITS, split_of
from scratchgpt.data.tokenizer import PairTokenizer
from scratchgpt.errors import InputError
from scratchgpt.inference.translate import split_source, stream_translation, translate
from scratchgpt.models.registry import build_model
from scratchgpt.settings import Request, resolve
from scratchgpt.training.tasks import build_task

TINY = ["train", "--model", "seq2seq", "--preset", "tiny-seq2seq", "--quiet"]  # block_size 24
WORDS = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]


def pairs_file(path):
    """A TSV of 100 short pairs (two words swapped) and 40 longer than tiny-seq2seq's block (24
    characters a side): {split: how many long pairs}, the longest's need, the file."""
    short = [(f"{a} {b}", f"{b} {a}") for a in WORDS for b in WORDS]
    long = [(f"{a} {b}" + " and so on" * (2 + i % 5), f"{b} {a}") for i, (a, b) in enumerate(short[:40])]
    path.write_text("".join(f"{s}\t{t}\n" for s, t in short + long), encoding="utf-8")
    by_split = {s: sum(split_of(source) == s for source, _ in long) for s in SPLITS}
    return by_split, max(len(s) for s, _ in long), path


def test_pairs_longer_than_the_block_are_counted_by_split_and_explained(tmp_path):
    by_split, longest, path = pairs_file(tmp_path / "pairs.tsv")
    task = build_task(*apply_overrides(*preset("tiny-seq2seq"), {"task": "pairs"}), data=path)
    assert task.too_long == by_split and task.longest == longest
    counts = ", ".join(f"{by_split[s]:,} {s}" for s in SPLITS if by_split[s])
    assert (
        f"; skipped as longer than block_size 24 characters: {counts} pairs (the longest needs {longest} "
        f"characters: --block-size {task.covers_99} keeps 99%, {longest} every pair; or --tokenizer bpe, "
        "fewer tokens a pair)"
    ) in task.summary()
    assert task.data_info["dropped"]["pairs longer than block_size"] == 40
    assert task.data_info["longer_than_block"] == {
        "block_size": 24,
        **by_split,
        "longest": longest,
        "block_for_99%": task.covers_99,
    }


def test_a_generated_task_says_how_many_fresh_pairs_it_draws_again():
    task = build_task(*apply_overrides(*preset("tiny-seq2seq"), {"task": "numbers", "block_size": 40}))
    assert 0 < task.redrawn < 1 and task.too_long["val"] > 0
    assert f"about {task.redrawn:.1%} of fresh train pairs are longer than block_size 40" in task.summary()


def test_pairs_cpu_holds_a_500_character_pair_in_its_subwords(shakespeare):
    """The preset's promise: real sentences of hundreds of characters fit its block in its tokens
    (BENCHMARKS.md measures the bible's: every pair within 189 of the 192)."""
    model_config, train_config = preset("pairs-cpu", kind="seq2seq")
    assert (train_config.task, train_config.tokenizer, train_config.bpe_vocab_size) == ("pairs", "bpe", 2000)
    assert model_config.block_size == 192 and train_config.max_time == 900  # 15 minutes of training
    lines = [line for line in shakespeare.read_text(encoding="utf-8").splitlines() if line.strip()]
    tokenizer = PairTokenizer.from_pairs(lines[:6000], lines[:6000], vocab_size=train_config.bpe_vocab_size)
    source = " ".join(lines[6000:6100])[:500]  # a text the tokenizer was not trained on
    target = " ".join(reversed(source.split(" ")))
    assert len(source) == len(target) == 500
    assert len(tokenizer.source.encode(source)) <= model_config.block_size
    assert len(tokenizer.target.encode(target)) + 1 <= model_config.block_size  # with its [EOS]
    assert len(source) > PRESETS["seq2seq-cpu"][0].block_size  # which characters would not hold


def test_another_tokenizer_drops_the_presets_bpe_size():
    model_config, train_config = resolve(
        Request("train", kind="seq2seq", preset="pairs-cpu", flags={"tokenizer": "char"})
    )
    assert (train_config.tokenizer, train_config.bpe_vocab_size, model_config.block_size) == ("char", 0, 192)
    _, train_config = resolve(Request("train", kind="seq2seq", preset="pairs-cpu", flags={"vocab_size": 4000}))
    assert (train_config.tokenizer, train_config.bpe_vocab_size) == ("bpe", 4000)


# ---------------------------------------------------------------------------------------------
# Sources longer than the block


def char_model(block_size=24):
    """A random encoder-decoder over the characters of the texts below, and its tokenizer."""
    letters = "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ.,;:!?\n"
    tokenizer = PairTokenizer.from_pairs([letters], [letters])
    torch.manual_seed(0)
    config = Seq2SeqConfig(
        src_vocab_size=tokenizer.source.vocab_size,
        vocab_size=tokenizer.target.vocab_size,
        block_size=block_size,
        n_embd=32,
        n_head=2,
        n_layer=1,
        dropout=0.0,
    )
    return build_model(config).eval(), tokenizer


TEXT = "Let there be light. And there was light!  God saw the light, that it was good\nand divided it."


def test_a_long_source_is_cut_at_sentence_ends_then_commas_and_packed():
    _, tokenizer = char_model()
    assert split_source(tokenizer, "Short. Text.", 24) == [("Short. Text.", "")]  # fits: whole
    assert split_source(tokenizer, TEXT, 24) == [
        ("Let there be light.", " "),
        ("And there was light!", "  "),
        ("God saw the light,", " "),  # a sentence longer than the block: cut after its comma
        ("that it was good", "\n"),  # a line break ends a sentence
        ("and divided it.", ""),
    ]
    assert split_source(tokenizer, TEXT, 44) == [
        ("Let there be light. And there was light!", "  "),  # as many sentences a piece as fit
        ("God saw the light, that it was good", "\n"),
        ("and divided it.", ""),
    ]
    with pytest.raises(InputError, match="text 3 .* a piece of 35 tokens with no sentence end or comma"):
        split_source(tokenizer, "abcdefghijklmnopqrstuvwxy and so on", 24, number=3)
    with pytest.raises(InputError, match="text 1 to translate is empty"):
        split_source(tokenizer, " ", 24)


def test_translating_in_pieces_joins_the_pieces_translations():
    model, tokenizer = char_model()
    with pytest.raises(InputError, match="has 93 tokens; the model reads at most block_size 24 .*--split"):
        translate(model, tokenizer, [TEXT])
    pieces = split_source(tokenizer, TEXT, 24)
    each = translate(model, tokenizer, [p for p, _ in pieces], max_len=6)
    joined = "".join(t + gap for t, (_, gap) in zip(each, pieces))
    short = translate(model, tokenizer, ["Short."], max_len=6)[0]
    assert translate(model, tokenizer, [TEXT, "Short."], max_len=6, split=True) == [joined, short]
    assert "".join(stream_translation(model, tokenizer, TEXT, max_len=6, split=True)) == joined
    assert translate(model, tokenizer, [TEXT], beam=2, max_len=6, split=True)[0].count("\n") == 1


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny run on pairs some of which are longer than its block: (its directory, the long pairs
    by split, the longest's need, the training's log)."""
    root = tmp_path_factory.mktemp("long-pairs")
    by_split, longest, path = pairs_file(root / "pairs.tsv")
    log = io.StringIO()
    with contextlib.redirect_stderr(log):
        assert (
            main([*TINY, "--task", "pairs", "--data", str(path), "--max-iters", "10", "--out", str(root / "run")]) == 0
        )
    return root / "run", by_split, longest, log.getvalue()


def test_the_training_log_and_report_say_what_was_skipped(run):
    out, by_split, longest, log = run
    counts = ", ".join(f"{by_split[s]:,} {s}" for s in SPLITS if by_split[s])
    assert f"skipped as longer than block_size 24 characters: {counts} pairs (the longest needs {longest}" in log
    assert f"pairs ({by_split['test']:,} longer than block_size not scored)" in log
    data = json.loads((out / "config.json").read_text(encoding="utf-8"))["data"]
    assert data["longer_than_block"]["longest"] == longest


def test_translate_refuses_a_long_source_or_splits_it(run, capsys, tmp_path):
    out = run[0]
    long = "one two three four. five six seven eight, nine ten one two three. four five"
    line = fails(capsys, "translate", "--run", out, long)
    assert line.endswith(
        "text 1 to translate has 75 tokens; the model reads at most block_size 24 "
        '(--split, or "split": true in the API, translates it in pieces cut at sentence ends)'
    )
    assert main(["translate", "--run", str(out), "--split", "--max-len", "4", long]) == 0  # streamed
    captured = capsys.readouterr()
    assert "text 1 is longer than block_size 24 tokens: translated in 4 pieces cut at sentence ends" in captured.err
    assert captured.out.count("\n") == 1
    assert (
        main(["translate", "--run", str(out), "--split", "--json", "--beam", "2", "--max-len", "4", long, "one"]) == 0
    )
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [x["text"] for x in lines] == [long, "one"]
    line = fails(capsys, "attention", "--run", out, "--text", long, "--out", tmp_path / "a.png")
    assert line.endswith("has 75 tokens; the model reads at most block_size 24")  # attention has no --split
    line = fails(capsys, "translate", "--run", out, "--split", "one two three four five six seven")
    assert "a piece of 33 tokens with no sentence end or comma to cut it at within block_size 24" in line
