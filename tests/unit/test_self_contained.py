"""The suite passes in a clone with nothing beside it (tests/outside_reads.py)."""

from __future__ import annotations

import os

import pytest

from tests import outside_reads


def test_a_read_beside_the_repository_is_caught() -> None:
    sibling = os.path.join(outside_reads.BESIDE, "sibling-project", "notes.md")
    with pytest.raises(OSError):
        os.listdir(os.path.join(outside_reads.BESIDE, "no-such-sibling-of-the-repo"))
    assert outside_reads.reads, "listing a sibling of the repository went unnoticed"
    outside_reads.reads.clear()
    assert outside_reads.beside_repository(sibling)
    assert not outside_reads.beside_repository(os.path.join(outside_reads.REPO, "README.md"))
    assert not outside_reads.beside_repository(os.path.join(outside_reads.BESIDE, ".docker"))
    assert not outside_reads.beside_repository("/proc/self/status") or \
        outside_reads.BESIDE == "/proc"
