"""Tests read nothing beside the repository: a user's clone has nothing beside it.

An audit hook notes every file or directory a test opens or lists in the repository's
parent directory but outside the repository (a sibling directory next to the clone); the
autouse fixture fails the test that did it.  Hidden siblings (``~/.docker`` when the clone
sits in a home directory) are tools' own configuration, not project data, and pass.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = str(Path(__file__).resolve().parents[1])
BESIDE = os.path.dirname(REPO)
_EVENTS = frozenset({"open", "os.listdir", "os.scandir"})

reads: list[str] = []


def beside_repository(path: str) -> bool:
    """True for a path in the repository's parent directory but outside the repository."""
    full = os.path.abspath(path)
    if full == REPO or full.startswith(REPO + os.sep):
        return False
    if not full.startswith(BESIDE.rstrip(os.sep) + os.sep):
        return False
    first = full[len(BESIDE.rstrip(os.sep)) + 1:].split(os.sep, 1)[0]
    return not first.startswith(".")


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event not in _EVENTS or not args:
        return
    path = args[0]
    if isinstance(path, int) or path is None:
        return
    try:
        text = os.fsdecode(path)
    except TypeError:
        return
    if beside_repository(text):
        reads.append(text)


sys.addaudithook(_audit)


@pytest.fixture(autouse=True)
def nothing_read_beside_the_repository() -> Iterator[None]:
    reads.clear()
    yield
    if reads:
        found = sorted(set(reads))
        reads.clear()
        pytest.fail(f"the test read beside the repository, which a user's clone does not "
                    f"have: {found}")
