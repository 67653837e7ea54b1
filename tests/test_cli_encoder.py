"""The encoder through the command: pretrain, fill, finetune, predict, eval, attention; bad input."""

import json

import pytest
from helpers import fails

from scratchgpt.cli import main
from scratchgpt.data.reviews import write_reviews


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A tiny pretrained encoder and a speakers fine-tuning of it, made by the command."""
    root = tmp_path_factory.mktemp("encoder-cli")
    assert main(["train", "--model", "encoder", "--preset", "tiny-encoder", "--out", str(root / "mlm"), "--quiet"]) == 0
    assert (
        main(
            [
                "finetune",
                "--from",
                str(root / "mlm"),
                "--task",
                "speakers",
                "--preset",
                "finetune-tiny",
                "--out",
                str(root / "speakers"),
                "--quiet",
            ]
        )
        == 0
    )
    return root


def test_fill_shows_the_guesses_for_each_mask(runs, capsys):
    assert main(["fill", "--run", str(runs / "mlm"), "To b[MASK] or not to b[MASK]", "--top-k", "3", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert len(report["fills"]) == 2 and all(len(f) == 3 for f in report["fills"])
    assert main(["fill", "--run", str(runs / "mlm"), "To b[MASK]"]) == 0
    assert capsys.readouterr().out.startswith("[MASK] 1: ")


def test_predict_texts_from_arguments_and_stdin(runs, capsys, monkeypatch):
    assert main(["predict", "--run", str(runs / "speakers"), "My lord, the king.", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["label"] in result["probabilities"] and len(result["probabilities"]) == 8
    assert sum(result["probabilities"].values()) == pytest.approx(1.0)
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("one line\n\nanother line\n"))
    assert main(["predict", "--run", str(runs / "speakers")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split("\t")[-1] for line in lines] == ["one line", "another line"]


def test_eval_gives_the_tasks_scores(runs, capsys):
    assert main(["eval", "--run", str(runs / "speakers"), "--json"]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert {"test_accuracy", "test_macro_f1", "val_accuracy"} <= scores.keys()
    assert main(["eval", "--run", str(runs / "mlm")]) == 0
    assert "masked characters" in capsys.readouterr().out


def test_attention_maps_of_an_encoder_run(runs, tmp_path, capsys):
    out = tmp_path / "maps.png"
    assert main(["attention", "--run", str(runs / "mlm"), "--text", "To be", "--out", str(out)]) == 0
    assert out.read_bytes().startswith(b"\x89PNG")


def test_classify_and_regress_on_the_users_file(runs, tmp_path, capsys):
    stars = write_reviews(tmp_path / "stars.tsv", n=300, seed=1)
    assert (
        main(
            [
                "finetune",
                "--from",
                str(runs / "mlm"),
                "--task",
                "regress",
                "--data",
                str(stars),
                "--preset",
                "finetune-tiny",
                "--out",
                str(tmp_path / "regress"),
                "--quiet",
            ]
        )
        == 0
    )
    assert "test_spearman" in json.loads(capsys.readouterr().out.splitlines()[0])
    assert main(["predict", "--run", str(tmp_path / "regress"), "The food was good.", "--json"]) == 0
    assert isinstance(json.loads(capsys.readouterr().out)["score"], float)
    csv = tmp_path / "labels.csv"
    csv.write_text('text,label\n"Good, very good",yes\n' + "Bad,no\nFine,yes\nAwful,no\n" * 10)
    assert (
        main(
            [
                "finetune",
                "--from",
                "scratch",
                "--task",
                "classify",
                "--data",
                str(csv),
                "--preset",
                "finetune-tiny",
                "--out",
                str(tmp_path / "classify"),
                "--quiet",
            ]
        )
        == 0
    )
    assert main(["predict", "--run", str(tmp_path / "classify"), "Good", "--json"]) == 0
    assert set(json.loads(capsys.readouterr().out.splitlines()[-1])["probabilities"]) == {"no", "yes"}


@pytest.mark.parametrize(
    "content, message",
    [
        ("text\tlabel\ngood food\n", "bad.tsv, line 2: expected text<TAB>label, found one column"),
        ("good food\tyes\n\tno\n", "bad.tsv, line 2: the text is empty"),
        ("good food\tyes\n" * 30, "bad.tsv has one class only ('yes'); classification needs two or more"),
        ("", "bad.tsv holds no examples"),
    ],
)
def test_bad_classification_files(capsys, tmp_path, content, message):
    bad = tmp_path / "bad.tsv"
    bad.write_text(content)
    out = tmp_path / "run"
    assert message in fails(
        capsys,
        "finetune",
        "--from",
        "scratch",
        "--task",
        "classify",
        "--data",
        bad,
        "--preset",
        "finetune-tiny",
        "--out",
        out,
    )
    assert not out.exists()


def test_a_score_that_is_not_a_number(capsys, tmp_path):
    bad = tmp_path / "bad.tsv"
    bad.write_text("good\t4\nbad\tone star\n")
    assert "bad.tsv, line 2: the score 'one star' is not a number" in fails(
        capsys,
        "finetune",
        "--from",
        "scratch",
        "--task",
        "regress",
        "--data",
        bad,
        "--preset",
        "finetune-tiny",
        "--out",
        tmp_path / "run",
    )


def test_a_label_the_model_never_saw(capsys, runs, tmp_path):
    other = tmp_path / "other.tsv"
    other.write_text("good\tyes\nbad\tno\n" * 10 + "meh\tmaybe\n")
    stars = write_reviews(tmp_path / "classes.tsv", n=200, seed=2, classes=True)
    assert (
        main(
            [
                "finetune",
                "--from",
                "scratch",
                "--task",
                "classify",
                "--data",
                str(stars),
                "--preset",
                "finetune-tiny",
                "--out",
                str(tmp_path / "classify"),
                "--quiet",
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert "other.tsv, line 1: the label 'yes' is not one the model knows (negative, neutral, positive)" in fails(
        capsys, "eval", "--run", tmp_path / "classify", "--data", other
    )


def test_wrong_runs_and_texts(capsys, runs, tmp_path, shakespeare):
    gpt = tmp_path / "gpt"
    assert (
        main(
            [
                "train",
                "--preset",
                "tiny",
                "--data",
                str(shakespeare),
                "--out",
                str(gpt),
                "--max-iters",
                "2",
                "--sample-tokens",
                "0",
                "--quiet",
            ]
        )
        == 0
    )
    capsys.readouterr()
    before = {p: p.read_bytes() for p in gpt.rglob("*") if p.is_file()}
    assert "holds a gpt model; finetune needs an encoder run" in fails(
        capsys, "finetune", "--from", gpt, "--task", "speakers", "--out", tmp_path / "x"
    )
    assert {p: p.read_bytes() for p in gpt.rglob("*") if p.is_file()} == before
    assert "the text has no [MASK] to fill" in fails(capsys, "fill", "--run", runs / "mlm", "no mask")
    assert "fill needs a pretrained (masked-LM) encoder" in fails(capsys, "fill", "--run", runs / "speakers", "a[MASK]")
    assert "predict needs a fine-tuned encoder" in fails(capsys, "predict", "--run", runs / "mlm", "a text")
    assert "holds an encoder model; this command needs a gpt or bigram run" in fails(
        capsys, "sample", "--run", runs / "mlm"
    )
    assert "holds a gpt model; this command needs an encoder run" in fails(capsys, "predict", "--run", gpt, "a text")
    assert "holds an encoder model" in fails(capsys, "eval", "--run", runs / "mlm", "--beam", "2")
    assert "finetune needs --task, one of speakers, names, classify, regress" in fails(
        capsys, "finetune", "--from", runs / "mlm"
    )
    assert "--n-layer applies to --from scratch only" in fails(
        capsys, "finetune", "--from", runs / "mlm", "--task", "names", "--n-layer", "3"
    )
    assert "the mlm task trains the encoder model, not the gpt model" in fails(
        capsys, "train", "--preset", "tiny", "--task", "mlm", "--out", tmp_path / "y"
    )
