"""scratchgpt: the transformers of the lecture, built from scratch in PyTorch.

The public API, by concept. Each name is imported from its module when first used, so that
`import scratchgpt.nn` (or `.models`, `.data`, `.inference`) loads that layer and the ones below
it, not the training loop or the command line.
"""

import importlib

_EXPORTS = {
    "nn.attention": ["Block", "DecoderBlock", "FeedForward", "Head", "MultiHeadAttention"],
    "nn.fused": ["FusedMultiHeadAttention"],
    "nn.kv_cache": ["KVCache"],
    "models.gpt": ["BigramLanguageModel", "GPTLanguageModel"],
    "models.encoder": ["EncoderModel"],
    "models.seq2seq": ["Seq2SeqModel"],
    "models.convert": ["convert"],
    "models.registry": ["build_model"],
    "config": ["PRESETS", "BigramConfig", "EncoderConfig", "ModelConfig", "Seq2SeqConfig", "TrainConfig", "preset"],
    "rundir": ["load_model", "load_run"],
    "data.corpus": ["get_batch", "prepare", "split"],
    "data.tokenizer": ["CharTokenizer", "PairTokenizer", "TextStream", "load_tokenizer"],
    "data.bpe": ["HFTokenizer", "train_bpe"],
    "errors": ["ScratchGPTError"],
    "inference.generate": ["generate", "sample_text", "sample_texts", "stream_text"],
    "inference.sampling": ["Sampling"],
    "inference.predict": ["fill", "predict"],
    "inference.beam": ["beam_search", "greedy"],
    "inference.translate": ["stream_translation", "translate"],
    "training.evaluate": ["estimate_loss", "evaluate_split"],
    "training.loop": ["train"],
    "evaluation": ["evaluate_run"],
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__version__ = "0.1.0"
__all__ = sorted(_MODULE_OF)


def __getattr__(name):
    if name not in _MODULE_OF:
        raise AttributeError(f"module 'scratchgpt' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_MODULE_OF[name]}"), name)
    globals()[name] = value  # found once, then an ordinary attribute
    return value


def __dir__():
    return sorted([*globals(), *__all__])
