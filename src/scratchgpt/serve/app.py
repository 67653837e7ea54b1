"""The web app: the page, the JSON API, and the errors every request can meet.

`create_app(runs, limits)` builds it; `serve(...)` runs it with uvicorn on a socket bound first, so
a port already taken is a one-line error before anything starts. uvicorn stops gracefully on
SIGINT or SIGTERM: it stops accepting, lets running answers finish for a few seconds, then the
app cancels whatever jobs remain.
"""

import logging
import socket
from contextlib import asynccontextmanager
from pathlib import Path

import uvicorn
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from ..errors import ConfigError, ScratchGPTError
from .api import router
from .errors import status_and_message, validation_message
from .gate import Gate
from .limits import BodyLimit, Limits
from .runs import Runs

STATIC = Path(__file__).parent / "static"
log = logging.getLogger("scratchgpt.serve")


def create_app(runs=None, limits=None):
    """The app over `runs` (a Runs; default: every run under ./runs) within `limits` (default: Limits())."""
    limits = limits if limits is not None else Limits()

    @asynccontextmanager
    async def lifespan(app):
        yield
        app.state.gate.cancel_all()  # shutting down: no job or stream outlives the server
        app.state.runs.close()

    app = FastAPI(
        title="scratchgpt playground",
        lifespan=lifespan,
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    app.state.runs = runs if runs is not None else Runs()
    app.state.runs.streams, app.state.runs.queue = limits.streams, limits.queue
    app.state.limits = limits
    app.state.gate = Gate(limits.workers, limits.queue)
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_middleware(BodyLimit, limit=limits.max_body_bytes)

    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(STATIC / "index.html")

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, e: RequestValidationError):
        status, message = validation_message(e.errors())
        return JSONResponse({"error": message}, status_code=status)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, e: HTTPException):
        return JSONResponse(
            {"error": str(e.detail).lower() if e.status_code in (404, 405) else str(e.detail)},
            status_code=e.status_code,
            headers=getattr(e, "headers", None),
        )

    @app.exception_handler(ScratchGPTError)  # a refusal, answered where the request was handled
    @app.exception_handler(Exception)  # a bug, answered by the outermost layer (which logs it again)
    async def refused(request: Request, e: Exception):
        status, message = status_and_message(e)
        if status == 500:
            log.exception("while answering %s %s", request.method, request.url.path)
        headers = {"Retry-After": str(app.state.gate.retry_after)} if status == 503 else None
        return JSONResponse({"error": message}, status_code=status, headers=headers)

    return app


def listen(host, port):
    """A socket bound to host:port (port 0: any free one), or a one-line error."""
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)  # connections wait in the backlog until uvicorn accepts them
    except (OSError, OverflowError) as e:
        raise ConfigError(f"cannot listen on {host}:{port}: {getattr(e, 'strerror', None) or e}") from None
    return sock


def serve(app, sock, log_level="info"):
    """Answer on `sock` until SIGINT or SIGTERM."""
    config = uvicorn.Config(app, log_level=log_level, timeout_graceful_shutdown=5)
    uvicorn.Server(config).run(sockets=[sock])
