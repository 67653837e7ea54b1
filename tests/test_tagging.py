"""The tag task: a label per word from the user's TSV or CoNLL file (readers, split, word pieces,
scores by windows, conlleval's entities, the command)."""

import json
import math
import re

import pytest
import torch
from helpers import fails

from scratchgpt.cli import main
from scratchgpt.config import EncoderConfig, fine_tuning_model, model_from_dict, model_to_dict
from scratchgpt.data.masking import IGNORE
from scratchgpt.data.tagged import chunks, is_chunk_tagging, read_tagged, split_tagged, word_pieces
from scratchgpt.data.tokenizer import CharTokenizer
from scratchgpt.errors import ConfigError, DataError
from scratchgpt.inference.predict import predict, token_outputs_over_windows
from scratchgpt.training import scores
from scratchgpt.training.tagging import TagTask, piece_labels

# --------------------------------------------------------------------------------------------
# Reading


def test_tsv_sentences_keep_their_words_tags_and_lines(tmp_path):
    path = tmp_path / "pos.tsv"
    path.write_text("The jury said .\tat nn vbd .\n\n  \nIt  was\tpps bedz\n")
    first, second = read_tagged(path)
    assert (first.words, first.tags, first.line) == (("The", "jury", "said", "."), ("at", "nn", "vbd", "."), 1)
    assert (second.words, second.tags, second.line) == (("It", "was"), ("pps", "bedz"), 4)


@pytest.mark.parametrize(
    "content, message",
    [
        ("a b\tx y\n" * 6 + "a b c\tx y\n", "pos.tsv, line 7: 3 words but 2 tags"),
        ("a b\tx y\na b c\n", "pos.tsv, line 2: expected words<TAB>tags, found one column"),
        ("a b\tx y\na b\tx y\tz\n", "pos.tsv, line 2: expected words<TAB>tags, found 3 columns"),
        ("", "pos.tsv holds no sentences"),
        ("\n\n", "pos.tsv holds no sentences"),
        ("a b\tx y\n" * 4, "pos.tsv has too few sentences (4) for a train/val/test split of 80/10/10"),
    ],
)
def test_a_bad_tsv_is_refused_naming_the_file_and_line(tmp_path, content, message):
    path = tmp_path / "pos.tsv"
    path.write_text(content)
    with pytest.raises(DataError, match=re.escape(message)):
        split_tagged(read_tagged(path), path)


def test_conll_reads_one_word_a_line_skipping_docstart_with_the_tag_last(tmp_path):
    path = tmp_path / "ner.conll"
    path.write_text(
        "-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\nGerman JJ B-NP B-MISC\n\n\n"
        "Peter\tB-PER\nBlackburn\tI-PER\n-DOCSTART- -X- O O\nLondon\tB-LOC"
    )
    sentences = read_tagged(path)
    assert [s.words for s in sentences] == [("EU", "rejects", "German"), ("Peter", "Blackburn"), ("London",)]
    assert [s.tags for s in sentences] == [("B-ORG", "O", "B-MISC"), ("B-PER", "I-PER"), ("B-LOC",)]
    assert [s.line for s in sentences] == [3, 8, 11]


def test_the_format_follows_the_suffix_else_the_content(tmp_path):
    conll, tsv = "He\tpps\nran\tvbd\n\nShe\tpps\n", "He ran\tpps vbd\nShe\tpps\n"
    (tmp_path / "a.tsv").write_text(conll)  # one word before each tab: CoNLL
    (tmp_path / "b.txt").write_text(tsv)  # two words before a tab: TSV
    for name in ("a.tsv", "b.txt"):
        sentences = read_tagged(tmp_path / name)
        assert [(s.words, s.tags) for s in sentences] == [(("He", "ran"), ("pps", "vbd")), (("She",), ("pps",))]
    (tmp_path / "c.iob").write_text(tsv)  # the suffix decides: CoNLL, whose word holds no space
    with pytest.raises(DataError, match="c.iob, line 1: a CoNLL line holds one word and one tag, found 'He ran"):
        read_tagged(tmp_path / "c.iob")


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("ner.conll", b"EU B-ORG\nrejects\n", "ner.conll, line 2: expected a word and its tag"),
        ("ner.conll", b"EU B-ORG\n\nna\xefve O\n", "ner.conll, line 3: not UTF-8 text"),
        ("ud.conllu", b"1\tThe\tthe\tDET\n", "ud.conllu: CoNLL-U is not read"),
        ("ner.conll", b"-DOCSTART- O\n\n", "ner.conll holds no sentences"),
    ],
)
def test_a_bad_conll_file_is_refused(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DataError, match=re.escape(message)):
        read_tagged(path)


def test_the_split_is_80_10_10_fixed_and_disjoint(tmp_path):
    path = tmp_path / "pos.tsv"
    path.write_text("".join(f"w{i} x\tt u\n" for i in range(200)))
    sentences = read_tagged(path)
    first, again = split_tagged(sentences, path), split_tagged(read_tagged(path), path)
    assert {k: len(v) for k, v in first.items()} == {"train": 160, "val": 20, "test": 20}
    assert {k: [s.line for s in v] for k, v in first.items()} == {k: [s.line for s in v] for k, v in again.items()}
    lines = [s.line for split in first.values() for s in split]
    assert sorted(lines) == list(range(1, 201))  # every sentence in exactly one split
    assert [s.line for s in first["test"]] != list(range(1, 21))  # shuffled, not the file's first lines


# --------------------------------------------------------------------------------------------
# Words as pieces


SENTENCES = [["The", "jury", "said", "."], ["Ivan", "Allen", "Jr.", "won", "it's", "naïve", "ü"], ["x"]]


def _check_pieces(tokenizer, words):
    ids, firsts = word_pieces(tokenizer, words, {})
    assert ids == tokenizer.encode(" ".join(words))  # as if the whole text were encoded
    assert len(firsts) == len(words) and firsts == sorted(set(firsts))
    for k, first in enumerate(firsts):  # the pieces before a word's are the words before it (and its space)
        assert tokenizer.decode(ids[:first]).rstrip(" ") == " ".join(words[:k])
        assert tokenizer.pieces(ids[first : first + 1])[0].strip()  # not a space alone
    return ids, firsts, tokenizer.pieces(ids)


def test_each_word_is_tagged_at_its_first_character():
    tokenizer = CharTokenizer.from_text(" ".join(" ".join(s) for s in SENTENCES)).with_specials()
    for words in SENTENCES:
        ids, firsts, shown = _check_pieces(tokenizer, words)
        assert firsts == [i for i in range(len(ids)) if shown[i] != " " and (i == 0 or shown[i - 1] == " ")]


def test_each_word_is_tagged_at_its_first_sub_word():
    pytest.importorskip("tokenizers")
    from scratchgpt.data.bpe import train_bpe
    from scratchgpt.data.tokenizer import SPECIALS

    tokenizer = train_bpe([" ".join(s) for s in SENTENCES] * 20, 300, SPECIALS)
    for words in SENTENCES:
        ids, firsts, shown = _check_pieces(tokenizer, words)
        assert len(ids) < len(" ".join(words)) or len(words) == 1  # sub-words, not characters
    assert tokenizer.pieces(word_pieces(tokenizer, ["The", "jury"])[0]) == ["The", " jury"]  # the space attached


def test_only_the_first_piece_of_a_word_carries_its_label():
    tokenizer = CharTokenizer.from_text("ab cd e").with_specials()
    task = TagTask(
        "tag",
        {s: [(("ab", "cd", "e"), ("X", "Y", "Z"))] for s in ("train", "val", "test")},
        tokenizer,
        32,
        ("X", "Y"),
        {},
    )
    words = task.targets["train"][0]
    assert task.rows["train"][0] == tokenizer.encode("ab cd e")
    assert piece_labels(7, words) == [0, IGNORE, IGNORE, 1, IGNORE, IGNORE, IGNORE]  # Z: unknown, no loss
    ids, key_mask, labels = task.batch("train", 2, torch.Generator().manual_seed(0), "cpu")
    assert labels[0].tolist() == [IGNORE, 0, IGNORE, IGNORE, 1, IGNORE, IGNORE, IGNORE, IGNORE]  # [CLS] ... [SEP]
    assert task.model_settings["label_words"] and task.model_settings["head"] == "token"


# --------------------------------------------------------------------------------------------
# Scores from pieces, through windows

LETTERS = "abc"


class ByLetter(torch.nn.Module):
    """A stand-in token head: at each piece, the logits of the label of its letter (a -> A ...),
    zero for a space or a special token; plus `shift` times the piece's position in its window."""

    def __init__(self, tokenizer, block_size, labels, shift=0.0):
        super().__init__()
        self.config = EncoderConfig(
            block_size=block_size, head="token", num_labels=len(labels), labels=labels, label_words=True
        )
        self.table = torch.zeros(tokenizer.vocab_size, len(labels))
        for k, letter in enumerate(LETTERS):
            self.table[tokenizer.encode(letter)[0], k] = 10.0
        self.shift = shift
        self.weight = torch.nn.Parameter(torch.zeros(1))  # a device to run on

    def forward(self, idx, targets=None, key_mask=None):
        position = torch.arange(idx.shape[1], dtype=torch.float32)[None, :, None]  # (1, T, 1)
        return self.table[idx] + self.shift * position, None  # (B, T, K)


def _words(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [LETTERS[i] + "bca"[: j % 3] for i, j in zip(torch.randint(3, (n,), generator=g).tolist(), range(n))]


def test_averaged_windows_read_every_piece_of_a_long_text():
    tokenizer = CharTokenizer.from_text("abc ").with_specials()
    model = ByLetter(tokenizer, block_size=10, labels=("A", "B", "C"), shift=1.0)  # windows of 8 pieces
    specials = [tokenizer.special_id(t) for t in ("[CLS]", "[SEP]", "[PAD]")]
    [out] = token_outputs_over_windows(model, [tokenizer.encode(" " * 20)], *specials, "cpu")  # starts 0, 6, 12
    expected = [1 + p - max(s for s in (0, 6, 12) if s <= p) for p in range(20)]  # its place in its window
    expected[6:8] = [(7 + 1) / 2, (8 + 2) / 2]  # averaged over the windows starting at 0 and 6
    expected[12:14] = [(7 + 1) / 2, (8 + 2) / 2]  # over those starting at 6 and 12
    assert out[:, 0].tolist() == pytest.approx(expected)


def test_a_sentence_longer_than_the_block_gets_every_word_tagged():
    words = _words(40)  # about 100 characters, for windows of 14
    tokenizer = CharTokenizer.from_text("abc ").with_specials()
    labels = ("A", "B", "C")
    model = ByLetter(tokenizer, block_size=16, labels=labels)
    tags = tuple(w[0].upper() for w in words)
    task = TagTask("tag", {s: [(tuple(words), tags)] for s in ("train", "val", "test")}, tokenizer, 16, labels, {})
    assert len(task.rows["val"][0]) > 6 * 14
    found = task.evaluate(model, "cpu")
    assert (
        found["val_word_accuracy"] == found["test_word_accuracy"] == 1.0
    )  # a word read at its space, or cut away, would be wrong
    [result] = predict(model, tokenizer, [" ".join(words)])
    assert result["words"] == words and result["tags"] == list(tags) and result["spans"] == []


def test_training_windows_of_a_long_sentence_keep_each_label_on_its_word():
    words = _words(40, seed=1)
    tokenizer = CharTokenizer.from_text("abc ").with_specials()
    examples = [(tuple(words), tuple(w[0].upper() for w in words))]
    task = TagTask("tag", {s: examples for s in ("train", "val", "test")}, tokenizer, 16, ("A", "B", "C"), {})
    ids, key_mask, labels = task.batch("train", 64, torch.Generator().manual_seed(0), "cpu")
    assert ids.shape[1] == 16 and key_mask.all()  # a window of 14 pieces between [CLS] and [SEP]
    starts = set()
    for row, row_labels in zip(ids.tolist(), labels.tolist()):
        text = tokenizer.decode(row[1:-1])
        starts.add(text)
        for k, (piece, label) in enumerate(zip(row[1:-1], row_labels[1:-1])):
            word_start = tokenizer.decode([piece]) != " " and (k > 0 and text[k - 1] == " ")
            assert (label != IGNORE) == word_start or k == 0  # the window's first piece may start a word
            if label != IGNORE:
                assert "ABC"[label] == tokenizer.decode([piece]).upper()
    assert len(starts) > 10  # random windows, not always the first


def test_a_tag_train_never_had_counts_as_wrong():
    tokenizer = CharTokenizer.from_text("abc ").with_specials()
    labels = ("A", "B", "C")
    val = [(("a", "b", "c", "ab"), ("A", "B", "C", "D"))]  # D: not in the tag set
    task = TagTask("tag", {"train": val, "val": val, "test": val}, tokenizer, 16, labels, {})
    found = task.evaluate(ByLetter(tokenizer, 16, labels), "cpu")
    assert found["val_word_accuracy"] == 0.75
    assert found["val_loss"] == pytest.approx(math.log1p(2 * math.exp(-10)), rel=1e-3)  # D: no loss


def test_predict_gives_the_entities_of_bio_tags():
    labels = ("B-X", "I-X", "O")  # a -> B-X, b -> I-X, c -> O
    tokenizer = CharTokenizer.from_text("abc ").with_specials()
    [result] = predict(ByLetter(tokenizer, 16, labels), tokenizer, ["  ab  bc cab a "])
    assert result["words"] == ["ab", "bc", "cab", "a"] and result["tags"] == ["B-X", "I-X", "O", "B-X"]
    assert result["spans"] == [
        {"start": 0, "end": 2, "type": "X", "text": "ab bc"},
        {"start": 3, "end": 4, "type": "X", "text": "a"},
    ]


# --------------------------------------------------------------------------------------------
# Entities by conlleval's rules


def test_chunks_follow_conlleval():
    assert chunks(["B-PER", "I-PER", "I-LOC", "O"]) == [(0, 2, "PER"), (2, 3, "LOC")]  # a type change splits
    assert chunks(["O", "I-PER", "I-PER", "B-PER"]) == [(1, 3, "PER"), (3, 4, "PER")]  # I- after O starts one
    assert chunks(["B-X", "E-X", "I-X", "S-Y"]) == [(0, 2, "X"), (2, 3, "X"), (3, 4, "Y")]  # E and S end one
    assert chunks(["nn", "O", "B-X"]) == [(2, 3, "X")]  # another shape counts as O
    assert is_chunk_tagging(["O", "B-PER", "I-PER"]) and not is_chunk_tagging(["at", "np-tl", "nn"])
    assert not is_chunk_tagging(["O"])


def test_span_scores_need_the_exact_span_and_type():
    # seqeval's README example: one entity of two right in each direction
    actual = [["O", "O", "O", "B-MISC", "I-MISC", "I-MISC", "O"], ["B-PER", "I-PER", "O"]]
    predicted = [["O", "O", "B-MISC", "I-MISC", "I-MISC", "I-MISC", "O"], ["B-PER", "I-PER", "O"]]
    assert scores.span_prf(predicted, actual) == (0.5, 0.5, 0.5)
    assert scores.span_prf([["B-PER", "O"]], [["B-PER", "I-PER"]]) == (0.0, 0.0, 0.0)  # a partial overlap
    assert scores.span_prf([["B-LOC", "I-LOC"]], [["B-PER", "I-PER"]]) == (0.0, 0.0, 0.0)  # the wrong type
    assert scores.span_prf([["B-PER", "O", "B-X"]], [["B-PER", "O", "O"]]) == (0.5, 1.0, pytest.approx(2 / 3))
    assert scores.word_accuracy([["a", "b"], ["c"]], [["a", "x"], ["c"]]) == pytest.approx(2 / 3)


# --------------------------------------------------------------------------------------------
# The model config


def test_label_words_is_set_by_the_task_and_old_configs_load_without_it():
    saved = model_to_dict(EncoderConfig(head="token", num_labels=2, labels=("a", "b")))
    del saved["label_words"]  # a config.json written before the field existed
    assert model_from_dict(saved).label_words is False
    tagger = EncoderConfig(head="token", num_labels=2, labels=("a", "b"), label_words=True)
    assert fine_tuning_model(tagger, EncoderConfig()).label_words is False
    with pytest.raises(ConfigError, match="a sequence head does not label words"):
        EncoderConfig(head="sequence", num_labels=2, label_words=True)


# --------------------------------------------------------------------------------------------
# The command


def _ner_file(path, n=60):
    names, verbs = ["ada lovelace", "alan turing", "grace hopper"], ["met", "saw", "thanked"]
    lines = []
    for i in range(n):
        who, whom = names[i % 3].split(), names[(i + 1) % 3].split()
        words = [*who, verbs[i % 3], *whom, "in", "london", "."]
        tags = ["B-PER", "I-PER", "O", "B-PER", "I-PER", "O", "B-LOC", "O"]
        lines += [f"{w}\t{t}" for w, t in zip(words, tags)] + [""]
    path.write_text("-DOCSTART- O\n\n" + "\n".join(lines))
    return path


def test_finetune_a_tagger_then_predict_and_eval(tmp_path, capsys):
    data, run = _ner_file(tmp_path / "ner.conll"), tmp_path / "tagger"
    args = ["finetune", "--from", "scratch", "--task", "tag", "--data", str(data), "--preset", "finetune-tiny"]
    assert main([*args, "--out", str(run), "--quiet"]) == 0
    trained = json.loads(capsys.readouterr().out)
    assert {"test_word_accuracy", "test_span_f1", "val_span_precision", "val_loss"} <= trained.keys()
    assert main(["predict", "--run", str(run), "ada lovelace met alan turing in london ."]) == 0
    line = capsys.readouterr().out.strip()
    assert re.fullmatch(r"ada/\S+ lovelace/\S+ met/\S+ alan/\S+ turing/\S+ in/\S+ london/\S+ \./\S+", line)
    assert main(["predict", "--run", str(run), "--json", "grace  hopper saw ada"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["text"] == "grace  hopper saw ada" and result["words"] == ["grace", "hopper", "saw", "ada"]
    assert set(result["tags"]) <= {"B-PER", "I-PER", "B-LOC", "O"} and len(result["tags"]) == 4
    assert all(s["text"] == " ".join(result["words"][s["start"] : s["end"]]) for s in result["spans"])
    assert main(["eval", "--run", str(run), "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert {k: again[k] for k in trained if k != "run"} == pytest.approx(
        {k: v for k, v in trained.items() if k != "run"}
    )


def test_a_bad_tag_file_stops_before_training(tmp_path, capsys):
    bad = tmp_path / "pos.tsv"
    bad.write_text("The jury said .\tat nn vbd .\nIt was fine\tpps bedz\n")
    out = tmp_path / "run"
    common = ["finetune", "--from", "scratch", "--task", "tag", "--preset", "finetune-tiny", "--out", out]
    assert fails(capsys, *common, "--data", bad).endswith("pos.tsv, line 2: 3 words but 2 tags")
    assert "the tag task needs --data" in fails(capsys, *common)
    assert not out.exists()
