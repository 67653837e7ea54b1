"""How much model work the server takes on: a few computations at once, a short queue, and a
polite "come back later" beyond it.

Every request that runs a model is a `Job` in a worker thread, so the event loop stays free to
answer `/api/health`, serve the page and notice closed connections while models compute. At most
`workers` jobs compute at once and at most `queue` more wait for a turn; a request beyond that is
refused at once with `Busy` (HTTP 503 with Retry-After) instead of piling up. A job can be
cancelled (the page's stop button, a closed connection): it stops before its next token.
"""

import asyncio
import threading
from collections import deque

from ..errors import ScratchGPTError


class Busy(ScratchGPTError):
    """Every worker is busy and the queue is full (HTTP 503)."""


class Cancelled(Exception):
    """Raised inside a job's work when the job was cancelled."""


class Gate:
    def __init__(self, workers=2, queue=16, retry_after=1):
        if workers < 1 or queue < 0:
            raise ValueError("workers must be at least 1 and queue at least 0")
        self.workers, self.queue, self.retry_after = workers, queue, retry_after
        self._turns = threading.BoundedSemaphore(workers)
        self._lock = threading.Lock()
        self.admitted = 0  # jobs computing or waiting
        self.running = 0
        self.live = set()  # admitted jobs, to cancel when the server stops
        self.finished = deque(maxlen=100)  # the latest finished jobs' (steps, cancelled)

    def admit(self):
        """A Job for one request, or Busy if workers and queue are all taken."""
        with self._lock:
            if self.admitted >= self.workers + self.queue:
                raise Busy(
                    f"the server is busy ({self.workers} computing, {self.queue} waiting); "
                    f"retry in {self.retry_after} s"
                )
            self.admitted += 1
            job = Job(self)
            self.live.add(job)
        return job

    def cancel_all(self):
        """Stop every job before its next step (the server is shutting down)."""
        with self._lock:
            for job in self.live:
                job.cancel()

    def counts(self):
        with self._lock:
            return {"running": self.running, "waiting": self.admitted - self.running}


class Job:
    """One admitted request's model work, run in its own thread when its turn comes."""

    def __init__(self, gate):
        self.gate = gate
        self.cancelled = threading.Event()
        self.steps = 0  # tokens (or other units) produced so far

    def cancel(self):
        self.cancelled.set()

    def check(self):
        """Call between steps of the work: count one, or stop if cancelled."""
        if self.cancelled.is_set():
            raise Cancelled
        self.steps += 1

    def _run(self, work):
        gate = self.gate
        try:
            with gate._turns:
                with gate._lock:
                    gate.running += 1
                try:
                    if self.cancelled.is_set():
                        raise Cancelled
                    return work(self)
                finally:
                    with gate._lock:
                        gate.running -= 1
        finally:
            with gate._lock:
                gate.admitted -= 1
                gate.live.discard(self)
                gate.finished.append((self.steps, self.cancelled.is_set()))

    async def result(self, work):
        """Run work(job) in a thread and wait for what it returns (or raises)."""
        return await asyncio.to_thread(self._run, work)

    def stream(self, work):
        """An async iterator over what work(job) yields, produced in a thread, in batches: each
        batch is a list of every item ready when the reader asked (at least one). Closing the
        iterator (the client went away) cancels the job."""
        loop = asyncio.get_running_loop()
        items = asyncio.Queue()
        done = object()

        def hand(item):
            try:
                loop.call_soon_threadsafe(items.put_nowait, item)
            except RuntimeError:  # the event loop has closed: nobody is reading any more
                self.cancel()

        def produce(job):
            try:
                for item in work(job):
                    job.check()
                    hand(item)
            except BaseException as e:  # handed to the reader, which raises it
                hand(e)
            finally:
                hand(done)

        def run():
            try:
                self._run(produce)
            except Cancelled:  # cancelled while waiting for its turn: produce never ran
                hand(done)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()

        async def read():
            try:
                while True:
                    batch = [await items.get()]
                    while not items.empty():  # all that is ready: one write for many tokens
                        batch.append(items.get_nowait())
                    ready = []
                    for item in batch:
                        if item is done or isinstance(item, Cancelled):
                            break
                        if isinstance(item, BaseException):
                            raise item
                        ready.append(item)
                    if ready:
                        yield ready
                    if len(ready) < len(batch):
                        return
            finally:
                self.cancel()

        return read()
