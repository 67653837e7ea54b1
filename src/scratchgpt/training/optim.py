"""Optimisers and the learning-rate schedule.

`make_optimizer` builds what `TrainConfig.optimizer` names:

    adamw  AdamW for every parameter; weight decay on matrices and embeddings, none on biases/norms
    muon   Muon for the weight matrices inside the transformer blocks (every family's: the GPT's, the
           encoder's, the encoder-decoder's), AdamW for embeddings, heads, biases and norms

Muon (MomentUm Orthogonalized by Newton-Schulz, from the modded-nanogpt speedruns) takes SGD's
Nesterov momentum of a weight matrix's gradient and replaces it by the nearest semi-orthogonal
matrix (U V^T of its SVD), found by a few Newton-Schulz iterations. Every direction of the update
then moves by the same amount, whatever the gradient's scale in that direction.

`lr_at` is the schedule: linear warm-up, then constant, cosine, or wsd (warm-up, stable, decay).
Every parameter group keeps its peak rate in `peak_lr` and follows the same curve.
"""

import math

import torch

from ..nn.attention import Block, DecoderBlock
from ..settings import check_optimizer

# Coefficients of the quintic Newton-Schulz iteration tuned in the modded-nanogpt speedrun: they
# push every singular value into roughly [0.7, 1.2] in five steps instead of converging exactly.
NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)


def orthogonalize(G, steps=5):
    """G (..., m, n) -> approximately U V^T, where G = U S V^T: the nearest semi-orthogonal matrix
    (of each matrix in the batch)."""
    a, b, c = NS_COEFFICIENTS
    X = G.bfloat16() if G.is_cuda else G.float()  # bf16 is fast on GPUs, emulated on many CPUs
    X = X.reshape(-1, *X.shape[-2:])  # (k, m, n): one matrix is a batch of one
    tall = X.size(-2) > X.size(-1)
    if tall:
        X = X.mT  # (k, n, m): iterate on the wide side, so X X^T is the smaller square
    X = X / (X.norm(dim=(-2, -1), keepdim=True) + 1e-7)  # singular values <= 1: it converges there
    for _ in range(steps):
        A = X @ X.mT  # (k, m, m)
        B = torch.baddbmm(A, A, A, beta=b, alpha=c)  # b A + c A^2
        X = torch.baddbmm(X, B, X, beta=a)  # a X + B X: each singular value s -> p(s^2) s
    return (X.mT if tall else X).reshape(G.shape).to(G.dtype)


class Muon(torch.optim.Optimizer):
    """Nesterov momentum, orthogonalised, for 2-D weight matrices only.

    Matrices of one shape (a tall one counts as its transpose) are orthogonalised together in one
    batched call: the same result as one at a time, in far fewer, larger matmuls.
    """

    def __init__(self, params, lr=0.02, momentum=0.95):
        super().__init__(params, {"lr": lr, "momentum": momentum})

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            updates = {}  # (rows, cols) of the wide orientation -> [(param, wide update)]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["momentum_buffer"] = torch.zeros_like(p)
                buf = state["momentum_buffer"]
                buf.lerp_(p.grad, 1 - group["momentum"])  # running average of gradients
                update = p.grad.lerp(buf, group["momentum"])  # Nesterov look-ahead
                wide = update.T if update.size(0) > update.size(1) else update
                updates.setdefault(tuple(wide.shape), []).append((p, wide))
            for same_shape in updates.values():
                stacked = orthogonalize(torch.stack([u for _, u in same_shape]))  # (k, rows, cols)
                for (p, _), o in zip(same_shape, stacked):
                    rows, cols = p.shape
                    o = o.T if rows > cols else o
                    p.add_(o, alpha=-group["lr"] * max(1.0, rows / cols) ** 0.5)


class Optimizers:
    """Several optimisers stepped together, saved and restored as one (for checkpoints)."""

    def __init__(self, *optimizers):
        self.optimizers = optimizers

    @property
    def param_groups(self):
        return [g for o in self.optimizers for g in o.param_groups]

    def zero_grad(self, set_to_none=True):
        for o in self.optimizers:
            o.zero_grad(set_to_none=set_to_none)

    def step(self):
        for o in self.optimizers:
            o.step()

    def state_dict(self):
        return {"optimizers": [o.state_dict() for o in self.optimizers]}

    def load_state_dict(self, state):
        for o, s in zip(self.optimizers, state["optimizers"], strict=True):
            o.load_state_dict(s)


def block_matrices(model):
    """The 2-D weights inside the model's transformer blocks (attention and feed-forward matrices),
    whatever the family calls its stacks of blocks: the parameters Muon updates."""
    return {
        p
        for module in model.modules()
        if isinstance(module, (Block, DecoderBlock))
        for p in module.parameters()
        if p.dim() == 2
    }


def make_optimizer(model, c):
    """The optimiser(s) TrainConfig `c` asks for, every group tagged with its `peak_lr`."""
    check_optimizer(model.config, c)
    muon_params = block_matrices(model) if c.optimizer == "muon" else set()
    params = [p for p in model.parameters() if p.requires_grad and p not in muon_params]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": c.weight_decay, "peak_lr": c.lr},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0, "peak_lr": c.lr},
    ]
    fused = next(model.parameters()).device.type in ("cuda", "cpu")  # one kernel for all tensors
    adamw = torch.optim.AdamW(groups, lr=c.lr, betas=(c.beta1, c.beta2), fused=fused)
    if not muon_params:
        return adamw
    muon = Muon(
        [{"params": [p for p in model.parameters() if p in muon_params], "peak_lr": c.muon_lr}],
        lr=c.muon_lr,
        momentum=c.muon_momentum,
    )
    return Optimizers(muon, adamw)


def lr_at(step, c, elapsed=0.0, peak=None):
    """Learning rate of step `step` (0-based) for a group whose peak rate is `peak` (default c.lr):
    linear warm-up, then constant, cosine or wsd down to peak * min_lr_ratio, which the last step
    that runs (max_iters - 1) uses. With c.max_time the decay also follows the clock, whichever is
    further along: `elapsed` is the training time expected at the end of this step."""
    peak = c.lr if peak is None else peak
    if step < c.warmup_iters:
        return peak * (step + 1) / c.warmup_iters  # positive from step 0
    if c.schedule == "constant":
        return peak
    progress = (step - c.warmup_iters) / max(1, c.max_iters - 1 - c.warmup_iters)
    if c.max_time > 0:
        progress = max(progress, elapsed / c.max_time)
    progress = min(1.0, progress)
    min_lr = peak * c.min_lr_ratio
    if c.schedule == "cosine":
        return min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (peak - min_lr)
    # wsd: the peak until the last cooldown_frac of training, then linear to exactly min_lr at the end
    # (the share of the cooldown still ahead is 0 there; 1 minus the share behind may miss 0 by a hair)
    ahead = min(1.0, (1.0 - progress) / c.cooldown_frac)
    return min_lr + ahead * (peak - min_lr)
