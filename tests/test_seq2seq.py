"""The encoder-decoder: its two faces, cross-attention, decoding (greedy, cached, beam), its data and
its task."""

import dataclasses
import math
import random
import shutil
import sys
from types import SimpleNamespace

import pytest
import torch
from helpers import quiet

from scratchgpt.config import Seq2SeqConfig, apply_overrides, preset
from scratchgpt.data.pairs import GENERATORS, generate, generate_distinct, read_pairs, split_of
from scratchgpt.data.tokenizer import CharTokenizer, PairTokenizer, load_tokenizer, save_tokenizer
from scratchgpt.errors import CheckpointError, ConfigError, DataError, InputError, TrainingInterrupted
from scratchgpt.inference.beam import beam_search, greedy, sequence_score
from scratchgpt.inference.translate import stream_translation, translate
from scratchgpt.models.convert import convert
from scratchgpt.models.registry import build_model
from scratchgpt.rundir import load_model, read_config
from scratchgpt.training.loop import train
from scratchgpt.training.tasks import build_task, fit_model_config

BOS, EOS = 2, 3


def random_model(attention="fast", **settings):
    """A model with large random weights, so that its greedy targets vary and end at different steps."""
    torch.manual_seed(0)
    shape = {"src_vocab_size": 20, "vocab_size": 15, "block_size": 16, "n_embd": 32, "n_head": 4, "n_layer": 2}
    config = Seq2SeqConfig(**{**shape, **settings}, dropout=0.0, attention=attention)
    model = build_model(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.3)
        model.lm_head.bias[EOS] = 1.0  # [EOS] likely enough that targets end at different steps
    return model


def sources(pad_to=None):
    """src (4, S) of different lengths, padded with 0, and its mask."""
    lengths = [7, 3, 5, 1]
    S = pad_to or max(lengths)
    src = torch.zeros(4, S, dtype=torch.long)
    g = torch.Generator().manual_seed(1)
    for i, n in enumerate(lengths):
        src[i, :n] = torch.randint(4, 15, (n,), generator=g)  # ids every test vocabulary has
    return src, src != 0


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"position": "learned"},
        {"position": "rotary", "qk_norm": True},
        {"shared_vocab": True, "src_vocab_size": 15, "tie_embeddings": True},
    ],
)
def test_the_readable_and_the_fast_face_compute_the_same_function(settings):
    readable = random_model("readable", **settings)
    fast = convert(readable, "fast")
    src, mask = sources()
    tgt = torch.randint(4, 15, (4, 6))
    assert torch.allclose(readable(src, tgt, src_mask=mask)[0], fast(src, tgt, src_mask=mask)[0], atol=1e-5)
    # the cross-attention is the lecture's per-head code on the readable face
    assert "decoder_blocks.0.cross.heads.3.value.weight" in readable.state_dict()
    assert "decoder_blocks.0.cross.qkv.weight" in fast.state_dict()


@pytest.mark.parametrize("attention", ["readable", "fast"])
def test_padding_the_source_changes_nothing(attention):
    model = random_model(attention)
    tgt = torch.randint(4, 15, (4, 6))
    short, long_ = sources(), sources(pad_to=12)
    a = model(short[0], tgt, src_mask=short[1])[0]
    b = model(long_[0], tgt, src_mask=long_[1])[0]
    assert torch.allclose(a, b, atol=1e-5)
    # and the mask matters: without it the padding is read
    assert not torch.allclose(a, model(long_[0], tgt)[0], atol=1e-3)


def test_the_decoder_reads_the_source_through_cross_attention():
    model = random_model()
    src, mask = sources()
    tgt = torch.randint(4, 15, (4, 6))
    other = src.clone()
    other[0, 0] = 14 if src[0, 0] != 14 else 13
    a, b = model(src, tgt, src_mask=mask)[0], model(other, tgt, src_mask=mask)[0]
    assert not torch.allclose(a[0], b[0], atol=1e-4)  # every target position of row 0 changes
    assert torch.allclose(a[1:], b[1:])


def test_cached_greedy_decoding_gives_the_uncached_tokens():
    fast = random_model()
    src, mask = sources()
    cached = greedy(fast, src, mask, BOS, EOS, 15, cache=True)
    assert cached == greedy(fast, src, mask, BOS, EOS, 15, cache=False)
    assert cached == greedy(convert(fast, "readable").eval(), src, mask, BOS, EOS, 15)
    lengths = {len(t) for t in cached}
    assert len(lengths) > 1  # some targets end early and some go on: the test sees both


def test_beam_of_one_is_greedy():
    model = random_model()
    src, mask = sources()
    for alpha in (0.0, 0.6, 2.0):
        assert beam_search(model, src, mask, BOS, EOS, 15, beam=1, alpha=alpha)[0] == greedy(
            model, src, mask, BOS, EOS, 15
        )


def test_a_batch_decodes_as_its_sources_alone():
    model = random_model()
    src, mask = sources()
    together = beam_search(model, src, mask, BOS, EOS, 15, beam=3)
    for i in range(4):
        n = int(mask[i].sum())
        alone = beam_search(model, src[i : i + 1, :n], mask[i : i + 1, :n], BOS, EOS, 15, beam=3)
        assert alone[0][0] == together[0][i]
        assert alone[1][0] == pytest.approx(together[1][i], abs=1e-4)


def test_beam_search_scores_are_the_models_own():
    model = random_model()
    src, mask = sources()
    targets, scores = beam_search(model, src, mask, BOS, EOS, 15, beam=4, alpha=0.6)
    ended = [i for i, target in enumerate(targets) if len(target) < 15]  # with [EOS], as sequence_score assumes
    assert len(ended) >= 2
    for i in ended:
        rescored = sequence_score(model, src[i : i + 1], mask[i : i + 1], targets[i], BOS, EOS, 0.6)
        assert rescored == pytest.approx(scores[i], abs=1e-4)


class Crafted(torch.nn.Module):
    """A decoder whose next-token probabilities are written out: after [BOS], A 0.6 and B 0.4; after
    A, [EOS] 0.3 and three others 0.28, 0.22, 0.2; after B, [EOS] 0.9; after anything else [EOS].
    Greedy takes A then [EOS] (p = 0.18); the best target is B [EOS] (p = 0.36)."""

    A, B = 4, 5
    config = SimpleNamespace(block_size=8)
    supports_kv_cache = False

    def encode(self, src, src_mask=None):
        return torch.zeros(src.shape[0], src.shape[1], 1)

    def decode(self, tgt, memory, src_mask=None, cache=None):
        rows = []
        for prefix in tgt.tolist():
            p = torch.full((9,), 1e-9)
            last = prefix[-1]
            if len(prefix) == 1:
                p[self.A], p[self.B] = 0.6, 0.4
            elif last == self.A:
                p[EOS], p[6], p[7], p[8] = 0.3, 0.28, 0.22, 0.2
            elif last == self.B:
                p[EOS], p[6] = 0.9, 0.1
            else:
                p[EOS] = 1.0
            rows.append(p.log())
        return torch.stack(rows)[:, None, :].expand(-1, tgt.shape[1], -1)  # (B, T, V): the last position counts


def test_beam_search_finds_a_likelier_target_than_greedy():
    src = torch.ones(1, 2, dtype=torch.long)
    model = Crafted()
    assert greedy(model, src, None, BOS, EOS, 5) == [[Crafted.A]]
    targets, scores = beam_search(model, src, None, BOS, EOS, 5, beam=2, alpha=0.0)
    assert targets == [[Crafted.B]]
    assert scores[0] == pytest.approx(math.log(0.36), abs=1e-5)


def test_a_length_penalty_lets_a_longer_target_win():
    model = Crafted()
    src = torch.ones(1, 2, dtype=torch.long)
    # A, 6, [EOS] is p = 0.168 over 3 tokens against 0.36 over 2
    assert beam_search(model, src, None, BOS, EOS, 5, beam=4, alpha=0.0)[0] == [[Crafted.B]]
    assert beam_search(model, src, None, BOS, EOS, 5, beam=4, alpha=8.0)[0] == [[Crafted.A, 6]]


def test_decoding_refuses_impossible_lengths():
    model = random_model()
    src, mask = sources()
    with pytest.raises(ConfigError, match="max_len"):
        greedy(model, src, mask, BOS, EOS, 16)
    with pytest.raises(ConfigError, match="beam"):
        beam_search(model, src, mask, BOS, EOS, 5, beam=0)


def test_label_smoothing_is_a_training_loss_only():
    plain, smooth = random_model(), random_model(label_smoothing=0.2)
    src, mask = sources()
    tgt, nxt = torch.randint(4, 15, (4, 6)), torch.randint(4, 15, (4, 6))
    nxt[0, 4:] = -100
    assert smooth(src, tgt, nxt, mask)[1].item() == pytest.approx(plain(src, tgt, nxt, mask)[1].item())  # eval mode
    plain.train(), smooth.train()
    assert smooth(src, tgt, nxt, mask)[1].item() != pytest.approx(plain(src, tgt, nxt, mask)[1].item(), rel=1e-3)


# ---------------------------------------------------------------------------------------------
# Data


def test_generated_pairs_keep_their_test_keys_out_of_training():
    for name in GENERATORS:
        held_out = generate_distinct(name, "test", 300, seed=2)
        assert all(split_of(_key(name, pair)) == "test" for pair in held_out)
        training = generate(name, "train", 3000, random.Random(0))
        assert all(split_of(_key(name, pair)) == "train" for pair in training)
        assert not {_key(name, p) for p in held_out} & {_key(name, p) for p in training}


def _key(name, pair):
    """What a generated pair is about: the date (its ISO target) for dates, else the source."""
    source, target = pair
    return target if name == "dates" else source


def test_a_generated_test_set_is_the_same_every_time_and_has_no_repeats():
    a = generate_distinct("numbers", "test", 500, seed=2)
    assert a == generate_distinct("numbers", "test", 500, seed=2)
    assert len({s for s, _ in a}) == 500
    assert a != generate_distinct("numbers", "test", 500, seed=3)


def test_a_tsv_of_pairs(tmp_path):
    path = tmp_path / "pairs.tsv"
    path.write_text(
        "Go.\tVa !\tCC-BY 2.0 (France) Attribution: tatoeba.org\nno tab here\n\nHi.\t\n  \tSalut.\nRun!\tCours !\n",
        encoding="utf-8",
    )
    pairs, skipped = read_pairs([path])
    assert pairs == [("Go.", "Va !"), ("Run!", "Cours !")]  # the licence column is ignored
    assert skipped.counts == {"lines without a tab": 1, "lines with an empty side": 2}
    assert str(skipped) == (
        f"1 line without a tab (first: {path}, line 2); 2 lines with an empty side (first: {path}, line 4)"
    )
    with pytest.raises(DataError, match=f"{path}, line 2: lines without a tab"):
        read_pairs([path], strict=True)
    with pytest.raises(DataError, match="data path is not a file"):
        read_pairs([tmp_path])
    with pytest.raises(DataError, match="data file not found"):
        read_pairs([tmp_path / "missing.tsv"])


def test_two_aligned_files(tmp_path):
    src, tgt = tmp_path / "a.en", tmp_path / "a.fr"
    src.write_text("Go.\nHi.\n\nRun!\n", encoding="utf-8")
    tgt.write_text("Va !\nSalut.\n\nCours !\n", encoding="utf-8")
    assert read_pairs([src, tgt])[0] == [("Go.", "Va !"), ("Hi.", "Salut."), ("Run!", "Cours !")]
    tgt.write_text("Va !\nSalut.\n\nCours !\nEncore.\n", encoding="utf-8")
    with pytest.raises(DataError, match="not aligned: .*a.fr has more lines"):
        read_pairs([src, tgt])


@pytest.mark.parametrize(
    "content, message",
    [("", "the file is empty"), ("a\nb\n", "2 lines without a tab"), (b"\xff\xfe\tx\n", "not UTF-8")],
)
def test_unusable_pair_files(tmp_path, content, message):
    path = tmp_path / "bad.tsv"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(DataError, match=message):
        read_pairs([path])


def test_the_pair_tokenizer_round_trips(tmp_path):
    for shared in (False, True):
        tokenizer = PairTokenizer.from_pairs(["29 Aug 58"], ["1958-08-29"], shared=shared)
        save_tokenizer(tokenizer, tmp_path / "t.json")
        loaded = load_tokenizer(tmp_path / "t.json")
        assert loaded.shared == shared
        assert loaded.source.encode("Aug 5") == tokenizer.source.encode("Aug 5")
        assert loaded.target.decode(tokenizer.target.encode("1958")) == "1958"
    assert tokenizer.source.vocab_size == tokenizer.target.vocab_size


# ---------------------------------------------------------------------------------------------
# Training and translating


def tiny(task="copy", **overrides):
    return apply_overrides(*preset("tiny-seq2seq"), {"task": task, **overrides})


@pytest.fixture(scope="module")
def copy_run(tmp_path_factory):
    """A run that learns to copy short strings: trained once for the tests below."""
    out = tmp_path_factory.mktemp("copy") / "run"
    model_config, train_config = tiny(
        n_embd=64,
        n_head=4,
        qk_norm=True,
        max_iters=1400,
        lr=5e-3,
        batch_size=32,
        eval_interval=1400,
        schedule="wsd",
        warmup_iters=20,
    )
    return out, train(model_config, train_config, out, progress=False, log=quiet)


def test_a_small_model_learns_to_copy(copy_run):
    _, result = copy_run
    assert result.scores["test_exact"] == 1.0
    assert result.scores["test_chrf"] == pytest.approx(100.0)
    assert result.scores["copy_chrf"] == pytest.approx(100.0)  # copying is the task itself here


def test_a_saved_model_loads_in_its_readable_face_and_translates_the_same(copy_run):
    out, _ = copy_run
    fast, tokenizer, _, _ = load_model(out)
    readable, _, config, _ = load_model(out, attention="readable")
    assert config.attention == "readable"
    texts = ["hello", "abcxyz", "q"]
    assert translate(readable, tokenizer, texts) == translate(fast, tokenizer, texts) == texts


def test_a_saved_model_translates_as_the_trained_one(copy_run):
    out, result = copy_run
    model, tokenizer, _, _ = load_model(out)
    texts = ["hello", "abcxyz", "q"]
    assert translate(model, tokenizer, texts) == texts
    assert translate(model, tokenizer, texts, beam=3) == texts
    assert "".join(stream_translation(model, tokenizer, "stream")) == "stream"
    assert result.sample.splitlines()[0].startswith("✓")


def test_translate_refuses_what_it_cannot_read(copy_run):
    out, _ = copy_run
    model, tokenizer, config, _ = load_model(out)
    with pytest.raises(InputError, match="block_size"):
        translate(model, tokenizer, ["a" * (config.block_size + 1)])
    with pytest.raises(InputError, match="empty"):
        translate(model, tokenizer, [""])


def test_a_translation_run_resumes_exactly(tmp_path, interrupt_at):
    model_config, train_config = tiny("reverse", max_iters=16, eval_interval=4)
    straight = train(model_config, train_config, tmp_path / "straight", progress=False, log=quiet)
    interrupt_at(9)
    with pytest.raises(TrainingInterrupted):
        train(model_config, train_config, tmp_path / "split", progress=False, log=quiet)
    saved = load_model(tmp_path / "split")[2]
    resumed = train(saved, train_config, tmp_path / "split", resume=True, progress=False, log=quiet)
    assert resumed.scores == straight.scores


def test_the_users_pairs_are_split_by_source_and_long_ones_dropped(tmp_path):
    lines = [f"{w}\t{w.upper()}" for w in (f"w{i}" for i in range(300))] + ["x" * 40 + "\tlong"] + ["w1\tW1 again"]
    path = tmp_path / "pairs.tsv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    model_config, train_config = tiny("pairs")
    task = build_task(model_config, train_config, data=path)
    config = fit_model_config(model_config, task)
    assert config.src_vocab_size == task.tokenizer.source.vocab_size
    assert sum(task.too_long.values()) == 1
    seen = {split: {s for s, _ in pairs} for split, pairs in task.pairs.items()}
    assert not seen["train"] & seen["test"] and not seen["train"] & seen["val"]
    both = [split for split, pairs in task.pairs.items() if ("w1", "W1 again") in pairs]
    assert both and ("w1", "W1") in task.pairs[both[0]]  # one source's pairs stay in one split
    assert "skipped as longer than block_size 24 characters: 1 " in task.summary()


def test_translation_tasks_refuse_the_wrong_data(tmp_path):
    with pytest.raises(ConfigError, match="generates its pairs"):
        build_task(*tiny("dates"), data=tmp_path / "x.tsv")
    with pytest.raises(ConfigError, match="needs --data"):
        build_task(*tiny("pairs"))
    gpt, train_config = preset("tiny")
    with pytest.raises(ConfigError, match="trains the seq2seq model"):
        build_task(gpt, dataclasses.replace(train_config, task="dates"))


def test_a_run_with_the_wrong_tokenizer_is_refused(copy_run, tmp_path):
    out, _ = copy_run
    shutil.copytree(out, tmp_path / "run")
    save_tokenizer(CharTokenizer.from_text("abc"), tmp_path / "run" / "tokenizer.json")
    with pytest.raises(CheckpointError, match="a char tokenizer for a seq2seq model"):
        load_model(tmp_path / "run")


def test_a_block_too_small_for_the_task_is_refused():
    with pytest.raises(DataError, match="dates: no val or test pairs .* a larger --block-size"):
        build_task(*tiny("dates", block_size=8))  # an ISO date and its [EOS] are 11 tokens


def test_without_sacrebleu_a_run_still_reports_its_exact_match(copy_run, monkeypatch):
    out, _ = copy_run
    model, tokenizer, config, _ = load_model(out)
    task = build_task(config, read_config(out)[1], tokenizer=tokenizer)
    monkeypatch.setitem(sys.modules, "sacrebleu.metrics", None)  # as if the extra were not installed
    scores = task.evaluate(model, "cpu")
    assert scores["test_exact"] == 1.0 and "test_chrf" not in scores
    assert "pip install 'scratchgpt[translate]'" in task.report(scores)
