"""The one settings resolver: precedence, the rules between settings, and old names still read."""

import dataclasses
import json
from pathlib import Path

import pytest

from scratchgpt.config import ModelConfig, TrainConfig, apply_overrides, model_to_dict, preset, read_toml, to_dict
from scratchgpt.errors import ConfigError
from scratchgpt.rundir import FORMAT_VERSION, read_config
from scratchgpt.settings import Request, resolve

GPT2 = {  # what rundir.gpt2_settings reads from a small GPT-2 directory
    "vocab_size": 300,
    "block_size": 64,
    "n_embd": 32,
    "n_head": 2,
    "n_layer": 2,
    "position": "learned",
    "qk_norm": False,
    "activation": "gelu_tanh",
    "tie_embeddings": True,
    "lm_head_bias": False,
    "qkv_bias": True,
}


def refused(request, **readers):
    with pytest.raises(ConfigError) as e:
        resolve(request, **readers)
    return str(e.value)


def test_preset_then_toml_then_flags(tmp_path):
    toml = tmp_path / "s.toml"
    toml.write_text("[model]\nn_layer = 3\nn_head = 4\n[train]\nlr = 1e-3\n")
    model, train = resolve(Request("train", preset="tiny", config=toml, flags={"n_layer": 1}))
    assert (model.n_layer, model.n_head, train.lr) == (1, 4, 1e-3)
    assert model.n_embd == preset("tiny")[0].n_embd


def test_resume_takes_the_saved_settings_and_the_resumable_flags():
    saved = apply_overrides(*preset("tiny"), {"lr": 5e-3})
    model, train = resolve(
        Request("train", out=Path("run"), resume=True, flags={"max_iters": 99}), read_run=lambda run: saved
    )
    assert model == saved[0] and train == dataclasses.replace(saved[1], max_iters=99)


@pytest.mark.parametrize(
    "request_, message",
    [
        (
            Request("train", preset="cpu", out=Path("run"), resume=True),
            "--resume continues a run with its saved settings; drop --preset",
        ),
        (
            Request("train", out=Path("run"), resume=True, init_from=Path("gpt2")),
            "--init-from starts a new run; --resume continues one (drop --init-from)",
        ),
        (
            Request("train", kind="encoder", out=Path("run"), resume=True),
            "cannot resume run with changed settings (model: 'gpt' -> 'encoder')",
        ),
        (
            Request("train", preset="tiny", flags={"optimizer": "muon", "n_layer": 0}),
            "--optimizer muon updates the weight matrices inside transformer blocks, and this gpt model has none "
            "(--n-layer 0); use --optimizer adamw",
        ),
        (
            Request("train", init_from=Path("gpt2"), preset="tiny-encoder"),
            "preset 'tiny-encoder' is for the encoder model, not gpt; gpt presets: lecture, cpu, speedrun-cpu, "
            "speedrun-gpu, gpt2-compatible, gpt2-finetune, tiny",
        ),
        (
            Request("train", init_from=Path("gpt2"), flags={"tokenizer": "bpe"}),
            "the model's shape and tokens come from gpt2; --tokenizer applies to training from scratch only",
        ),
    ],
)
def test_each_rule_between_two_settings_names_both(request_, message):
    assert refused(request_, read_run=lambda run: preset("tiny"), read_gpt2=lambda path: GPT2) == message


def test_init_from_takes_the_gpt2s_shape_and_tokenizer_with_the_dropout_chosen():
    model, train = resolve(Request("train", init_from=Path("gpt2"), flags={"dropout": 0.1}), read_gpt2=lambda p: GPT2)
    assert model == ModelConfig(**GPT2, dropout=0.1)
    assert train.tokenizer == str(Path("gpt2/tokenizer.json").resolve())


# ---------------------------------------------------------------------------------------------
# TrainConfig.bpe_vocab_size was TrainConfig.vocab_size: the setting (flag, TOML key) keeps its
# name, and config.json written before the rename still loads.


def test_the_bpe_size_is_the_setting_vocab_size_in_a_toml_file(tmp_path):
    toml = tmp_path / "old.toml"
    toml.write_text('[train]\ntokenizer = "bpe"\nvocab_size = 512\n')
    model, train = apply_overrides(*preset("tiny"), read_toml(toml), str(toml))
    assert train.bpe_vocab_size == 512 and model.vocab_size == preset("tiny")[0].vocab_size


def test_a_run_recorded_before_the_rename_still_loads(tmp_path):
    train = TrainConfig(tokenizer="bpe", bpe_vocab_size=300)
    recorded = to_dict(train)
    assert recorded["bpe_vocab_size"] == 300
    old = {("vocab_size" if k == "bpe_vocab_size" else k): v for k, v in recorded.items()}
    (tmp_path / "config.json").write_text(
        json.dumps({"format_version": FORMAT_VERSION, "model": model_to_dict(ModelConfig()), "train": old})
    )
    assert read_config(tmp_path)[:2] == (ModelConfig(), train)
