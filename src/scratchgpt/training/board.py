"""TensorBoard: a run's metrics.jsonl records, also as event files (`--tensorboard`).

metrics.jsonl stays the record of a run; the board is a second view of the same records, written
through the same call (the loop's `_Run.record`), so the two cannot disagree. Each number of a
record becomes a scalar named "<kind>/<key>" at the record's step: "train/loss", "train/lr",
"train/grad_norm", "eval/val_loss", "eval/val_accuracy", "final/val_loss", ...; the sample written
when training ends becomes a text. The event files go to RUN/tensorboard; watch every run at once
with `tensorboard --logdir runs`.

A resumed run writes a new event file into the same folder, starting with TensorBoard's "purge"
mark at the step after its checkpoint: TensorBoard then drops what the interrupted attempt wrote
past the checkpoint (those steps run again), as rundir.trim_metrics does for metrics.jsonl.
"""

from pathlib import Path

from ..errors import MissingExtra

FOLDER = "tensorboard"


class Board:
    """A SummaryWriter in RUN/tensorboard that takes metrics records."""

    def __init__(self, run_dir, start=0):
        try:
            from torch.utils.tensorboard import SummaryWriter  # imported here: tensorboard is optional
        except ImportError:
            raise MissingExtra("--tensorboard needs tensorboard: pip install tensorboard") from None
        # purge_step: TensorBoard forgets events of this step and later from earlier event files
        self.writer = SummaryWriter(log_dir=str(Path(run_dir) / FOLDER), purge_step=start + 1, flush_secs=10)

    def record(self, record):
        """Every number of a metrics record, as the scalar "<kind>/<key>" at its step."""
        kind, step = record["kind"], record["step"]
        for key, value in record.items():
            if key not in ("kind", "step") and isinstance(value, (int, float)) and not isinstance(value, bool):
                self.writer.add_scalar(f"{kind}/{key}", value, step)

    def sample(self, text, step):
        """The sample written when training ends, as the text "sample" (indented: TensorBoard reads
        texts as Markdown, where a 4-space indent keeps the lines and spaces as they are)."""
        if text:
            self.writer.add_text("sample", as_markdown(text), step)

    def close(self):
        self.writer.close()  # flushes what is still queued


def as_markdown(text):
    """`text` as a Markdown code block: every line indented by 4 spaces."""
    return "\n".join("    " + line for line in text.split("\n"))
