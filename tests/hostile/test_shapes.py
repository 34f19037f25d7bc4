"""The structure-aware generators of ``fuzz/shapes.py`` (branching jumps,
define chains, alias trees, include trees, long quoted tokens), a few
seeded inputs each through the fuzz oracle with the budgets lowered so
each input stays small: every input parses or is refused, located, in
bounded CPU time. The nightly-size run is ``fuzz/run.py --shapes``."""

from __future__ import annotations

import random
import importlib
import time

import pytest

from ruleanalyzer.errors import RuleAnalyzerError
from ruleanalyzer.model import Ruleset
from fuzz.shapes import SHAPES, check_shape


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_shape_inputs_parse_or_are_refused_in_bounded_time(shape, monkeypatch):
    from ruleanalyzer import safeyaml
    from ruleanalyzer.parsers import nftables
    monkeypatch.setattr(nftables, "MAX_DEFINE_TOKENS", 20_000)
    monkeypatch.setattr(nftables, "MAX_INCLUDE_FILES", 60)
    monkeypatch.setattr(safeyaml, "MAX_YAML_ALIAS_NODES", 5_000)
    monkeypatch.setattr(importlib.import_module("ruleanalyzer.engine.evaluate"), "MAX_STEPS", 50_000)
    rng = random.Random(f"16:{shape}")
    for _ in range(6):
        start = time.process_time()
        # the oracle raises FuzzFailure for anything but a ruleset or a located refusal
        result, _size = check_shape(shape, rng, max_bytes=100_000)
        assert time.process_time() - start < 5
        assert isinstance(result, (Ruleset, RuleAnalyzerError))
