"""Every refusal as a status and one line: what the API's error handlers answer.

404  an unknown run (or page)          409  a run with no model yet, or damaged files
400  a body that is not JSON           413  a body over the server's limit
422  a body that breaks a rule         503  workers, or stream slots, and queue full (with Retry-After)
500  a bug: the line names its type; the traceback goes to the server's log, never the answer
"""

from ..errors import CheckpointError, ScratchGPTError
from ..inference.batching import QueueFull
from .gate import Busy
from .runs import UnknownRun


def status_and_message(e):
    """(HTTP status, one-line message) for an exception raised while answering."""
    if isinstance(e, UnknownRun):
        return 404, str(e)
    if isinstance(e, (Busy, QueueFull)):
        return 503, str(e)
    if isinstance(e, CheckpointError):
        return 409, str(e)
    if isinstance(e, ScratchGPTError):
        return 422, str(e)
    return 500, f"internal error ({type(e).__name__}); the server's log has the details"


def validation_message(errors):
    """One line from pydantic's list of errors: the first, with where it is."""
    first = errors[0]
    if first.get("type") == "json_invalid":
        return 400, f"the body is not valid JSON: {first.get('ctx', {}).get('error', first.get('msg'))}"
    where = ".".join(str(part) for part in first.get("loc", ()) if part != "body")
    message = first.get("msg", "invalid")
    if first.get("type") == "extra_forbidden":
        message = "unknown field"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return 422, f"{where}: {message}{more}" if where else f"{message}{more}"
