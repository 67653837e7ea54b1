"""Sub-word tokens: byte-level BPE trained with Hugging Face tokenizers, in every family, from the
command line to the token files, sampling, evaluation in bits per character and attention labels."""

import json
import math
import sys

import numpy as np
import pytest
import torch
from helpers import fails
from hypothesis import given, settings
from hypothesis import strategies as st

from scratchgpt.cli import main
from scratchgpt.data.bpe import HFTokenizer, train_bpe
from scratchgpt.data.corpus import prepare
from scratchgpt.data.tokenizer import SPECIALS, CharTokenizer, TextStream, load_tokenizer, save_tokenizer
from scratchgpt.inference.generate import sample_texts, stream_text
from scratchgpt.lessons.attention_maps import _labels
from scratchgpt.training.evaluate import evaluate_split

tokenizers = pytest.importorskip("tokenizers")
transformers = pytest.importorskip("transformers")

ACCENTED = "Ça été très déjà-vu — naïve Æsir 😀 👍🏽 ǅ 日本語 over the café\n"


@pytest.fixture(scope="module")
def shakespeare_bpe(shakespeare):
    """A BPE of 400 tokens trained on the first 200,000 characters of Tiny Shakespeare and accented text."""
    text = shakespeare.read_text(encoding="utf-8")[:200_000]
    return train_bpe([text, ACCENTED * 20], 400)


# ---------------------------------------------------------------------------------------------
# The tokenizer and its file


@settings(max_examples=200, deadline=None)
@given(st.text(st.characters(exclude_categories=("Cs",)), max_size=200))
def test_any_text_round_trips_exactly(shakespeare_bpe, text):
    """Bytes are the alphabet: nothing is unknown, nothing is normalised away (a missing byte
    fallback or a normalizer would lose characters)."""
    assert shakespeare_bpe.decode(shakespeare_bpe.encode(text)) == text


@settings(max_examples=100, deadline=None)
@given(st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\ufffd"), max_size=80))
def test_a_text_stream_never_emits_a_broken_character(shakespeare_bpe, text):
    """Token by token, the stream gives the text back whole and never a U+FFFD replacement (decoding
    each token alone would, for every character split over two tokens)."""
    stream = TextStream(shakespeare_bpe)
    pieces = [stream.add([i]) for i in shakespeare_bpe.encode(text)] + [stream.flush()]
    assert "".join(pieces) == text
    assert not any("\ufffd" in piece for piece in pieces)


def test_the_saved_file_is_hugging_faces_own(shakespeare_bpe, tmp_path):
    """tokenizer.json loads in tokenizers and transformers with the same ids, and ours reads it back."""
    path = tmp_path / "tokenizer.json"
    save_tokenizer(shakespeare_bpe, path)
    verse = "First Citizen:\nBefore we proceed any further, hear me speak.\n"
    assert len(shakespeare_bpe.encode(verse)) < len(verse) / 1.5  # sub-words, not characters
    text = verse + ACCENTED
    ids = shakespeare_bpe.encode(text)
    assert tokenizers.Tokenizer.from_file(str(path)).encode(text).ids == ids
    fast = transformers.PreTrainedTokenizerFast(tokenizer_file=str(path))
    assert fast(text)["input_ids"] == ids
    assert fast.decode(ids, clean_up_tokenization_spaces=False) == text
    again = load_tokenizer(path)
    assert isinstance(again, HFTokenizer) and again.encode(text) == ids and again.vocab_size == 400
    chars = tmp_path / "chars.json"
    save_tokenizer(CharTokenizer.from_text("abc"), chars)
    assert load_tokenizer(chars).kind == "char"  # both formats, told apart by content


def test_special_tokens_come_after_the_sub_words(shakespeare_bpe):
    tok = shakespeare_bpe.with_specials(SPECIALS)
    assert tok.vocab_size == 405 and tok.text_vocab_size == 400
    assert [tok.special_id(s) for s in SPECIALS] == [400, 401, 402, 403, 404]
    assert tok.encode("To be[MASK]")[-1] == tok.special_id("[MASK]")  # written in text, read as the token
    assert tok.encode("To be") == shakespeare_bpe.encode("To be")  # the same ids as the plain BPE
    assert tok.base().identity == shakespeare_bpe.identity  # so a corpus has one token file for both
    assert tok.with_specials(SPECIALS) is tok


def test_a_gpt2_shaped_file_loads_as_it_is(tmp_path, shakespeare_bpe):
    """GPT-2's tokenizer.json: byte-level BPE, <|endoftext|> as its last id, a ByteLevel post-processor.
    Its special token is not text; ours come after it."""
    gpt2 = tokenizers.Tokenizer.from_str(shakespeare_bpe.tokenizer.to_str())
    gpt2.add_special_tokens(["<|endoftext|>"])
    gpt2.post_processor = tokenizers.processors.ByteLevel(trim_offsets=False)
    gpt2.save(str(tmp_path / "gpt2.json"))
    tok = HFTokenizer.from_file(tmp_path / "gpt2.json")
    assert tok.kind == "bpe" and tok.vocab_size == 401 and tok.text_vocab_size == 400
    assert tok.encode("Hello world") == shakespeare_bpe.encode("Hello world")
    with_specials = tok.with_specials(SPECIALS)
    assert with_specials.special_id("[PAD]") == 401 and with_specials.specials[0] == "<|endoftext|>"


def test_labels_of_sub_words_read_as_text(shakespeare_bpe):
    """GPT-2's 'Ġ' is a space in a label, and a token holding part of a character shows its bytes."""
    ids = shakespeare_bpe.encode(" the king 😀")
    pieces = shakespeare_bpe.pieces(ids)
    assert "".join(p for p in pieces if not p.startswith("\\x")) == " the king "
    assert not any("Ġ" in p for p in pieces)
    assert any(p.startswith("\\xf0") for p in pieces)  # the emoji's first byte
    assert _labels([" the", "\n", "king"]) == ["␣the", "\\n", "king"]


# ---------------------------------------------------------------------------------------------
# The corpus: trained on the training split, split by characters, cached by tokenizer


def test_the_bpe_is_trained_on_the_training_split_only(tmp_path):
    """A word repeated only in the last 10% of the text is never merged; one as frequent in the first
    90% is (a BPE that saw the validation text would have merged both)."""
    train_part = "the cat sat on the mat with zorbulon. " * 250  # 9,500 characters
    val_part = "the dog quixotlyx and the quixotlyx. " * 29  # about 1,070 characters
    path = tmp_path / "text.txt"
    path.write_text(train_part + val_part, encoding="utf-8")
    corpus = prepare(path, vocab_size=300)
    vocab = corpus.tokenizer.tokenizer.get_vocab()
    assert any("zorbulon" in token for token in vocab)
    assert not any("quix" in token or "otly" in token for token in vocab)
    train, val = corpus.split()
    n = len(train_part + val_part)
    assert corpus.tokenizer.decode(train) == (train_part + val_part)[: int(0.9 * n)]  # split in characters
    assert corpus.tokenizer.decode(val) == (train_part + val_part)[int(0.9 * n) :]


def test_streamed_chunks_encode_exactly_as_the_whole_text(tmp_path, shakespeare, monkeypatch):
    """Read 1 KB at a time and cut into chunks of about 100 characters (between a non-space and a
    space), the text trains and encodes to the very tokens of the whole (a cut inside a word, or
    before the last of two spaces, would change them)."""
    text = shakespeare.read_text(encoding="utf-8")[:30_000] + "  double  spaces \n\n\n" + ACCENTED * 3
    path = tmp_path / "text.txt"
    path.write_text(text, encoding="utf-8")
    whole = prepare(path, vocab_size=300)
    monkeypatch.setenv("SCRATCHGPT_CACHE", str(tmp_path / "other-cache"))
    monkeypatch.setattr("scratchgpt.data.corpus.READ_BYTES", 1024)
    monkeypatch.setattr("scratchgpt.data.corpus.CHUNK_CHARS", 100)
    chunked = prepare(path, vocab_size=300)
    n = int(0.9 * len(text))
    expected = whole.tokenizer.encode(text[:n]) + whole.tokenizer.encode(text[n:])
    assert chunked.tokenizer.identity == whole.tokenizer.identity  # the same merges
    assert chunked.tokens.tolist() == whole.tokens.tolist() == expected and chunked.split_at == whole.split_at


def test_token_files_hold_uint16_or_uint32_and_are_keyed_by_the_tokenizer(tmp_path, small_corpus):
    small, other = prepare(small_corpus, vocab_size=300), prepare(small_corpus, vocab_size=320)
    assert small.tokens.dtype == np.uint16 and small.tokenizer.vocab_size <= 300
    assert small.tokenizer.identity != other.tokenizer.identity and len(other.tokens) < len(small.tokens)
    assert prepare(small_corpus, vocab_size=300).tokens.filename == small.tokens.filename  # cached
    # A vocabulary past 65,536 ids: GPT-2's 50,257 fit in uint16, a 70,000-token one does not.
    big = tokenizers.Tokenizer.from_str(small.tokenizer.tokenizer.to_str())
    big.add_tokens([f"<extra_{i}>" for i in range(70_000 - big.get_vocab_size())])
    wide = prepare(small_corpus, tokenizer=HFTokenizer(big))
    assert wide.tokens.dtype == np.uint32 and np.array_equal(wide.tokens, small.tokens)


# ---------------------------------------------------------------------------------------------
# Evaluation in bits per character


class Uniform(torch.nn.Module):
    """Equal logits for every token: a loss of ln V per token, whatever the text."""

    def __init__(self, vocab_size):
        super().__init__()
        self.vocab_size = vocab_size

    def forward(self, idx):
        return torch.zeros(*idx.shape, self.vocab_size), None


def test_bits_per_character_count_the_characters_of_the_tokens(shakespeare_bpe, shakespeare):
    text = shakespeare.read_text(encoding="utf-8")[-20_000:] + ACCENTED * 5
    data = np.array(shakespeare_bpe.encode(text))
    T = 16
    loss, bpc = evaluate_split(Uniform(400), data, T, char_counts=shakespeare_bpe.char_counts())
    n = (len(data) - 1) // T
    scored = shakespeare_bpe.decode(data[1 : n * T + 1])  # the texts of the predicted tokens
    assert loss == pytest.approx(math.log(400))
    assert bpc == pytest.approx(n * T * math.log2(400) / len(scored), rel=1e-4)  # not loss / ln 2
    assert bpc < loss / math.log(2) / 1.5  # more than one character per token
    chars = CharTokenizer.from_text(text)
    ids = np.array(chars.encode(text))
    loss, bpc = evaluate_split(Uniform(chars.vocab_size), ids, T, char_counts=chars.char_counts())
    assert bpc == pytest.approx(loss / math.log(2), rel=1e-12)  # characters: loss / ln 2


# ---------------------------------------------------------------------------------------------
# Streaming text that a model writes


class Scripted(torch.nn.Module):
    """A 'model' that writes `script` (ids), one token per step, greedily."""

    supports_kv_cache = False

    def __init__(self, script, prompt_len, vocab_size):
        super().__init__()
        self.script, self.prompt_len, self.vocab_size = script, prompt_len, vocab_size
        self.config = type("Config", (), {"block_size": 10_000})()
        self.weight = torch.nn.Parameter(torch.zeros(1))

    def forward(self, idx):
        logits = torch.zeros(*idx.shape, self.vocab_size)
        logits[:, -1, self.script[idx.shape[1] - self.prompt_len]] = 1.0
        return logits, None


def test_stream_text_never_splits_a_character(shakespeare_bpe):
    script = shakespeare_bpe.encode(ACCENTED * 2)
    assert any("\ufffd" in shakespeare_bpe.decode([i]) for i in script)  # tokens do split characters
    prompt = "To be"
    model = Scripted(script, len(shakespeare_bpe.encode(prompt)), 400)
    pieces = list(stream_text(model, shakespeare_bpe, prompt, max_new_tokens=len(script), temperature=0))
    assert "".join(pieces) == ACCENTED * 2
    assert not any("\ufffd" in piece for piece in pieces)
    stopped = "".join(
        stream_text(model, shakespeare_bpe, prompt, max_new_tokens=len(script), temperature=0, stop=["😀"])
    )
    assert stopped == ACCENTED[: ACCENTED.index("😀")]
    assert (
        sample_texts(model, shakespeare_bpe, prompt, max_new_tokens=len(script), temperature=0, num_samples=2)
        == [ACCENTED * 2] * 2
    )
    cut = list(
        stream_text(
            model,
            shakespeare_bpe,
            prompt,
            max_new_tokens=len(shakespeare_bpe.encode(ACCENTED[: ACCENTED.index("😀")])) + 1,
            temperature=0,
        )
    )  # ends inside the emoji: shown at the end
    assert "".join(cut).endswith("\ufffd") and not any("\ufffd" in p for p in cut[:-1])


# ---------------------------------------------------------------------------------------------
# Through the command: every family


def test_gpt_train_sample_and_eval_with_bpe(tmp_path, shakespeare, capsys):
    out = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "--preset",
                "tiny",
                "--tokenizer",
                "bpe",
                "--vocab-size",
                "320",
                "--data",
                str(shakespeare),
                "--out",
                str(out),
                "--quiet",
                "--max-iters",
                "20",
            ]
        )
        == 0
    )
    captured = capsys.readouterr()
    assert "bits/char" in captured.err
    config = json.loads((out / "config.json").read_text())
    assert config["model"]["vocab_size"] == 320 and config["train"]["tokenizer"] == "bpe"
    fast = transformers.PreTrainedTokenizerFast(tokenizer_file=str(out / "tokenizer.json"))
    assert fast("ROMEO: é")["input_ids"] == load_tokenizer(out / "tokenizer.json").encode("ROMEO: é")
    final = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()][-1]
    assert final["kind"] == "final" and final["val_bpc"] < final["val_loss"] / math.log(2) / 1.3

    assert main(["sample", "--run", str(out), "--prompt", "ROMEO: é😀", "--max-new-tokens", "40", "--seed", "1"]) == 0
    assert capsys.readouterr().out.startswith("ROMEO: é😀")
    assert main(["eval", "--run", str(out), "--json"]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert scores["val_bpc"] == pytest.approx(final["val_bpc"]) and scores["val_loss"] == pytest.approx(
        final["val_loss"]
    )
    assert main(["attention", "--run", str(out), "--text", "To be, or not", "--out", str(tmp_path / "a.png")]) == 0

    assert main(["train", "--resume", "--out", str(out), "--max-iters", "25", "--quiet"]) == 0
    assert len(list((tmp_path / "cache" / "tokens").iterdir())) == 1  # the run's tokenizer: the same token file

    again = tmp_path / "from-file"  # --tokenizer FILE: that tokenizer, as it is, no training
    assert (
        main(
            [
                "train",
                "--preset",
                "tiny",
                "--tokenizer",
                str(out / "tokenizer.json"),
                "--data",
                str(shakespeare),
                "--out",
                str(again),
                "--quiet",
                "--max-iters",
                "2",
            ]
        )
        == 0
    )
    assert (again / "tokenizer.json").read_text() == (out / "tokenizer.json").read_text()


def test_the_playground_streams_and_labels_sub_words(tmp_path, shakespeare):
    """A BPE run in the playground: the streamed text is sample_text's, the attention labels are the
    tokens' texts."""
    httpx = pytest.importorskip("httpx")
    pytest.importorskip("fastapi")
    from serving import ThreadServer, events

    from scratchgpt.rundir import load_model
    from scratchgpt.serve.app import create_app
    from scratchgpt.serve.limits import Limits
    from scratchgpt.serve.runs import Runs

    run = tmp_path / "gpt"
    assert (
        main(
            [
                "train",
                "--preset",
                "tiny",
                "--tokenizer",
                "bpe",
                "--vocab-size",
                "300",
                "--data",
                str(shakespeare),
                "--out",
                str(run),
                "--quiet",
                "--max-iters",
                "2",
            ]
        )
        == 0
    )
    model, tokenizer, _, _ = load_model(run)
    prompt = "ROMEO: é😀"
    expected = sample_texts(model, tokenizer, prompt, max_new_tokens=30, temperature=1.0, seed=3)[0]
    live = ThreadServer(create_app(Runs([run]), Limits(workers=1, queue=1)))
    try:
        with httpx.Client(base_url=live.url, timeout=60) as client:
            body = {"run": "gpt", "prompt": prompt, "max_new_tokens": 30, "temperature": 1.0, "seed": 3}
            with client.stream("POST", "/api/generate", json=body) as response:
                received = list(events(response.iter_lines()))
            assert "".join(data["text"] for name, data in received if name == "token") == expected
            panel = client.post("/api/attention", json={"run": "gpt", "text": " the king 😀"}).json()["panels"][0]
            assert panel["rows"] == tokenizer.pieces(tokenizer.encode(" the king 😀"))
            assert "".join(r for r in panel["rows"] if not r.startswith("\\x")) == " the king "  # no 'Ġ'
    finally:
        live.stop()


def test_encoder_pretrains_and_fills_with_bpe(tmp_path, capsys):
    out = tmp_path / "mlm"
    assert (
        main(
            [
                "train",
                "--model",
                "encoder",
                "--preset",
                "tiny-encoder",
                "--tokenizer",
                "bpe",
                "--vocab-size",
                "300",
                "--out",
                str(out),
                "--quiet",
                "--max-iters",
                "10",
            ]
        )
        == 0
    )
    assert "masked tokens" in capsys.readouterr().err
    tok = load_tokenizer(out / "tokenizer.json")
    assert tok.vocab_size == 300 and tok.specials == list(SPECIALS) and tok.text_vocab_size == 295
    assert main(["fill", "--run", str(out), "To be or not to be, that is the[MASK]", "--json"]) == 0
    guesses = json.loads(capsys.readouterr().out)["fills"][0]
    assert len(guesses) == 5 and not any(g["token"] in SPECIALS for g in guesses)
    tuned = tmp_path / "speakers"
    assert (
        main(
            [
                "finetune",
                "--from",
                str(out),
                "--task",
                "speakers",
                "--preset",
                "finetune-tiny",
                "--out",
                str(tuned),
                "--quiet",
            ]
        )
        == 0
    )
    assert load_tokenizer(tuned / "tokenizer.json").identity == tok.identity
    assert json.loads((tuned / "config.json").read_text())["train"]["tokenizer"] == "bpe"  # recorded as it is
    capsys.readouterr()
    assert "needs --tokenizer char" in fails(
        capsys, "finetune", "--from", out, "--task", "names", "--preset", "finetune-tiny", "--out", tmp_path / "names"
    )
    assert "--tokenizer and --vocab-size apply to --from scratch only" in fails(
        capsys, "finetune", "--from", out, "--task", "speakers", "--tokenizer", "bpe", "--out", tmp_path / "x"
    )


def test_translation_trains_with_bpe(tmp_path, capsys):
    out = tmp_path / "dates"
    assert (
        main(
            [
                "train",
                "--model",
                "seq2seq",
                "--preset",
                "tiny-seq2seq",
                "--task",
                "dates",
                "--tokenizer",
                "bpe",
                "--vocab-size",
                "300",
                "--out",
                str(out),
                "--quiet",
                "--max-iters",
                "5",
            ]
        )
        == 0
    )
    capsys.readouterr()  # the run's sample
    pair = load_tokenizer(out / "tokenizer.json")
    assert pair.source.kind == "bpe" and pair.target.special_id("[EOS]") == pair.target.vocab_size - 1
    assert main(["translate", "--run", str(out), "3 March 1999", "--json"]) == 0
    assert "translation" in json.loads(capsys.readouterr().out)


# ---------------------------------------------------------------------------------------------
# Bad input: one line, exit 2, nothing written


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--tokenizer", "bpe", "--vocab-size", "100"], "--vocab-size 100 is smaller than the byte alphabet"),
        (
            ["--model", "encoder", "--preset", "tiny-encoder", "--tokenizer", "bpe", "--vocab-size", "258"],
            "at least 261 tokens (256 bytes + 5 special tokens)",
        ),
        (["--vocab-size", "512"], "--vocab-size is for --tokenizer bpe"),
        (["--tokenizer", "gtp2.json"], "--tokenizer gtp2.json: no such file"),
    ],
)
def test_bad_tokenizer_settings(capsys, tmp_path, shakespeare, flags, message):
    out = tmp_path / "run"
    args = ["train", "--preset", "tiny", "--out", out, *flags]
    if "--model" not in flags:
        args += ["--data", shakespeare]
    assert message in fails(capsys, *args)
    assert not out.exists()


def test_a_tokenizer_file_that_is_not_one(capsys, tmp_path, shakespeare):
    bad = tmp_path / "tokenizer.json"
    bad.write_text('{"model": {"type": "BPE", "vocab": 3}}')
    assert "cannot read the Hugging Face tokenizer" in fails(
        capsys, "train", "--preset", "tiny", "--data", shakespeare, "--tokenizer", bad, "--out", tmp_path / "run"
    )


def test_the_names_task_needs_characters(capsys, tmp_path):
    assert "needs --tokenizer char" in fails(
        capsys,
        "finetune",
        "--from",
        "scratch",
        "--task",
        "names",
        "--preset",
        "finetune-tiny",
        "--tokenizer",
        "bpe",
        "--out",
        tmp_path / "run",
    )


def test_without_tokenizers_the_error_names_the_extra(capsys, tmp_path, shakespeare, monkeypatch):
    monkeypatch.setitem(sys.modules, "tokenizers", None)  # as if not installed
    line = fails(
        capsys, "train", "--preset", "tiny", "--data", shakespeare, "--tokenizer", "bpe", "--out", tmp_path / "run"
    )
    assert "pip install 'scratchgpt[hf]'" in line
    assert not (tmp_path / "run").exists()
