"""Self-attention by hand: the lecture's averaging trick, then data-dependent weights.

Shapes: B batch, T time, C channels, hs head size.

Token t may only look at tokens 0..t. The simplest way to let it "communicate" with the past is
to average x[b, :t+1]. The lecture computes that average three ways, all equal:

    average_loop        a loop over t (version 1)
    average_matmul      a lower-triangular matrix of weights, normalised per row, times x (version 2)
    average_softmax     scores of 0, -inf above the diagonal (masked_fill), softmax, times x (version 3)

Version 3 is self-attention with all affinities equal. `self_attention` replaces the zeros by
data-dependent scores q·k / sqrt(hs): the same computation as `attention.Head`, as a function.
`column_self_attention` is the textbook's column convention, X in R^{D x N}:
Sa[X] = V · Softmax[Kᵀ Q / sqrt(D_q)], with the softmax over each column.
"""

import torch
from torch.nn import functional as F


def average_loop(x):
    """x (B, T, C) -> xbow (B, T, C), xbow[b, t] = mean of x[b, :t+1]."""
    B, T, C = x.shape
    xbow = torch.zeros_like(x)
    for b in range(B):
        for t in range(T):
            xbow[b, t] = x[b, : t + 1].mean(dim=0)  # (t+1, C) -> (C,)
    return xbow


def average_matmul(x):
    """The same average as one matrix product with normalised lower-triangular weights."""
    T = x.shape[1]
    wei = torch.tril(torch.ones(T, T, dtype=x.dtype, device=x.device))  # (T, T)
    wei = wei / wei.sum(dim=1, keepdim=True)  # each row sums to 1
    return wei @ x  # (T, T) @ (B, T, C) -> (B, T, C), broadcast over B


def average_softmax(x):
    """The same average as a softmax over masked, all-zero affinities."""
    T = x.shape[1]
    tril = torch.tril(torch.ones(T, T, device=x.device))  # (T, T)
    wei = torch.zeros(T, T, dtype=x.dtype, device=x.device)
    wei = wei.masked_fill(tril == 0, float("-inf"))  # the future cannot communicate
    wei = F.softmax(wei, dim=-1)  # (T, T)
    return wei @ x  # (B, T, C)


def self_attention(x, w_query, w_key, w_value, causal=True):
    """One head: x (B, T, C), weights (C, hs) each -> (out (B, T, hs), weights (B, T, T))."""
    T = x.shape[1]
    q, k, v = x @ w_query, x @ w_key, x @ w_value  # (B, T, hs) each
    wei = q @ k.transpose(-2, -1) * k.shape[-1] ** -0.5  # (B, T, T)
    if causal:
        wei = wei.masked_fill(torch.tril(torch.ones(T, T, device=x.device)) == 0, float("-inf"))
    wei = F.softmax(wei, dim=-1)  # (B, T, T)
    return wei @ v, wei  # (B, T, hs), (B, T, T)


def column_self_attention(X, omega_q, omega_k, omega_v):
    """The textbook's convention: X (D, N) holds one token per column; Ω (D_q, D) each.

    Q = Ω_q X, K = Ω_k X, V = Ω_v X; Sa[X] = V · Softmax[Kᵀ Q / sqrt(D_q)] with the softmax taken
    over each column (over the keys). Returns (D_v, N). No mask: every token sees every token.
    """
    Q, K, V = omega_q @ X, omega_k @ X, omega_v @ X  # (D_q, N), (D_q, N), (D_v, N)
    scores = K.T @ Q / Q.shape[0] ** 0.5  # (N, N): entry [m, n] = k_m · q_n
    return V @ F.softmax(scores, dim=0)  # (D_v, N) @ (N, N)
