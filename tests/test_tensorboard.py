"""`--tensorboard`: the metrics records as TensorBoard event files, read back by TensorBoard's own
reader; the gradient norm in the records; yes/no settings as bare flags."""

import importlib
import itertools
import json
import sys
from pathlib import Path

import pytest
from helpers import fails
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from scratchgpt.cli import build_parser, main
from scratchgpt.rundir import read_metrics
from scratchgpt.training.board import Board

TINY = ["train", "--preset", "tiny", "--quiet"]


def board(run):
    """TensorBoard's view of RUN/tensorboard: {tag: [(step, value), ...]} of the scalars, and the texts."""
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    scalars = {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}
    texts = {
        tag: [e.tensor_proto.string_val[0].decode() for e in events.Tensors(tag)] for tag in events.Tags()["tensors"]
    }
    return scalars, texts


def recorded(run, kind, key):
    return [(r["step"], pytest.approx(r[key], rel=1e-6)) for r in read_metrics(run) if r["kind"] == kind]


@pytest.fixture(scope="module")
def run(tmp_path_factory, shakespeare):
    """A tiny GPT run with --tensorboard and a gradient clip far below the gradient's norm."""
    out = tmp_path_factory.mktemp("tensorboard") / "run"
    assert (
        main(
            [
                *TINY,
                "--data",
                str(shakespeare),
                "--max-iters",
                "20",
                "--grad-clip",
                "0.05",
                "--tensorboard",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    return out


def test_the_event_files_hold_the_metrics_records(run):
    """Catches records not forwarded to the board, or under other names or at other steps."""
    scalars, _ = board(run)
    assert [s for s, _ in scalars["train/loss"]] == [5, 10, 15, 20]
    for tag, kind, key in [
        ("train/loss", "train", "loss"),
        ("train/lr", "train", "lr"),
        ("train/grad_norm", "train", "grad_norm"),
        ("train/tokens_per_s", "train", "tokens_per_s"),
        ("eval/val_loss", "eval", "val_loss"),
        ("eval/train_loss", "eval", "train_loss"),
        ("final/val_loss", "final", "val_loss"),
        ("final/val_bpc", "final", "val_bpc"),
    ]:
        assert scalars[tag] == recorded(run, kind, key), tag


def test_the_sample_is_a_text_of_the_board(run):
    _, texts = board(run)
    [sample] = texts["sample/text_summary"]
    written = (run / "samples.txt").read_text(encoding="utf-8")
    assert written and [line[4:] for line in sample.split("\n")] == written.split("\n")  # a Markdown code block


def test_the_gradient_norm_is_recorded_before_clipping(run):
    """Catches a missing grad_norm, and the norm after clipping (which never exceeds grad_clip)."""
    norms = [r["grad_norm"] for r in read_metrics(run) if r["kind"] == "train"]
    assert len(norms) == 4 and max(norms) > 0.05


def test_without_clipping_or_the_flag_there_is_no_norm_and_no_board(tmp_path, small_corpus):
    out = tmp_path / "run"
    assert (
        main(
            [
                *TINY,
                "--data",
                str(small_corpus),
                "--max-iters",
                "5",
                "--sample-tokens",
                "0",
                "--tensorboard",
                "false",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    [train] = [r for r in read_metrics(out) if r["kind"] == "train"]
    assert "grad_norm" not in train and "loss" in train
    assert not (out / "tensorboard").exists()


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["--tensorboard"], True),
        (["--tensorboard", "false"], False),
        (["--tensorboard", "yes"], True),
        (["--tensorboard", "--max-iters", "3"], True),
        (["--data", "a.txt", "--tensorboard"], True),
        (["--tensorboard", "--data", "a.txt", "b.txt"], True),
        ([], None),
    ],
)
def test_a_yes_no_setting_alone_means_true(argv, expected):
    """Catches a bare flag that needs a value, and one that swallows the next flag or file."""
    args = build_parser().parse_args(["train", *argv])
    assert args.set_tensorboard is expected
    assert args.set_max_iters == (3 if "--max-iters" in argv else None)
    assert args.data == ([Path(p) for p in argv if p.endswith(".txt")] or None)
    tuning = build_parser().parse_args(["finetune", "--from", "scratch", "--compile", "--task", "names"])
    assert tuning.set_compile is True and tuning.set_task == "names" and tuning.source == "scratch"


def test_a_yes_no_setting_with_another_value_is_one_line(capsys):
    with pytest.raises(SystemExit) as e:
        main(["train", "--tensorboard", "maybe"])
    assert e.value.code == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert "argument --tensorboard: expected true or false, got 'maybe'" in line


def test_a_resume_may_turn_the_board_on(tmp_path, small_corpus):
    """Catches tensorboard missing from the settings a resume may change."""
    out = tmp_path / "run"
    common = ["--data", str(small_corpus), "--sample-tokens", "0", "--out", str(out)]
    assert main([*TINY, "--max-iters", "10", *common]) == 0
    assert main(["train", "--resume", "--quiet", "--max-iters", "20", "--tensorboard", *common]) == 0
    scalars, _ = board(out)
    assert [s for s, _ in scalars["train/loss"]] == [15, 20]


def test_a_resumed_run_keeps_its_board_without_the_steps_that_run_again(tmp_path, small_corpus, monkeypatch):
    """A run that crashes at step 37 logged step 35 after its checkpoint of step 30; resumed, it
    runs it again. Catches the writer left open on an error or at the end, a resume that stops
    writing the board, and TensorBoard showing step 35 twice (no purge on resume)."""
    out = tmp_path / "run"
    loop = importlib.import_module("scratchgpt.training.loop")
    original, calls = loop.training_step, itertools.count(1)
    closed, close = [], Board.close
    monkeypatch.setattr(Board, "close", lambda self: closed.append(close(self)))

    def crashing_step(*args):
        if next(calls) == 37:
            raise RuntimeError("the machine crashed")
        return original(*args)

    monkeypatch.setattr(loop, "training_step", crashing_step)
    with pytest.raises(RuntimeError, match="the machine crashed"):
        main([*TINY, "--data", str(small_corpus), "--sample-tokens", "0", "--tensorboard", "--out", str(out)])
    assert [s for s, _ in board(out)[0]["train/loss"]] == [5, 10, 15, 20, 25, 30, 35]
    assert len(closed) == 1
    monkeypatch.setattr(loop, "training_step", original)

    assert main(["train", "--resume", "--quiet", "--out", str(out)]) == 0
    scalars, _ = board(out)
    assert [s for s, _ in scalars["train/loss"]] == list(range(5, 61, 5))
    assert scalars["train/loss"] == recorded(out, "train", "loss")
    assert [s for s, _ in scalars["eval/val_loss"]] == [30, 60]
    assert len(closed) == 2


def test_without_tensorboard_training_says_how_to_get_it_and_starts_no_run(tmp_path, capsys, monkeypatch, small_corpus):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # as if tensorboard were not installed
    out = tmp_path / "run"
    line = fails(capsys, *TINY, "--data", small_corpus, "--tensorboard", "--out", out)
    assert line.endswith("--tensorboard needs tensorboard: pip install tensorboard")
    assert not (out / "config.json").exists() and not (out / "metrics.jsonl").exists()
    assert (
        main([*TINY, "--data", str(small_corpus), "--max-iters", "5", "--sample-tokens", "0", "--out", str(out)]) == 0
    )  # the same --out trains once the flag is dropped
    assert json.loads((out / "config.json").read_text())["train"]["tensorboard"] is False
