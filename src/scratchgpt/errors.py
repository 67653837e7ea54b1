"""The one error family of scratchgpt.

Every problem a user can cause (a bad setting, a missing file, a character outside the vocabulary)
raises a `ScratchGPTError` with a one-line message. The CLI prints that line and exits with code 2;
anything else is a bug and keeps its traceback.
"""


class ScratchGPTError(Exception):
    """A problem with the user's input, explained in one line."""

    exit_code = 2


class ConfigError(ScratchGPTError):
    """An unknown setting or an invalid value."""


class DataError(ScratchGPTError):
    """A corpus that cannot be used: missing, empty, binary, not UTF-8, or too short."""


class InputError(ScratchGPTError, ValueError):
    """Model inputs that do not fit the model, e.g. a sequence longer than block_size."""


class TokenizerError(ScratchGPTError):
    """Text that the tokenizer cannot encode, or a tokenizer file it cannot read."""


class CheckpointError(ScratchGPTError):
    """A run directory without a model, or with files this version cannot read."""


class MissingExtra(ScratchGPTError):
    """A feature whose optional dependencies (an extra such as `viz`) are not installed."""


class TrainingDiverged(ScratchGPTError):
    """The loss or the weights stopped being finite; nothing after the last good checkpoint is saved."""


class TrainingInterrupted(ScratchGPTError):
    """Training stopped by a signal after saving a checkpoint; exits 128 + the signal number."""

    def __init__(self, message, exit_code):
        super().__init__(message)
        self.exit_code = exit_code


def a_or_an(word):
    """`word` with its article, for messages: "a gpt", "an encoder"."""
    return f"{'an' if word[0] in 'aeiou' else 'a'} {word}"


class DistributedError(ScratchGPTError):
    """Another process of a torchrun run died or cannot be reached; the last checkpoint is kept."""

    exit_code = 1
