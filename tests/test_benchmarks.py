"""The benchmark scripts run and report what BENCHMARKS.md quotes them for (tiny settings)."""

import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def run(*args, env=None):
    result = subprocess.run(
        [*map(str, args)], cwd=REPO, capture_output=True, text=True, env={**os.environ, **(env or {})}
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_gpu_script_runs_end_to_end_on_the_cpu(tmp_path, shakespeare):
    out = tmp_path / "gpu"
    run("bash", "benchmarks/gpu.sh", out, "--cpu-smoke", env={"SCRATCHGPT_DATA": str(shakespeare)})
    bench = json.loads((out / "bench.json").read_text())
    assert {(r["attention"], r["dtype"], r["compile"]) for r in bench["results"]} == {
        (path, dtype, compile)
        for path in ("readable", "fast")
        for dtype in ("float32", "bfloat16")
        for compile in (False, True)
    }
    summary = json.loads((out / "summary.json").read_text())
    records = [json.loads(line) for line in (out / "speedrun" / "metrics.jsonl").read_text().splitlines()]
    final = records[-1]
    assert final["kind"] == "final"
    assert (summary["speedrun_full_val_loss"], summary["speedrun_steps"]) == (final["val_loss"], final["step"])
    seconds = [r["train_seconds"] for r in records if r["kind"] == "train"]  # logged after every step
    # stopped by the smoke run's 1 s budget, at the first chance (one step may take it all on a busy machine)
    assert all(s < 1.0 for s in seconds[:-1]) and seconds[-1] >= 1.0, seconds
    assert summary["device"] == bench["device"]
    generation = summary["generation"]
    assert [(r["batch"], r["policy"]) for r in generation] == [
        (b, p) for b in (1, 8) for p in ("window", "compiled", "none")
    ]
    assert all(r["same_tokens_as_eager"] for r in generation if r["policy"] == "compiled")


def test_bf16_sweep_times_both_dtypes_for_each_shape():
    report = json.loads(
        run(sys.executable, "benchmarks/cpu_bf16.py", "--rounds", "1", "--steps", "1", "--widths", "64", "--no-lecture")
    )
    assert [r["shape"] for r in report["rows"]] == [
        "width 64 (block 64, batch 32)",
        "nanoGPT's CPU shape (128, 4 heads, block 64, batch 12)",
    ]
    for row in report["rows"]:
        assert row["bf16_speedup"] == pytest.approx(row["float32_ms"] / row["bfloat16_ms"])


def test_attention_dropout_ablation_times_every_variant():
    report = json.loads(
        run(sys.executable, "benchmarks/attention_dropout.py", "--rounds", "1", "--batch", "1", "--no-step")
    )
    assert len(report["attention_ms"]) == 6 and len(report["residual_ms"]) == 2
    assert report["batch"] == 1


def test_speedrun_ablation_script_writes_and_summarises(tmp_path, shakespeare):
    results = tmp_path / "ablation.jsonl"
    run(
        sys.executable,
        "benchmarks/speedrun.py",
        "--preset",
        "tiny",
        "--variants",
        "base",
        "untied",
        "--seeds",
        "1",
        "2",
        "--max-iters",
        "3",
        "--data",
        shakespeare,
        "--out",
        results,
    )
    records = [json.loads(line) for line in results.read_text().splitlines()]
    assert [(r["variant"], r["seed"], r["steps"]) for r in records] == [
        ("base", 1, 3),
        ("untied", 1, 3),
        ("base", 2, 3),
        ("untied", 2, 3),
    ]
    table = run(sys.executable, "benchmarks/speedrun.py", "--table", results)
    assert "| base | 2 | 3 |" in table and "| untied | 2 | 3 |" in table
    rows = [line for line in table.splitlines() if line.startswith(("| base", "| untied"))]
    assert len(rows) == 2 and all(" ± " in row for row in rows)


def test_data_preparation_benchmark_reports_time_and_memory(tmp_path, shakespeare):
    report = json.loads(
        run(
            sys.executable,
            "benchmarks/prepare_data.py",
            "--mb",
            "2",
            "--workdir",
            tmp_path,
            env={"SCRATCHGPT_DATA": str(shakespeare)},
        )
    )
    assert report["num_tokens"] > 1_900_000 and report["vocab_size"] == 74
    assert report["peak_growth_mb"] > 1  # at least the one-flag-per-code-point table (1.1 MB)


def test_the_memory_measurement_sees_growth_below_an_earlier_peak():
    """An earlier, larger allocation (the imports, in the benchmark) must not hide the growth."""
    spec = importlib.util.spec_from_file_location("prepare_data", REPO / "benchmarks" / "prepare_data.py")
    prepare_data = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(prepare_data)
    earlier = np.ones(300 * 2**20, dtype=np.uint8)  # a 300 MB high-water mark ...
    del earlier  # ... then freed

    def allocate_64_mb():
        block = np.ones(64 * 2**20, dtype=np.uint8)  # touched: resident
        time.sleep(0.05)
        return int(block[-1])

    result, growth = prepare_data.peak_rss_growth(allocate_64_mb)
    assert result == 1
    assert 60 * 2**20 <= growth <= 80 * 2**20


def test_tree_comparison_alternates_the_trees_and_summarises_each_path(shakespeare):
    report = json.loads(
        run(
            sys.executable,
            "benchmarks/compare_trees.py",
            "--base",
            "src",
            "--head",
            "src",
            "--rounds",
            "2",
            "--",
            "--preset",
            "tiny",
            "--steps",
            "1",
            "--warmup",
            "1",
            "--data",
            shakespeare,
        )
    )
    assert [(r["round"], r["tree"]) for r in report["rounds"] if r["attention"] == "fast"] == [
        (0, "base"),
        (0, "head"),
        (1, "head"),
        (1, "base"),
    ]
    for path in ("fast", "readable"):
        ms = {(r["round"], r["tree"]): r["ms_per_step"] for r in report["rounds"] if r["attention"] == path}
        summary = report["summary"][path]
        assert summary["base_ms"] == pytest.approx((ms[0, "base"] + ms[1, "base"]) / 2)  # median of two
        assert summary["median_round_ratio"] == pytest.approx(
            (ms[0, "head"] / ms[0, "base"] + ms[1, "head"] / ms[1, "base"]) / 2
        )


def test_encoder_benchmark_runs_every_task_and_tabulates_it(tmp_path):
    results = tmp_path / "encoder.jsonl"
    run(
        sys.executable,
        "benchmarks/encoder.py",
        "--out",
        results,
        "--workdir",
        tmp_path / "runs",
        "--seeds",
        "1",
        "--pretrain-preset",
        "tiny-encoder",
        "--finetune-preset",
        "finetune-tiny",
    )
    records = [json.loads(line) for line in results.read_text().splitlines()]
    assert [(r["what"], r["model"] if "model" in r else None) for r in records] == [
        ("pretrain", None),
        ("speakers", "majority"),
        ("speakers", "bag-of-characters"),
        ("speakers", "encoder, pretrained"),
        ("speakers", "encoder, scratch"),
        *[
            (task, f"encoder, {source}")
            for task in ("names", "regress", "classify")
            for source in ("pretrained", "scratch")
        ],
    ]
    assert records[0]["steps"] == 60 and [e[0] for e in records[0]["estimates"]] == sorted(
        e[0] for e in records[0]["estimates"]
    )  # the curve, in training seconds
    assert all(r["steps"] == 20 for r in records[3:])  # finetune-tiny's budget, from either start
    table = run(sys.executable, "benchmarks/encoder.py", "--table", results)
    assert "| majority | - | 0.176 | 0.037 |" in table  # the same split and baseline as BENCHMARKS.md
    assert "| names | encoder, scratch | 1 |" in table and "| classify | encoder, pretrained | 1 |" in table


def test_encoder_sweep_records_each_variant(tmp_path):
    results = tmp_path / "sweep.jsonl"
    run(
        sys.executable,
        "benchmarks/encoder_sweep.py",
        "--preset",
        "tiny-encoder",
        "--budget",
        "1",
        "--out",
        results,
        "--workdir",
        tmp_path / "runs",
        "base",
        "muon_qk",
    )
    records = [json.loads(line) for line in results.read_text().splitlines()]
    assert [r["variant"] for r in records] == ["base", "muon_qk"]
    config = json.loads((tmp_path / "runs" / "muon_qk-1" / "config.json").read_text())
    assert (config["model"]["position"], config["model"]["qk_norm"], config["train"]["optimizer"]) == (
        "rotary",
        True,
        "muon",
    )
    assert json.loads((tmp_path / "runs" / "base-1" / "config.json").read_text())["model"]["position"] == "learned"
    table = run(sys.executable, "benchmarks/encoder_sweep.py", "--table", results)
    assert [line.split(" | ")[0] for line in table.splitlines()[2:]] == ["| base", "| muon_qk"]


def test_translation_benchmark_records_each_variant_and_seed(tmp_path):
    results = tmp_path / "translation.jsonl"
    run(
        sys.executable,
        "benchmarks/translation.py",
        "--task",
        "copy",
        "--budget",
        "0.5",
        "--seeds",
        "2",
        "--test-pairs",
        "40",
        "--out",
        results,
        "--workdir",
        tmp_path / "runs",
        "preset",
        "qk_norm",
    )
    records = [json.loads(line) for line in results.read_text().splitlines()]
    assert [(r["variant"], r["seed"]) for r in records] == [
        ("preset", 1),
        ("preset", 2),
        ("qk_norm", 1),
        ("qk_norm", 2),
    ]
    assert all(r["test_pairs"] == 40 and r["copy_chrf"] == 100.0 for r in records)  # scored on --test-pairs
    config = json.loads((tmp_path / "runs" / "copy-qk_norm-2-0" / "config.json").read_text())
    assert (config["model"]["qk_norm"], config["train"]["seed"], config["train"]["max_time"]) == (True, 2, 0.5)
    table = run(sys.executable, "benchmarks/translation.py", "--table", results)
    assert [line.split(" | ")[1] for line in table.splitlines()[2:]] == ["preset", "preset", "qk_norm", "qk_norm"]
    timings = run(
        sys.executable, "benchmarks/translation.py", "--decoding", tmp_path / "runs" / "copy-preset-1-0", "--pairs", "8"
    ).splitlines()
    assert [line[:16] for line in timings[:3]] == ["greedy, KV cache", "greedy, no cache", "beam 4, KV cache"]
    assert "(8/8 as cached greedy)" in timings[1]  # the cache changes no token


def test_shakespeare_pairs_reverse_each_verse_line_and_skip_the_speakers(tmp_path):
    play = tmp_path / "play.txt"
    play.write_text(
        "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n", encoding="utf-8"
    )
    run(sys.executable, "benchmarks/shakespeare_pairs.py", play, tmp_path / "pairs.tsv")
    assert (tmp_path / "pairs.tsv").read_text(encoding="utf-8").splitlines() == [
        "Before we proceed any further, hear me speak.\tspeak. me hear further, any proceed we Before",
        "Speak, speak.\tspeak. Speak,",
    ]


def test_pair_lengths_and_pair_step_measure_a_tsv(tmp_path):
    words = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]
    tsv = tmp_path / "pairs.tsv"
    tsv.write_text("".join(f"{a} {b} {a}\t{b} {a} {b}\n" for a in words for b in words), encoding="utf-8")
    table = run(sys.executable, "benchmarks/pair_lengths.py", tsv, "--sizes", "300", "--json", tmp_path / "l.jsonl")
    assert "100 pairs (" in table and "bpe 300 shared" in table
    rows = [json.loads(line) for line in (tmp_path / "l.jsonl").read_text().splitlines()]
    assert [r["tokens"] for r in rows] == ["char", "bpe 300 separate", "bpe 300 shared"]
    assert rows[0]["need_max"] == 18  # "three three three" and its [EOS]
    out = tmp_path / "step.json"
    run(
        sys.executable,
        "benchmarks/pair_step.py",
        tsv,
        "char:24",
        "bpe300:24:32",
        *("--warmup", "1", "--steps", "1", "--rounds", "1", "--batch-size", "4", "--out", out),
    )
    results = json.loads(out.read_text())["results"]
    assert [r["variant"] for r in results] == ["char:24", "bpe300:24:32"]
    assert all(r["ms_per_step"] > 0 and r["batch_padded_tokens"] >= r["batch_real_tokens"] for r in results)


def test_real_tasks_score_every_baseline_and_a_fine_tune_on_the_same_split(tmp_path):
    """The real-data benchmark on six small sets of the real files' formats: a baseline for each, a
    fine-tune scored on the test split the baseline used, and the table of both."""
    data = tmp_path / "real"
    data.mkdir()
    good, bad = ["a good film", "so good and kind", "good fun"], ["a bad film", "so bad and cruel", "bad luck"]
    reviews = "".join(
        f"{t} {i}\t{s}\n" for i in range(8) for t, s in [*((g, 2.0) for g in good), *((b, -2.0) for b in bad)]
    )
    for name in ("reviews_amazon", "reviews_nyt", "reviews_tweets"):
        (data / f"{name}.tsv").write_text(reviews)
    spam = "".join(f"call 0800 {i} to win a FREE prize\tspam\nsee you at {i} then\tham\n" for i in range(20))
    (data / "sms_spam.tsv").write_text(spam)
    (data / "brown_pos.tsv").write_text("".join(f"the dog ran {i} times\tat nn vbd cd nns\n" for i in range(30)))
    (data / "bible_en_es.tsv").write_text("".join(f"the {i} days\tlos {i} días\n" for i in range(60)))
    out, runs = tmp_path / "real.jsonl", tmp_path / "runs"
    script = "benchmarks/real_tasks.py"
    run(sys.executable, script, "--data-dir", data, "baselines", "--out", out)
    common = ["--pretrained", "scratch", "--preset", "finetune-tiny", "--seeds", "1", "--runs", runs, "--out", out]
    run(sys.executable, script, "--data-dir", data, "finetune", "--sets", "sms_spam", "--label", "tiny", *common)
    records = {(r["set"], r["kind"]): r for r in map(json.loads, out.read_text().splitlines())}
    assert set(records) == {*((s, "baseline") for s in (*REVIEWS, "sms_spam", "brown_pos", "bible_en_es")),
                            ("sms_spam", "transformer")}  # fmt: skip
    # the, dog, ran, times: their one tag; each line's number is unseen: the most frequent tag (at, first of ties)
    assert records[("brown_pos", "baseline")]["test_word_accuracy"] == pytest.approx(0.8)
    assert records[("reviews_amazon", "baseline")]["test_spearman"] > 0.8  # good and bad are the words
    assert records[("bible_en_es", "baseline")]["test_chrf"] > 0
    baseline, tuned = records[("sms_spam", "baseline")], records[("sms_spam", "transformer")]
    assert baseline["sizes"]["test"] == 4 and 0 <= tuned["test_spam_f1"] <= 1 and tuned["steps"] == 20
    table = run(sys.executable, script, "table", out)
    assert "| sms_spam | classify | spam_f1 | tiny | 1 |" in table


REVIEWS = ("reviews_amazon", "reviews_nyt", "reviews_tweets")
