"""Ctrl-C and SIGTERM during training: the first stops cleanly after the current step (the loop
saves a checkpoint), a second stops at once."""

import signal
import threading


class StopAtOnce(KeyboardInterrupt):
    """A second SIGINT/SIGTERM, raised wherever the main thread is: safe, since every write is atomic."""

    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signum


class StopSignals:
    """While entered: the first SIGINT/SIGTERM is recorded in `signum` for the loop to see; a second
    raises StopAtOnce. The previous handlers come back on exit."""

    def __init__(self):
        self.signum = None
        self._previous = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():  # signals only reach that one
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.signum is not None:
            raise StopAtOnce(signum)
        self.signum = signum

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def name(signum):
    return signal.Signals(signum).name
