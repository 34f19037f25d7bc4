"""Fixtures for kernel tests: skip cleanly where the kernel cannot be used,
and give each test a fresh pair of namespaces that is always torn down."""

from __future__ import annotations

import secrets

import pytest

from .netns import Namespace, TestBed, missing_prerequisites, remove_stale_namespaces


def pytest_collection_modifyitems(items):
    """Every test in this directory talks to the kernel."""
    for item in items:
        if "tests/kernel/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.kernel)


@pytest.fixture(scope="session", autouse=True)
def _no_stale_namespaces():
    """Namespaces an earlier run left behind when it was killed mid-test
    are deleted before these tests make their own (remove_stale_namespaces:
    ours by name, old and empty only)."""
    if missing_prerequisites() is None:
        remove_stale_namespaces()
    yield


@pytest.fixture
def bed():
    """A fresh fw/peer namespace pair; skipped without root or tools."""
    reason = missing_prerequisites()
    if reason:
        pytest.skip(reason)
    with TestBed() as testbed:
        yield testbed


@pytest.fixture
def lone_ns():
    """One fresh namespace with nothing but loopback, where the kernel's
    own tools (iptables-restore/-save, nft) load and list rules; always
    deleted, skipped without root or those tools."""
    reason = missing_prerequisites(("ip", "iptables-restore", "iptables-save", "nft"))
    if reason:
        pytest.skip(reason)
    space = Namespace(f"ra-{secrets.token_hex(3)}-one")
    try:
        yield space
    finally:
        space.delete()
