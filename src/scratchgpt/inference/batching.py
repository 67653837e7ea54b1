"""Continuous batching: one decode loop per model holds every active stream in one batch.

At batch 1 a cached decode step reads every weight of the model to make one token; a step over 50
sequences reads them once for 50 tokens (BENCHMARKS.md, "The playground under load"). So a server
that decodes one sequence per worker serves as many students as it has cores, and one that
batches their streams serves a class. A `Batcher` runs one loop, in a thread of its own:

    join     a new stream's prompt is prefilled alone (eager, a one-sequence KVCache) and its keys
             and values are copied into a free row of a SlotKVCache (nn/kv_cache.py): from the next
             step on it decodes with the others
    step     one forward for the next token of every row at once, each row at its own position;
             attention reads each row's own filled positions only
    sample   each stream draws its token with its own settings (temperature, top-k, top-p) and its
             own seeded generator, and turns it into text with its own stop strings
    leave    a finished, stopped or cancelled stream leaves before the next step; the last row
             moves into its place, so the rows in use are always 0..n-1 and a step runs on those

A stream past block_size follows its cache policy as generate.py's does: "window" re-encodes the
most recent half of its context alone and goes on in its row; "exact" (then) and "none" (from the
start) run the whole cropped context through the model alone for every token, as the lecture
does, and so does every stream of a model without a key/value cache. With a compiled `decoder`
(compiled.py, made with any_batch), the loop compiles its two graphs (batch 1, and any other
batch size) before it takes the first stream.

At most `streams` streams decode at once; later requests wait their turn in order, at most
`queue` of them; beyond that `submit` raises QueueFull at once.

A stream and its neighbours: a row's arithmetic never reads another row's values, but the batch
size (and the longest row) decide how the matrix products and attention are blocked, so a row's
logits at batch 50 differ from batch 1's in the last bits. Its tokens differ only where that
flips a near-tie, as the tests measure (tests/test_batching.py).
"""

import threading
import time
import warnings
from collections import deque

import torch

from ..errors import ConfigError, ScratchGPTError
from ..nn.kv_cache import KVCache, SlotKVCache
from .generate import Continuation, start
from .sampling import sample_next


class QueueFull(ScratchGPTError):
    """Every stream slot is taken and the queue is full (HTTP 503)."""


class Cancelled(ScratchGPTError):
    """The stream was cancelled, or its server is stopping."""


class Stream:
    """One request's continuation, decoded by a Batcher: its pieces of text go to `emit(piece)`
    as they are ready, and `end(error)` is called once, with None when it ended normally."""

    def __init__(self, ids, generator, sampling, text, emit, end):
        self.ids = ids  # the context: prompt and tokens so far (the last block_size matter)
        self.generator, self.sampling, self.text = generator, sampling, text
        self.emit, self.end = emit, end
        self.tokens = 0  # generated so far
        self.row = None  # its row of the slot cache, while it decodes in the batch
        self.filled = 0  # positions of its row the cache holds
        self.logits = None  # (1, V): what its next token is drawn from
        self.joined = self.ended = None  # time.perf_counter() when it left the queue, and when it ended
        self.cancelled = threading.Event()

    def cancel(self):
        """Stop before the next token (the client went away, or the page's stop button)."""
        self.cancelled.set()


class Batcher:
    """One model's decode loop (see above). `submit` a prompt with its Sampling; `close` stops it."""

    def __init__(self, model, tokenizer, streams=64, queue=16, decoder=None):
        if streams < 1 or queue < 0:
            raise ValueError("streams must be at least 1 and queue at least 0")
        self.model, self.tokenizer, self.decoder = model, tokenizer, decoder
        self.streams, self.queue = streams, queue
        config = model.config
        self.block_size = config.block_size
        self.cached = model.supports_kv_cache
        param = next(model.parameters())
        self.model_device = param.device
        self.cache = SlotKVCache(config, streams, param.device, param.dtype) if self.cached else None
        self.rows = []  # streams decoding in the batch, stream i in row i
        self.alone = []  # streams whose every token runs through the model alone
        self.waiting = deque()
        self.finished = deque(maxlen=100)  # the latest ended streams' (tokens, cancelled)
        self.steps = 0  # batched decode steps run
        self.widest = 0  # the most rows one step has decoded
        self._closed = False
        self._lock = threading.Condition()
        self._thread = threading.Thread(target=self._loop, name="scratchgpt-batcher", daemon=True)
        self._thread.start()

    def submit(self, prompt, sampling, emit, end):
        """A Stream for `prompt` (text) with `sampling` (a Sampling of one sample), decoded from the
        next step on or queued; QueueFull if every slot and the queue are taken. A prompt the
        tokenizer cannot encode, or a stop string it cannot, is refused here, before any work."""
        if sampling.num_samples != 1:
            raise ConfigError("a stream is one sample")
        idx, generator = start(self.model, self.tokenizer, prompt, sampling)
        stream = Stream(idx[0].tolist(), generator, sampling, Continuation(self.tokenizer, sampling.stop), emit, end)
        with self._lock:
            if self._closed:  # a newer version of the model took over, or the server is stopping
                raise QueueFull("this model's decode loop has stopped (a newer version replaced it); retry in 1 s")
            if len(self.rows) + len(self.alone) + len(self.waiting) >= self.streams + self.queue:
                raise QueueFull(
                    f"the server is busy ({self.streams} streams decoding, {self.queue} waiting); retry in 1 s"
                )
            self.waiting.append(stream)
            self._lock.notify()
        return stream

    def counts(self):
        """{"decoding": streams in the loop, "waiting": streams queued}."""
        with self._lock:
            return {"decoding": len(self.rows) + len(self.alone), "waiting": len(self.waiting)}

    def close(self, cancel=True):
        """Take no more streams and stop the loop once it is empty: at once, cancelling every
        stream (the server is shutting down), or with cancel=False once they have all ended (a
        newer version of the model takes the new ones)."""
        with self._lock:
            self._closed = True
            if cancel:
                for stream in [*self.rows, *self.alone, *self.waiting]:
                    stream.cancel()
            self._lock.notify()

    # ------------------------------------------------------------------------------------------
    # The loop, in its own thread.

    def _warm_up(self):
        """Compile the decoder's graphs now (batch 1, then any size), not while students wait; if
        compiling fails (no C++ compiler, ...), say so and decode eagerly."""
        try:
            with torch.no_grad():
                for n in (1, 2):
                    self.decoder(torch.zeros(n, 1, dtype=torch.long, device=self.model_device), self.cache.rows(n))
        except ConfigError as e:
            warnings.warn(f"{e}; decoding eagerly", stacklevel=1)
            self.decoder = None
        self.cache.reset()

    def _loop(self):
        if self.decoder is not None:
            self._warm_up()
        while True:
            with self._lock:
                while not (self.rows or self.alone or self.waiting or self._closed):
                    self._lock.wait()
                if self._closed and not (self.rows or self.alone or self.waiting):
                    return
                gone = [stream for stream in self.waiting if stream.cancelled.is_set()]  # never started
                free = self.streams - len(self.rows) - len(self.alone)
                joining = list(self.waiting)[:free]  # each leaves the queue as it takes its place
            for stream in gone:
                self._leave(stream)  # out of the queue
            joining = [stream for stream in joining if stream not in gone]
            try:
                with torch.no_grad():
                    self._turn(joining)
            except Exception as e:  # a bug or an out-of-memory: every stream hears of it, the loop goes on
                with self._lock:
                    failed = [*self.rows, *self.alone, *joining]
                for stream in dict.fromkeys(failed):
                    self._leave(stream, e)

    def _turn(self, joining):
        """Join the new streams, draw every stream's next token, decode the rows one step."""
        for stream in joining:
            if stream.cancelled.is_set() or stream.sampling.max_new_tokens == 0:
                self._leave(stream)
            else:
                self._join(stream)
        for stream in [*self.rows, *self.alone]:
            if stream.cancelled.is_set():
                self._leave(stream)
                continue
            s = stream.sampling
            token = sample_next(stream.logits, s.temperature, s.top_k, s.top_p, stream.generator)  # (1, 1)
            stream.tokens += 1
            piece = stream.text.add(token[0].tolist())
            if piece:
                stream.emit(piece)
            if stream.text.stopped or stream.tokens == s.max_new_tokens:
                self._leave(stream)
                continue
            stream.ids.append(int(token))
            self._next_logits(stream)
        self._step()

    def _join(self, stream):
        """Prefill the stream's context: into a row of the batch, or alone."""
        stream.joined = time.perf_counter()
        if not self.cached or stream.sampling.cache == "none":
            with self._lock:
                self.waiting.remove(stream)
                self.alone.append(stream)
            stream.logits = self._alone_logits(stream)
            return
        with self._lock:
            self.waiting.remove(stream)
            stream.row = len(self.rows)
            self.rows.append(stream)
        stream.logits = self._fill_row(stream, stream.ids[-self.block_size :])

    def _fill_row(self, stream, context):
        """Run `context` through the model alone (a one-sequence cache) into the stream's row ->
        its last logits (1, V), None for an empty context."""
        stream.filled = len(context)
        if not context:
            self.cache.length[stream.row] = 0
            return None
        one = KVCache(self.model.config, 1, self.model_device, self.cache.keys[0].dtype)
        logits, _ = self.model(torch.tensor([context], device=self.model_device), cache=one)  # (1, T, V)
        self.cache.load(stream.row, one, len(context))
        return logits[:, -1, :]

    def _alone_logits(self, stream):
        """The lecture's step: the whole cropped context through the model -> last logits (1, V)."""
        idx = torch.tensor([stream.ids[-self.block_size :]], dtype=torch.long, device=self.model_device)
        logits, _ = self.model(idx)  # (1, T, V)
        return logits[:, -1, :]

    def _next_logits(self, stream):
        """After a token: a row with room waits for the batched step; otherwise its policy decides."""
        if stream.row is None:
            stream.logits = self._alone_logits(stream)
        elif stream.filled < self.block_size:
            pass  # the step draws its logits
        elif stream.sampling.cache == "exact":  # from now on, the lecture's cropping
            self._drop_row(stream)
            with self._lock:
                self.alone.append(stream)
            stream.logits = self._alone_logits(stream)
        else:  # window: re-encode the most recent half once, in its own row; its newest token
            # joins at the step, as every row's does
            self._fill_row(stream, stream.ids[-max(1, self.block_size // 2) : -1])

    def _step(self):
        """One batched decode step over the rows waiting for logits."""
        n = len(self.rows)
        if n == 0:
            return
        idx = torch.tensor([[s.ids[-1]] for s in self.rows], device=self.model_device)  # (n, 1)
        view = self.cache.rows(n)
        if self.decoder is None:
            view.span = max(s.filled for s in self.rows) + 1  # attention reads this many positions
            logits, _ = self.model(idx, cache=view)  # (n, 1, V)
        else:  # compiled: one graph for batch 1, one for every other size, over whole buffers
            logits, _ = self.decoder(idx, view)  # (n, 1, V)
        for i, stream in enumerate(self.rows):
            stream.logits = logits[i, -1:, :]  # (1, V)
            stream.filled += 1
        self.steps += 1
        self.widest = max(self.widest, n)

    def _drop_row(self, stream):
        """Take the stream out of the batch; the last row moves into its row."""
        with self._lock:
            last = self.rows.pop()
            if last is not stream:
                self.cache.move(last.row, stream.row)
                last.row = stream.row
                self.rows[stream.row] = last
        stream.row = None

    def _leave(self, stream, error=None):
        """The stream ends: it leaves its row (or the alone list, or the queue) and hears why, once."""
        if stream.ended is not None:
            return
        if stream.row is not None:
            self._drop_row(stream)
        with self._lock:
            for place in (self.alone, self.waiting):
                if stream in place:
                    place.remove(stream)
        cancelled = stream.cancelled.is_set()
        if error is None and not cancelled:
            rest = stream.text.finish()
            if rest:
                stream.emit(rest)
        stream.ended = time.perf_counter()
        self.finished.append((stream.tokens, cancelled))
        stream.end(error if error is not None else Cancelled("cancelled") if cancelled else None)
