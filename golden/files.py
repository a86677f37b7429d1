"""File-system helpers shared by the writers of user-visible files."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["make_public"]


def make_public(path: str | os.PathLike) -> None:
    """Give a file or directory made by ``tempfile.mkstemp``/``mkdtemp`` (private 0600/0700) the permissions a
    plain ``open``/``mkdir`` would have under the current umask, before it is moved to its final name."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, (0o777 if Path(path).is_dir() else 0o666) & ~umask)
