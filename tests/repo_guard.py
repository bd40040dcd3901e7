"""The repository stands alone: a process guarded here cannot open a file beside the repository.

An audit hook refuses `open`, `os.listdir`, `os.scandir` and `glob.glob` on any path inside the repository's parent
folder but outside the repository itself (a sibling checkout such as ``../shared``). The test run installs it in
its own process (``tests/conftest.py``) and, through ``tests/guard/sitecustomize.py`` on ``PYTHONPATH``, in every
Python process it starts, so the CLI and worker subprocesses are held to the same rule.
"""

from __future__ import annotations

import os
import sys
from typing import Any

GUARD_VARIABLE = "REPLYDESK_REPOSITORY_ROOT"
_WATCHED_EVENTS = frozenset({"open", "os.listdir", "os.scandir", "glob.glob"})
_installed: list[str] = []


class ReadOutsideRepository(PermissionError):
    pass


def is_beside(path: str, root: str) -> bool:
    """True for a path in `root`'s parent folder that is not `root` or inside it."""
    absolute = os.path.abspath(path)
    parent = os.path.dirname(root)
    inside_parent = absolute.startswith(parent + os.sep)
    inside_root = absolute == root or absolute.startswith(root + os.sep)
    return inside_parent and not inside_root


def install(root: str) -> None:
    """Install the hook once per process (audit hooks cannot be removed)."""
    root = os.path.abspath(root)
    if _installed:
        return
    _installed.append(root)

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event not in _WATCHED_EVENTS or not args:
            return
        target = args[0]
        if isinstance(target, bytes):
            target = os.fsdecode(target)
        elif isinstance(target, os.PathLike):
            target = os.fspath(target)
        if isinstance(target, str) and is_beside(target, root):
            raise ReadOutsideRepository(f"{target!r} is outside the repository {root!r}; ship the data inside it.")

    sys.addaudithook(hook)


def install_from_environment() -> None:
    root = os.environ.get(GUARD_VARIABLE)
    if root:
        install(root)
