"""ruleanalyzer — a static analyzer for firewall rules.

The public API is a handful of calls the command line is built from::

    from ruleanalyzer import load, evaluate, make_packet
    rs = load("rules.v4")
    result = evaluate(rs, make_packet(src="192.0.2.7", dst="198.51.100.1",
                                      proto="tcp", dport=22, flags="SYN"))
    print(result.verdict, result.decided_by.describe())
"""

from .errors import RuleAnalyzerError
from .loader import load, loads
from .model import Packet, Ruleset
from .packets import make_packet


def evaluate(ruleset, packet):
    """The verdict of ``ruleset`` on ``packet`` (see :mod:`ruleanalyzer.engine`)."""
    from .engine import evaluate as _evaluate

    return _evaluate(ruleset, packet)


__all__ = ["RuleAnalyzerError", "load", "loads", "evaluate", "make_packet", "Packet", "Ruleset"]
__version__ = "0.1.0"
