"""Atomic file writes: a reader (or a crash) sees the old file or the new one, never half of one."""

import os
import tempfile
from pathlib import Path


def atomic_write(path, write):
    """Call write(tmp_path) on a temporary file beside `path`, flush it to disk, then rename it."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual permissions
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
