"""An audit frees its analyses itself (Context.release): they hold
reference cycles, and the cyclic collector would otherwise walk all of them
while alive and again to free them (seconds at 100k rules)."""

from __future__ import annotations

import gc
import weakref

from ruleanalyzer import audit, loads
from ruleanalyzer.audit import run_audit

SSH = """*filter
:INPUT DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A INPUT -p tcp --dport 22 -j ACCEPT
-A INPUT -p tcp --dport 22 -j ACCEPT
COMMIT
"""


def test_an_audit_frees_its_analyses_without_the_cyclic_collector(monkeypatch):
    held = []
    real = audit.ruleset_findings

    def spy(*args, **kwargs):
        found, inline, ctx = real(*args, **kwargs)
        held.append((weakref.ref(ctx.reach("input", 4)), ctx))
        return found, inline, ctx

    monkeypatch.setattr(audit, "ruleset_findings", spy)
    enabled = gc.isenabled()
    gc.disable()  # only reference counting may free them
    try:
        result = run_audit([loads(SSH, dialect="iptables")])
        (analysis, ctx), = held
        assert analysis() is None
        # the context still answers: it works the analysis out again
        assert ctx.reach("input", 4) is not None
    finally:
        if enabled:
            gc.enable()
    assert "RA401" in {f.code for f in result.findings}
