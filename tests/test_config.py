"""Settings: presets, overrides, TOML files, validation and `from_dict`."""

import dataclasses
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scratchgpt.config import (
    MODEL_KINDS,
    PRESET_NAMES,
    PRESETS,
    BigramConfig,
    ModelConfig,
    TrainConfig,
    apply_overrides,
    from_dict,
    model_from_dict,
    model_to_dict,
    preset,
    read_toml,
    setting_fields,
    to_dict,
)
from scratchgpt.errors import ConfigError

FAST = settings(max_examples=60, deadline=None, database=None)


# ---------------------------------------------------------------------------------------------
# Presets


@pytest.mark.parametrize("name", PRESET_NAMES)
@pytest.mark.parametrize("has_gpu", [False, True])
def test_every_preset_builds(name, has_gpu):
    model, train = preset(name, has_gpu=has_gpu)
    assert isinstance(model, MODEL_KINDS[model.kind])
    assert isinstance(train, TrainConfig)
    # rebuilding from the recorded values validates them again
    assert type(model)(**to_dict(model)) == model
    assert TrainConfig(**to_dict(train)) == train


def test_preset_names_cover_all_presets():
    assert set(PRESET_NAMES) == {"auto", *PRESETS}
    assert {"lecture", "cpu", "tiny"} <= set(PRESETS)


def test_auto_preset_picks_by_hardware():
    assert preset("auto", has_gpu=False) == preset("cpu")
    assert preset("auto", has_gpu=True) == preset("lecture")
    assert preset("auto", has_gpu=False) != preset("lecture")


def test_a_model_family_picks_its_own_preset_and_refuses_another_familys():
    assert preset(kind="bigram") == preset("bigram")
    assert preset(kind="gpt") == preset("cpu")  # the GPT's default is auto: cpu without a GPU
    with pytest.raises(ConfigError, match="preset 'cpu' is for the gpt model, not bigram; bigram presets: bigram"):
        preset("cpu", kind="bigram")
    with pytest.raises(ConfigError, match="unknown model 'lstm'"):
        preset(kind="lstm")


def test_bigram_preset_is_the_lectures_bigram_py():
    model, train = preset("bigram")
    assert model == BigramConfig(block_size=8)
    assert (train.batch_size, train.max_iters, train.lr, train.eval_interval, train.eval_iters) == (
        32,
        3000,
        1e-2,
        300,
        200,
    )
    assert train.schedule == "constant" and train.warmup_iters == 0


def test_a_setting_of_another_model_family_is_named():
    model, train = preset("bigram")
    assert apply_overrides(model, train, {"block_size": 16})[0].block_size == 16
    with pytest.raises(ConfigError, match="n_layer is not a setting of the bigram model"):
        apply_overrides(model, train, {"n_layer": 2})


def test_config_json_records_the_model_kind_and_old_runs_are_gpts():
    for model, _ in PRESETS.values():
        assert model_from_dict(model_to_dict(model)) == model
    assert model_to_dict(BigramConfig())["kind"] == "bigram"
    assert model_from_dict(to_dict(ModelConfig())) == ModelConfig()  # written before kinds existed
    with pytest.raises(ConfigError, match="unknown model kind 'lstm'"):
        model_from_dict({"kind": "lstm"})


def test_lecture_preset_is_the_lecture_exactly():
    model, train = preset("lecture")
    assert (model.n_embd, model.n_head, model.n_layer, model.block_size) == (384, 6, 6, 256)
    assert model.dropout == 0.2
    assert train.batch_size == 64
    assert train.lr == 3e-4
    assert train.schedule == "constant"
    assert train.warmup_iters == 0
    assert train.grad_clip == 0
    assert train.max_iters == 5000
    assert train.eval_interval == 500
    assert train.eval_iters == 200


def test_unknown_preset_raises_naming_it():
    with pytest.raises(ConfigError, match="nosuchpreset"):
        preset("nosuchpreset")
    with pytest.raises(ConfigError, match="nosuchpreset"):
        preset("nosuchpreset", has_gpu=True)


# ---------------------------------------------------------------------------------------------
# Overrides


def test_apply_overrides_later_wins():
    model, train = preset("tiny")
    from_toml = {"n_layer": 3, "lr": 5e-4, "batch_size": 4}
    from_cli = {"n_layer": 1, "lr": 2e-3}
    model, train = apply_overrides(model, train, from_toml, source="config.toml")
    model, train = apply_overrides(model, train, from_cli)
    assert model.n_layer == 1
    assert train.lr == 2e-3
    assert train.batch_size == 4  # set only by the TOML file, kept
    assert model.n_embd == preset("tiny")[0].n_embd  # set by neither, from the preset


def test_apply_overrides_does_not_mutate_inputs():
    model, train = preset("tiny")
    new_model, new_train = apply_overrides(model, train, {"n_layer": 5, "max_iters": 7})
    assert (new_model.n_layer, new_train.max_iters) == (5, 7)
    assert (model.n_layer, train.max_iters) == (preset("tiny")[0].n_layer, preset("tiny")[1].max_iters)


def test_apply_overrides_unknown_setting_raises_naming_it():
    model, train = preset("tiny")
    with pytest.raises(ConfigError, match="learning_rate"):
        apply_overrides(model, train, {"learning_rate": 1e-3})
    with pytest.raises(ConfigError, match="my.toml"):
        apply_overrides(model, train, {"bogus": 1}, source="my.toml")


def test_a_refused_setting_is_named_as_its_source_gives_it():
    """On the command line a setting is its flag; from a file, its name, and the file is said."""
    model, train = preset("tiny")
    for source, message in [
        ("command line", "--max-time must be at least 0, got -1.0"),
        ("s.toml", "max_time must be at least 0, got -1.0 (in s.toml)"),
        (None, "max_time must be at least 0, got -1.0"),
    ]:
        with pytest.raises(ConfigError) as e:
            apply_overrides(model, train, {"max_time": -1}, source)
        assert str(e.value) == message
    for overrides, message in [  # only the settings given are renamed, only where they are words
        ({"grad_accum": 3}, "batch_size (8) must be divisible by --grad-accum (3)"),
        ({"n_layer": -1}, "--n-layer must be at least 0, got -1"),
        (
            {"tokenizer": "char", "vocab_size": 512},
            "--vocab-size is for --tokenizer bpe (a character vocabulary "
            "is the text's characters; a tokenizer.json has its own size)",
        ),
        ({"device": "foo"}, "unknown device 'foo'; use auto"),
    ]:
        with pytest.raises(ConfigError) as e:
            apply_overrides(model, train, overrides, "command line")
        assert str(e.value).startswith(message)


def test_a_setting_of_several_families_lists_every_choice_and_whose_it_is():
    fields = {s.name: s for s in setting_fields()}
    assert fields["position"].choices == ("learned", "rotary", "sinusoidal")
    assert fields["position"].help.endswith("; sinusoidal: encoder, seq2seq only")
    assert fields["position"].section == "gpt, encoder, seq2seq"
    assert fields["activation"].help.endswith("; gelu_tanh: gpt only")
    assert fields["n_layer"].help == "number of transformer blocks"  # every family's choices alike: no note


def test_the_models_vocab_size_is_not_user_settable():
    """The model's V comes from its tokenizer; the setting vocab_size asks a BPE for a size (issue 15)."""
    model, train = preset("tiny")
    with pytest.raises(ConfigError, match="--vocab-size is for --tokenizer bpe"):
        apply_overrides(model, train, {"vocab_size": 100})
    model2, train2 = apply_overrides(model, train, {"tokenizer": "bpe", "vocab_size": 1024})
    assert model2.vocab_size == model.vocab_size and train2.bpe_vocab_size == 1024


def test_apply_overrides_validates_result():
    model, train = preset("tiny")
    with pytest.raises(ConfigError):
        apply_overrides(model, train, {"n_head": 3})  # tiny's n_embd 32 is not divisible by 3
    with pytest.raises(ConfigError):
        apply_overrides(model, train, {"lr": -1.0})


# ---------------------------------------------------------------------------------------------
# TOML files


def test_read_toml_tables(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('[model]\nn_layer = 3\nattention = "readable"\n\n[train]\nlr = 1e-3\nschedule = "cosine"\n')
    assert read_toml(path) == {"n_layer": 3, "attention": "readable", "lr": 1e-3, "schedule": "cosine"}


def test_read_toml_flat_keys(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text("n_layer = 3\nlr = 0.001\nbatch_size = 16\n")
    assert read_toml(path) == {"n_layer": 3, "lr": 0.001, "batch_size": 16}


def test_read_toml_then_apply(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text("[model]\nn_layer = 3\n\n[train]\nlr = 1\n")
    model, train = apply_overrides(*preset("tiny"), read_toml(path), source=str(path))
    assert model.n_layer == 3
    assert train.lr == 1.0 and isinstance(train.lr, float)


def test_read_toml_unknown_key_in_table_raises(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text("[model]\nfoo = 1\n")
    with pytest.raises(ConfigError, match=r"model\.foo"):
        read_toml(path)


def test_read_toml_invalid_toml_raises(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("[model\nn_layer = = 3\n")
    with pytest.raises(ConfigError, match="TOML"):
        read_toml(path)


def test_read_toml_missing_file_raises(tmp_path):
    path = tmp_path / "absent.toml"
    with pytest.raises(ConfigError, match="absent.toml"):
        read_toml(path)


# ---------------------------------------------------------------------------------------------
# Validation


@pytest.mark.parametrize(
    "cls, kwargs",
    [
        (ModelConfig, {"n_embd": 30, "n_head": 4}),
        (ModelConfig, {"block_size": 0}),
        (ModelConfig, {"dropout": 1.0}),
        (ModelConfig, {"dropout": -0.1}),
        (ModelConfig, {"n_layer": "4"}),
        (ModelConfig, {"n_layer": True}),
        (ModelConfig, {"n_embd": 384.0}),
        (ModelConfig, {"attention": "sparse"}),
        (TrainConfig, {"lr": 0.0}),
        (TrainConfig, {"lr": -3e-4}),
        (TrainConfig, {"lr": float("nan")}),
        (TrainConfig, {"lr": float("inf")}),
        (TrainConfig, {"lr": "3e-4"}),
        (TrainConfig, {"schedule": "linear"}),
        (TrainConfig, {"dtype": "float16"}),
        (TrainConfig, {"batch_size": False}),
        (TrainConfig, {"device": "tpu"}),
    ],
    ids=lambda v: repr(v) if isinstance(v, dict) else v.__name__,
)
def test_invalid_values_raise(cls, kwargs):
    with pytest.raises(ConfigError):
        cls(**kwargs)


def test_error_names_the_bad_field():
    with pytest.raises(ConfigError, match="n_layer"):
        ModelConfig(n_layer="4")
    with pytest.raises(ConfigError, match="schedule"):
        TrainConfig(schedule="linear")


def test_defaults_are_valid():
    assert ModelConfig() == ModelConfig()
    assert TrainConfig() == TrainConfig()


@FAST
@given(st.integers(max_value=0))
def test_block_size_below_one_raises(block_size):
    with pytest.raises(ConfigError):
        ModelConfig(block_size=block_size)


@FAST
@given(st.floats(max_value=0.0))
def test_nonpositive_lr_raises(lr):
    with pytest.raises(ConfigError):
        TrainConfig(lr=lr)


@FAST
@given(n_head=st.integers(1, 64), multiple=st.integers(1, 64))
def test_divisible_width_is_accepted(n_head, multiple):
    config = ModelConfig(n_embd=n_head * multiple, n_head=n_head)
    assert config.n_embd // config.n_head == multiple


@FAST
@given(n_head=st.integers(2, 64), multiple=st.integers(1, 64), offset=st.integers(1, 63))
def test_indivisible_width_raises(n_head, multiple, offset):
    n_embd = n_head * multiple + offset % n_head
    if n_embd % n_head == 0:
        n_embd += 1
    with pytest.raises(ConfigError):
        ModelConfig(n_embd=n_embd, n_head=n_head)


@FAST
@given(st.integers(1, 1000))
def test_int_lr_is_stored_as_float(lr):
    config = TrainConfig(lr=lr)
    assert isinstance(config.lr, float)
    assert config.lr == float(lr)


@FAST
@given(weight_decay=st.integers(0, 100), grad_clip=st.integers(0, 100))
def test_int_for_other_float_fields_is_stored_as_float(weight_decay, grad_clip):
    config = TrainConfig(weight_decay=weight_decay, grad_clip=grad_clip)
    assert isinstance(config.weight_decay, float) and config.weight_decay == weight_decay
    assert isinstance(config.grad_clip, float) and config.grad_clip == grad_clip
    model = ModelConfig(dropout=0)
    assert isinstance(model.dropout, float) and model.dropout == 0.0


@FAST
@given(st.floats(min_value=0.0, max_value=1.0, exclude_max=True))
def test_dropout_in_range_is_accepted(dropout):
    assert ModelConfig(dropout=dropout).dropout == dropout


@FAST
@given(
    value=st.sampled_from([math.nan, math.inf, -math.inf]),
    name=st.sampled_from(["lr", "min_lr_ratio", "weight_decay", "beta1", "beta2", "grad_clip"]),
)
def test_non_finite_floats_raise(value, name):
    with pytest.raises(ConfigError, match=name):
        TrainConfig(**{name: value})


# ---------------------------------------------------------------------------------------------
# Round trip through config.json


def test_from_dict_round_trip():
    for name in PRESETS:
        model, train = preset(name)
        assert from_dict(type(model), to_dict(model)) == model
        assert from_dict(TrainConfig, to_dict(train)) == train


def test_from_dict_refuses_unknown_keys():
    values = {**to_dict(ModelConfig()), "rotary": True}
    with pytest.raises(ConfigError, match="rotary"):
        from_dict(ModelConfig, values)
    train_values = {**to_dict(TrainConfig()), "n_embd": 384}  # a model key in the train section
    with pytest.raises(ConfigError, match="n_embd"):
        from_dict(TrainConfig, train_values)


def test_from_dict_validates_values():
    values = {**to_dict(TrainConfig()), "schedule": "linear"}
    with pytest.raises(ConfigError):
        from_dict(TrainConfig, values)


def test_configs_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        ModelConfig().n_layer = 2
