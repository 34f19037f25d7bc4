"""The rule-file generators of ``bench/shapes.py`` (project, kube-iptables,
mixed, kube-nftables) for tests that check a property on shapes nobody tuned
to. The bench folder is not a package; a test skips when it is absent."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

SHAPES = Path(__file__).resolve().parent.parent / "bench" / "shapes.py"


def generate(shape: str, rules: int, seed: int) -> tuple[str, str]:
    """``(text, dialect)`` of a generated ruleset; skips the test without
    ``bench/shapes.py``."""
    if not SHAPES.is_file():
        pytest.skip("bench/shapes.py not present")
    module = sys.modules.get("_bench_shapes")
    if module is None:
        spec = importlib.util.spec_from_file_location("_bench_shapes", SHAPES)
        module = importlib.util.module_from_spec(spec)
        sys.path.insert(0, str(SHAPES.parent))
        try:
            spec.loader.exec_module(module)
        finally:
            sys.path.remove(str(SHAPES.parent))
        sys.modules["_bench_shapes"] = module
    return module.generate(shape, rules, seed)
