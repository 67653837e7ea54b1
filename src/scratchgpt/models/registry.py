"""Which model class each family (`config.kind`) is built with."""

from .encoder import EncoderModel
from .gpt import BigramLanguageModel, GPTLanguageModel
from .seq2seq import Seq2SeqModel

MODELS = {"gpt": GPTLanguageModel, "bigram": BigramLanguageModel, "encoder": EncoderModel, "seq2seq": Seq2SeqModel}


def build_model(config):
    """A new, initialised model of the family `config.kind`, shaped by `config`."""
    return MODELS[config.kind](config)
