"""A module's train/eval mode, borrowed for a while.

`evaluating(model)` is the one way the package runs a model in eval mode for a moment: eval mode
inside the with-block (no dropout), the caller's mode restored after it, even when the block raises.
Gradients are not its business: callers wrap the work in torch.no_grad where they want them off.
Inside a generator, `with evaluating(model): yield from ...` restores the mode when the stream ends
or is closed.
"""

from contextlib import contextmanager


@contextmanager
def evaluating(model):
    """Eval mode (no dropout) inside; the caller's mode after, even on an exception."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)
