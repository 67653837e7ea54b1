"""The corpus: its text, its token file, the train/val split and the batches X, Y.

1. `corpus_path()` finds the text: `--data PATH`, else `$SCRATCHGPT_DATA`, else Tiny Shakespeare,
   which ships inside the package (compressed) and is unpacked once into the cache, checked by sha256.
2. `prepare()` encodes the text once into a token file (a numpy memmap, uint16 while the vocabulary
   fits, else uint32) with its tokenizer beside it, under the cache, keyed by the text's sha256 (and,
   for sub-word tokens, by the tokenizer's hash): the same text is never encoded twice with one
   tokenizer, and the user's file is never written to. A byte-level BPE (`vocab_size`) is trained
   on the training split only, streamed, and cached too.
3. `Corpus.split()` keeps the first 90% of the characters for training and the last 10% for
   validation, as the lecture does: with sub-word tokens the split is still made in the text, so
   every tokenizer is validated on the very same characters.
4. `get_batch()` draws B random windows: X = data[i:i+T], Y = data[i+1:i+T+1] (Y is X shifted by one).
"""

import bz2
import codecs
import hashlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError, ScratchGPTError
from ..files import atomic_write, sha256_file
from .bpe import HFTokenizer, train_bpe
from .tokenizer import CharTokenizer, load_tokenizer, save_tokenizer

TINY_SHAKESPEARE = resources.files("scratchgpt.data") / "tinyshakespeare.txt.bz2"  # 0.33 MB, shipped
TINY_SHAKESPEARE_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
TOKEN_FORMAT = 1  # bump when the token file layout changes, so old caches are rebuilt
TRAIN_FRACTION = 0.9  # of the characters: the lecture's split


def cache_dir():
    """`$SCRATCHGPT_CACHE`, else `$XDG_CACHE_HOME/scratchgpt`, else `~/.cache/scratchgpt`."""
    if os.environ.get("SCRATCHGPT_CACHE"):
        return Path(os.environ["SCRATCHGPT_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "scratchgpt"


# ---------------------------------------------------------------------------------------------
# Finding the corpus


def corpus_path(data=None):
    """The text file to train on (see the module docstring for the order of choices)."""
    if data is not None:
        return Path(data)
    if os.environ.get("SCRATCHGPT_DATA"):
        return Path(os.environ["SCRATCHGPT_DATA"])
    return tiny_shakespeare()


def tiny_shakespeare():
    """Tiny Shakespeare, unpacked once from the package into the cache and checked by its sha256:
    no network needed. Returns the path of the unpacked text."""
    dest = cache_dir() / "tinyshakespeare" / "input.txt"
    if dest.is_file() and sha256_file(dest) == TINY_SHAKESPEARE_SHA256:
        return dest
    try:
        text = bz2.decompress(TINY_SHAKESPEARE.read_bytes())
    except (OSError, ValueError) as e:
        raise DataError(
            f"the Tiny Shakespeare shipped with scratchgpt cannot be read ({e}); "
            f"reinstall the package, or train on a file with --data PATH"
        ) from None
    if hashlib.sha256(text).hexdigest() != TINY_SHAKESPEARE_SHA256:
        raise DataError(
            "the Tiny Shakespeare shipped with scratchgpt is damaged (its sha256 does not "
            "match); reinstall the package, or train on a file with --data PATH"
        )
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(dest, lambda tmp: Path(tmp).write_bytes(text))
    except OSError as e:
        raise DataError(f"cannot write {dest} ({e.strerror}); set SCRATCHGPT_CACHE to a writable folder") from None
    return dest


# ---------------------------------------------------------------------------------------------
# Reading and encoding the corpus once


@dataclass(frozen=True)
class Corpus:
    """An encoded text: all its tokens (memmapped) and the tokenizer that made them."""

    tokens: np.ndarray  # (N,) uint16 or uint32, memmapped
    tokenizer: CharTokenizer | HFTokenizer
    source: str  # the text file it came from
    sha256: str  # of that file's bytes
    split_at: int  # tokens[:split_at] encode the training text (the first 90% of its characters)

    def split(self):
        """(training tokens, validation tokens): the first 90% of the text's characters, the last 10%."""
        return self.tokens[: self.split_at], self.tokens[self.split_at :]


READ_BYTES = 1 << 22  # bytes per read when encoding: bounds the memory whatever the file's size


def read_text(path):
    """(text, sha256) of a UTF-8 file, or a DataError saying exactly what is wrong with it."""
    path = _check_file(path)
    text = "".join(_text_pieces(path))
    return text, sha256_file(path)


def _check_file(path):
    path = Path(path)
    if not path.exists():
        raise DataError(f"data file not found: {path}")
    if not path.is_file():
        raise DataError(f"data path is not a file: {path}")
    if path.stat().st_size == 0:
        raise DataError(f"data file is empty: {path}")
    return path


def _text_pieces(path):
    """The text of the file, in pieces of about READ_BYTES, checked: UTF-8 and no NUL bytes."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0  # of the next byte to read
    try:
        with open(path, "rb") as f:
            while raw := f.read(READ_BYTES):
                if b"\x00" in raw:
                    raise DataError(f"data file looks binary (it contains NUL bytes): {path}")
                start = offset - len(decoder.getstate()[0])  # where the decoder's input begins
                offset += len(raw)
                try:
                    yield decoder.decode(raw)
                except UnicodeDecodeError as e:
                    raise DataError(
                        f"data file is not UTF-8 text (invalid byte at offset {start + e.start}): {path}"
                    ) from None
            try:
                decoder.decode(b"", final=True)
            except UnicodeDecodeError as e:
                raise DataError(
                    f"data file is not UTF-8 text (it ends inside a character at offset "
                    f"{offset - len(decoder.getstate()[0]) + e.start}): {path}"
                ) from None
    except OSError as e:
        raise DataError(f"cannot read data file {path}: {e.strerror}") from None


def prepare(path, tokenizer=None, vocab_size=None):
    """Encode the text at `path` once; later calls with the same text reuse the token file.

    The tokens are the text's characters; or, with `vocab_size`, those of a byte-level BPE of that
    many tokens trained on the training split (cached as well); or those of `tokenizer`, a
    Hugging Face one (HFTokenizer) used as it is.

    Streamed and vectorised: a 100 MB file takes seconds, and memory stays bounded whatever the
    file's size (one piece's code points at a time; the tokens go straight to the file).
    """
    path = _check_file(path)
    sha = sha256_file(path)
    if tokenizer is not None or vocab_size is not None:
        return _prepare_subwords(path, sha, tokenizer, vocab_size)

    def write(folder):
        seen = np.zeros(0x110000, dtype=bool)  # one flag per Unicode code point
        for piece in _text_pieces(path):
            seen[_codepoints(piece)] = True
        tokenizer = CharTokenizer([chr(c) for c in np.flatnonzero(seen)])  # sorted, as the lecture's
        _write_prepared(folder, path, tokenizer, sha)

    return _cached(cache_dir() / "tokens" / sha[:32], sha, path, write)


def _cached(folder, sha, path, write):
    """The Corpus cached in `folder`, made first by write(folder) when it is not there yet."""
    corpus = _load_prepared(folder, sha, path)
    if corpus is not None:
        return corpus
    try:
        write(folder)
    except OSError as e:
        corpus = _load_prepared(folder, sha, path)  # another process may have just written it
        if corpus is None:
            raise DataError(
                f"cannot write the token cache in {folder.parent} ({e.strerror}); "
                f"set SCRATCHGPT_CACHE to a writable folder"
            ) from None
        return corpus
    return _load_prepared(folder, sha, path)


def _codepoints(text):
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)  # (N,) one per character


def _write_prepared(folder, path, tokenizer, sha):
    """Token file, tokenizer and metadata, built in a temporary folder and renamed into place."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=folder.name + "."))
    try:
        dtype = np.uint16 if tokenizer.vocab_size <= 2**16 else np.uint32
        num_tokens = 0
        with open(tmp / "tokens.bin", "wb") as f:
            for piece in _text_pieces(path):
                f.write(tokenizer.encode_array(_codepoints(piece)).astype(dtype).tobytes())
                num_tokens += len(piece)
        save_tokenizer(tokenizer, tmp / "tokenizer.json")
        meta = {"format": TOKEN_FORMAT, "sha256": sha, "dtype": np.dtype(dtype).name, "num_tokens": num_tokens}
        (tmp / "meta.json").write_text(json.dumps(meta))
        shutil.rmtree(folder, ignore_errors=True)  # a stale or broken earlier attempt
        os.replace(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _load_prepared(folder, sha, path):
    try:
        meta = json.loads((folder / "meta.json").read_text())
        if meta["format"] != TOKEN_FORMAT or meta["sha256"] != sha:
            return None
        tokens = np.memmap(folder / "tokens.bin", dtype=meta["dtype"], mode="r")
        if tokens.size != meta["num_tokens"]:
            return None
        split_at = meta.get("split_at", int(TRAIN_FRACTION * tokens.size))  # characters: the split by tokens
        return Corpus(tokens, load_tokenizer(folder / "tokenizer.json"), str(path), sha, split_at)
    except (OSError, ValueError, KeyError):
        return None


# ---------------------------------------------------------------------------------------------
# Sub-word tokens: a BPE trained on the training split, or a given Hugging Face tokenizer

BPE_FORMAT = 1  # bump when train_bpe's settings change, so cached BPEs are retrained
CHUNK_CHARS = 1 << 16  # characters per chunk handed to the tokenizer (encoded in parallel batches)
_CUT = re.compile(r"\S(?=[ \n])")  # a non-space followed by a space or a newline: GPT-2's pre-tokenizer cuts there too


def _prepare_subwords(path, sha, tokenizer, vocab_size):
    """The Corpus of `path` in sub-word tokens: the training split and the validation split encoded
    separately (no token straddles the split), cached by the text's and the tokenizer's hashes."""
    if tokenizer is None:
        tokenizer = _trained_bpe(path, sha, vocab_size)
    folder = cache_dir() / "tokens" / f"{sha[:32]}-{tokenizer.identity[:16]}"
    return _cached(folder, sha, path, lambda folder: _write_subwords(folder, path, tokenizer, sha))


def _trained_bpe(path, sha, vocab_size):
    """A byte-level BPE of `vocab_size` tokens trained on the training split of `path`, once: it is
    kept in the cache by the text's sha256 and the size."""
    saved = cache_dir() / "bpe" / f"{sha[:32]}-{vocab_size}-v{BPE_FORMAT}" / "tokenizer.json"
    if saved.is_file():
        try:
            return HFTokenizer.from_file(saved)
        except ScratchGPTError:
            pass  # a damaged cache entry: train again
    n_train = int(TRAIN_FRACTION * _count_chars(path))
    tokenizer = train_bpe(_chunks(_text_range(path, 0, n_train)), vocab_size)
    try:
        saved.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(saved, tokenizer.save)
    except OSError as e:
        raise DataError(
            f"cannot write the tokenizer cache in {saved.parent} ({e.strerror}); "
            f"set SCRATCHGPT_CACHE to a writable folder"
        ) from None
    return tokenizer


def _write_subwords(folder, path, tokenizer, sha):
    """Token file (training split, then validation split), tokenizer and metadata, built in a
    temporary folder and renamed into place."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=folder.name + "."))
    try:
        dtype = np.uint16 if tokenizer.vocab_size <= 2**16 else np.uint32
        num_chars = _count_chars(path)
        n_train = int(TRAIN_FRACTION * num_chars)
        num_tokens = 0
        with open(tmp / "tokens.bin", "wb") as f:
            for start, stop in ((0, n_train), (n_train, num_chars)):
                split_at = num_tokens  # after the loop: where the validation tokens begin
                for batch in _batches(_chunks(_text_range(path, start, stop))):
                    for ids in tokenizer.encode_batch(batch):
                        f.write(np.asarray(ids, dtype=dtype).tobytes())
                        num_tokens += len(ids)
        save_tokenizer(tokenizer, tmp / "tokenizer.json")
        meta = {
            "format": TOKEN_FORMAT,
            "sha256": sha,
            "dtype": np.dtype(dtype).name,
            "num_tokens": num_tokens,
            "split_at": split_at,
            "num_chars": num_chars,
            "train_chars": n_train,
        }
        (tmp / "meta.json").write_text(json.dumps(meta))
        shutil.rmtree(folder, ignore_errors=True)  # a stale or broken earlier attempt
        os.replace(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _count_chars(path):
    return sum(len(piece) for piece in _text_pieces(path))


def _text_range(path, start, stop):
    """Characters start..stop-1 of the file, in pieces."""
    offset = 0
    for piece in _text_pieces(path):
        lo, hi = max(start - offset, 0), min(stop - offset, len(piece))
        if lo < hi:
            yield piece[lo:hi]
        offset += len(piece)
        if offset >= stop:
            return


def _chunks(pieces, size=None):
    """The text of `pieces` in chunks of about `size` characters, each cut between a non-space
    and a space or a newline. GPT-2's pre-tokenizer (ours) never joins the two into one word, and BPE merges
    only within words, so the chunks train and encode exactly as the whole text would."""
    size, rest = size or CHUNK_CHARS, ""
    for piece in pieces:
        text, start = rest + piece, 0
        while len(text) - start > size:
            cut = _CUT.search(text, start + size)
            if cut is None:
                break
            yield text[start : cut.start() + 1]
            start = cut.start() + 1
        rest = text[start:]
        if len(rest) > 64 * size:  # no space in sight: cut anyway, rather than hold it all in memory
            yield rest
            rest = ""
    if rest:
        yield rest


def _batches(chunks, n=16):
    """Lists of n chunks (a million characters): what one call of the tokenizer encodes in parallel."""
    batch = []
    for chunk in chunks:
        batch.append(chunk)
        if len(batch) == n:
            yield batch
            batch = []
    if batch:
        yield batch


# ---------------------------------------------------------------------------------------------
# Split and batches


def split(tokens, train_fraction=TRAIN_FRACTION):
    """First 90% for training, last 10% for validation (the lecture's split, of a character corpus's
    tokens; Corpus.split() splits any corpus by its characters)."""
    n = int(train_fraction * len(tokens))
    return tokens[:n], tokens[n:]


def check_long_enough(splits, block_size):
    """Each split ({name: tokens}) must hold a window of block_size + 1 tokens (X plus the last target)."""
    for name, part in splits.items():
        if len(part) < block_size + 1:
            raise DataError(
                f"corpus too short: its {name} split has {len(part)} tokens but block_size "
                f"{block_size} needs at least {block_size + 1}; use more text or a smaller block_size"
            )


def get_batch(data, block_size, batch_size, generator, device="cpu"):
    """B random windows of the split: X (B, T) and the next tokens Y (B, T)."""
    ix = torch.randint(len(data) - block_size, (batch_size,), generator=generator)  # (B,)
    offsets = ix.numpy()[:, None] + np.arange(block_size + 1)  # (B, T+1)
    window = torch.from_numpy(data[offsets].astype(np.int64))  # (B, T+1)
    x, y = window[:, :-1].contiguous(), window[:, 1:].contiguous()  # (B, T): y is x shifted by one
    if torch.device(device).type == "cuda":
        x, y = x.pin_memory().to(device, non_blocking=True), y.pin_memory().to(device, non_blocking=True)
    else:
        x, y = x.to(device), y.to(device)
    return x, y
