"""`scratchgpt.data.download` against a real HTTP server on 127.0.0.1 (no outside network)."""

import hashlib
import http.server
import socket
import threading

import pytest

from scratchgpt.data import corpus_path, download
from scratchgpt.errors import DataError

BODY = b"First Citizen:\nBefore we proceed any further, hear me speak.\n" * 50
BODY_SHA = hashlib.sha256(BODY).hexdigest()
TIMEOUT = 5


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):
        """Keep the test output quiet."""

    def do_GET(self):
        self.server.requests.append(self.path)
        if self.path == "/good.txt":
            self.send_response(200)
            self.send_header("Content-Length", str(len(BODY)))
            self.end_headers()
            self.wfile.write(BODY)
        elif self.path == "/broken.txt":
            half = BODY[: len(BODY) // 2]
            self.send_response(200)
            self.send_header("Content-Length", str(len(BODY)))
            self.end_headers()
            self.wfile.write(half)
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
        else:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        """The broken connection is on purpose: no traceback."""


@pytest.fixture
def server():
    srv = _Server(("127.0.0.1", 0), _Handler)
    srv.requests = []
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    srv.url = f"http://127.0.0.1:{srv.server_address[1]}"
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(timeout=5)


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_good_download_writes_file_and_second_call_uses_it(server, tmp_path):
    dest = tmp_path / "corpus" / "input.txt"
    result = download(server.url + "/good.txt", dest, BODY_SHA, timeout=TIMEOUT)
    assert result == dest
    assert dest.read_bytes() == BODY
    assert server.requests == ["/good.txt"]
    assert sorted(p.name for p in dest.parent.iterdir()) == ["input.txt"]

    again = download(server.url + "/good.txt", dest, BODY_SHA, timeout=TIMEOUT)
    assert again == dest
    assert dest.read_bytes() == BODY
    assert server.requests == ["/good.txt"]  # the verified copy was reused: no second request


def test_checksum_mismatch_raises_and_leaves_nothing(server, tmp_path):
    folder = tmp_path / "corpus"
    dest = folder / "input.txt"
    wrong = hashlib.sha256(b"something else").hexdigest()
    with pytest.raises(DataError, match="sha256") as info:
        download(server.url + "/good.txt", dest, wrong, timeout=TIMEOUT)
    assert wrong in str(info.value)
    assert server.requests == ["/good.txt"]
    assert not dest.exists()
    assert list(folder.iterdir()) == []  # no .part file left behind


def test_connection_broken_half_way_raises_and_leaves_nothing(server, tmp_path):
    folder = tmp_path / "corpus"
    dest = folder / "input.txt"
    with pytest.raises(DataError) as info:
        download(server.url + "/broken.txt", dest, BODY_SHA, timeout=TIMEOUT)
    assert "/broken.txt" in str(info.value)
    assert server.requests == ["/broken.txt"]
    assert not dest.exists()
    assert list(folder.iterdir()) == []


def test_unreachable_server_says_how_to_use_a_local_copy(tmp_path):
    folder = tmp_path / "corpus"
    dest = folder / "input.txt"
    url = f"http://127.0.0.1:{_free_port()}/input.txt"
    with pytest.raises(DataError) as info:
        download(url, dest, BODY_SHA, timeout=TIMEOUT)
    message = str(info.value)
    assert "--data" in message
    assert "SCRATCHGPT_DATA" in message
    assert url in message
    assert not dest.exists()
    assert list(folder.iterdir()) == []


def test_http_error_status_raises_data_error(server, tmp_path):
    folder = tmp_path / "corpus"
    with pytest.raises(DataError):
        download(server.url + "/missing.txt", folder / "input.txt", BODY_SHA, timeout=TIMEOUT)
    assert list(folder.iterdir()) == []


def test_wrong_existing_file_is_replaced_by_verified_download(server, tmp_path):
    dest = tmp_path / "input.txt"
    dest.write_bytes(b"stale or corrupted content")
    result = download(server.url + "/good.txt", dest, BODY_SHA, timeout=TIMEOUT)
    assert result == dest
    assert dest.read_bytes() == BODY
    assert server.requests == ["/good.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["input.txt"]


def test_corpus_path_from_environment(monkeypatch, tmp_path):
    local = tmp_path / "my_corpus.txt"
    monkeypatch.setenv("SCRATCHGPT_DATA", str(local))
    assert corpus_path(None) == local
    assert corpus_path() == local


def test_corpus_path_explicit_argument_wins(monkeypatch, tmp_path):
    explicit = tmp_path / "explicit.txt"
    monkeypatch.setenv("SCRATCHGPT_DATA", str(tmp_path / "from_env.txt"))
    assert corpus_path(explicit) == explicit
    assert corpus_path(str(explicit)) == explicit
    monkeypatch.delenv("SCRATCHGPT_DATA")
    assert corpus_path(explicit) == explicit
