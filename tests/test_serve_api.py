"""The playground's JSON API against the real app on a loopback port: every endpoint, every kind of
refusal, streaming, cancelling, the concurrency limit, runs that are missing, damaged or retrained,
the run a request may leave out, the newest run first, and whether a run trains, stopped or finished."""

import asyncio
import base64
import contextlib
import os
import shutil
import socket
import threading

import httpx
import numpy as np
import pytest
import torch
from helpers import fails
from serving import ProcessServer, ThreadServer, events, wait_for

from scratchgpt.cli import main
from scratchgpt.inference.generate import sample_text
from scratchgpt.inference.predict import fill, predict
from scratchgpt.inference.translate import translate
from scratchgpt.lessons.attention_maps import attention_panels
from scratchgpt.rundir import load_model, read_metrics, run_lock, save_weights
from scratchgpt.serve.app import create_app
from scratchgpt.serve.gate import Busy, Cancelled, Gate
from scratchgpt.serve.limits import Limits
from scratchgpt.serve.runs import Runs


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One tiny run of each family (and a fine-tuned encoder), trained by the command."""
    root = tmp_path_factory.mktemp("serve")
    words = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]
    (root / "pairs.tsv").write_text("".join(f"{a} {b}\t{b} {a}\n" for a in words for b in words))
    for args in (
        ["train", "--preset", "tiny", "--out", root / "gpt"],
        ["train", "--preset", "tiny-encoder", "--out", root / "mlm"],
        [
            "finetune",
            "--from",
            root / "mlm",
            "--task",
            "speakers",
            "--preset",
            "finetune-tiny",
            "--max-iters",
            "4",
            "--out",
            root / "speakers",
        ],
        ["train", "--preset", "tiny-seq2seq", "--task", "pairs", "--data", root / "pairs.tsv", "--out", root / "swap"],
    ):
        assert main([*map(str, args), "--quiet"]) == 0
    return root


@pytest.fixture(scope="module")
def server(runs):
    """The app over the four runs, with limits small enough to reach in a test."""
    app = create_app(
        Runs([runs / n for n in ("gpt", "mlm", "speakers", "swap")]),
        Limits(
            max_body_bytes=100_000,
            max_text_chars=500,
            max_new_tokens=100_000,
            max_texts=4,
            workers=1,
            queue=1,
            streams=2,
        ),
    )
    live = ThreadServer(app)
    yield live
    live.stop()


@pytest.fixture
def client(server):
    with httpx.Client(base_url=server.url, timeout=60) as client:
        yield client


def error(response, status):
    """The one-line JSON error of a refusal with `status`, which must carry no traceback."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    message = response.json()["error"]
    assert "\n" not in message and "Traceback" not in message
    return message


def test_health_and_the_run_list(client, runs):
    assert client.get("/api/health").json() == {
        "status": "ok",
        "runs": 4,
        "running": 0,
        "waiting": 0,
        "workers": 1,
        "queue": 1,
        "streams": {"decoding": 0, "waiting": 0, "per_model": 2},
        "limits": {"max_new_tokens": 100_000, "max_text_chars": 500, "max_texts": 4},
    }
    listed = {r["name"]: r for r in client.get("/api/runs").json()["runs"]}
    assert {n: r["abilities"] for n, r in listed.items()} == {
        "gpt": ["generate", "attention"],
        "mlm": ["fill", "attention"],
        "speakers": ["predict", "attention"],
        "swap": ["translate", "attention"],
    }
    assert listed["gpt"]["status"] == "finished" and listed["gpt"]["final"]["val_loss"] > 0
    assert listed["gpt"]["shape"]["n_layer"] == 2 and listed["swap"]["task"] == "pairs"
    details = client.get("/api/runs/gpt").json()
    assert details["config"]["model"]["kind"] == "gpt"
    assert details["sample"] == (runs / "gpt" / "samples.txt").read_text()
    assert client.get("/api/runs/gpt/metrics").json()["records"] == read_metrics(runs / "gpt")


def test_the_page_and_its_files_are_served(client):
    page = client.get("/")
    assert page.status_code == 200 and "<html" in page.text.lower()
    assert client.get("/static/app.js").status_code == 200


def _settings(**extra):
    return {"run": "gpt", "prompt": "ROMEO:", "max_new_tokens": 40, "temperature": 0.8, "top_k": 20, "seed": 7, **extra}


def test_generate_streams_the_text_sample_text_gives(client, runs):
    model, tokenizer, _, _ = load_model(runs / "gpt")
    expected = sample_text(model, tokenizer, "ROMEO:", max_new_tokens=40, temperature=0.8, top_k=20, seed=7)
    with client.stream("POST", "/api/generate", json=_settings()) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        received = list(events(response.iter_lines()))
    *tokens, (last, done) = received
    assert {name for name, _ in tokens} == {"token"} and last == "done"
    assert "ROMEO:" + "".join(data["text"] for _, data in tokens) == expected
    assert done["tokens"] == len(tokens) == 40 and done["tokens_per_second"] > 0
    whole = client.post("/api/generate", json=_settings(stream=False)).json()
    assert "ROMEO:" + whole["text"] == expected and whole["tokens"] == 40


@pytest.mark.parametrize(
    "body, status, message",
    [
        ({"run": "nope"}, 404, "unknown run 'nope' (this server has: gpt, mlm, speakers, swap)"),
        ({}, 422, "run: name one of this server's runs (gpt, mlm, speakers, swap)"),
        (_settings(prompt="Café"), 422, "text has characters outside the vocabulary: 'é'"),
        (_settings(max_new_tokens=-1), 422, "max_new_tokens: Input should be greater than or equal to 1"),
        (_settings(max_new_tokens=100_001), 422, "max_new_tokens is 100,001; this server generates at most 100,000"),
        (_settings(temperature=-0.5), 422, "temperature: Input should be greater than or equal to 0"),
        (_settings(top_k=0), 422, "top_k: Input should be greater than or equal to 1"),
        (_settings(top_k=66), 422, "top_k is 66; the model has 65 tokens"),
        (_settings(top_p=0), 422, "top_p: Input should be greater than 0"),
        (_settings(cache="lru"), 422, "cache: String should match pattern"),
        (_settings(max_new_tokens="many"), 422, "max_new_tokens: Input should be a valid integer"),
        (_settings(temprature=1), 422, "temprature: unknown field"),
        (_settings(prompt="a" * 501), 422, "the prompt has 501 characters; this server takes at most 500"),
        ({"run": "mlm"}, 422, "run 'mlm' holds an encoder model, which cannot generate (it can: fill, attention)"),
    ],
)
def test_generate_refuses_bad_requests_with_one_json_line(client, body, status, message):
    assert message in error(client.post("/api/generate", json=body), status)


def test_bodies_that_are_not_json_or_too_big_are_refused(client):
    headers = {"content-type": "application/json"}
    assert "not valid JSON" in error(client.post("/api/generate", content=b"{bad", headers=headers), 400)
    big = b'{"run": "gpt", "prompt": "' + b"a" * 10_000_000 + b'"}'
    assert "larger than this server's limit of 100,000 bytes" in error(
        client.post("/api/generate", content=big, headers=headers), 413
    )

    def chunks():  # no content-length: the limit must count the bytes as they come
        yield b'{"run": "gpt", "prompt": "'
        for _ in range(200):
            yield b"a" * 1000
        yield b'"}'

    assert "larger than" in error(client.post("/api/generate", content=chunks(), headers=headers), 413)
    assert error(client.get("/api/nothing"), 404) == "not found"
    assert error(client.delete("/api/health"), 405) == "method not allowed"


def _weights(panel):
    data = np.frombuffer(base64.b64decode(panel["weights"]), dtype=np.uint8)
    return torch.from_numpy(data.reshape(panel["shape"]).astype(np.float32) / 255)


@pytest.mark.parametrize(
    "name, body", [("gpt", {"text": "ROMEO:\nHa!"}), ("mlm", {"text": "To be, or"}), ("swap", {"text": "one two"})]
)
def test_attention_gives_the_maps_the_attention_command_draws(client, runs, name, body):
    model, tokenizer, config, _ = load_model(runs / name)
    expected, translation = attention_panels(model, tokenizer, body["text"])
    answer = client.post("/api/attention", json={"run": name, **body}).json()
    assert answer["translation"] == translation and (translation is None) == (name != "swap")
    assert [p["name"] for p in answer["panels"]] == [p[0] for p in expected]
    for panel, (_, weights, rows, cols) in zip(answer["panels"], expected):
        assert panel["rows"] == rows and panel["cols"] == cols
        assert panel["shape"] == [config.n_layer, config.n_head, len(rows), len(cols)]
        assert torch.allclose(_weights(panel), weights, atol=0.5 / 255 + 1e-6)  # bytes: within half a step


def test_attention_refusals(client):
    assert "the text has 33 tokens; the model sees at most block_size 32" in error(
        client.post("/api/attention", json={"run": "gpt", "text": "x" * 33}), 422
    )
    assert "text: String should have at least 1 character" in error(
        client.post("/api/attention", json={"run": "gpt", "text": ""}), 422
    )
    assert "a target is for encoder-decoder runs" in error(
        client.post("/api/attention", json={"run": "gpt", "text": "a", "target": "b"}), 422
    )


def test_fill_predict_and_translate_answer_as_the_python_api(client, runs):
    mlm, mlm_tok, _, _ = load_model(runs / "mlm")
    guesses = fill(mlm, mlm_tok, "To b[MASK] or", top_k=3)
    answer = client.post("/api/fill", json={"run": "mlm", "text": "To b[MASK] or", "top_k": 3}).json()
    assert [[(g["token"], g["probability"]) for g in mask] for mask in answer["masks"]] == guesses
    speakers, speakers_tok, _, _ = load_model(runs / "speakers")
    texts = ["My lord, the king.", "Good morrow."]
    assert client.post("/api/predict", json={"run": "speakers", "texts": texts}).json()["results"] == predict(
        speakers, speakers_tok, texts
    )
    swap, swap_tok, _, _ = load_model(runs / "swap")
    answer = client.post("/api/translate", json={"run": "swap", "texts": ["one two", "ten six"], "beam": 3})
    assert answer.json()["translations"] == translate(swap, swap_tok, ["one two", "ten six"], beam=3)
    long = "one two three. four five six. seven eight nine. ten one."  # longer than block_size 24: in pieces
    answer = client.post("/api/translate", json={"run": "swap", "texts": [long], "split": True})
    assert answer.json()["translations"] == translate(swap, swap_tok, [long], split=True)


@pytest.mark.parametrize(
    "path, body, status, message",
    [
        ("/api/fill", {"run": "mlm", "text": "no mask here"}, 422, "the text has no [MASK] to fill"),
        ("/api/fill", {"run": "speakers", "text": "[MASK]"}, 422, "cannot fill"),
        ("/api/predict", {"run": "speakers", "texts": []}, 422, "texts: List should have at least 1 item"),
        (
            "/api/predict",
            {"run": "speakers", "texts": ["a"] * 5},
            422,
            "5 texts in one request; this server takes at most 4",
        ),
        ("/api/predict", {"run": "speakers", "texts": ["a", "b" * 501]}, 422, "text 2 has 501 characters"),
        ("/api/translate", {"run": "swap", "texts": ["one"], "beam": 0}, 422, "beam: Input should be greater"),
        ("/api/translate", {"run": "swap", "texts": ["one " * 50]}, 422, "the model reads at most block_size"),
        (
            "/api/translate",
            {"run": "gpt", "texts": ["abc"]},
            422,
            "run 'gpt' holds a gpt model, which cannot translate",
        ),
        ("/api/fill", {"text": "[MASK]"}, 422, "run: name one of this server's runs (gpt, mlm, speakers, swap)"),
    ],
)
def test_other_families_refuse_bad_requests(client, path, body, status, message):
    assert message in error(client.post(path, json=body), status)


def test_closing_the_stream_cancels_the_generation_on_the_server(client, server):
    batcher = server.app.state.runs.model("gpt").batcher
    before = len(batcher.finished)
    with client.stream("POST", "/api/generate", json=_settings(max_new_tokens=100_000)) as response:
        stream = events(response.iter_lines())
        for _ in range(3):
            assert next(stream)[0] == "token"
    wait_for(lambda: len(batcher.finished) > before, "the cancelled stream to end")
    tokens, cancelled = batcher.finished[-1]
    assert cancelled and tokens < 100_000  # uncancelled it would run for minutes
    assert _idle(client)


def test_a_full_server_answers_503_with_retry_after_then_recovers(client, server):
    """streams=2, queue=1: two generations decode together, a third waits, a fourth is refused at
    once; the slots come back when the streams end."""
    long = _settings(max_new_tokens=100_000)
    with contextlib.ExitStack() as open_streams:
        readers = []  # kept: dropping an iterator would close its stream
        for i in range(3):
            other = open_streams.enter_context(httpx.Client(base_url=server.url, timeout=60))
            response = open_streams.enter_context(other.stream("POST", "/api/generate", json=long))
            assert response.status_code == 200
            readers.append(events(response.iter_lines()))
            if i < 2:
                assert next(readers[-1])[0] == "token"
        full = {"decoding": 2, "waiting": 1, "per_model": 2}
        wait_for(lambda: client.get("/api/health").json()["streams"] == full, "two streams decoding, one waiting")
        refused = client.post("/api/generate", json=_settings(stream=False))
        assert "the server is busy (2 streams decoding, 1 waiting)" in error(refused, 503)
        assert refused.headers["retry-after"] == "1"
        assert client.post("/api/attention", json={"run": "gpt", "text": "a"}).status_code == 200  # not a stream
    wait_for(lambda: _idle(client), "the three generations to be cancelled")
    assert client.post("/api/generate", json=_settings(stream=False)).status_code == 200


def test_the_gate_refuses_work_beyond_its_workers_and_queue():
    gate = Gate(workers=1, queue=1)
    first, second = gate.admit(), gate.admit()
    with pytest.raises(Busy, match=r"the server is busy \(1 computing, 1 waiting\)"):
        gate.admit()
    assert gate.counts() == {"running": 0, "waiting": 2}
    asyncio.run(first.result(lambda: None))  # a job that ran frees its place
    assert gate.admit() is not None
    second.cancel()
    with pytest.raises(Cancelled):  # cancelled before its turn: it never runs
        asyncio.run(second.result(lambda: pytest.fail("a cancelled job ran")))


def _idle(client):
    counts = client.get("/api/health").json()
    return (
        counts["running"] == counts["waiting"] == 0
        and counts["streams"]["decoding"] == counts["streams"]["waiting"] == 0
    )


@pytest.mark.parametrize(
    "name, path, body",
    [
        ("gpt", "/api/generate", {"prompt": "ROMEO:", "max_new_tokens": 20, "seed": 7, "stream": False}),
        ("gpt", "/api/attention", {"text": "ROMEO:"}),
        ("mlm", "/api/fill", {"text": "To b[MASK] or", "top_k": 3}),
        ("speakers", "/api/predict", {"texts": ["My lord, the king."]}),
        ("swap", "/api/translate", {"texts": ["one two"], "beam": 2}),
    ],
)
def test_a_server_of_one_run_needs_no_run_name(runs, name, path, body):
    live = ThreadServer(create_app(Runs([runs / name])))
    try:
        with httpx.Client(base_url=live.url, timeout=60) as client:
            named = client.post(path, json={"run": name, **body})
            unnamed = client.post(path, json=body)
    finally:
        live.stop()
    assert named.status_code == unnamed.status_code == 200, unnamed.text
    if path == "/api/generate":
        assert unnamed.json()["text"] == named.json()["text"]
    else:
        assert unnamed.json() == named.json()


def test_the_runs_are_listed_newest_first(runs, tmp_path):
    """Newest as the commands mean it: the run whose model was kept last; runs without one last."""
    for name, mtime in (("older", 1_000_000), ("newest", 3_000_000), ("old", 2_000_000), ("new-run", None)):
        shutil.copytree(runs / "gpt", tmp_path / name)
        if mtime is None:
            (tmp_path / name / "model.safetensors").unlink()  # started, no model kept yet
        else:
            os.utime(tmp_path / name / "model.safetensors", (mtime, mtime))
    live = ThreadServer(create_app(Runs(root=tmp_path)))
    try:
        with httpx.Client(base_url=live.url, timeout=60) as client:
            listed = [run["name"] for run in client.get("/api/runs").json()["runs"]]
    finally:
        live.stop()
    assert listed == ["newest", "old", "older", "new-run"]


def test_a_run_is_training_while_its_lock_is_held_else_stopped_or_finished(runs, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(runs / "gpt", run, ignore=shutil.ignore_patterns(".lock"))  # as if never trained here
    live = ThreadServer(create_app(Runs([run])))
    try:
        with httpx.Client(base_url=live.url, timeout=60) as client:

            def status():
                return client.get("/api/runs").json()["runs"][0]["status"]

            assert status() == "finished"
            records = (run / "metrics.jsonl").read_text().splitlines()
            (run / "metrics.jsonl").write_text("".join(r + "\n" for r in records if '"final"' not in r))
            assert status() == "stopped"  # Ctrl-C: a checkpoint, no final record, no process
            assert not (run / ".lock").exists()  # asking made no lock file
            with run_lock(run):  # as the training loop holds it; the server's asking never kept it
                assert status() == "training"
                assert client.get("/api/runs/run").json()["status"] == "training"
            assert status() == "stopped"
    finally:
        live.stop()


def _retrain(run):
    """Replace the run's model with other weights, as training does when it keeps a new best model;
    (the new model, its tokenizer)."""
    model, tokenizer, _, _ = load_model(run)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(0.5)
    save_weights(run / "model.safetensors", model)
    return model, tokenizer


def test_missing_damaged_and_retrained_runs(runs, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(runs / "gpt", copy)
    app = create_app(Runs([copy]))
    live = ThreadServer(app)
    try:
        with httpx.Client(base_url=live.url, timeout=60) as client:
            first = client.post("/api/generate", json=_settings(run="copy", stream=False)).json()["text"]
            model, tokenizer = _retrain(copy)
            retrained = client.post("/api/generate", json=_settings(run="copy", stream=False)).json()["text"]
            assert retrained != first
            assert "ROMEO:" + retrained == sample_text(
                model, tokenizer, "ROMEO:", max_new_tokens=40, temperature=0.8, top_k=20, seed=7
            )
            (copy / "model.safetensors").write_bytes(b"not a model")
            assert "is corrupt or truncated" in error(client.post("/api/generate", json=_settings(run="copy")), 409)
            (copy / "model.safetensors").unlink()
            assert "has no model yet" in error(client.post("/api/generate", json=_settings(run="copy")), 409)
            assert client.get("/api/health").json()["status"] == "ok"
    finally:
        live.stop()


def test_a_stream_ends_on_the_model_it_began_with_when_training_replaces_it(runs, tmp_path):
    """The new model takes the new requests; the old one's decode loop finishes its streams, then stops."""
    copy = tmp_path / "copy"
    shutil.copytree(runs / "gpt", copy)
    old, tokenizer, _, _ = load_model(copy)
    app = create_app(Runs([copy]))
    live = ThreadServer(app)
    long = _settings(run="copy", max_new_tokens=300)
    try:
        with (
            httpx.Client(base_url=live.url, timeout=60) as client,
            httpx.Client(base_url=live.url, timeout=60) as other,
        ):
            with client.stream("POST", "/api/generate", json=long) as response:
                reader = events(response.iter_lines())
                received = [next(reader)]
                old_loop = app.state.runs.model("copy").batcher
                new, _ = _retrain(copy)
                retrained = other.post("/api/generate", json=_settings(run="copy", stream=False)).json()["text"]
                received += list(reader)
        assert received[-1][0] == "done" and received[-1][1]["tokens"] == 300
        text = "".join(data["text"] for name, data in received if name == "token")
        assert "ROMEO:" + text == sample_text(
            old, tokenizer, "ROMEO:", max_new_tokens=300, temperature=0.8, top_k=20, seed=7
        )
        assert "ROMEO:" + retrained == sample_text(
            new, tokenizer, "ROMEO:", max_new_tokens=40, temperature=0.8, top_k=20, seed=7
        )
        assert app.state.runs.model("copy").batcher is not old_loop
        old_loop._thread.join(60)
        assert not old_loop._thread.is_alive()
    finally:
        live.stop()


def test_a_model_replaced_while_requests_read_it_is_never_half_read(runs, tmp_path):
    """Training renames each new model.safetensors into place; a load sees the old or the new."""
    copy = tmp_path / "copy"
    shutil.copytree(runs / "gpt", copy)
    model, _, _, _ = load_model(copy)
    stop = threading.Event()

    def keep_saving():
        while not stop.is_set():
            with torch.no_grad():
                next(model.parameters()).add_(0.01)
            save_weights(copy / "model.safetensors", model)

    live = ThreadServer(create_app(Runs([copy])))
    writer = threading.Thread(target=keep_saving)
    writer.start()
    try:
        with httpx.Client(base_url=live.url, timeout=60) as client:
            statuses = [
                client.post("/api/generate", json=_settings(run="copy", max_new_tokens=5, stream=False)).status_code
                for _ in range(30)
            ]
        assert statuses == [200] * 30
    finally:
        stop.set()
        writer.join()
        live.stop()


def test_serve_stops_gracefully_on_sigterm_even_while_streaming(runs):
    server = ProcessServer("--run", runs / "gpt", "--max-new-tokens", "100000")
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            assert client.get("/api/health").json()["status"] == "ok"
            with client.stream("POST", "/api/generate", json=_settings(max_new_tokens=100_000)) as response:
                tokens = events(response.iter_lines())
                assert next(tokens)[0] == "token"
                assert server.stop() == 0  # not killed by the signal: shut down, then exited
        assert server.log[-1] == "scratchgpt: stopped by SIGTERM"
    finally:
        server.process.kill()


def test_serve_refuses_bad_options_in_one_line(capsys, runs, tmp_path):
    assert "run directory not found" in fails(capsys, "serve", "--run", tmp_path / "missing")
    assert "--workers must be at least 1, got 0" in fails(capsys, "serve", "--run", runs / "gpt", "--workers", "0")
    assert "--streams must be at least 1, got 0" in fails(capsys, "serve", "--run", runs / "gpt", "--streams", "0")
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        port = taken.getsockname()[1]
        assert f"cannot listen on 127.0.0.1:{port}" in fails(capsys, "serve", "--run", runs / "gpt", "--port", port)
    finally:
        taken.close()


def test_streamed_pieces_are_whole_characters_beyond_ascii(tmp_path):
    """Each token event carries whole characters (here 2-, 3- and 4-byte ones), never part of one."""
    text = tmp_path / "cafe.txt"
    text.write_text("Café ☕ naïve façade 🎭 — déjà vu.\n" * 400, encoding="utf-8")
    assert main(["train", "--preset", "tiny", "--data", str(text), "--out", str(tmp_path / "cafe"), "--quiet"]) == 0
    model, tokenizer, _, _ = load_model(tmp_path / "cafe")
    live = ThreadServer(create_app(Runs([tmp_path / "cafe"])))
    try:
        with httpx.Client(base_url=live.url, timeout=60) as client:
            body = {"run": "cafe", "prompt": "Café ☕", "max_new_tokens": 300, "seed": 3}
            with client.stream("POST", "/api/generate", json=body) as response:
                pieces = [data["text"] for name, data in events(response.iter_lines()) if name == "token"]
    finally:
        live.stop()
    assert all(len(piece) == 1 for piece in pieces)  # one character per token of this tokenizer
    assert "Café ☕" + "".join(pieces) == sample_text(model, tokenizer, "Café ☕", max_new_tokens=300, seed=3)
    assert any(len(p.encode()) > 1 for p in pieces)  # the sample did write multi-byte characters


def test_serve_without_its_extra_says_how_to_get_it(capsys, runs, monkeypatch):
    import sys

    for name in [m for m in sys.modules if m.startswith("scratchgpt.serve")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # as if not installed: importing it fails
    assert fails(capsys, "serve", "--run", runs / "gpt") == (
        "scratchgpt: error: serve needs FastAPI and uvicorn (uvicorn is missing): pip install 'scratchgpt[serve]'"
    )
