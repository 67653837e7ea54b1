"""Helpers shared by the test modules (tests/ is on sys.path under pytest's default import mode)."""

from scratchgpt.cli import main


def fails(capsys, *args):
    """Run the command with `args`; assert it exits 2 with one line on stderr, and return that line."""
    code = main([str(a) for a in args])
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def quiet(*_):
    """Discard the training log: train(..., log=quiet)."""


def save_run(path, model, config, chars):
    """A run directory holding `model` (of `config`) with a character tokenizer of `chars`, as if trained."""
    from scratchgpt.config import TrainConfig
    from scratchgpt.data.tokenizer import CharTokenizer
    from scratchgpt.rundir import save_run_info, save_weights

    path.mkdir()
    save_run_info(path, config, TrainConfig(), CharTokenizer(chars), {"sha256": "0" * 64})
    save_weights(path / "model.safetensors", model)
    return path
