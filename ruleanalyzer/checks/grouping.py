"""One finding per cause: findings of one check in one file that share a
``cause`` (the same contradicting caller condition, one duplicated block,
one skipped paste, the same blocking rules) become one finding with every
location (``Finding.also``) and a count.

    >>> from ruleanalyzer.checks.base import Finding, Where
    >>> a = Finding("RA505", "duplicate-rule", "warning", "dup", Where("f", 3), cause=("b", 1),
    ...             group_message="{count} duplicates")
    >>> b = Finding("RA505", "duplicate-rule", "warning", "dup", Where("f", 4), cause=("b", 1))
    >>> [(f.message, f.count) for f in group([b, a])]
    [('2 duplicates', 2)]
"""

from __future__ import annotations

from .base import Finding, Related


def group(findings: list[Finding]) -> list[Finding]:
    """``findings`` with those of equal ``(code, file, cause)`` merged into
    the first of them (by file and line), at the place of the first one
    listed; the others' locations go to its ``also``, their related rules
    to its ``related`` (once each)."""
    slots: list[Finding | tuple] = []
    groups: dict[tuple, list[Finding]] = {}
    for f in findings:
        if f.cause is None:
            slots.append(f)
            continue
        key = (f.code, f.file, f.cause)
        if key not in groups:
            groups[key] = []
            slots.append(key)
        groups[key].append(f)
    return [_merge(groups[s]) if isinstance(s, tuple) else s for s in slots]


def _merge(members: list[Finding]) -> Finding:
    members = sorted(members, key=Finding.sort_key)
    head = members[0]
    if len(members) == 1:
        return head
    places = {m.where for m in members}
    seen = {r.where for r in head.related}
    related: list[Related] = list(head.related)
    for m in members[1:]:
        for r in m.related:
            if r.where not in seen and r.where not in places:
                seen.add(r.where)
                related.append(r)
    fixes = list(dict.fromkeys(m.fix for m in members if isinstance(m.fix, str)))
    if len(fixes) > 1:  # one fix per place: show the first, say the rest are alike
        head.fix = f"{fixes[0]} (and likewise for the {len(fixes) - 1} other place(s))"
    head.also = [m.where for m in members[1:] if m.where is not None]
    head.related = related
    if head.group_message:
        head.message = head.group_message.format(count=len(members))
    return head
