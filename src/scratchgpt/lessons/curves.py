"""Training curves: what a run's metrics.jsonl says, as one picture (`scratchgpt plot`).

The training loop writes three kinds of records, whatever the model and the task:

    train  every log_interval steps: the loss of that step's batch (of its last micro-batch, with
           grad_accum), the learning rate, the throughput in tokens/s, and the gradient's norm
           before clipping (when grad_clip > 0)
    eval   every eval_interval steps: the estimated train and val loss (the mean over eval_iters
           batches of each split; the best val estimate picks the model that is kept), and the
           task's tracked scores (an encoder's accuracy, a translator's exact match, ...)
    final  once, at the end: the kept model's scores on the whole validation split

`plot_curves` draws the losses large on the left: one batch's training loss is noisy (a thin
line), the estimates average it out (markers), and the final score (a star) is exact. On the
right, one small panel each for the learning rate (the schedule: warm-up, then constant, cosine or
wsd), the gradient norm, the throughput and the tracked scores, on the same steps. What to look
for: a val estimate that stops falling while the train estimate still does is overfitting; a loss
spike that comes with a spike of the gradient norm is a step too large (lower lr, or clip).
"""

from .drawing import pyplot

NOT_SCORES = {"kind", "step", "train_loss", "val_loss", "train_seconds"}  # an eval record's keys besides the tracked


def plot_curves(records, path, title=None):
    """Save a picture of a run's metrics `records` (rundir.read_metrics's list, any task's) to `path`:
    the losses against the step on the left; the learning rate, and the gradient norm, tokens/s
    and the tracked scores where the records have them, on the right."""
    plt = pyplot("drawing training curves")
    train = [r for r in records if r.get("kind") == "train"]
    evals = [r for r in records if r.get("kind") == "eval"]
    finals = [r for r in records if r.get("kind") == "final"]
    tracked = list(dict.fromkeys(k for r in evals for k in r if k not in NOT_SCORES))  # in order of appearance
    side = [("learning rate (AdamW's)", [(train, "lr", None)])]
    if any("grad_norm" in r for r in train):
        side.append(("gradient norm before clipping", [(train, "grad_norm", None)]))
    if any("tokens_per_s" in r for r in train):
        side.append(("tokens/s (each log interval)", [(train, "tokens_per_s", None)]))
    if tracked:
        side.append(("tracked scores (estimates)", [(evals, k, k.replace("_", " ")) for k in tracked]))

    fig = plt.figure(figsize=(13, max(4.5, 2.2 * len(side))))
    grid = fig.add_gridspec(len(side), 2, width_ratios=(2, 1))
    loss = fig.add_subplot(grid[:, 0])
    _line(loss, train, "loss", "-", label="training loss (one batch, each log)", lw=0.8, alpha=0.6)
    _line(loss, evals, "train_loss", "o-", label="estimate: train split", ms=4)
    _line(loss, evals, "val_loss", "s-", label="estimate: val split", ms=4)
    for final in finals:
        if "val_loss" in final:  # every task scores a loss; skipped if one ever did not
            loss.plot(
                [final["step"]],
                [final["val_loss"]],
                "*",
                ms=14,
                color="black",
                label=f"final: whole val split, {final['val_loss']:.4f}",
            )
            loss.axhline(final["val_loss"], ls=":", lw=0.8, color="black")
    loss.set_xlabel("step")
    loss.set_ylabel("loss (nats)")
    loss.set_title("loss")
    loss.legend(fontsize=8)
    loss.grid(alpha=0.3)
    panels = [loss]
    for row, (name, series) in enumerate(side):
        ax = fig.add_subplot(grid[row, 1], sharex=loss)
        for records_, key, label in series:
            _line(ax, records_, key, "o-" if records_ is evals else "-", label=label, ms=3, lw=1)
        ax.set_title(name, fontsize=9)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
        if any(label for _, _, label in series):
            ax.legend(fontsize=7)
        panels.append(ax)
    panels[-1].set_xlabel("step")
    for extend in (r for r in records if r.get("kind") == "extend"):  # where --extend re-planned the schedule
        for ax in panels:
            ax.axvline(extend["step"], ls="--", lw=0.8, color="gray")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _line(ax, records, key, style, **kwargs):
    """Plot `key` against the step over the records that have it."""
    points = [(r["step"], r[key]) for r in records if isinstance(r.get(key), (int, float))]
    if points:
        steps, values = zip(*points)
        ax.plot(steps, values, style, **kwargs)
