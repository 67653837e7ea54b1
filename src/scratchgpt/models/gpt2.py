"""Our GPT in GPT-2's layout (Hugging Face's `GPT2LMHeadModel`) and back: one mapping, both ways.

The lecture's GPT and GPT-2 are the same network up to a few choices, which ModelConfig has as
settings: pre-norm blocks, learned positions, LayerNorm (eps 1e-5), a feed-forward of 4C,
attention scaled by 1/sqrt(hs). Weight by weight (i a block; our fast face):

    ours                                 GPT-2 (transformer.*)
    token_embedding_table.weight (V, C)  wte.weight
    position_embedding_table.weight      wpe.weight (n_positions, C)
    blocks.i.ln1, ln2 (weight, bias)     h.i.ln_1, h.i.ln_2
    blocks.i.sa.qkv.weight (3C, C)       h.i.attn.c_attn.weight (C, 3C): GPT-2's Conv1D stores
                                         (in, out), so every matrix is transposed; its columns are
                                         the queries of heads 0..nh-1, then keys, then values, as
                                         our rows are
    blocks.i.sa.qkv.bias (qkv_bias)      h.i.attn.c_attn.bias (3C,): zeros when we have none
    blocks.i.sa.proj                     h.i.attn.c_proj
    blocks.i.ffwd.net.0, net.2           h.i.mlp.c_fc, h.i.mlp.c_proj
    ln_f                                 ln_f
    lm_head.weight (untied only)         lm_head.weight; tied: GPT-2's default, wte read twice
    lm_head.bias (lm_head_bias)          none: GPT-2 has no such bias; only a zero one maps

What GPT-2 cannot express (rotary positions, QK-norm, ReLU², a nonzero lm_head bias; another
model family) is refused with the option named. Everything here works on plain state dicts and
settings dicts; rundir.py reads GPT-2 directories, export/hf.py writes them.
"""

import json
from pathlib import Path

import safetensors
import safetensors.torch
import torch

from ..errors import CheckpointError, ConfigError

# Our activation setting <-> GPT-2's `activation_function` (Hugging Face's names).
ACTIVATION_TO_GPT2 = {"relu": "relu", "gelu": "gelu", "gelu_tanh": "gelu_new"}
ACTIVATION_FROM_GPT2 = {
    "relu": "relu",
    "gelu": "gelu",
    "gelu_new": "gelu_tanh",
    "gelu_pytorch_tanh": "gelu_tanh",
    "gelu_fast": "gelu_tanh",
}
LAYER_NORM_EPS = 1e-5  # torch.nn.LayerNorm's default, which every LayerNorm of ours uses
# Settings of our GPT that come from a GPT-2; the rest (dropout, attention face) are the user's.
GPT2_SETTINGS = (
    "vocab_size",
    "block_size",
    "n_embd",
    "n_head",
    "n_layer",
    "position",
    "qk_norm",
    "activation",
    "tie_embeddings",
    "lm_head_bias",
    "qkv_bias",
)

_BLOCK = {  # ours (in blocks.i.) -> GPT-2's (in transformer.h.i.), and whether a Conv1D (transposed)
    "ln1.weight": ("ln_1.weight", False),
    "ln1.bias": ("ln_1.bias", False),
    "sa.qkv.weight": ("attn.c_attn.weight", True),
    "sa.proj.weight": ("attn.c_proj.weight", True),
    "sa.proj.bias": ("attn.c_proj.bias", False),
    "ln2.weight": ("ln_2.weight", False),
    "ln2.bias": ("ln_2.bias", False),
    "ffwd.net.0.weight": ("mlp.c_fc.weight", True),
    "ffwd.net.0.bias": ("mlp.c_fc.bias", False),
    "ffwd.net.2.weight": ("mlp.c_proj.weight", True),
    "ffwd.net.2.bias": ("mlp.c_proj.bias", False),
}
_TOP = {
    "token_embedding_table.weight": "wte.weight",
    "position_embedding_table.weight": "wpe.weight",
    "ln_f.weight": "ln_f.weight",
    "ln_f.bias": "ln_f.bias",
}


# ---------------------------------------------------------------------------------------------
# Ours -> GPT-2


def gpt2_obstacle(config):
    """Why a model of `config` cannot be written as a GPT-2 (one line naming the option and how to
    train one that can), or None. The lm_head bias is checked on the weights (to_gpt2_state)."""
    if config.kind != "gpt":
        return (
            f"the {config.kind} model has no GPT-2 form; only GPT runs export to Hugging Face "
            f"(train one with --preset gpt2-compatible)"
        )
    why = {
        config.position == "rotary": "rotary positions (position = rotary)",
        config.qk_norm: "QK-norm (qk_norm = true)",
        config.activation not in ACTIVATION_TO_GPT2: f"the {config.activation} activation",
    }
    for cannot, what in why.items():
        if cannot:
            return (
                f"GPT-2 cannot express {what}; train with --preset gpt2-compatible, or with learned "
                f"positions, no QK-norm and activation relu, gelu or gelu_tanh"
            )
    return None


def gpt2_config(config):
    """GPT-2's config.json (Hugging Face's GPT2Config) for our ModelConfig `config`."""
    why = gpt2_obstacle(config)
    if why:
        raise ConfigError(why)
    return {
        "architectures": ["GPT2LMHeadModel"],
        "model_type": "gpt2",
        "vocab_size": config.vocab_size,
        "n_positions": config.block_size,
        "n_embd": config.n_embd,
        "n_layer": config.n_layer,
        "n_head": config.n_head,
        "n_inner": None,
        "activation_function": ACTIVATION_TO_GPT2[config.activation],
        "layer_norm_epsilon": LAYER_NORM_EPS,
        "initializer_range": 0.02,
        # our dropout acts on attention weights and on both residual branches, never on embeddings
        "attn_pdrop": config.dropout,
        "resid_pdrop": config.dropout,
        "embd_pdrop": 0.0,
        "scale_attn_weights": True,
        "scale_attn_by_inverse_layer_idx": False,
        "reorder_and_upcast_attn": False,
        "add_cross_attention": False,
        "use_cache": True,
        "tie_word_embeddings": config.tie_embeddings,
        # no end-of-text token: our sampling never stops on one, so neither does generate()
        "bos_token_id": None,
        "eos_token_id": None,
        "pad_token_id": None,
        "torch_dtype": "float32",
    }


def to_gpt2_state(state, config):
    """Our fast-face state dict (tied weights present under both names) -> GPT-2's, every tensor
    float32 and contiguous; the tied lm_head is left out, as Hugging Face saves it."""
    gpt2_config(config)  # refuses what GPT-2 cannot express
    bias = state.get("lm_head.bias")
    if bias is not None and bool(bias.abs().max() > 0):
        raise ConfigError(
            "GPT-2's lm_head has no bias and this model's is not zero (lm_head_bias = "
            "true); train with --lm-head-bias false or --preset gpt2-compatible"
        )
    C = config.n_embd
    out = {f"transformer.{theirs}": state[ours] for ours, theirs in _TOP.items()}
    for i in range(config.n_layer):
        for ours, (theirs, conv1d) in _BLOCK.items():
            w = state[f"blocks.{i}.{ours}"]
            out[f"transformer.h.{i}.{theirs}"] = w.t() if conv1d else w
        qkv_bias = state.get(f"blocks.{i}.sa.qkv.bias")
        out[f"transformer.h.{i}.attn.c_attn.bias"] = (
            qkv_bias if qkv_bias is not None else torch.zeros(3 * C, dtype=state["ln_f.weight"].dtype)
        )
    if not config.tie_embeddings:
        out["lm_head.weight"] = state["lm_head.weight"]
    return {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in out.items()}


# ---------------------------------------------------------------------------------------------
# GPT-2 -> ours


def settings_from_gpt2(hf, where):
    """Our GPT settings ({name: value}, GPT2_SETTINGS) for GPT-2's config.json `hf`; a GPT-2 we
    cannot build exactly is refused, naming the option."""
    if not isinstance(hf, dict) or hf.get("model_type") != "gpt2":
        found = hf.get("model_type") if isinstance(hf, dict) else None
        raise CheckpointError(
            f"{where} is not a GPT-2 directory (its config.json has model_type {found!r}, expected 'gpt2')"
        )
    try:
        n_embd, n_head, n_layer = int(hf["n_embd"]), int(hf["n_head"]), int(hf["n_layer"])
        n_positions, vocab_size = int(hf["n_positions"]), int(hf["vocab_size"])
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{where}: its GPT-2 config.json lacks a valid {e}") from None
    activation = ACTIVATION_FROM_GPT2.get(hf.get("activation_function", "gelu_new"))
    checks = {
        activation is None: f"activation_function {hf.get('activation_function')!r}",
        hf.get("n_inner") not in (None, 4 * n_embd): f"n_inner {hf.get('n_inner')} (ours is 4 n_embd)",
        abs(float(hf.get("layer_norm_epsilon", 1e-5)) - LAYER_NORM_EPS)
        > 1e-12: f"layer_norm_epsilon {hf.get('layer_norm_epsilon')} (ours is {LAYER_NORM_EPS})",
        not hf.get("scale_attn_weights", True): "scale_attn_weights false",
        bool(hf.get("scale_attn_by_inverse_layer_idx", False)): "scale_attn_by_inverse_layer_idx",
        bool(hf.get("add_cross_attention", False)): "add_cross_attention",
    }
    for cannot, what in checks.items():
        if cannot:
            raise CheckpointError(f"{where}: this GPT-2 has {what}, which our GPT cannot express")
    return {
        "vocab_size": vocab_size,
        "block_size": n_positions,
        "n_embd": n_embd,
        "n_head": n_head,
        "n_layer": n_layer,
        "position": "learned",
        "qk_norm": False,
        "activation": activation,
        "tie_embeddings": bool(hf.get("tie_word_embeddings", True)),
        "lm_head_bias": False,
        "qkv_bias": True,
    }


def from_gpt2_state(hf_state, config, where):
    """GPT-2's state dict (with or without the `transformer.` prefix, as GPT2LMHeadModel or
    GPT2Model saves it) -> our fast-face state dict for `config` (made by settings_from_gpt2,
    possibly with a shorter block_size: the position table is cut to it, as nanoGPT's
    crop_block_size does). Shapes are checked; GPT-2's attention-mask buffers are ignored."""
    state = {}
    for key, value in hf_state.items():
        key = key.removeprefix("transformer.")
        if key.endswith((".attn.bias", ".attn.masked_bias")):
            continue  # old GPT-2 files keep the causal mask as a buffer
        state[key] = value
    C, V = config.n_embd, config.vocab_size
    out = {}

    def take(theirs, shape, conv1d=False):
        if theirs not in state:
            raise CheckpointError(f"{where} is not GPT-2 shaped: its weights lack {theirs}")
        w = state.pop(theirs)
        w = w.t() if conv1d else w
        if tuple(w.shape) != shape:
            raise CheckpointError(
                f"{where} is not GPT-2 shaped: {theirs} is {tuple(w.shape)}, expected {shape} from its config.json"
            )
        return w.to(torch.float32).contiguous()

    out["token_embedding_table.weight"] = take("wte.weight", (V, C))
    wpe = state.get("wpe.weight")
    rows = wpe.shape[0] if wpe is not None else config.block_size
    if rows < config.block_size:
        raise CheckpointError(f"{where} has {rows} positions; block_size {config.block_size} cannot be longer")
    out["position_embedding_table.weight"] = take("wpe.weight", (rows, C))[: config.block_size].contiguous()
    for name in ("ln_f.weight", "ln_f.bias"):
        out[name] = take(name, (C,))
    shapes = {
        "ln1.weight": (C,),
        "ln1.bias": (C,),
        "sa.qkv.weight": (3 * C, C),
        "sa.proj.weight": (C, C),
        "sa.proj.bias": (C,),
        "ln2.weight": (C,),
        "ln2.bias": (C,),
        "ffwd.net.0.weight": (4 * C, C),
        "ffwd.net.0.bias": (4 * C,),
        "ffwd.net.2.weight": (C, 4 * C),
        "ffwd.net.2.bias": (C,),
    }
    for i in range(config.n_layer):
        for ours, (theirs, conv1d) in _BLOCK.items():
            out[f"blocks.{i}.{ours}"] = take(f"h.{i}.{theirs}", shapes[ours], conv1d)
        bias = take(f"h.{i}.attn.c_attn.bias", (3 * C,))
        if config.qkv_bias:
            out[f"blocks.{i}.sa.qkv.bias"] = bias
    lm_head = state.pop("lm_head.weight", None)
    if config.tie_embeddings:
        out["lm_head.weight"] = out["token_embedding_table.weight"]
    elif lm_head is None:
        raise CheckpointError(f"{where} is not GPT-2 shaped: untied (tie_word_embeddings false) but no lm_head.weight")
    else:
        state["lm_head.weight"] = lm_head
        out["lm_head.weight"] = take("lm_head.weight", (V, C))
    extra = sorted(state)  # everything not taken: more layers than n_layer, or foreign weights
    if extra:
        raise CheckpointError(
            f"{where} is not GPT-2 shaped: unexpected weights {', '.join(extra[:3])}"
            f"{' and more' if len(extra) > 3 else ''}"
        )
    return out


def is_hf_dir(path):
    """Whether `path` is a Hugging Face model directory (its config.json names a model_type),
    rather than one of our run directories (whose config.json has a format_version)."""
    try:
        hf = json.loads((Path(path) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(hf, dict) and "model_type" in hf and "format_version" not in hf


def read_gpt2_config(path):
    """The config.json of the Hugging Face directory `path`, as a dict."""
    path = Path(path)
    if not path.is_dir():
        raise CheckpointError(f"{path}: no such directory (expected a Hugging Face GPT-2 directory)")
    try:
        hf = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"{path} is not a Hugging Face GPT-2 directory (no config.json)") from None
    except (OSError, ValueError) as e:
        raise CheckpointError(f"cannot read {path / 'config.json'}: {e}") from None
    if isinstance(hf, dict) and "format_version" in hf:
        raise CheckpointError(
            f"{path} is a scratchgpt run, not a Hugging Face GPT-2 directory (export it "
            f"with scratchgpt export, or continue it with train --resume)"
        )
    return hf


def read_gpt2(path):
    """(config.json as a dict, state dict) of a Hugging Face GPT-2 directory: model.safetensors
    (or its shards, by model.safetensors.index.json), else pytorch_model.bin, which is loaded with
    weights_only=True (tensors only, never arbitrary objects)."""
    path = Path(path)
    hf = read_gpt2_config(path)
    if (path / "model.safetensors").exists():
        files = [path / "model.safetensors"]
    elif (path / "model.safetensors.index.json").exists():
        try:
            index = json.loads((path / "model.safetensors.index.json").read_text(encoding="utf-8"))
            files = [path / name for name in sorted(set(index["weight_map"].values()))]
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            raise CheckpointError(f"cannot read {path / 'model.safetensors.index.json'}: {e}") from None
    elif (path / "pytorch_model.bin").exists():
        files = [path / "pytorch_model.bin"]
    else:
        raise CheckpointError(f"{path} holds no GPT-2 weights (model.safetensors or pytorch_model.bin)")
    state = {}
    for file in files:
        try:
            if file.suffix == ".bin":
                part = torch.load(file, map_location="cpu", weights_only=True)
            else:
                part = safetensors.torch.load_file(str(file), device="cpu")
        except FileNotFoundError:
            raise CheckpointError(f"{path} lacks {file.name}, which its index names") from None
        except (OSError, safetensors.SafetensorError, RuntimeError, ValueError, EOFError) as e:
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise CheckpointError(f"{file} is corrupt or not a weights file: {first}") from None
        except Exception as e:  # torch.load's UnpicklingError for anything but plain tensors
            raise CheckpointError(f"{file} is not a plain-tensor weights file ({type(e).__name__})") from None
        if not isinstance(part, dict) or not all(isinstance(v, torch.Tensor) for v in part.values()):
            raise CheckpointError(f"{file} is not a state dict of tensors")
        state.update(part)
    return hf, state
