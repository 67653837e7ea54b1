"""The runs a server shows: found once or on every listing, each model loaded once and again only
when training has replaced its weights.

A run is named after its directory (`runs/gpt-1` is "gpt-1"). Given run directories are fixed;
without them the server looks under a root (`./runs`) on every listing, so a run started while the
page is open appears in it. A model is loaded on first use and kept; when the run's
`model.safetensors` changes (training kept a better model), the next request loads the new one.
Training writes that file to a temporary name and renames it into place, so a load reads either the
old file or the new one, never half of each. A model that generates gets its decode loop when it
is loaded (inference/batching.py): every generation of that model version is a stream in its batch;
when a newer version is loaded, the old loop finishes the streams it has and stops. With `compile`,
a GPT with a key/value cache decodes with its compiled step (inference/compiled.py); with
`weights` bf16 or int8, a GPT decodes with a copy of its Linear weights in fewer bytes.

A run is "training" while a process holds its run lock, "finished" once metrics.jsonl has its final
record, and "stopped" otherwise (Ctrl-C, a kill, a crash: `scratchgpt train --resume` continues it).
"""

import json
import threading
from dataclasses import dataclass
from pathlib import Path

from ..errors import CheckpointError, InputError
from ..inference.batching import Batcher
from ..inference.compiled import Decoder, compilable
from ..inference.weights import with_weights
from ..models.convert import convert
from ..rundir import MODEL_FILE, load_model, newest_first, read_config, read_manifest, read_metrics, run_is_training


class UnknownRun(InputError):
    """A request named a run the server does not have (HTTP 404)."""


@dataclass
class Loaded:
    """A run's model as loaded from one version of its weights."""

    model: object
    tokenizer: object
    config: object
    version: tuple  # (mtime_ns, size) of model.safetensors when it was read
    readable: object = None  # the readable twin, made on first use (attention maps)
    batcher: object = None  # the decode loop of a model that generates (inference/batching.py)


def abilities(config):
    """What the page can do with a model of this config."""
    if config.kind == "bigram":
        return ["generate"]
    if config.kind == "gpt":
        return ["generate", "attention"]
    if config.kind == "seq2seq":
        return ["translate", "attention"]
    return ["fill" if config.head == "mlm" else "predict", "attention"]


class Runs:
    """The server's runs by name: `paths` (fixed) or every run under `root` (rescanned); `compile`:
    decode with compiled steps where the model has a key/value cache; `weights`: a GPT decodes with
    its Linear weights stored so (inference/weights.py). A model that generates gets
    a decode loop of `streams` streams and a queue of `queue` more (the app sets both from its
    Limits)."""

    def __init__(self, paths=(), root=None, compile=False, weights="f32"):
        self.root = None if paths else Path(root or "runs")
        self.compile, self.weights = compile, weights
        self.streams, self.queue = 64, 16
        self._fixed = _named(paths)
        self._loaded = {}
        self._lock = threading.Lock()

    def paths(self):
        """{name: run directory}, sorted by name."""
        if self.root is None:
            return self._fixed
        found = sorted(p.parent for p in self.root.glob("*/config.json"))
        return _named(found)

    def newest_first(self):
        """The runs' names: those with a model newest first, as the commands pick "the newest run",
        then those without one."""
        paths = self.paths()
        names = {path: name for name, path in paths.items()}
        newest = [names[path] for path in newest_first(paths.values())]
        return newest + [name for name in paths if name not in newest]

    def only(self):
        """The name of the server's one run, for a request that names none; with several (or none),
        a one-line error that lists them."""
        paths = self.paths()
        if len(paths) == 1:
            return next(iter(paths))
        raise InputError(
            f"run: name one of this server's runs ({', '.join(paths)})" if paths else "run: this server has no runs yet"
        )

    def path(self, name):
        paths = self.paths()
        if name not in paths:
            known = ", ".join(paths) or "none"
            raise UnknownRun(f"unknown run {name!r} (this server has: {known})")
        return paths[name]

    def model(self, name):
        """The run's Loaded model, read again if training has replaced its weights since."""
        path = self.path(name)
        try:
            stat = (path / MODEL_FILE).stat()
        except FileNotFoundError:
            raise CheckpointError(f"run {name!r} has no model yet (its training has not kept one)") from None
        version = (stat.st_mtime_ns, stat.st_size)
        with self._lock:  # one load at a time; requests for a loaded model do not wait on it
            loaded = self._loaded.get(name)
            if loaded is None or loaded.version != version:
                model, tokenizer, config, _ = load_model(path)
                batcher = None
                if "generate" in abilities(config):
                    # a GPT decodes with its weights as `weights`; the maps read the model as trained
                    decoding = with_weights(model, self.weights) if config.kind == "gpt" else model
                    decoder = Decoder(decoding, any_batch=True) if self.compile and compilable(config) else None
                    batcher = Batcher(decoding, tokenizer, self.streams, self.queue, decoder)
                if loaded is not None and loaded.batcher is not None:
                    loaded.batcher.close(cancel=False)  # its streams finish on the version they began with
                loaded = self._loaded[name] = Loaded(model, tokenizer, config, version, batcher=batcher)
            return loaded

    def batchers(self):
        """The decode loops of the models loaded now."""
        with self._lock:
            return [loaded.batcher for loaded in self._loaded.values() if loaded.batcher is not None]

    def close(self):
        """Cancel every stream and stop every decode loop (the server is shutting down)."""
        for batcher in self.batchers():
            batcher.close()

    def readable(self, name):
        """The run's model with the readable attention (whose weights the maps show)."""
        loaded = self.model(name)
        if loaded.readable is None:
            model = loaded.model
            loaded.readable = model if model.config.attention == "readable" else convert(model, "readable").eval()
        return loaded

    def summary(self, name):
        """What the run list shows: family, shape, progress and scores, from the files alone."""
        path = self.path(name)
        try:
            config, train, data = read_config(path)
        except CheckpointError as e:
            return {"name": name, "error": str(e)}
        records = read_metrics(path)
        final = next((r for r in reversed(records) if r.get("kind") == "final"), None)
        last = next((r for r in reversed(records) if "step" in r), None)
        try:
            manifest = read_manifest(path)
        except CheckpointError:
            manifest = None
        return {
            "name": name,
            "path": str(path),
            "kind": config.kind,
            "head": getattr(config, "head", None),
            "task": train.task,
            "abilities": abilities(config),
            "has_model": (path / MODEL_FILE).exists(),
            "shape": {
                k: getattr(config, k)
                for k in ("n_layer", "n_head", "n_embd", "block_size", "vocab_size")
                if hasattr(config, k)
            },
            "step": last["step"] if last else 0,
            "checkpoint_step": manifest["step"] if manifest else None,
            "max_iters": train.max_iters,
            "max_time": train.max_time,
            "final": final,
            "data": data.get("source"),
            "status": "training" if run_is_training(path) else "finished" if final else "stopped",
        }

    def details(self, name):
        """The summary, with the run's whole config.json and its sample text."""
        path = self.path(name)
        details = self.summary(name)
        try:
            details["config"] = json.loads((path / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            details["config"] = None
        sample = path / "samples.txt"
        details["sample"] = sample.read_text(encoding="utf-8") if sample.exists() else None
        return details


def _named(paths):
    """{name: path}: each directory's name, or its whole path where two share a name."""
    paths = [Path(p) for p in paths]
    names = [p.name for p in paths]
    return {(p.name if names.count(p.name) == 1 else str(p)): p for p in paths}
