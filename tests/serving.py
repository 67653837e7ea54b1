"""Real servers for the serve tests: the app on a loopback port in a thread of this process (so a
test can look at its gate), or `scratchgpt serve` as a process of its own (signals, memory)."""

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request

import uvicorn

from scratchgpt.serve.app import listen


class ThreadServer:
    """uvicorn serving `app` on a free loopback port until stop()."""

    def __init__(self, app):
        sock = listen("127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        self.app = app
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True)
        self.thread.start()
        wait_for(lambda: self.server.started, "the server to start")

    def stop(self):
        self.server.should_exit = True
        self.thread.join(30)


class ProcessServer:
    """`scratchgpt serve --port 0 ARGS` as a process of its own, its URL read from the line it
    prints; its log is read all along (a full pipe would stall it) and kept for failure messages."""

    def __init__(self, *args):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "scratchgpt", "serve", "--port", "0", *map(str, args)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=os.environ.copy(),
        )
        line = self.process.stderr.readline()
        match = re.search(r"at (http://\S+?)/ \(Ctrl-C to stop", line)
        if not match:
            self.process.kill()
            raise AssertionError(f"serve did not start: {line}{self.process.stderr.read()}")
        self.url = match.group(1)
        self.log = [line.rstrip("\n")]
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.process.stderr:
            self.log.append(line.rstrip("\n"))

    def tail(self, lines=30):
        return "\n".join(self.log[-lines:])

    def health(self):
        with urllib.request.urlopen(self.url + "/api/health", timeout=10) as response:
            return json.load(response)

    def stop(self):
        """SIGTERM, as a service manager stops it; the exit status, once the log is read to its end."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.reader.join(10)
        return self.process.returncode


def wait_for(condition, what, limit=60):
    """Poll until condition() is true; a bound on waiting for a hang, not a speed assertion."""
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what} after {limit} s")
        time.sleep(0.02)


def events(lines):
    """(name, data) of each server-sent event in an iterator of lines."""
    name = None
    for line in lines:
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            yield name, json.loads(line[6:])
