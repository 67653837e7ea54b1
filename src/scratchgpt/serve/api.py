"""The JSON API under /api/: what the page asks for, and what `curl` users get.

    GET  /api/health                 {"status": "ok", "runs", "running", "waiting", "workers", "queue",
                                     "streams": {"decoding", "waiting", "per_model"},
                                     "limits": {"max_new_tokens", "max_text_chars", "max_texts"}}
    GET  /api/runs                   {"runs": [summary, ...]}, the newest first: family, shape, step,
                                     scores, abilities, status ("training", "stopped" or "finished")
    GET  /api/runs/{name}            the summary with the run's config.json and sample text
    GET  /api/runs/{name}/metrics    {"records": [...]}: every record of metrics.jsonl so far
    POST /api/generate               a GPT's continuation of a prompt, streamed as server-sent events
                                     ("token" {"text"} ..., then "done" {"tokens", "seconds",
                                     "tokens_per_second"}), or one JSON answer with "stream": false
    POST /api/attention              every layer and head's attention weights over a text
    POST /api/fill                   a pretrained encoder's guesses for each [MASK]
    POST /api/predict                a fine-tuned encoder's label, score or labelled spans per text
    POST /api/translate              an encoder-decoder's translations, greedy or by beam search; a
                                     text longer than block_size is a 422 unless "split": true
                                     (translated in pieces cut at sentence ends)

Every POST names its run ("run"), which may be left out where the server has only one. Bodies are
validated twice: their types and fixed ranges by pydantic, then what depends on the run or the
server's limits (top-k up to the vocabulary, max tokens up to the server's limit, characters the
tokenizer knows). Every refusal is a JSON {"error": one line}: 4xx for the request, 503 with
Retry-After when the server is full. A generation is a stream in its model's decode loop
(inference/batching.py), batched with every other stream of that model; the other work runs
through the Gate (gate.py). Both run off the event loop.
"""

import asyncio
import base64
import json

import numpy as np
import torch
from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from ..errors import ConfigError, InputError, a_or_an
from ..inference.batching import Cancelled
from ..inference.predict import fill, predict
from ..inference.sampling import CACHE_POLICIES, Sampling
from ..inference.translate import translate
from ..lessons.attention_maps import attention_panels
from ..rundir import read_metrics
from .errors import status_and_message
from .outbox import Outbox
from .runs import abilities

router = APIRouter(prefix="/api")


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt field is an error, not silently ignored

    run: str | None = Field(
        None, min_length=1, description="the run's name, as /api/runs lists it (default: the server's only run)"
    )


class GenerateBody(_Body):
    prompt: str = ""
    max_new_tokens: int = Field(200, ge=1)
    temperature: float = Field(1.0, ge=0, le=10, description="0 is greedy")
    top_k: int | None = Field(None, ge=1)
    top_p: float | None = Field(None, gt=0, le=1)
    seed: int | None = Field(None, ge=0, le=2**63 - 1)
    cache: str = Field("window", pattern="^(" + "|".join(CACHE_POLICIES) + ")$")
    stream: bool = True


class AttentionBody(_Body):
    text: str = Field(min_length=1)
    target: str | None = None


class FillBody(_Body):
    text: str = Field(min_length=1)
    top_k: int = Field(5, ge=1, le=50)


class TextsBody(_Body):
    texts: list[str] = Field(min_length=1)


class TranslateBody(TextsBody):
    beam: int = Field(1, ge=1, le=16)
    alpha: float = Field(0.6, ge=0, le=5, description="beam search's length penalty")
    max_len: int | None = Field(None, ge=1)
    split: bool = Field(False, description="translate a text longer than block_size in pieces cut at sentence ends")


def _state(request):
    return request.app.state


def _check_text(request, text, what="the text"):
    limit = _state(request).limits.max_text_chars
    if len(text) > limit:
        raise InputError(f"{what} has {len(text):,} characters; this server takes at most {limit:,}")


def _check_texts(request, texts):
    limit = _state(request).limits.max_texts
    if len(texts) > limit:
        raise InputError(f"{len(texts)} texts in one request; this server takes at most {limit}")
    for i, text in enumerate(texts, 1):
        _check_text(request, text, f"text {i}")


async def _model(request, name, ability, readable=False):
    """The run's Loaded model (read from disk in a thread the first time), if it can do `ability`;
    no name: the server's only run's."""
    runs = _state(request).runs
    name = runs.only() if name is None else name
    loaded = await asyncio.to_thread(runs.readable if readable else runs.model, name)  # unknown: 404
    can = abilities(loaded.config)
    if ability not in can:
        raise ConfigError(
            f"run {name!r} holds {a_or_an(loaded.config.kind)} model, which cannot {ability} (it can: {', '.join(can)})"
        )
    return loaded


@router.get("/health")
async def health(request: Request):
    state = _state(request)
    limits = state.limits
    streams = [batcher.counts() for batcher in state.runs.batchers()]
    return {
        "status": "ok",
        "runs": len(state.runs.paths()),
        **state.gate.counts(),
        "workers": state.gate.workers,
        "queue": state.gate.queue,
        "streams": {
            "decoding": sum(c["decoding"] for c in streams),
            "waiting": sum(c["waiting"] for c in streams),
            "per_model": limits.streams,
        },
        "limits": {
            "max_new_tokens": limits.max_new_tokens,
            "max_text_chars": limits.max_text_chars,
            "max_texts": limits.max_texts,
        },
    }


@router.get("/runs")
async def runs(request: Request):
    runs = _state(request).runs
    return {"runs": [runs.summary(name) for name in runs.newest_first()]}


@router.get("/runs/{name}")
async def run(request: Request, name: str):
    return _state(request).runs.details(name)


@router.get("/runs/{name}/metrics")
async def run_metrics(request: Request, name: str):
    return {"records": read_metrics(_state(request).runs.path(name))}


@router.post("/generate")
async def generate(request: Request, body: GenerateBody):
    state = _state(request)
    _check_text(request, body.prompt, "the prompt")
    if body.max_new_tokens > state.limits.max_new_tokens:
        raise InputError(
            f"max_new_tokens is {body.max_new_tokens:,}; this server generates at most {state.limits.max_new_tokens:,}"
        )
    loaded = await _model(request, body.run, "generate")
    vocab = loaded.config.vocab_size
    if body.top_k is not None and body.top_k > vocab:
        raise InputError(f"top_k is {body.top_k}; the model has {vocab} tokens")
    sampling = Sampling(body.max_new_tokens, body.temperature, body.top_k, body.top_p, seed=body.seed, cache=body.cache)
    outbox = Outbox(on_close=lambda: stream.cancel())
    # characters outside the vocabulary: 422; every stream slot and the queue taken: 503
    stream = loaded.batcher.submit(body.prompt, sampling, outbox.put, outbox.close)

    def timing():  # from leaving the queue to the last token
        seconds = stream.ended - stream.joined if stream.joined and stream.ended else 0.0
        rate = stream.tokens / seconds if seconds else None
        return {"tokens": stream.tokens, "seconds": seconds, "tokens_per_second": rate}

    pieces = outbox.batches(stop_at=Cancelled)
    if not body.stream:
        text = "".join([piece async for batch in pieces for piece in batch])
        return {"text": text, **timing()}

    async def events():
        try:
            async for batch in pieces:  # the tokens ready at once go out in one write
                yield "".join(event("token", {"text": piece}) for piece in batch)
        except Exception as e:  # the stream has started: the error is its last event
            yield event("error", {"error": status_and_message(e)[1]})
            return
        yield event("done", timing())

    return StreamingResponse(
        events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )


@router.post("/attention")
async def attention(request: Request, body: AttentionBody):
    _check_text(request, body.text)
    loaded = await _model(request, body.run, "attention", readable=True)
    job = _state(request).gate.admit()
    panels, translation = await job.result(
        lambda: attention_panels(loaded.readable, loaded.tokenizer, body.text, body.target)
    )
    return {
        "translation": translation,
        "panels": [_panel(*panel) for panel in panels],
        "n_layer": loaded.config.n_layer,
        "n_head": loaded.config.n_head,
    }


def _panel(name, weights, rows, cols):
    """A panel as JSON: the weights (n_layer, n_head, R, K) as bytes (weight = byte / 255), row-major,
    in base64: a twentieth of the size of the numbers as JSON text."""
    quantised = (weights.float().clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    return {
        "name": name,
        "rows": rows,
        "cols": cols,
        "shape": list(quantised.shape),
        "weights": base64.b64encode(np.ascontiguousarray(quantised).tobytes()).decode("ascii"),
    }


@router.post("/fill")
async def fill_masks(request: Request, body: FillBody):
    _check_text(request, body.text)
    loaded = await _model(request, body.run, "fill")
    job = _state(request).gate.admit()
    guesses = await job.result(lambda: fill(loaded.model, loaded.tokenizer, body.text, body.top_k))
    return {"masks": [[{"token": t, "probability": p} for t, p in guess] for guess in guesses]}


@router.post("/predict")
async def predict_texts(request: Request, body: TextsBody):
    _check_texts(request, body.texts)
    loaded = await _model(request, body.run, "predict")
    job = _state(request).gate.admit()
    return {"results": await job.result(lambda: predict(loaded.model, loaded.tokenizer, body.texts))}


@router.post("/translate")
async def translate_texts(request: Request, body: TranslateBody):
    _check_texts(request, body.texts)
    loaded = await _model(request, body.run, "translate")
    job = _state(request).gate.admit()
    translations = await job.result(
        lambda: translate(
            loaded.model, loaded.tokenizer, body.texts, body.beam, body.alpha, body.max_len, split=body.split
        )
    )
    return {"translations": translations}


def event(name, data):
    """One server-sent event: its name and its data as one line of JSON."""
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"
