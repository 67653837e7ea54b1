"""The `scratchgpt` command, end to end (subprocesses) and on bad input (in-process, faster)."""

import importlib
import json
import os
import subprocess
import sys
import time

import pytest
import torch
from helpers import fails

from scratchgpt.cli import build_parser, main
from scratchgpt.cli.options import settings
from scratchgpt.training.bench import matmul_peak


def scratchgpt(*args, env=None, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "scratchgpt", *map(str, args)],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        timeout=300,
    )


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, shakespeare):
    """One tiny run trained through the real command, shared by the read-only tests below."""
    root = tmp_path_factory.mktemp("cli")
    out = root / "run"
    result = scratchgpt(
        "train", "--preset", "tiny", "--data", shakespeare, "--out", out, env={"SCRATCHGPT_CACHE": str(root / "cache")}
    )
    assert result.returncode == 0, result.stderr
    assert "full validation split: loss" in result.stderr
    assert result.stdout.strip()  # the sample
    return out


def test_train_prints_a_sample_and_saves_the_run(run_dir):
    assert (run_dir / "model.safetensors").exists()
    config = json.loads((run_dir / "config.json").read_text())
    assert config["model"]["n_layer"] == 2 and config["model"]["vocab_size"] == 65
    assert config["data"]["sha256"].startswith("86c4e6aa9db7c042")


def test_sample_streams_text_that_starts_with_the_prompt(run_dir):
    result = scratchgpt("sample", "--run", run_dir, "--prompt", "ROMEO:", "--max-new-tokens", 40, "--seed", 1)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ROMEO:")
    assert len(result.stdout.rstrip("\n")) >= 6 + 30  # newlines in the sample may be stripped at the end


def test_sample_controls_through_the_command(run_dir, capsys):
    args = [
        "sample",
        "--run",
        str(run_dir),
        "--prompt",
        "A",
        "--max-new-tokens",
        "25",
        "--seed",
        "3",
        "--temperature",
        "0",
    ]
    assert main(args) == 0
    cached = capsys.readouterr().out
    assert main(args + ["--no-cache"]) == 0
    assert capsys.readouterr().out == cached  # greedy, within block_size: the same text
    assert main(args + ["--num-samples", "2", "--temperature", "1", "--top-p", "0.9"]) == 0
    out = capsys.readouterr().out
    assert "---- sample 1 ----" in out and "---- sample 2 ----" in out
    stop = cached[10:12]
    assert main(args + ["--stop", stop]) == 0
    assert capsys.readouterr().out == cached[: cached.find(stop)] + "\n"


def test_eval_json_is_the_same_every_time(run_dir):
    first = scratchgpt("eval", "--run", run_dir, "--json")
    assert first.returncode == 0, first.stderr
    second = scratchgpt("eval", "--run", run_dir, "--json")
    a, b = json.loads(first.stdout), json.loads(second.stdout)
    assert a == b
    assert a["windows"] == (111_540 - 1) // 32 and 2.0 < a["val_loss"] < 4.2


def test_resume_through_the_command(tmp_path, shakespeare):
    out = tmp_path / "run"
    common = ["--data", shakespeare, "--out", out, "--quiet"]
    assert scratchgpt("train", "--preset", "tiny", "--max-iters", 10, *common).returncode == 0
    resumed = scratchgpt("train", "--resume", "--max-iters", 20, *common)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stderr and "at step 10" in resumed.stderr
    steps = [
        json.loads(line)["step"]
        for line in (out / "metrics.jsonl").read_text().splitlines()
        if json.loads(line)["kind"] == "train"
    ]
    assert steps == [5, 10, 15, 20]


def test_python_dash_m_and_help_explain_every_option():
    result = scratchgpt("train", "--help")
    assert result.returncode == 0
    for flag in [
        "--preset",
        "--data",
        "--out",
        "--resume",
        "--config",
        "--n-layer",
        "--lr",
        "--batch-size",
        "--warmup-iters",
        "--device",
        "--dropout",
        "--attention",
    ]:
        assert flag in result.stdout


# ---------------------------------------------------------------------------------------------
# Bad input: one line on stderr, exit code 2, nothing overwritten.


def fails_argparse(capsys, *args):
    with pytest.raises(SystemExit) as e:
        main([str(a) for a in args])
    assert e.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    return lines[0]


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "data file not found"),
        (b"", "data file is empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "looks binary"),
        (b"caf\xe9 cr\xe8me\n", "not UTF-8"),
        (b"too short", "corpus too short"),
    ],
)
def test_bad_data_files(capsys, tmp_path, content, message):
    data = tmp_path / "data.txt"
    if content is not None:
        data.write_bytes(content)
    assert message in fails(capsys, "train", "--preset", "tiny", "--data", data, "--out", tmp_path / "r")
    if content is not None:
        assert data.read_bytes() == content


def test_unknown_preset_and_setting(capsys, tmp_path):
    assert "invalid choice: 'huge'" in fails_argparse(capsys, "train", "--preset", "huge")
    assert "unrecognized arguments: --n-layers" in fails_argparse(capsys, "train", "--n-layers", "3")
    assert fails_argparse(capsys, "train", "--bogus") == (  # the command's own help, not scratchgpt's
        "scratchgpt train: error: unrecognized arguments: --bogus (see scratchgpt train --help)"
    )
    assert fails_argparse(capsys, "--bogus", "train").endswith("(see scratchgpt --help)")
    toml = tmp_path / "c.toml"
    toml.write_text("[model]\nn_layers = 3\n")
    assert "unknown setting 'model.n_layers'" in fails(capsys, "train", "--config", toml)


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--n-embd", "30", "--n-head", "4"], "--n-embd (30) must be divisible by --n-head (4)"),
        (["--lr", "0"], "--lr must be positive"),
        (["--lr=-1e-3"], "--lr must be positive"),
        (["--block-size", "0"], "--block-size must be at least 1"),
        (["--dropout", "1.5"], "--dropout must be in [0, 1)"),
    ],
)
def test_invalid_values(capsys, tmp_path, shakespeare, flags, message):
    out = tmp_path / "r"
    assert message in fails(capsys, "train", "--preset", "tiny", "--data", shakespeare, "--out", out, *flags)
    assert not out.exists()


def test_a_value_of_the_wrong_type(capsys):
    assert "invalid int value: 'four'" in fails_argparse(capsys, "train", "--n-layer", "four")
    assert "expected true or false, got 'maybe'" in fails_argparse(capsys, "train", "--qk-norm", "maybe")


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--grad-accum", "3"], "batch_size (8) must be divisible by --grad-accum (3)"),
        (["--max-time=-1"], "--max-time must be at least 0"),
        (["--position", "rotary", "--n-embd", "6", "--n-head", "2"], "rotary positions need an even head size"),
        (["--muon-momentum", "1"], "--muon-momentum must be in [0, 1)"),
    ],
)
def test_invalid_speedrun_settings(capsys, tmp_path, shakespeare, flags, message):
    out = tmp_path / "r"
    assert message in fails(capsys, "train", "--preset", "tiny", "--data", shakespeare, "--out", out, *flags)
    assert not out.exists()


def test_a_bad_setting_is_named_as_the_user_gave_it(capsys, tmp_path):
    """A flag's value is refused naming the flag; a TOML file's, naming the setting and the file."""
    out = tmp_path / "r"
    assert fails(capsys, "train", "--preset", "tiny", "--max-time=-1", "--out", out) == (
        "scratchgpt: error: --max-time must be at least 0, got -1.0"
    )
    toml = tmp_path / "s.toml"
    toml.write_text("[train]\nmax_time = -1\n")
    assert fails(capsys, "train", "--preset", "tiny", "--config", toml, "--out", out) == (
        f"scratchgpt: error: max_time must be at least 0, got -1.0 (in {toml})"
    )
    assert not out.exists()


def test_the_model_kind_of_a_toml_file(capsys, tmp_path):
    """`kind` leaves the TOML file's settings whether or not --model says the same (issue 23)."""
    gpt, encoder = tmp_path / "gpt.toml", tmp_path / "encoder.toml"
    gpt.write_text('[model]\nkind = "gpt"\nn_layer = 1\n')
    encoder.write_text('[model]\nkind = "encoder"\n')
    for argv in (["--config", gpt], ["--model", "gpt", "--config", gpt]):
        model, _ = settings(build_parser().parse_args(["train", "--preset", "tiny", *map(str, argv)]))
        assert (model.kind, model.n_layer) == ("gpt", 1)
    assert fails(capsys, "train", "--model", "encoder", "--config", gpt) == (
        f'scratchgpt: error: --model encoder and kind = "gpt" in {gpt} disagree'
    )
    nowhere = tmp_path / "nowhere"  # past the settings, the first thing refused is the missing directory
    assert "no such directory" in fails(capsys, "train", "--init-from", nowhere, "--model", "gpt", "--config", gpt)
    assert "disagree" in fails(capsys, "train", "--init-from", nowhere, "--model", "gpt", "--config", encoder)
    assert "run directory not found" in fails(
        capsys, "finetune", "--from", nowhere, "--task", "names", "--config", encoder
    )
    assert fails(capsys, "finetune", "--from", "scratch", "--task", "names", "--config", gpt) == (
        f'scratchgpt: error: finetune trains an encoder, not the gpt model (kind = "gpt" in {gpt})'
    )


def help_text(capsys, *args):
    with pytest.raises(SystemExit) as e:
        main([*args, "--help"])
    assert e.value.code == 0
    return " ".join(capsys.readouterr().out.split())  # argparse's line breaks as spaces


def test_the_help_names_every_model_choice_and_command(capsys):
    top = help_text(capsys)
    assert "train a GPT, an encoder or an encoder-decoder (seq2seq)," in top
    assert (
        "train train a model from scratch: a GPT (default), the bigram, an encoder or an encoder-decoder "
        "(seq2seq) finetune" in top
    )
    assert "the last 10% of the text" in help_text(capsys, "eval")
    position = help_text(capsys, "train").split("--position {learned,rotary,sinusoidal} ")[1].split(" --")[0]
    assert position == (
        "positions: a learned embedding table, or rotary (RoPE) on q and k; sinusoidal: "
        "encoder, seq2seq only [gpt, encoder, seq2seq]"
    )


def test_finetune_offers_only_its_presets_and_tasks(capsys):
    text = help_text(capsys, "finetune")
    assert "--preset {finetune-cpu,speakers-cpu,tag-cpu,finetune-tiny}" in text
    assert "--task {speakers,names,classify,regress,tag} the task to fine-tune for" in text
    assert "invalid choice: 'mlm'" in fails_argparse(capsys, "finetune", "--from", "scratch", "--task", "mlm")
    assert "invalid choice: 'tiny'" in fails_argparse(capsys, "finetune", "--from", "scratch", "--preset", "tiny")


def test_boolean_settings_from_the_command_line(tmp_path, shakespeare, capsys):
    out = tmp_path / "r"
    assert (
        main(
            [
                "train",
                "--preset",
                "tiny",
                "--data",
                str(shakespeare),
                "--out",
                str(out),
                "--quiet",
                "--max-iters",
                "2",
                "--sample-tokens",
                "5",
                "--qk-norm",
                "true",
                "--tie-embeddings",
                "yes",
                "--zero-init",
                "false",
            ]
        )
        == 0
    )
    model = json.loads((out / "config.json").read_text())["model"]
    assert model["qk_norm"] is True and model["tie_embeddings"] is True and model["zero_init"] is False


def test_bench_reports_both_paths_as_json(shakespeare):
    result = scratchgpt("bench", "--preset", "tiny", "--data", shakespeare, "--steps", "2", "--warmup", "1", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert [r["attention"] for r in report["results"]] == ["readable", "fast"]
    assert report["block_size"] == 32 and report["batch_size"] == 8
    for row in report["results"]:
        assert 0 < row["mfu"] < 1  # a FLOP count or a time off by a unit or a factor breaks this


def test_bench_times_the_steps_it_runs(shakespeare, capsys, monkeypatch):
    """Every step of a stand-in sleeps 50 ms: ms/step must lie between that and the whole call's
    time per timed step, and tokens/s must be the tokens the steps were given over their time."""
    bench = importlib.import_module("scratchgpt.training.bench")
    tokens_given = []

    def sleepy_step(forward, model, optimizer, task, c, generator, device, amp):
        time.sleep(0.05)
        tokens_given.append(task.batch_tokens(c.batch_size))
        return torch.zeros(()), None  # (loss, gradient norm)

    monkeypatch.setattr(bench, "training_step", sleepy_step)
    started = time.perf_counter()
    assert (
        main(["bench", "--preset", "tiny", "--data", str(shakespeare), "--steps", "3", "--warmup", "1", "--json"]) == 0
    )
    call_seconds = time.perf_counter() - started
    report = json.loads(capsys.readouterr().out)
    assert tokens_given == [8 * 32] * 8  # two paths, 1 warm-up and 3 timed steps each
    for row in report["results"]:
        assert 50 <= row["ms_per_step"] <= 1000 * call_seconds / 3
        assert 8 * 32 / call_seconds <= row["tokens_per_s"] <= 8 * 32 / 0.05


def test_bench_compare_dtype_times_each_path_in_float32_and_bf16_autocast(shakespeare, capsys, monkeypatch):
    bench = importlib.import_module("scratchgpt.training.bench")
    amps = []

    def recording_step(forward, model, optimizer, task, c, generator, device, amp):
        amps.append(amp.fast_dtype if isinstance(amp, torch.autocast) else torch.float32)
        return torch.zeros(()), None

    monkeypatch.setattr(bench, "training_step", recording_step)
    assert (
        main(
            [
                "bench",
                "--preset",
                "tiny",
                "--data",
                str(shakespeare),
                "--steps",
                "1",
                "--warmup",
                "1",
                "--compare-dtype",
                "--json",
            ]
        )
        == 0
    )
    report = json.loads(capsys.readouterr().out)
    assert [(r["attention"], r["dtype"]) for r in report["results"]] == [
        ("readable", "float32"),
        ("readable", "bfloat16"),
        ("fast", "float32"),
        ("fast", "bfloat16"),
    ]
    assert amps == [torch.float32] * 2 + [torch.bfloat16] * 2 + [torch.float32] * 2 + [torch.bfloat16] * 2
    assert set(report["peaks_tflops"]) == {"float32", "bfloat16"}
    assert report["dtype"] == "float32"  # what --dtype auto picks for the tiny preset, on any CPU


@pytest.mark.parametrize("cpu_bf16", ["none", "avx512_bf16"])
def test_bench_compare_dtype_prints_both_rows_and_says_where_bf16_is_emulated(
    shakespeare, capsys, monkeypatch, cpu_bf16
):
    """On an AVX2-only CPU the bf16 matmul peak was 0 (its warm-up outlasted the timing budget) and
    MFU divided by it: a traceback instead of the table."""
    monkeypatch.setenv("SCRATCHGPT_CPU_BF16", cpu_bf16)
    bench = importlib.import_module("scratchgpt.training.bench")
    monkeypatch.setattr(bench, "training_step", lambda *args: (torch.zeros(()), None))
    assert (
        main(
            [
                "bench",
                "--preset",
                "tiny",
                "--data",
                str(shakespeare),
                "--steps",
                "1",
                "--warmup",
                "1",
                "--paths",
                "fast",
                "--compare-dtype",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert [line.split()[:2] for line in out.splitlines() if "ms/step" in line] == [
        ["fast", "float32"],
        ["fast", "bfloat16"],
    ]
    assert "bfloat16: " in out and "x float32's tokens/s" in out
    assert ("this CPU has no native bf16 and emulates it" in out) == (cpu_bf16 == "none")


def test_the_matmul_peak_is_measured_at_least_once_however_short_the_budget():
    for dtype in (torch.float32, torch.bfloat16):
        peak = matmul_peak(torch.device("cpu"), dtype, size=128, seconds=0.0)
        assert 0 < peak < float("inf")  # the old loop never timed once: 0, and MFU divided by it


def test_bench_bad_input(capsys, shakespeare):
    assert "--steps and --warmup must be at least 1" in fails(
        capsys, "bench", "--preset", "tiny", "--data", shakespeare, "--steps", "0"
    )
    assert "expected true or false, got 'sometimes'" in fails_argparse(capsys, "bench", "--compile", "sometimes")


def test_prompt_outside_the_vocabulary_is_named(capsys, run_dir):
    code = main(["sample", "--run", str(run_dir), "--prompt", "Café"])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    assert captured.err.strip() == "scratchgpt: error: text has characters outside the vocabulary: 'é'"


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--temperature", "-1"], "temperature must be at least 0"),
        (["--top-k", "0"], "top_k must be at least 1"),
        (["--max-new-tokens", "-5"], "max_new_tokens must be at least 0"),
        (["--top-p", "0"], "top_p must be in (0, 1]"),
        (["--top-p", "1.5"], "top_p must be in (0, 1]"),
        (["--stop", "é"], "stop string 'é' cannot be encoded"),
        (["--num-samples", "0"], "num_samples must be at least 1"),
    ],
)
def test_bad_sampling_settings(capsys, run_dir, flags, message):
    assert message in fails(capsys, "sample", "--run", run_dir, *flags)


def test_sample_and_eval_without_a_model(capsys, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "holds no run" in fails(capsys, "sample", "--run", empty)
    assert "holds no run" in fails(capsys, "eval", "--run", empty)
    for name in ("encoder-cpu-1", "cpu-1"):
        (empty / name).mkdir()
        (empty / name / "config.json").write_text("{}")
    assert fails(capsys, "sample", "--run", empty) == (
        f"scratchgpt: error: {empty} is a folder of runs, not a run; pass one of: {empty / 'cpu-1'}, "
        f"{empty / 'encoder-cpu-1'}"
    )
    assert "run directory not found" in fails(capsys, "sample", "--run", tmp_path / "missing")


def test_training_over_an_existing_run_overwrites_nothing(capsys, run_dir, shakespeare):
    before = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    assert "already holds a run" in fails(capsys, "train", "--preset", "tiny", "--data", shakespeare, "--out", run_dir)
    assert {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()} == before


def test_resume_without_a_run(capsys, tmp_path):
    assert "needs --out" in fails(capsys, "train", "--resume")
    assert "run directory not found" in fails(capsys, "train", "--resume", "--out", tmp_path / "none")


def test_cuda_requested_without_a_gpu(capsys, tmp_path, shakespeare, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert "no CUDA GPU" in fails(
        capsys, "train", "--preset", "tiny", "--data", shakespeare, "--out", tmp_path / "r", "--device", "cuda"
    )


def test_attention_command_writes_a_picture(capsys, run_dir, tmp_path):
    out = tmp_path / "attn.png"
    assert main(["attention", "--run", str(run_dir), "--text", "ROMEO:\nHa!", "--out", str(out)]) == 0
    assert out.read_bytes().startswith(b"\x89PNG")
    assert (
        main(["attention", "--run", str(run_dir), "--text", "To be", "--out", str(out), "--layer", "1", "--head", "0"])
        == 0
    )


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--text", "Café"], "outside the vocabulary: 'é'"),
        (["--text", "a", "--layer", "2"], "layer 2 is out of range: the model has layers 0..1"),
        (["--text", "a", "--head", "5"], "head 5 is out of range: the model has heads 0..1"),
        (["--text", "x" * 33], "the text has 33 tokens; the model sees at most block_size 32"),
        (["--text", ""], "the text must not be empty"),
    ],
)
def test_attention_command_bad_input(capsys, run_dir, tmp_path, flags, message):
    out = tmp_path / "attn.png"
    assert message in fails(capsys, "attention", "--run", run_dir, "--out", out, *flags)
    assert not out.exists()


@pytest.mark.parametrize("command", ["sample", "eval", "bench", "train"])
def test_an_unknown_device_is_one_line_naming_this_machines_devices(capsys, run_dir, tmp_path, command):
    args = {
        "sample": ["sample", "--run", run_dir],
        "eval": ["eval", "--run", run_dir],
        "bench": ["bench", "--preset", "tiny"],
        "train": ["train", "--preset", "tiny", "--out", tmp_path / "r"],
    }
    line = fails(capsys, *args[command], "--device", "foo")
    assert "unknown device 'foo'; use auto, cpu, cuda, cuda:N or mps (this machine has: cpu" in line


def test_eval_on_a_text_too_short_names_the_validation_split(capsys, run_dir, tmp_path):
    short = tmp_path / "short.txt"
    short.write_text("First Citizen:\n" * 10, encoding="utf-8")  # 150 characters: 15 for validation
    assert "its validation split has 15 tokens but block_size 32" in fails(
        capsys, "eval", "--run", run_dir, "--data", short
    )


def test_the_bigram_model_through_the_command(tmp_path, shakespeare, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert (
        main(
            [
                "train",
                "--model",
                "bigram",
                "--data",
                str(shakespeare),
                "--max-iters",
                "100",
                "--eval-iters",
                "5",
                "--sample-tokens",
                "20",
                "--quiet",
            ]
        )
        == 0
    )
    out = tmp_path / "runs" / "bigram-1"  # named after its preset
    assert json.loads((out / "config.json").read_text())["model"] == {
        "kind": "bigram",
        "vocab_size": 65,
        "block_size": 8,
    }
    capsys.readouterr()
    assert main(["sample", "--prompt", "ROMEO:", "--max-new-tokens", "30", "--seed", "1"]) == 0
    assert capsys.readouterr().out.startswith("ROMEO:")
    assert main(["eval", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["val_loss"] < 4.0
    assert "holds a bigram model; this command needs a gpt, encoder or seq2seq run" in fails(
        capsys, "attention", "--run", out, "--text", "a"
    )
    assert "--n-layer is not a setting of the bigram model" in fails(
        capsys, "train", "--model", "bigram", "--n-layer", "2"
    )
    assert "preset 'cpu' is for the gpt model, not bigram" in fails(
        capsys, "train", "--model", "bigram", "--preset", "cpu"
    )
    assert "bench times the GPT's attention paths; the bigram model has none" in fails(
        capsys, "bench", "--preset", "bigram"
    )


def test_a_first_run_works_offline_with_the_corpus_that_ships(tmp_path, capsys, monkeypatch):
    """A new user: no data file, no SCRATCHGPT_DATA, no network; train, then sample and eval with
    no arguments."""
    import socket

    def no_network(*args, **kwargs):
        raise OSError("the network is unreachable in this test")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.delenv("SCRATCHGPT_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--preset", "tiny", "--quiet"]) == 0
    assert capsys.readouterr().out.strip()  # the sample
    assert main(["sample", "--max-new-tokens", "50"]) == 0
    assert len(capsys.readouterr().out) >= 50
    assert main(["eval"]) == 0
    assert "val loss" in capsys.readouterr().out
    config = json.loads((tmp_path / "runs" / "tiny-1" / "config.json").read_text())
    assert config["data"]["sha256"].startswith("86c4e6aa9db7c042")
