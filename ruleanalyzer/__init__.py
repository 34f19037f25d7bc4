"""ruleanalyzer — a static analyzer for firewall rules.

The public API is a handful of calls the command line is built from::

    from ruleanalyzer import load, evaluate, connect, audit, diff, make_packet
    rs = load("rules.v4")
    result = evaluate(rs, make_packet(src="192.0.2.7", dst="198.51.100.1",
                                      proto="tcp", dport=22, flags="SYN"))
    print(result.verdict, result.decided_by.describe())
    report = connect(rs, "198.51.100.7", "192.0.2.1", 443)   # ECN off and on, as the CLI
    findings = audit(rs)                                     # list of Finding
    change = diff(load("old.v4"), rs)                        # DiffReport

The package is typed (``py.typed``).
"""

from typing import TYPE_CHECKING

from .errors import RuleAnalyzerError
from .loader import load, loads
from .model import Packet, Ruleset
from .packets import make_packet


if TYPE_CHECKING:
    from .engine.connect import ConnectReport
    from .engine.result import Result


def evaluate(ruleset: Ruleset, packet: Packet) -> "Result":
    """The verdict of ``ruleset`` on ``packet`` (see :mod:`ruleanalyzer.engine`)."""
    from .engine import evaluate as _evaluate

    return _evaluate(ruleset, packet)


def connect(ruleset: Ruleset, client: str, server: str, dport: int, *, hook: str | None = None,
            ecn: str | None = None, sport: int = 40000, iif: str | None = None,
            oif: str | None = None) -> "ConnectReport":
    """Every leg of a TCP connection through ``ruleset``, with the command
    line's defaults: ``hook`` input and ``ecn`` both (with a host snapshot,
    decided by the host). See :func:`ruleanalyzer.engine.connect.connect`."""
    from .engine.connect import connect as _connect

    return _connect(ruleset, client, server, dport, hook=hook, ecn=ecn, sport=sport, iif=iif, oif=oif)


def __getattr__(name: str):
    """``audit`` and ``diff`` are modules that can be called:
    ``ruleanalyzer.audit(rs)`` is :func:`ruleanalyzer.audit.audit`,
    ``ruleanalyzer.diff(old, new)`` is :func:`ruleanalyzer.diff.diff` (a
    function of the same name would be replaced by the module as soon as
    anything imports it), imported on first use."""
    if name in ("audit", "diff"):
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["RuleAnalyzerError", "load", "loads", "evaluate", "connect", "audit", "diff",
           "make_packet", "Packet", "Ruleset"]
__version__ = "0.1.0"
