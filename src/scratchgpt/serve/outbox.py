"""Items made in a thread, read on the event loop: how a generation's text reaches its response.

A model's decode loop (inference/batching.py), in its own thread, `put`s each piece of a stream's
text as it is made and `close`s the outbox once, with the error that ended the stream or None.
The response reads it as an async iterator of batches: every item ready when it asks, at least
one, so the tokens made while the socket was busy go out in one write. When the reader stops early
(the client went away), or the event loop has closed, `on_close` runs: the stream is cancelled.
"""

import asyncio

_DONE = object()


class Outbox:
    def __init__(self, on_close):
        self._loop = asyncio.get_running_loop()
        self._items = asyncio.Queue()
        self._on_close = on_close

    def put(self, item):
        """Hand an item over (from any thread)."""
        try:
            self._loop.call_soon_threadsafe(self._items.put_nowait, item)
        except RuntimeError:  # the event loop has closed: nobody is reading any more
            self._on_close()

    def close(self, error=None):
        """No more items; `error` (an exception) is raised to the reader after those before it."""
        if error is not None:
            self.put(_Failed(error))
        self.put(_DONE)

    async def batches(self, stop_at=()):
        """Lists of the items ready, in order; the work's error is raised after the items before
        it, except the exception types `stop_at`, which end the iteration quietly."""
        try:
            while True:
                batch = [await self._items.get()]
                while not self._items.empty():  # all that is ready: one write for many tokens
                    batch.append(self._items.get_nowait())
                ready = []
                for item in batch:
                    if item is _DONE:
                        break
                    if isinstance(item, _Failed):
                        if isinstance(item.error, stop_at):
                            break
                        if ready:
                            yield ready
                        raise item.error
                    ready.append(item)
                if ready:
                    yield ready
                if len(ready) < len(batch):
                    return
        finally:
            self._on_close()


class _Failed:
    """An error, carried through the queue as an item."""

    def __init__(self, error):
        self.error = error
