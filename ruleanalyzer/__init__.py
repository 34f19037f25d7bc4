"""ruleanalyzer — a static analyzer for firewall rules.

The public API is a handful of calls the command line is built from::

    from ruleanalyzer import load, evaluate, Packet
    rs = load("rules.v4")
    result = evaluate(rs, Packet.from_fields(src="192.0.2.7", dst="198.51.100.1",
                                             proto="tcp", dport=22, flags="SYN"))
    print(result.verdict, result.decided_by)
"""

from .errors import RuleAnalyzerError
from .loader import load, loads
from .model import Packet, Ruleset

__all__ = ["RuleAnalyzerError", "load", "loads", "Packet", "Ruleset"]
__version__ = "0.1.0"
