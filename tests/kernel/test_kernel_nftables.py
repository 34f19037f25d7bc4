"""Proof against the kernel: random nftables rulesets, random packets.

Like :mod:`test_kernel_iptables`, with the kernel's answer read from ``nft
monitor trace`` (the rule handle that gave each base chain's verdict, or its
policy) and confirmed by raw-socket delivery. Reproduce a failing seed with

    RA_KERNEL_SEEDS=17 pytest tests/kernel/test_kernel_nftables.py
"""

from __future__ import annotations

import os

import pytest

from .compare import check_random_rulesets
from .gen_nftables import generate
from .netns import missing_prerequisites

pytestmark = pytest.mark.kernel

RULESETS = int(os.environ.get("RA_KERNEL_RULESETS", 51))
PACKETS = int(os.environ.get("RA_KERNEL_PACKETS", 100))
FIRST_SEED = int(os.environ.get("RA_KERNEL_FIRST_SEED", 1))
SEEDS = ([int(s) for s in os.environ["RA_KERNEL_SEEDS"].split(",")] if os.environ.get("RA_KERNEL_SEEDS")
         else list(range(FIRST_SEED, FIRST_SEED + RULESETS)))


def test_random_nft_rulesets_agree_with_the_kernel():
    reason = missing_prerequisites(("ip", "nft", "stdbuf"))
    if reason:
        pytest.skip(reason)
    check_random_rulesets(generate, SEEDS, PACKETS, "nftables", "nft rulesets")
