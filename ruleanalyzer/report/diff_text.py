"""A :class:`~ruleanalyzer.diff.DiffReport` for people at a terminal."""

from __future__ import annotations

from ..errors import visible
from .diff_json import KIND_ORDER, arrival_lines, verdict_text

HEADINGS = {"opened": "now ACCEPTED (was dropped)", "closed": "now DROPPED (was accepted)",
            "unknown": "changes involving unknowns",
            "rewritten": "rewritten or routed differently (NAT, marks, the host's addresses): one "
                         "version alone brings these packets to the hook's verdict"}


def _rewritten(regions) -> list[str]:
    """Rewritten regions grouped by their arriving packet (a changed DNAT
    target makes two regions a hook — the packets made before only and now
    only — that one arriving packet explains): the packet and its fate
    before and after once, then each region with the version that makes
    its packets and their verdict there."""
    groups: dict = {}
    for r in regions:
        key = (r.hook, r.family, tuple(arrival_lines(r)) if r.arrival is not None else None)
        groups.setdefault(key, []).append(r)
    out = []
    for (hook, family, lines_), members in groups.items():
        first = members[0]
        if lines_ is None:  # (related packets: the engine translates none)
            out.append(f"  {hook} IPv{family}: no arriving packet found that becomes one of these")
        else:
            head, *rest = lines_
            out.append(f"  {hook} IPv{family}: {head}")
            out += [f"    {line}" for line in rest]
        if first.connection is not None:
            out.append(f"    connection: {first.connection.text}")
        for r in members:
            made = (f"made before only [{r.was}]" if r.now == "unreached"
                    else f"made now only [{r.now}]")
            out.append(f"    {made}: {r.text}")
    return out


def lines(report) -> list[str]:
    out = [f"diff {report.old_name} → {report.new_name}"]
    if not report.verdicts_changed:
        out.append("no verdict changed" + (" (the rulesets are the same rule for rule)"
                                           if report.changed_rules == 0 and not report.host_changed
                                           else ""))
    for kind in KIND_ORDER:
        regions = report.of_kind(kind)
        if not regions:
            continue
        out.append("")
        out.append(f"{HEADINGS[kind]}: {len(regions)} region{'s' if len(regions) != 1 else ''}")
        if kind == "rewritten":
            out += _rewritten(regions)
            continue
        for r in regions:
            change = "" if kind in ("opened", "closed") else f" [{r.was} → {r.now}]"
            out.append(f"  {r.hook} IPv{r.family}{change}: {r.text}")
            out.append(f"    e.g. {r.witness.describe()}")
            out.append(f"    before: {verdict_text(r.old)}")
            out.append(f"    after:  {verdict_text(r.new)}")
            if r.connection is not None:
                out.append(f"    connection: {r.connection.text}")
            if not r.confirmed:
                out.append(f"    ! {r.note}")
    f = report.findings
    if f is not None:
        if f.error:
            out += ["", f"findings: {f.error}"]
        for title, items in (("findings introduced", f.introduced), ("findings resolved", f.resolved)):
            if items:
                out += ["", f"{title}: {len(items)}"]
                out += [f"  {x.code} {x.name}: {x.message}"
                        + (f" ({x.where.describe()})" if x.where else "") for x in items]
    if report.policy:
        out += ["", f"policy assertions failing: {len(report.policy)}"]
        out += ["  " + str(p).replace("\n", "\n  ") for p in report.policy]
    if report.flows is not None:
        from .flows import lines as flow_lines

        out += flow_lines(report.flows)
    return out


def render(reports, out) -> None:
    for i, report in enumerate(reports):
        if i:
            out.write("\n")
        out.write("\n".join(visible(line) for line in lines(report)) + "\n")
