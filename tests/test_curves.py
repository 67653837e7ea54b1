"""`scratchgpt plot`: a run's training curves, drawn from its metrics.jsonl, for every model family."""

import json
import sys

import matplotlib.image
import matplotlib.pyplot
import pytest
from helpers import fails

from scratchgpt.cli import main
from scratchgpt.lessons.curves import plot_curves
from scratchgpt.rundir import read_metrics


@pytest.fixture(scope="module")
def runs(tmp_path_factory, shakespeare):
    """Tiny runs made by the command: a GPT (with gradient clipping) and an encoder-decoder (with a
    tracked score, exact match, beside its loss)."""
    root = tmp_path_factory.mktemp("curves")
    assert (
        main(
            [
                "train",
                "--preset",
                "tiny",
                "--data",
                str(shakespeare),
                "--max-iters",
                "40",
                "--grad-clip",
                "1",
                "--quiet",
                "--out",
                str(root / "gpt"),
            ]
        )
        == 0
    )
    assert (
        main(["train", "--model", "seq2seq", "--preset", "tiny-seq2seq", "--quiet", "--out", str(root / "copy")]) == 0
    )
    return root


def a_picture(path):
    """The PNG at `path` as an (H, W, channels) array, after checking that it shows something."""
    assert path.read_bytes().startswith(b"\x89PNG")
    image = matplotlib.image.imread(path)
    assert image.shape[0] >= 300 and image.shape[1] >= 600
    assert image[..., :3].std() > 0.05  # not one flat colour: curves, axes and text were drawn
    return image


def drawn(monkeypatch, records, path):
    """The figure plot_curves draws for `records`, kept open to read its lines back."""
    figures = []
    monkeypatch.setattr(matplotlib.pyplot, "close", figures.append)
    plot_curves(records, path)
    return figures[0]


def lines(ax):
    """{label: [(step, value), ...]} of the lines drawn on `ax`."""
    return {line.get_label(): list(zip(line.get_xdata(), line.get_ydata())) for line in ax.get_lines()}


@pytest.mark.parametrize("name", ["gpt", "copy"])
def test_plot_writes_the_picture_into_the_run(runs, name, capsys):
    assert main(["plot", "--run", str(runs / name)]) == 0
    assert capsys.readouterr().err.strip() == f"wrote {runs / name / 'curves.png'}"
    a_picture(runs / name / "curves.png")


def test_plot_out_names_the_file(runs, tmp_path, capsys):
    out = tmp_path / "gpt.png"
    assert main(["plot", "--run", str(runs / "gpt"), "--out", str(out)]) == 0
    assert capsys.readouterr().err.strip() == f"wrote {out}"
    a_picture(out)


def test_the_loss_panel_draws_the_records_at_their_steps(runs, tmp_path, monkeypatch):
    """Catches a curve drawn from the wrong key or at the wrong steps, and a final score left out."""
    records = read_metrics(runs / "gpt")
    fig = drawn(monkeypatch, records, tmp_path / "c.png")
    loss = lines(fig.axes[0])
    train = [(r["step"], r["loss"]) for r in records if r["kind"] == "train"]
    evals = [r for r in records if r["kind"] == "eval"]
    final = next(r for r in records if r["kind"] == "final")
    assert [s for s, _ in train] == list(range(5, 41, 5))
    assert loss["training loss (one batch, each log)"] == train
    assert loss["estimate: train split"] == [(r["step"], r["train_loss"]) for r in evals]
    assert loss["estimate: val split"] == [(r["step"], r["val_loss"]) for r in evals]
    assert loss[f"final: whole val split, {final['val_loss']:.4f}"] == [(40, final["val_loss"])]


def test_the_side_panels_follow_what_the_records_hold(runs, tmp_path, monkeypatch):
    """Catches the learning rate drawn from another key, a gradient-norm panel missing with clipping
    (or drawn without it), and a task's tracked scores left out."""
    gpt = read_metrics(runs / "gpt")
    fig = drawn(monkeypatch, gpt, tmp_path / "gpt.png")
    titles = [ax.get_title() for ax in fig.axes[1:]]
    assert titles == ["learning rate (AdamW's)", "gradient norm before clipping", "tokens/s (each log interval)"]
    assert list(fig.axes[1].get_lines()[0].get_ydata()) == [r["lr"] for r in gpt if r["kind"] == "train"]
    assert list(fig.axes[2].get_lines()[0].get_ydata()) == [r["grad_norm"] for r in gpt if r["kind"] == "train"]

    copy = read_metrics(runs / "copy")
    fig = drawn(monkeypatch, copy, tmp_path / "copy.png")
    assert [ax.get_title() for ax in fig.axes[1:]] == [
        "learning rate (AdamW's)",
        "tokens/s (each log interval)",
        "tracked scores (estimates)",
    ]  # no clipping: no norm
    assert lines(fig.axes[3])["val exact"] == [(r["step"], r["val_exact"]) for r in copy if r["kind"] == "eval"]
    assert lines(fig.axes[0])["estimate: val split"] == [
        (r["step"], r["val_loss"]) for r in copy if r["kind"] == "eval"
    ]


def test_a_run_still_training_plots_what_it_has(tmp_path, capsys):
    """A run before its first estimate, with a line still being written: no estimate, no final score,
    and a re-planned schedule (--extend), are drawn without a crash."""
    run = tmp_path / "run"
    run.mkdir()
    records = [
        {"kind": "train", "step": s, "loss": 4.0 - s / 100, "lr": 1e-3, "tokens_per_s": 900.0, "train_seconds": s / 10}
        for s in (10, 20, 30)
    ]
    records.insert(2, {"kind": "extend", "step": 20, "max_iters": 100, "max_time": 0.0})
    (run / "metrics.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in records) + '{"kind": "tra', encoding="utf-8"
    )
    assert main(["plot", "--run", str(run)]) == 0
    a_picture(run / "curves.png")


@pytest.mark.parametrize("content", [None, "", '{"kind": "train", "st'])
def test_a_run_without_metrics_is_one_line(tmp_path, capsys, content):
    run = tmp_path / "run"
    run.mkdir()
    if content is not None:
        (run / "metrics.jsonl").write_text(content, encoding="utf-8")
    assert fails(capsys, "plot", "--run", run).startswith(f"scratchgpt: error: {run} has no metrics yet; ")
    assert not (run / "curves.png").exists()


def test_a_missing_run_directory_is_one_line(tmp_path, capsys):
    assert fails(capsys, "plot", "--run", tmp_path / "nowhere").endswith(
        f"run directory not found: {tmp_path / 'nowhere'}"
    )


def test_without_matplotlib_plot_says_how_to_get_it(runs, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if not installed
    out = tmp_path / "c.png"
    line = fails(capsys, "plot", "--run", runs / "gpt", "--out", out)
    assert line.endswith("drawing training curves needs matplotlib: pip install 'scratchgpt[viz]'")
    assert not out.exists()
