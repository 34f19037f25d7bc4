"""Fixtures for kernel tests: skip cleanly where the kernel cannot be used,
and give each test a fresh pair of namespaces that is always torn down."""

from __future__ import annotations

import pytest

from .netns import TestBed, missing_prerequisites


def pytest_collection_modifyitems(items):
    """Every test in this directory talks to the kernel."""
    for item in items:
        if "tests/kernel/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.kernel)


@pytest.fixture
def bed():
    """A fresh fw/peer namespace pair; skipped without root or tools."""
    reason = missing_prerequisites()
    if reason:
        pytest.skip(reason)
    with TestBed() as testbed:
        yield testbed
