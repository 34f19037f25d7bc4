"""The evaluator: packets and connections through a ruleset.

``evaluate(ruleset, packet)`` answers for one packet; ``connect(...)`` (in
:mod:`ruleanalyzer.engine.connect`) for every leg of a TCP connection.
"""

from .evaluate import Evaluator, evaluate
from .result import Decision, Result, Step

__all__ = ["evaluate", "Evaluator", "Decision", "Result", "Step"]
