import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from scratchgpt.data.tokenizer import CharTokenizer, load_tokenizer, save_tokenizer, tokenizer_from_dict
from scratchgpt.errors import TokenizerError

VOCAB = "\n !$&',-.3:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def test_vocabulary_is_the_sorted_set_of_characters():
    tok = CharTokenizer.from_text("hello world")
    assert tok.chars == sorted(set("hello world"))
    assert tok.vocab_size == 8
    assert tok.encode("hello") == [tok.stoi[c] for c in "hello"]


@given(st.text(alphabet=VOCAB))
def test_round_trip_over_the_vocabulary(text):
    tok = CharTokenizer(sorted(VOCAB))
    assert tok.decode(tok.encode(text)) == text


@given(st.text(min_size=1))
def test_round_trip_of_arbitrary_unicode_text(text):
    tok = CharTokenizer.from_text(text)
    ids = tok.encode(text)
    assert all(0 <= i < tok.vocab_size for i in ids)
    assert tok.decode(ids) == text


@given(st.text(min_size=1))
def test_vectorised_encoding_equals_encode(text):
    tok = CharTokenizer.from_text(text)
    codepoints = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    assert tok.encode_array(codepoints).tolist() == tok.encode(text)


def test_unknown_character_is_named():
    tok = CharTokenizer.from_text("abc")
    with pytest.raises(TokenizerError, match="'z'"):
        tok.encode("abz")


def test_save_and_load(tmp_path):
    tok = CharTokenizer.from_text("To be, or not to be — ça va?\n")
    save_tokenizer(tok, tmp_path / "tokenizer.json")
    again = load_tokenizer(tmp_path / "tokenizer.json")
    assert again.chars == tok.chars


@pytest.mark.parametrize("bad", [{"kind": "bpe"}, {"kind": "char", "chars": ["ab"]}, [], {"kind": "char"}])
def test_bad_tokenizer_description_is_refused(bad):
    with pytest.raises(TokenizerError):
        tokenizer_from_dict(bad)


def test_unreadable_tokenizer_file(tmp_path):
    (tmp_path / "t.json").write_text("{not json")
    with pytest.raises(TokenizerError, match="cannot read tokenizer"):
        load_tokenizer(tmp_path / "t.json")
