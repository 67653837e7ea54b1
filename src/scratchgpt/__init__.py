"""scratchgpt: a GPT built from scratch in PyTorch, the way the lecture builds it.

The public API, by concept (each lives in the module of the same name):
"""

from .attention import FusedMultiHeadAttention, Head, KVCache, MultiHeadAttention
from .blocks import Block, FeedForward
from .checkpoint import load_model
from .config import PRESETS, BigramConfig, ModelConfig, TrainConfig, preset
from .data import get_batch, prepare, split
from .errors import ScratchGPTError
from .evaluate import estimate_loss, evaluate_split
from .generate import generate, sample_text, sample_texts, stream_text
from .gpt import BigramLanguageModel, GPTLanguageModel, convert
from .tokenizer import CharTokenizer
from .train import train

__version__ = "0.1.0"

__all__ = [
    "BigramConfig", "BigramLanguageModel", "Block", "CharTokenizer", "FeedForward", "FusedMultiHeadAttention",
    "GPTLanguageModel", "Head", "KVCache", "ModelConfig", "MultiHeadAttention", "PRESETS", "ScratchGPTError",
    "TrainConfig", "convert", "estimate_loss", "evaluate_split", "generate", "get_batch",
    "load_model", "prepare", "preset", "sample_text", "sample_texts", "split", "stream_text", "train",
]
