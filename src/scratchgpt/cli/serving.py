"""`scratchgpt serve`: the playground in the browser over the runs given or found under ./runs."""

import signal
import sys
from pathlib import Path

import torch

from ..errors import MissingExtra
from .options import RUNS, add_weights


def add_commands(sub):
    s = sub.add_parser(
        "serve",
        help="the playground: generate, fill, translate and look inside runs in a browser",
        description="Serve a page and a JSON API (see /api/docs) over trained runs: "
        "generation streamed token by token, attention maps, training curves.",
    )
    s.add_argument(
        "--run",
        type=Path,
        action="append",
        default=[],
        metavar="RUN",
        help="a run directory to serve (repeat for several; default: every run under ./runs, "
        "rescanned as new ones appear)",
    )
    s.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 opens it to the network)",
    )
    s.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    s.add_argument(
        "--streams",
        type=int,
        default=64,
        help="generations each model decodes at once, batched in one decode loop (default 64)",
    )
    s.add_argument(
        "--workers",
        type=int,
        default=2,
        help="other model computations at once: attention maps, fill, predict, translate (default 2)",
    )
    s.add_argument(
        "--queue",
        type=int,
        default=16,
        help="requests that may wait for a worker, and generations that may wait for a stream slot "
        "of their model; more get 503 with Retry-After (default 16)",
    )
    s.add_argument("--max-new-tokens", type=int, default=2000, help="the most tokens one request may generate")
    s.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch's CPU threads for each computation (default: the cores torch uses)",
    )
    s.add_argument(
        "--compile",
        action="store_true",
        help="generate with a compiled decode step (torch.compile) for GPTs with a key/value "
        "cache: each model's batched step is compiled when the model is loaded (one graph for "
        "batch 1, one for every other size), then reused",
    )
    add_weights(s)
    s.set_defaults(command=cmd_serve)


def cmd_serve(args):
    try:
        from ..serve.app import create_app, listen, serve
        from ..serve.limits import Limits
        from ..serve.runs import Runs
    except ImportError as e:
        raise MissingExtra(
            f"serve needs FastAPI and uvicorn ({e.name} is missing): pip install 'scratchgpt[serve]'"
        ) from None
    from ..errors import ConfigError
    from ..inference.compiled import check_compilable, compilable
    from ..inference.weights import check_weights
    from ..rundir import read_config

    for option, value, least in (
        ("--streams", args.streams, 1),
        ("--workers", args.workers, 1),
        ("--queue", args.queue, 0),
        ("--max-new-tokens", args.max_new_tokens, 1),
        ("--threads", 1 if args.threads is None else args.threads, 1),
    ):
        if value < least:
            raise ConfigError(f"{option} must be at least {least}, got {value}")
    configs = [read_config(run)[0] for run in args.run]  # a missing or broken run: one line, before the server starts
    if args.compile and configs and not any(compilable(config) for config in configs):
        check_compilable(configs[0])  # none of the runs given has a decode step to compile: say why
    if configs and not any(config.kind == "gpt" for config in configs):
        check_weights(configs[0], args.weights)  # none of the runs given has a GPT's weights to shrink
    runs = Runs(args.run, root=RUNS, compile=args.compile, weights=args.weights)
    limits = Limits(max_new_tokens=args.max_new_tokens, workers=args.workers, queue=args.queue, streams=args.streams)
    threads = args.threads or torch.get_num_threads()
    torch.set_num_threads(threads)
    sock = listen(args.host, args.port)
    host, port = sock.getsockname()[:2]
    shown = ", ".join(runs.paths()) or f"none yet (train one into {RUNS}/)"
    print(
        f"scratchgpt: serving {shown} at http://{host}:{port}/ (Ctrl-C to stop; {args.streams} streams "
        f"a model, {args.workers} workers, {threads} thread{'s' if threads > 1 else ''}"
        f"{'' if args.weights == 'f32' else f', {args.weights} weights'})",
        file=sys.stderr,
        flush=True,
    )
    stopped_by = []  # uvicorn shuts down gracefully on SIGINT/SIGTERM, then re-raises the signal here
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda signum, frame: stopped_by.append(signum))
    serve(create_app(runs, limits), sock)
    print(f"scratchgpt: stopped{' by ' + signal.Signals(stopped_by[0]).name if stopped_by else ''}", file=sys.stderr)
