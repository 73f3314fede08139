"""Files and directories written whole or not at all: written under a temporary name beside
their destination, then renamed into place. A crash or an exception leaves the destination as it
was and no temporary behind. The one way hwbench writes what others read (models, engines,
preprocessed caches, run directories)."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable


def write_atomically(path: Path, write: Callable[[Path], None], suffix: str = ".tmp") -> None:
    """Calls ``write(tmp)`` on a new empty file beside `path`, then replaces `path` with it.
    `suffix` ends the temporary's name, for writers that look at it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    try:
        write(Path(name))
        os.replace(name, path)
    finally:
        if os.path.exists(name):
            os.unlink(name)


def create_dir_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """Calls ``write(tmp)`` on a new empty directory beside `path`, then renames it to `path`.
    Never replaces anything: FileExistsError when `path` exists."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        raise FileExistsError(f"{path} already exists")
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".tmp-{path.name}-"))
    try:
        write(tmp)
        os.rename(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
