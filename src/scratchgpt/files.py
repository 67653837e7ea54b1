"""File helpers: atomic writes and checksums.

An atomic write goes to a temporary file beside the target, is flushed to disk, and is renamed
over the target: a reader, or a crash at any moment, sees the old file or the new one, never half
of one. Temporary files end in `.tmp`; `remove_temporaries` clears those a crash left behind.
"""

import contextlib
import hashlib
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
        usual_mode(tmp)  # mkstemp makes 0600
        os.replace(tmp, path)
        _fsync_dir(path.parent)  # make the rename itself durable
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def usual_mode(path):
    """Give `path` the permissions open() (a file) or mkdir() (a directory) would under the
    process umask: what mkstemp (0600) and mkdtemp (0700) make is private."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, (0o777 if os.path.isdir(path) else 0o666) & ~umask)


def _fsync_dir(folder):
    """Flush a directory entry to disk where the platform allows it (the rename is atomic anyway)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def remove_temporaries(folder):
    """Delete the `.tmp` files that an interrupted atomic_write left in `folder`."""
    for tmp in Path(folder).glob("*.tmp"):
        tmp.unlink(missing_ok=True)


def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
