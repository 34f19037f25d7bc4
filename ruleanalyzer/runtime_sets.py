"""Sets the kernel maintains at run time, answered from a listing.

A named nft set with ``flags timeout`` or ``dynamic`` (crowdsec's and
fail2ban-style bouncers' blocklists) changes while the firewall runs, but
``nft list ruleset`` shows its elements as they are now. By default
(``snapshot``) a lookup in such a set is answered from the listed elements
and every answer that consulted it says so in a note; ``unknown`` (the
strict reading, ``--sets unknown``) makes those lookups depend on the set's
runtime contents instead.

Sets filled from the packet path (``add @s``, ``update @s``, meters) are
never answered from a listing: what they hold depends on the traffic seen
before (the nft reader makes those lookups unknown).
"""

from __future__ import annotations

from dataclasses import replace

from .model import OpaqueMatch, Ruleset

MODES = ("snapshot", "unknown")


def snapshot_lookups(ruleset: Ruleset) -> list:
    """``(rule, match, "@set", why)`` for each lookup answered from a runtime
    set's listing."""
    return ruleset.meta.get("snapshot_sets", [])


def read_sets(ruleset: Ruleset, mode: str = "snapshot") -> Ruleset:
    """Apply ``mode`` (:data:`MODES`) to ``ruleset`` in place and return it."""
    if mode not in MODES:
        raise ValueError(f"sets mode must be one of {', '.join(MODES)}, not {mode!r}")
    if mode == "snapshot":
        return ruleset
    for rule, match, name, why in snapshot_lookups(ruleset):
        opaque = OpaqueMatch(reason=f"depends on the runtime contents of set {name} ({why}; --sets unknown)")
        rule.matches = tuple(opaque if m is match else m for m in rule.matches)
    ruleset.meta["snapshot_sets"] = []
    return ruleset


def with_notes(ruleset: Ruleset, result):
    """``result`` with a note for each runtime set its packet was looked up in."""
    lookups = snapshot_lookups(ruleset)
    if not lookups:
        return result
    reached: dict[int, float] = {}  # chain id → the last rule index a packet reached in it
    for res in (result, *result.alternatives):
        ended: dict[int, float] = {}
        for step in res.trace:
            ended.setdefault(id(step.chain), float("inf"))  # ran to its end, unless a rule ended it
            if step.event in ("match", "verdict") and step.rule is not None and step.rule.action.terminal:
                ended[id(step.chain)] = step.rule.index
        for key, index in ended.items():
            reached[key] = max(reached.get(key, 0), index)
    notes = list(result.notes)
    for rule, _match, name, why in lookups:
        if rule.index <= reached.get(id(rule.chain), -1):
            note = (f"set {name} is maintained at runtime ({why}): the answer holds for the elements "
                    "listed in this snapshot (--sets unknown for the strict reading)")
            if note not in notes:
                notes.append(note)
    return replace(result, notes=tuple(notes)) if len(notes) != len(result.notes) else result
