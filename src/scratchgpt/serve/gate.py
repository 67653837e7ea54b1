"""How much one-shot model work the server takes on (attention maps, fill, predict, translate): a
few computations at once, a short queue, and a polite "come back later" beyond it. Generation
streams are not jobs: each model's decode loop batches them (inference/batching.py).

Every such request is a `Job` in a worker thread, so the event loop stays free to answer
`/api/health`, serve the page and stream tokens while models compute. At most `workers` jobs
compute at once and at most `queue` more wait for a turn; a request beyond that is refused at once
with `Busy` (HTTP 503 with Retry-After) instead of piling up. A job still waiting when the server
stops is cancelled before it starts.
"""

import asyncio
import threading
from collections import deque

from ..errors import ScratchGPTError


class Busy(ScratchGPTError):
    """Every worker is busy and the queue is full (HTTP 503)."""


class Cancelled(Exception):
    """A job cancelled before its turn came."""


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
        self.finished = deque(maxlen=100)  # the latest finished jobs' cancelled flags

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
        """Cancel every job that has not started (the server is shutting down)."""
        with self._lock:
            for job in self.live:
                job.cancel()

    def counts(self):
        with self._lock:
            return {"running": self.running, "waiting": self.admitted - self.running}


class Job:
    """One admitted request's model work, run in a worker thread when its turn comes."""

    def __init__(self, gate):
        self.gate = gate
        self.cancelled = threading.Event()

    def cancel(self):
        self.cancelled.set()

    def _run(self, work):
        gate = self.gate
        try:
            with gate._turns:
                with gate._lock:
                    gate.running += 1
                try:
                    if self.cancelled.is_set():
                        raise Cancelled
                    return work()
                finally:
                    with gate._lock:
                        gate.running -= 1
        finally:
            with gate._lock:
                gate.admitted -= 1
                gate.live.discard(self)
                gate.finished.append(self.cancelled.is_set())

    async def result(self, work):
        """Run work() in a thread when its turn comes and wait for what it returns (or raises)."""
        return await asyncio.to_thread(self._run, work)
