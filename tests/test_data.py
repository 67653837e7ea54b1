import hashlib
import os

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from scratchgpt.data import corpus as data
from scratchgpt.data.corpus import (
    TINY_SHAKESPEARE_SHA256,
    check_long_enough,
    corpus_path,
    get_batch,
    prepare,
    read_text,
    split,
    tiny_shakespeare,
)
from scratchgpt.errors import DataError

# ---------------------------------------------------------------------------------------------
# Finding the corpus: Tiny Shakespeare ships with the package


def test_tiny_shakespeare_ships_with_the_package_and_needs_no_network(monkeypatch, shakespeare):
    import socket

    def no_network(*args, **kwargs):
        raise OSError("the network is unreachable in this test")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.delenv("SCRATCHGPT_DATA", raising=False)
    path = corpus_path()
    assert path == tiny_shakespeare()
    assert path.read_bytes() == shakespeare.read_bytes()  # the very same 1,115,394 characters
    assert hashlib.sha256(path.read_bytes()).hexdigest() == TINY_SHAKESPEARE_SHA256


def test_a_damaged_unpacked_copy_is_replaced(shakespeare):
    path = tiny_shakespeare()
    path.write_text("First Citizen:\nA forgery.\n")
    assert tiny_shakespeare() == path
    assert path.read_bytes() == shakespeare.read_bytes()


@pytest.mark.parametrize(
    "packed, message",
    [
        (b"not bz2 at all", "cannot be read"),
        (__import__("bz2").compress(b"First Citizen:\nA forgery.\n"), "is damaged"),
    ],
)
def test_a_damaged_package_copy_is_refused(tmp_path, monkeypatch, packed, message):
    (tmp_path / "bad.bz2").write_bytes(packed)
    monkeypatch.setattr(data, "TINY_SHAKESPEARE", tmp_path / "bad.bz2")
    with pytest.raises(DataError, match=message):
        tiny_shakespeare()
    assert not (data.cache_dir() / "tinyshakespeare" / "input.txt").exists()


def test_corpus_path_order_of_choices(monkeypatch, tmp_path):
    explicit, from_env = tmp_path / "explicit.txt", tmp_path / "from_env.txt"
    monkeypatch.setenv("SCRATCHGPT_DATA", str(from_env))
    assert corpus_path() == from_env
    assert corpus_path(explicit) == explicit
    assert corpus_path(str(explicit)) == explicit
    monkeypatch.delenv("SCRATCHGPT_DATA")
    assert corpus_path(explicit) == explicit
    assert corpus_path() == tiny_shakespeare()


# ---------------------------------------------------------------------------------------------
# Encoding


def test_prepare_encodes_shakespeare_into_uint16_tokens(shakespeare):
    corpus = prepare(shakespeare)
    assert corpus.tokens.dtype == np.uint16
    assert len(corpus.tokens) == 1_115_394
    assert corpus.tokenizer.vocab_size == 65
    text = shakespeare.read_text(encoding="utf-8")
    assert corpus.tokenizer.decode(corpus.tokens[:200]) == text[:200]
    assert corpus.tokenizer.decode(corpus.tokens[-200:]) == text[-200:]


def test_prepare_reuses_the_token_file_while_the_text_is_unchanged(small_corpus):
    first = prepare(small_corpus)
    token_file = first.tokens.filename
    mtime = os.stat(token_file).st_mtime_ns
    second = prepare(small_corpus)
    assert second.tokens.filename == token_file
    assert os.stat(token_file).st_mtime_ns == mtime  # not written again
    small_corpus.write_text(small_corpus.read_text() + "Exeunt.\n")
    third = prepare(small_corpus)
    assert third.tokens.filename != token_file
    assert len(third.tokens) == len(first.tokens) + 8


def test_prepare_never_writes_beside_the_users_file(small_corpus):
    before = sorted(p.name for p in small_corpus.parent.iterdir())
    prepare(small_corpus)
    assert sorted(p.name for p in small_corpus.parent.iterdir()) == before


def test_encoding_in_chunks_gives_the_lecture_tokens(tmp_path, monkeypatch):
    text = "Ünïcode 😀 mixed with ASCII, and the 😀 again.\n" * 50 + "ℤ"
    path = tmp_path / "mixed.txt"
    path.write_text(text, encoding="utf-8")
    whole = prepare(path)
    assert whole.tokenizer.chars == sorted(set(text))
    assert whole.tokens.tolist() == whole.tokenizer.encode(text)
    monkeypatch.setenv("SCRATCHGPT_CACHE", str(tmp_path / "other-cache"))
    monkeypatch.setattr(data, "READ_BYTES", 7)  # reads end inside words and inside the emoji's bytes
    chunked = prepare(path)
    assert chunked.tokenizer.chars == whole.tokenizer.chars
    assert np.array_equal(chunked.tokens, whole.tokens)


def test_split_is_ninety_ten_with_validation_last():
    data = np.arange(1000)
    train, val = split(data)
    assert len(train) == 900 and len(val) == 100
    assert train[-1] == 899 and val[0] == 900


def test_batch_shapes_and_shift_by_one():
    data = np.arange(500, dtype=np.uint16)
    x, y = get_batch(data, block_size=8, batch_size=4, generator=torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (4, 8)
    assert x.dtype == y.dtype == torch.int64
    assert torch.equal(y[:, :-1], x[:, 1:])  # y is x shifted left by one ...
    assert torch.equal(y[:, -1], x[:, -1] + 1)  # ... ending with the token after x's window


@st.composite
def split_and_window(draw):
    """A split of n tokens and a block_size that fits it (n >= block_size + 1)."""
    block_size = draw(st.integers(1, 50))
    return draw(st.integers(block_size + 1, 300)), block_size


@settings(max_examples=50, deadline=None)
@given(split_and_window(), st.integers(0, 2**31))
def test_batch_windows_stay_inside_the_split(sizes, seed):
    n, block_size = sizes
    data = np.arange(n, dtype=np.uint16)  # token value == its position
    x, y = get_batch(data, block_size, 16, torch.Generator().manual_seed(seed))
    start = x[:, 0]
    assert torch.equal(x, start[:, None] + torch.arange(block_size))  # consecutive tokens
    assert torch.equal(y, x + 1)  # each target is the token after its input
    assert int(y.max()) <= n - 1  # the last target is inside the split


def test_every_window_of_the_split_can_be_drawn():
    n, block_size = 40, 8
    data = np.arange(n, dtype=np.uint16)
    x, _ = get_batch(data, block_size, 4000, torch.Generator().manual_seed(0))
    assert set(x[:, 0].tolist()) == set(range(n - block_size))  # the last window included


def test_same_generator_seed_gives_same_batches():
    data = np.arange(1000, dtype=np.uint16)
    a = get_batch(data, 16, 4, torch.Generator().manual_seed(7))
    b = get_batch(data, 16, 4, torch.Generator().manual_seed(7))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "not found"),
        (b"", "empty"),
        (b"abc\x00\x01def", "binary"),
        (b"caf\xe9 latin-1", "not UTF-8 text \\(invalid byte at offset 3\\)"),
        (b"ok \xf0\x9f\x98", "ends inside a character at offset 3"),
    ],
)
def test_bad_data_files_are_refused(tmp_path, monkeypatch, content, message):
    path = tmp_path / "data.txt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        read_text(path)
    with pytest.raises(DataError, match=message):
        prepare(path)
    monkeypatch.setattr(data, "READ_BYTES", 2)  # the offsets hold across reads
    with pytest.raises(DataError, match=message):
        prepare(path)
    if content is not None:
        assert path.read_bytes() == content  # never modified


def test_a_directory_is_not_a_data_file(tmp_path):
    with pytest.raises(DataError, match="not a file"):
        read_text(tmp_path)


def test_corpus_shorter_than_a_window_is_refused():
    train, val = split(np.arange(100))
    check_long_enough({"training": train, "validation": val}, block_size=9)  # val: one window exactly
    with pytest.raises(DataError, match="validation split has 10 tokens"):
        check_long_enough({"training": train, "validation": val}, block_size=10)


def test_an_unwritable_cache_is_a_clear_error(small_corpus, tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv("SCRATCHGPT_CACHE", str(blocker))
    with pytest.raises(DataError, match="cannot write the token cache .* set SCRATCHGPT_CACHE"):
        prepare(small_corpus)
