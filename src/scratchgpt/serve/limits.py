"""What one request may ask of the server, and the guard on the size of its body.

Limits the request bodies are checked against (`Limits`), and `BodyLimit`, the outermost layer of
the app, which refuses a body over `max_body_bytes` with 413 before any of it is parsed, whether it
announces its length or streams it in chunks.
"""

import json
from dataclasses import dataclass

from starlette.exceptions import HTTPException


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = 1_000_000  # a request body, in bytes
    max_text_chars: int = 10_000  # a prompt, or one text to label, fill or translate
    max_new_tokens: int = 2_000  # tokens one generation may ask for
    max_texts: int = 64  # texts in one predict or translate request
    workers: int = 2  # one-shot model computations at once (attention, fill, predict, translate)
    queue: int = 16  # requests waiting for a worker, or for a stream slot of a model; beyond them, 503
    streams: int = 64  # generations one model decodes at once, in one batch


class BodyLimit:
    """ASGI middleware: 413 for a body over `limit` bytes."""

    def __init__(self, app, limit):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length", b"0")
        if not length.isdigit() or int(length) > self.limit:
            body = json.dumps({"error": self._message()}).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
                }
            )
            return await send({"type": "http.response.body", "body": body})
        received = 0

        async def limited():
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.limit:  # a chunked body that said nothing of its length
                raise HTTPException(413, self._message())
            return message

        await self.app(scope, limited, send)

    def _message(self):
        return f"the request body is larger than this server's limit of {self.limit:,} bytes"
