"""Hugging Face in and out: `export --format hf` and `train --init-from` a GPT-2 directory.

Everything is made here, offline: tiny runs trained by the command, and a tiny random GPT-2 (with
a byte-level BPE trained on a few KB of text) saved with transformers' save_pretrained.
"""

import dataclasses
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import time

import pytest
import torch
from helpers import fails

from scratchgpt import rundir
from scratchgpt.cli import main
from scratchgpt.config import EncoderConfig, ModelConfig, TrainConfig
from scratchgpt.data.tokenizer import CharTokenizer
from scratchgpt.inference.generate import sample_text
from scratchgpt.models.convert import convert
from scratchgpt.models.registry import build_model

transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

TEXT = "ROMEO:\nBut, soft! what light through yonder window breaks?"
SHAPE = ["--block-size", "64", "--n-embd", "32", "--n-head", "2", "--n-layer", "2"]
QUICK = [
    "--batch-size",
    "8",
    "--max-iters",
    "12",
    "--eval-interval",
    "6",
    "--eval-iters",
    "2",
    "--sample-tokens",
    "10",
    "--quiet",
]
# A GPT of GPT-2's pieces in each of the ways it can differ from GPT-2 small: tied or untied
# output, each activation GPT-2 has, the readable face, biases on queries, keys and values.
EXPORTABLE = {
    "gpt2-compatible": ["--preset", "gpt2-compatible"],  # tanh GELU, tied
    "relu-untied-readable": [
        "--preset",
        "tiny",
        "--activation",
        "relu",
        "--lm-head-bias",
        "false",
        "--attention",
        "readable",
        "--qkv-bias",
    ],
    "gelu-tied": ["--preset", "tiny", "--activation", "gelu", "--lm-head-bias", "false", "--tie-embeddings"],
}


@pytest.fixture(scope="module")
def root(tmp_path_factory, shakespeare):
    root = tmp_path_factory.mktemp("hf")
    (root / "text.txt").write_text(shakespeare.read_text(encoding="utf-8")[:30_000], encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def runs(root):
    """The EXPORTABLE runs, trained by the command on 30,000 characters of the play."""
    for name, args in EXPORTABLE.items():
        assert main(["train", *args, *SHAPE, *QUICK, "--data", str(root / "text.txt"), "--out", str(root / name)]) == 0
    return root


def hf_model(path):
    return transformers.GPT2LMHeadModel.from_pretrained(path, local_files_only=True).eval()


def hf_tokenizer(path):
    return transformers.AutoTokenizer.from_pretrained(path, local_files_only=True)


# ---------------------------------------------------------------------------------------------
# export --format hf


@pytest.mark.parametrize("name", EXPORTABLE)
def test_an_export_is_the_same_model_in_transformers(runs, tmp_path, name, capsys):
    """Catches a weight mapped to the wrong place, a missing transpose, a wrong activation or
    epsilon, a tied/untied mix-up, and a tokenizer whose ids or decoding differ from ours."""
    out = tmp_path / "hf"
    assert main(["export", "--run", str(runs / name), "--format", "hf", str(out)]) == 0
    assert "exported" in capsys.readouterr().err
    ours, tokenizer, config, _ = rundir.load_model(runs / name)
    model, hf_tok = hf_model(out), hf_tokenizer(out)
    assert isinstance(hf_tok, transformers.PreTrainedTokenizerFast)

    ids = hf_tok(TEXT, return_tensors="pt").input_ids  # (1, T)
    assert ids[0].tolist() == tokenizer.encode(TEXT)
    assert hf_tok.decode(ids[0]) == TEXT and hf_tok.decode(hf_tok.encode("  a\n\nb ,c ")) == "  a\n\nb ,c "
    with torch.no_grad():
        theirs, mine = model(ids).logits, ours(ids)[0]
    assert (theirs - mine).abs().max() < 1e-4

    prompt = TEXT[:20]
    new = config.block_size - len(prompt)
    generated = model.generate(hf_tok(prompt, return_tensors="pt").input_ids, max_new_tokens=new, do_sample=False)
    assert hf_tok.decode(generated[0]) == sample_text(ours, tokenizer, prompt, max_new_tokens=new, temperature=0)

    hf_config = json.loads((out / "config.json").read_text())
    assert hf_config["tie_word_embeddings"] == config.tie_embeddings
    gpt2_names = {"relu": "relu", "gelu": "gelu", "gelu_tanh": "gelu_new"}
    assert hf_config["activation_function"] == gpt2_names[config.activation]
    card = (out / "README.md").read_text()
    recorded = json.loads((runs / name / "config.json").read_text())["data"]["sha256"]
    final = [json.loads(line) for line in (runs / name / "metrics.jsonl").read_text().splitlines()][-1]
    assert recorded in card and f"{final['val_loss']:.4f}" in card and "n_embd" in card
    assert sorted(p.name for p in out.iterdir()) == [
        "README.md",
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
    ]


def run_card_code(out, cwd):
    """The model card's Python blocks, as written, one after the other in a fresh interpreter (offline,
    as a user would paste them); then the length of `ids` and n_positions. Returns what each printed."""
    blocks = re.findall(r"```python\n(.*?)```", (out / "README.md").read_text(encoding="utf-8"), re.S)
    rule = "----- next block -----"
    script = f"\nprint({rule!r})\n".join([*blocks, "print(ids.shape[1], model.config.n_positions)"])
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1"},
    )  # tiny models: threads only contend
    assert done.returncode == 0, done.stderr  # the old card: IndexError, past the position table
    assert len(blocks) == 2  # within the block, and past it
    return done.stdout.split(rule + "\n")


def test_the_model_cards_code_runs_as_written_within_and_past_the_block(runs, tmp_path):
    out = tmp_path / "hf"
    assert main(["export", "--run", str(runs / "gpt2-compatible"), str(out)]) == 0
    within, past, sizes = run_card_code(out, cwd=tmp_path)
    assert within.startswith("ROMEO:") and len(within) == 64 + 1  # the whole block, one token a character
    assert past.startswith("ROMEO:") and len(past) == len("ROMEO:") + 500 + 1
    assert sizes.split() == ["506", "64"]  # more tokens than the 64 positions


def test_the_model_card_prompts_with_characters_the_run_knows(tmp_path):
    """A character run whose text lacks "ROMEO:" cannot encode it: the card prompts with its own."""
    run = tmp_path / "run"
    run.mkdir()
    tokenizer = CharTokenizer.from_text("hello world")
    config = dataclasses.replace(GPT, vocab_size=tokenizer.vocab_size, lm_head_bias=False)
    rundir.save_run_info(run, config, TrainConfig(), tokenizer, {"source": "text", "sha256": "0" * 64})
    rundir.save_weights(run / rundir.MODEL_FILE, build_model(config))
    assert main(["export", "--run", str(run), str(tmp_path / "hf")]) == 0
    within, past, sizes = run_card_code(tmp_path / "hf", cwd=tmp_path)
    assert len(within) == 16 + 1 and set(within[:-1]) <= set("helo wrd")
    assert sizes.split() == [str(1 + 500), "16"]


@pytest.fixture(params=[0o022, 0o002], ids=["umask022", "umask002"])
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def test_an_export_has_the_permissions_open_and_mkdir_give(runs, tmp_path, umask):
    """Files built through mkdtemp (0700) kept 0600: every file gets what open() gives, the
    directory what mkdir gives, under the process umask."""
    (tmp_path / "opened").write_text("")
    (tmp_path / "made").mkdir()
    file_mode, dir_mode = (stat.S_IMODE((tmp_path / name).stat().st_mode) for name in ("opened", "made"))
    assert (file_mode, dir_mode) == (0o666 & ~umask, 0o777 & ~umask)
    for force in ([], ["--force"]):  # a new directory, and one replacing an old one
        out = tmp_path / "hf"
        assert main(["export", "--run", str(runs / "gelu-tied"), str(out), *force]) == 0
        assert stat.S_IMODE(out.stat().st_mode) == dir_mode
        assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in out.iterdir()} == dict.fromkeys(
            ["README.md", "config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"], file_mode
        )


def fake_run(path, model_config, lm_head_bias=None):
    """A run directory written by the checkpoint API (no training): what export reads."""
    path.mkdir(parents=True)
    tokenizer = CharTokenizer.from_text(TEXT)
    if model_config.kind == "encoder":
        tokenizer = tokenizer.with_specials()
    model_config = dataclasses.replace(model_config, vocab_size=tokenizer.vocab_size)
    rundir.save_run_info(path, model_config, TrainConfig(), tokenizer, {"source": "text", "sha256": "0" * 64})
    model = build_model(model_config)
    if lm_head_bias is not None:
        torch.nn.init.constant_(model.lm_head.bias, lm_head_bias)
    rundir.save_weights(path / rundir.MODEL_FILE, model)
    return path


GPT = ModelConfig(block_size=16, n_embd=16, n_head=2, n_layer=1, dropout=0.0)


@pytest.mark.parametrize(
    "settings, named",
    [
        ({"position": "rotary"}, "rotary positions (position = rotary)"),
        ({"qk_norm": True}, "QK-norm (qk_norm = true)"),
        ({"activation": "relu2"}, "the relu2 activation"),
    ],
)
def test_what_gpt2_cannot_express_is_refused_by_name(tmp_path, capsys, settings, named):
    run = fake_run(tmp_path / "run", dataclasses.replace(GPT, **settings))
    assert fails(capsys, "export", "--run", run, tmp_path / "out") == (
        f"scratchgpt: error: cannot export {run}: GPT-2 cannot express {named}; train with --preset "
        f"gpt2-compatible, or with learned positions, no QK-norm and activation relu, gelu or gelu_tanh"
    )
    assert not (tmp_path / "out").exists()


def test_a_nonzero_lm_head_bias_is_refused_and_a_zero_one_exports(tmp_path, capsys):
    """The lecture's lm_head has a bias: it exports only while that bias is zero (GPT-2 has none)."""
    run = fake_run(tmp_path / "biased", GPT, lm_head_bias=0.1)
    assert fails(capsys, "export", "--run", run, tmp_path / "out") == (
        f"scratchgpt: error: cannot export {run}: GPT-2's lm_head has no bias and this model's is not zero "
        f"(lm_head_bias = true); train with --lm-head-bias false or --preset gpt2-compatible"
    )
    assert not (tmp_path / "out").exists()
    zero = fake_run(tmp_path / "zero", GPT, lm_head_bias=0.0)
    assert main(["export", "--run", str(zero), str(tmp_path / "out")]) == 0
    ours, tokenizer, _, _ = rundir.load_model(zero)
    ids = torch.tensor([tokenizer.encode(TEXT[:16])])
    with torch.no_grad():
        assert (hf_model(tmp_path / "out")(ids).logits - ours(ids)[0]).abs().max() < 1e-4


def test_other_model_families_are_refused(tmp_path, capsys):
    run = fake_run(tmp_path / "mlm", EncoderConfig(block_size=16, n_embd=16, n_head=2, n_layer=1))
    assert fails(capsys, "export", "--run", run, tmp_path / "out") == (
        f"scratchgpt: error: cannot export {run}: the encoder model has no GPT-2 form; only GPT runs export "
        f"to Hugging Face (train one with --preset gpt2-compatible)"
    )


def test_an_existing_directory_is_kept_unless_forced(runs, tmp_path, capsys):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    run = runs / "gelu-tied"
    assert fails(capsys, "export", "--run", run, out) == (
        f"scratchgpt: error: {out} already exists; pass --force to replace it, or choose another directory"
    )
    assert [p.name for p in out.iterdir()] == ["mine.txt"]
    assert main(["export", "--run", str(run), str(out), "--force"]) == 0
    assert not (out / "mine.txt").exists() and (out / "model.safetensors").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["taken"]  # no temporary directory left behind
    hf_model(out)


def test_a_run_without_a_kept_model_exports_its_latest_checkpoint(runs, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(runs / "gelu-tied", run)
    (run / rundir.MODEL_FILE).unlink()
    assert main(["export", "--run", str(run), str(tmp_path / "out")]) == 0
    assert "the checkpoint of step 12" in capsys.readouterr().err
    model = build_model(rundir.read_config(run)[0])
    rundir.load_checkpoint(run, model)
    ids = torch.tensor([rundir.load_model(runs / "gelu-tied")[1].encode(TEXT)])
    with torch.no_grad():
        assert (hf_model(tmp_path / "out")(ids).logits - model.eval()(ids)[0]).abs().max() < 1e-4


def test_a_run_still_training_exports_a_complete_model(root, tmp_path):
    """Export reads the kept model, which training replaces by an atomic rename: every export taken
    while the weights are rewritten many times a second is a whole model transformers loads."""
    run = tmp_path / "training"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "scratchgpt",
            "train",
            "--preset",
            "tiny",
            "--lm-head-bias",
            "false",
            "--max-iters",
            "100000",
            "--eval-interval",
            "2",
            "--eval-iters",
            "1",
            "--data",
            str(root / "text.txt"),
            "--out",
            str(run),
            "--quiet",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "SCRATCHGPT_CACHE": str(tmp_path / "cache")},
    )
    try:
        deadline = time.monotonic() + 120
        while not (run / rundir.MODEL_FILE).exists():
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr and proc.stderr.read()
            time.sleep(0.1)
        for i in range(3):
            out = tmp_path / f"out{i}"
            assert main(["export", "--run", str(run), str(out)]) == 0
            assert proc.poll() is None  # still training while we exported
            ids = torch.tensor([[0, 1, 2, 3]])
            with torch.no_grad():
                assert torch.isfinite(hf_model(out)(ids).logits).all()
            assert "Training had not finished" in (out / "README.md").read_text()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)


def test_export_without_the_hf_extra_says_how_to_get_it(runs, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tokenizers", None)  # as if not installed: importing it fails
    assert fails(capsys, "export", "--run", runs / "gelu-tied", tmp_path / "out") == (
        "scratchgpt: error: export --format hf needs Hugging Face tokenizers (not installed): "
        "pip install 'scratchgpt[hf]'"
    )
    assert not (tmp_path / "out").exists()


def test_queries_keys_and_values_with_biases_convert_between_faces():
    """qkv_bias (GPT-2's) on both faces: the readable face has per-head biases, fused alike."""
    fast = build_model(dataclasses.replace(GPT, vocab_size=20, qkv_bias=True))
    torch.nn.init.normal_(fast.blocks[0].sa.qkv.bias)
    readable = convert(fast, "readable")
    assert "blocks.0.sa.heads.1.value.bias" in readable.state_dict()
    idx = torch.randint(0, 20, (2, 16))
    torch.testing.assert_close(readable.eval()(idx)[0], fast.eval()(idx)[0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(
        convert(readable, "fast").state_dict()["blocks.0.sa.qkv.bias"], fast.state_dict()["blocks.0.sa.qkv.bias"]
    )


# ---------------------------------------------------------------------------------------------
# train --init-from a GPT-2 directory


def random_gpt2(path, text, tied=True, bin_file=False):
    """A tiny random GPT-2 (random biases and norms too, so that none is lost unseen) with a
    byte-level BPE trained on `text`, saved as transformers saves one."""
    bpe = tokenizers.Tokenizer(tokenizers.models.BPE())
    bpe.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = tokenizers.decoders.ByteLevel()
    bpe.train_from_iterator(
        [text],
        tokenizers.trainers.BpeTrainer(
            vocab_size=300,
            initial_alphabet=tokenizers.pre_tokenizers.ByteLevel.alphabet(),
            special_tokens=["<|endoftext|>"],
            show_progress=False,
        ),
    )
    torch.manual_seed(0)
    config = transformers.GPT2Config(
        n_layer=2,
        n_head=2,
        n_embd=32,
        n_positions=64,
        vocab_size=bpe.get_vocab_size(),
        tie_word_embeddings=tied,
        bos_token_id=0,
        eos_token_id=0,
    )
    model = transformers.GPT2LMHeadModel(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1:
                p.normal_(0.0, 0.1, generator=torch.Generator().manual_seed(len(name)))
    model.save_pretrained(path)
    transformers.PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|endoftext|>").save_pretrained(path)
    if bin_file:
        (path / "model.safetensors").unlink()
        torch.save(model.state_dict(), path / "pytorch_model.bin")
    return model


@pytest.mark.parametrize("tied, bin_file", [(True, False), (False, False), (True, True)])
def test_a_gpt2_loads_as_our_gpt_with_equal_logits(root, tmp_path, tied, bin_file):
    """Catches the same mapping errors as the export, backwards, and GPT-2's c_attn bias lost."""
    gpt2 = random_gpt2(tmp_path / "gpt2", (root / "text.txt").read_text()[:8000], tied, bin_file)
    ours, tokenizer, config = rundir.load_gpt2(tmp_path / "gpt2")
    assert (config.tie_embeddings, config.qkv_bias, config.lm_head_bias, config.activation) == (
        tied,
        True,
        False,
        "gelu_tanh",
    )
    ids = torch.tensor([tokenizer.encode(TEXT)])
    with torch.no_grad():
        assert (gpt2(ids).logits - ours(ids)[0]).abs().max() < 1e-5
        readable, _, _ = rundir.load_gpt2(
            tmp_path / "gpt2", dataclasses.replace(config, attention="readable", block_size=16)
        )
        assert (gpt2(ids[:, :16]).logits - readable(ids[:, :16])[0]).abs().max() < 1e-5


def test_train_init_from_a_gpt2_starts_from_its_weights_then_trains_and_samples(root, tmp_path, capsys):
    data = root / "text.txt"
    gpt2 = random_gpt2(tmp_path / "gpt2", data.read_text()[:8000])
    start = tmp_path / "start"
    assert (
        main(
            [
                "train",
                "--init-from",
                str(tmp_path / "gpt2"),
                "--data",
                str(data),
                "--max-iters",
                "0",
                "--eval-iters",
                "1",
                "--sample-tokens",
                "0",
                "--out",
                str(start),
                "--quiet",
            ]
        )
        == 0
    )
    model, tokenizer, config, info = rundir.load_model(start)
    assert config.block_size == 64 and info["pretrained"] == str((tmp_path / "gpt2").resolve())
    ids = torch.tensor([tokenizer.encode(TEXT)])
    with torch.no_grad():
        assert (gpt2(ids).logits - model(ids)[0]).abs().max() < 1e-5  # before training: GPT-2 itself

    tuned = tmp_path / "tuned"
    assert (
        main(
            [
                "train",
                "--init-from",
                str(tmp_path / "gpt2"),
                "--data",
                str(data),
                "--max-iters",
                "4",
                "--batch-size",
                "4",
                "--grad-accum",
                "2",
                "--block-size",
                "32",
                "--eval-interval",
                "2",
                "--eval-iters",
                "1",
                "--sample-tokens",
                "20",
                "--lr",
                "1e-3",
                "--out",
                str(tuned),
                "--quiet",
            ]
        )
        == 0
    )
    capsys.readouterr()
    records = [json.loads(line) for line in (tuned / "metrics.jsonl").read_text().splitlines()]
    assert records[-1]["kind"] == "final" and records[-1]["step"] == 4
    model, _, config, _ = rundir.load_model(tuned)
    assert config.block_size == 32 and not torch.equal(model.token_embedding_table.weight, gpt2.transformer.wte.weight)
    assert main(["sample", "--run", str(tuned), "--max-new-tokens", "10", "--prompt", "ROMEO:"]) == 0
    assert capsys.readouterr().out.startswith("ROMEO:")

    # and back out: a sub-word run exports with its own tokenizer.json
    assert main(["export", "--run", str(tuned), str(tmp_path / "hf")]) == 0
    assert (tmp_path / "hf" / "tokenizer.json").read_text() == (tuned / "tokenizer.json").read_text()
    hf_tok = hf_tokenizer(tmp_path / "hf")
    ids = hf_tok(TEXT[:30], return_tensors="pt").input_ids
    assert ids[0].tolist() == tokenizer.encode(TEXT[:30]) and hf_tok.decode(ids[0]) == TEXT[:30]
    with torch.no_grad():
        assert (hf_model(tmp_path / "hf")(ids).logits - model(ids)[0]).abs().max() < 1e-4


def test_init_from_refuses_a_directory_that_is_not_a_gpt2(root, runs, tmp_path, capsys):
    data = str(root / "text.txt")
    out = tmp_path / "out"

    def refused(source, *more):
        line = fails(capsys, "train", "--init-from", source, "--data", data, "--out", out, *more)
        assert not out.exists()  # nothing written
        return line

    assert refused(tmp_path / "nowhere") == (
        f"scratchgpt: error: {tmp_path / 'nowhere'}: no such directory (expected a Hugging Face GPT-2 directory)"
    )
    assert refused(runs / "gelu-tied") == (
        f"scratchgpt: error: {runs / 'gelu-tied'} is a scratchgpt run, not a Hugging Face GPT-2 directory "
        f"(export it with scratchgpt export, or continue it with train --resume)"
    )
    bert = tmp_path / "bert"
    bert.mkdir()
    (bert / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": 32}))
    assert refused(bert) == (
        f"scratchgpt: error: {bert} is not a GPT-2 directory (its config.json has model_type 'bert', expected 'gpt2')"
    )

    gpt2 = tmp_path / "gpt2"
    random_gpt2(gpt2, (root / "text.txt").read_text()[:8000])
    capsys.readouterr()  # transformers' progress bars
    config = json.loads((gpt2 / "config.json").read_text())
    (gpt2 / "config.json").write_text(json.dumps({**config, "scale_attn_by_inverse_layer_idx": True}))
    assert refused(gpt2) == (
        f"scratchgpt: error: {gpt2}: this GPT-2 has scale_attn_by_inverse_layer_idx, which our GPT cannot express"
    )
    (gpt2 / "config.json").write_text(json.dumps({**config, "n_embd": 64}))  # weights of another shape
    assert refused(gpt2) == (
        f"scratchgpt: error: {gpt2} is not GPT-2 shaped: wte.weight is (300, 32), "
        f"expected (300, 64) from its config.json"
    )
    (gpt2 / "config.json").write_text(json.dumps(config))
    assert refused(gpt2, "--n-layer", "4") == (
        f"scratchgpt: error: the model's shape and tokens come from {gpt2}; --n-layer applies to training "
        f"from scratch only"
    )
    assert refused(gpt2, "--block-size", "128") == (
        f"scratchgpt: error: --block-size 128 is longer than the 64 positions of {gpt2}"
    )
    assert refused(gpt2, "--model", "encoder") == (
        "scratchgpt: error: --init-from loads a GPT-2 into the GPT, not the encoder model"
    )
    assert fails(capsys, "train", "--preset", "gpt2-finetune", "--out", out) == (
        "scratchgpt: error: preset gpt2-finetune fine-tunes a GPT-2: use it with --init-from GPT2_DIR"
    )
    (gpt2 / "model.safetensors").write_bytes(b"not weights")
    assert refused(gpt2).startswith(f"scratchgpt: error: {gpt2 / 'model.safetensors'} is corrupt")
    (gpt2 / "model.safetensors").unlink()
    assert refused(gpt2) == (
        f"scratchgpt: error: {gpt2} holds no GPT-2 weights (model.safetensors or pytorch_model.bin)"
    )


def test_init_from_without_the_hf_extra_says_how_to_get_it(root, tmp_path, capsys, monkeypatch):
    gpt2 = tmp_path / "gpt2"
    random_gpt2(gpt2, (root / "text.txt").read_text()[:8000])
    capsys.readouterr()
    monkeypatch.setitem(sys.modules, "tokenizers", None)
    assert fails(capsys, "train", "--init-from", gpt2, "--out", tmp_path / "out") == (
        "scratchgpt: error: --init-from needs Hugging Face tokenizers (not installed): pip install 'scratchgpt[hf]'"
    )
