"""Real servers for the serve tests: the app on a loopback port in a thread of this process (so a
test can look at its gate), or `scratchgpt serve` as a process of its own (signals, memory)."""

import json
import os
import re
import subprocess
import sys
import threading
import time

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


def start_process(*args, cwd=None):
    """`scratchgpt serve --port 0 ARGS` as a process; (process, its URL from the line it prints)."""
    process = subprocess.Popen([sys.executable, "-m", "scratchgpt", "serve", "--port", "0", *map(str, args)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=cwd,
                               env=os.environ.copy())
    line = process.stderr.readline()
    match = re.search(r"at (http://\S+?)/ ", line)
    if not match:
        process.kill()
        raise AssertionError(f"serve did not start: {line}{process.stderr.read()}")
    process.log = [line.rstrip("\n")]

    def drain():  # keep reading its log, so it never blocks on a full pipe
        for line in process.stderr:
            process.log.append(line.rstrip("\n"))

    process.drain = threading.Thread(target=drain, daemon=True)
    process.drain.start()
    return process, match.group(1)


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
