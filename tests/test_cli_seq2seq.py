"""The encoder-decoder from the command line: train, translate, eval, attention, and bad input."""

import io
import json

import pytest
from helpers import fails

from scratchgpt.cli import main

TINY = ["train", "--model", "seq2seq", "--preset", "tiny-seq2seq", "--quiet"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A tiny translation run of the user's pairs (from a TSV), and a tiny GPT run."""
    root = tmp_path_factory.mktemp("cli-seq2seq")
    pairs = root / "pairs.tsv"
    words = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]
    lines = [f"{a} {b}\t{b} {a}\tCC-BY" for a in words for b in words]  # swap two words; a licence column
    pairs.write_text("\n".join(lines + ["a line without a tab"]) + "\n", encoding="utf-8")
    assert (
        main([*TINY, "--task", "pairs", "--data", str(pairs), "--max-iters", "30", "--out", str(root / "pairs")]) == 0
    )
    assert main(["train", "--preset", "tiny", "--max-iters", "2", "--quiet", "--out", str(root / "gpt")]) == 0
    return {"pairs": root / "pairs", "gpt": root / "gpt", "tsv": pairs, "root": root}


def test_train_translate_eval_and_attention(runs, capsys, monkeypatch, tmp_path):
    capsys.readouterr()
    assert main(["translate", "--run", str(runs["pairs"]), "one two", "three four", "--beam", "2"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2
    monkeypatch.setattr("sys.stdin", io.StringIO("one two\n\nfive six\n"))
    assert main(["translate", "--run", str(runs["pairs"]), "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["text"] for line in lines] == ["one two", "five six"] and all("translation" in x for x in lines)
    assert main(["translate", "--run", str(runs["pairs"]), "seven eight"]) == 0  # one text: streamed
    assert capsys.readouterr().out.endswith("\n")

    assert main(["eval", "--run", str(runs["pairs"]), "--json"]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert {"test_exact", "test_chrf", "test_bleu", "copy_chrf", "chrf_signature"} <= scores.keys()
    assert scores["chrf_signature"].startswith("nrefs:1|")
    assert main(["eval", "--run", str(runs["pairs"])]) == 0
    assert "sacrebleu signatures" in capsys.readouterr().out

    out = tmp_path / "att.png"
    assert (
        main(["attention", "--run", str(runs["pairs"]), "--text", "one two", "--target", "two one", "--out", str(out)])
        == 0
    )
    assert out.read_bytes()[:4] == b"\x89PNG"


def test_the_run_records_what_it_skipped(runs):
    data = json.loads((runs["pairs"] / "config.json").read_text(encoding="utf-8"))["data"]
    assert data["source"].endswith("pairs.tsv")
    assert data["dropped"] == {"lines without a tab": 1, "pairs longer than block_size": 0}


def test_strict_refuses_a_malformed_line(runs, capsys, tmp_path):
    line = fails(capsys, *TINY, "--task", "pairs", "--data", runs["tsv"], "--strict", "true", "--out", tmp_path / "r")
    assert f"{runs['tsv']}, line 101: lines without a tab" in line
    assert not (tmp_path / "r" / "config.json").exists()


@pytest.mark.parametrize("content, message", [("", "the file is empty"), ("only\nlines\n", "no pairs to train on")])
def test_unusable_pair_files(capsys, tmp_path, content, message):
    path = tmp_path / "pairs.tsv"
    path.write_text(content, encoding="utf-8")
    assert message in fails(capsys, *TINY, "--task", "pairs", "--data", path, "--out", tmp_path / "r")


def test_wrong_runs_and_inputs(runs, capsys, tmp_path, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("\n"))
    assert "holds a gpt model; this command needs a seq2seq run" in fails(
        capsys, "translate", "--run", runs["gpt"], "x"
    )
    assert "reads at most block_size" in fails(capsys, "translate", "--run", runs["pairs"], "o" * 200)
    assert "no text to translate" in fails(capsys, "translate", "--run", runs["pairs"])
    assert "beam must be at least 1" in fails(capsys, "translate", "--run", runs["pairs"], "--beam", "0", "x", "y")
    assert "max_len must be in" in fails(capsys, "translate", "--run", runs["pairs"], "--max-len", "999", "x")
    assert "--beam is for encoder-decoder runs" in fails(capsys, "eval", "--run", runs["gpt"], "--beam", "3")
    assert "generates its pairs" in fails(
        capsys, *TINY, "--task", "dates", "--data", runs["tsv"], "--out", tmp_path / "r"
    )
    assert "needs --data" in fails(capsys, *TINY, "--task", "pairs", "--out", tmp_path / "r")
    assert "trains the seq2seq model" in fails(
        capsys, "train", "--preset", "tiny", "--task", "copy", "--out", tmp_path / "r"
    )
    assert "two --data files" in fails(
        capsys, "train", "--preset", "tiny", "--data", runs["tsv"], runs["tsv"], "--out", tmp_path / "r"
    )
    before = (runs["pairs"] / "model.safetensors").read_bytes()
    assert "already holds a run" in fails(capsys, *TINY, "--task", "copy", "--out", runs["pairs"])
    assert (runs["pairs"] / "model.safetensors").read_bytes() == before


def test_two_aligned_files(capsys, tmp_path):
    source, target = tmp_path / "train.en", tmp_path / "train.rev"
    words = [f"w{i}x" for i in range(200)]
    source.write_text("\n".join(words) + "\n", encoding="utf-8")
    target.write_text("\n".join(w[::-1] for w in words) + "\n", encoding="utf-8")
    assert (
        main(
            [
                *TINY,
                "--task",
                "pairs",
                "--data",
                str(source),
                str(target),
                "--max-iters",
                "5",
                "--out",
                str(tmp_path / "r"),
            ]
        )
        == 0
    )
    assert main(["eval", "--run", str(tmp_path / "r"), "--json"]) == 0  # finds both files again
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["test_pairs"] > 0
    target.write_text("\n".join(words[:-1]) + "\n", encoding="utf-8")
    assert "not aligned" in fails(capsys, *TINY, "--task", "pairs", "--data", source, target, "--out", tmp_path / "s")
