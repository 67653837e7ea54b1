"""Generation speed: the key/value cache policies against the lecture's uncached method.

    python benchmarks/generation.py [--shapes cpu lecture] [--tokens 2000] [--batch 1 8]
                                    [--policies window exact none] [--json]

Models are randomly initialised at each preset's shape (speed does not depend on the weights).
The prompt is half a block long; time to first token includes encoding it. Prints one line per
(shape, batch, policy) with the time, tokens per second per sequence, and the speed-up over "none".
"""

import argparse
import collections
import json
import platform
import time

import torch

from scratchgpt import GPTLanguageModel, preset
from scratchgpt.inference.generate import generate


def measure(model, batch, tokens, policy):
    T0 = model.config.block_size // 2
    idx = torch.randint(0, model.config.vocab_size, (batch, T0), generator=torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(0)
    start = time.perf_counter()
    stream = generate(model, idx, tokens, temperature=1.0, generator=g, cache=policy)
    next(stream)
    first = time.perf_counter() - start
    collections.deque(stream, maxlen=0)  # generate the remaining tokens
    total = time.perf_counter() - start
    return {"first_token_ms": first * 1e3, "seconds": total, "tokens_per_s": tokens / total}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", nargs="+", default=["cpu", "lecture"])
    parser.add_argument("--tokens", type=int, default=2000)
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--policies", nargs="+", default=["window", "exact", "none"])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.manual_seed(0)
    for shape in args.shapes:
        model = GPTLanguageModel(preset(shape)[0]).eval()
        for batch in args.batch:
            results = {p: measure(model, batch, args.tokens, p) for p in args.policies}
            for policy, r in results.items():
                r.update(shape=shape, batch=batch, policy=policy, tokens=args.tokens,
                         threads=torch.get_num_threads(), torch=torch.__version__,
                         machine=platform.machine())
                if "none" in results:
                    r["speedup_vs_none"] = results["none"]["seconds"] / r["seconds"]
                if args.json:
                    print(json.dumps(r), flush=True)
                else:
                    print(f"{shape:8s} B={batch} {policy:6s} {r['seconds']:8.2f} s  "
                          f"{r['tokens_per_s']:8.1f} tok/s/seq  first token {r['first_token_ms']:7.1f} ms"
                          + (f"  x{r['speedup_vs_none']:.1f} vs none" if "none" in results else ""),
                          flush=True)


if __name__ == "__main__":
    main()
