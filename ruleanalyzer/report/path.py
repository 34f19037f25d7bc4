"""Reports of a connection across several firewalls: a rich hop × leg
table, plain-words diagnosis, JSON, and a Mermaid picture of the path."""

from __future__ import annotations

import json

from rich.table import Table as RichTable
from rich.text import Text

from ..engine.path import Check, PathLeg, PathReport, PathVariant, RouteAnalysis, route_layers
from ..model import CWR, ECE
from . import serialize
from .text import VERDICT_STYLE, make_console

#: Short column headings for the legs of connect.py.
LEG_LABELS = {
    "SYN": "SYN", "SYN-ACK": "SYN-ACK", "ACK": "ACK",
    "data client→server": "data →", "data server→client": "data ←",
    "SYN+ECE+CWR (ECN setup)": "SYN+ECE+CWR", "SYN-ACK+ECE (ECN setup)": "SYN-ACK+ECE",
    "data client→server, ECT(0)": "data → ECT0", "data server→client, ECT(0)": "data ← ECT0",
    "data client→server, CE mark": "data → CE", "ACK server→client with ECE": "ACK ← ECE",
    "data client→server with CWR": "data → CWR",
}
CELL = {"accept": "✓", "drop": "✗ drop", "unknown": "? unknown"}
CONSEQUENCE = {
    "SYN": "the client times out",
    "SYN-ACK": "the client never sees an answer and times out (the server keeps a half-open "
               "connection)",
    "ACK": "the server retransmits its SYN-ACK; the handshake never completes on the server",
}


# ---------------------------------------------------------------------------
# Plain words
# ---------------------------------------------------------------------------


def _decision(check: Check) -> str:
    d = check.result.decided_by
    return d.describe() if d is not None else "no rule"


def _hint(analysis: RouteAnalysis, variant: PathVariant, leg: PathLeg, check: Check) -> str:
    """What to change, when the shape of the failure says it."""
    fw, spec = check.firewall, leg.spec
    ecn_syn = spec.handshake and spec.flags & (ECE | CWR)
    if ecn_syn and leg.name.startswith("SYN"):
        fallback = analysis.fallback
        plain = fallback.legs[0].at(check.node.name, check.firewall) if fallback else []
        if plain and all(c.verdict == "accept" for c in plain):
            return (f"{fw.name} drops ECN-setup SYNs (SYN+ECE+CWR) but passes plain ones: no "
                    "rule should drop a SYN for carrying ECE/CWR, and nftables rules should "
                    "match SYNs with 'tcp flags syn / fin,syn,rst,ack', not 'tcp flags == syn'.")
    if spec.direction == "to_client":
        if not fw.stateful:
            client = variant.legs[0].checks[0].packet.src if variant.legs[0].checks else "the client"
            if check.side == "egress":
                return (f"{fw.name} is stateless (a network ACL): replies need their own rule — "
                        f"add an egress rule allowing tcp 1024-65535 to {client}.")
            return (f"{fw.name} is stateless (a network ACL): replies need their own rule — "
                    f"add an ingress rule allowing tcp 1024-65535 from {check.packet.src}.")
        if fw.kind == "netfilter":
            chain = check.result.decided_by.chain.name if check.result.decided_by else "the chain"
            return (f"the {leg.name} is a reply: {chain} on {check.node.name} needs a rule "
                    "accepting ESTABLISHED,RELATED traffic before the one that drops it.")
    if spec.ecn or spec.flags & (ECE | CWR):
        return "ECN-marked packets of an open connection are black-holed: a classic ECN trap."
    if leg is variant.legs[0]:
        return (f"nothing in {fw.name} lets tcp to {check.packet.dst}:{check.packet.dport} "
                f"through on {check.side if check.side != 'host' else check.packet.hook}: "
                "add an allow rule.")
    return ""


def explain_variant(analysis: RouteAnalysis, variant: PathVariant) -> str:
    """One plain sentence: where the connection dies and what to do."""
    label = "With ECN" if variant.ecn else "Without ECN"
    route = " → ".join(variant.route)
    failed = variant.first_failure
    if failed is None:
        sentence = f"{label}: the connection works along {route}; every leg passes every firewall."
        for c in variant.crossings:
            if c.side == "host" and c.hook == "input" and c.outcome == "forwarded":
                sentence += (f" At {c.node.name}, DNAT forwards it to {c.after[2]}:{c.after[3]} "
                             f"past INPUT: {c.node.name}'s INPUT rules (ufw's too) do not protect "
                             f"port {c.before[3]}.")
        return sentence
    check = failed.first_failure
    first = variant.legs[0]
    before = ""
    if failed is not first:
        before = f"the {first.name} reaches {variant.route[-1]}; "
        undecided = [leg for leg in variant.legs[:variant.legs.index(failed)]
                     if leg.verdict == "unknown"]
        if undecided:
            doubt = undecided[0].first_failure
            before = (f"if {doubt.where} lets the {undecided[0].name} through (it depends on "
                      f"{'; '.join(doubt.result.depends_on)}), the {first.name} reaches "
                      f"{variant.route[-1]}; ")
    if failed.verdict == "unknown":
        deps = "; ".join(check.result.depends_on) or "undecidable conditions"
        return f"{label}: {before}whether the {failed.name} passes {check.where} depends on: {deps}."
    key = failed.name.split("+")[0].split(" ")[0]
    if check.result.reject_with and failed.spec.direction == "to_server":
        tail = f"the client is refused at once (REJECT with {check.result.reject_with})"
    elif key in CONSEQUENCE and failed.spec.handshake:
        tail = CONSEQUENCE[key]
    else:
        tail = "the connection opens but then stalls"
    sentence = (f"{label}: {before}the {failed.name} is dropped at {check.where} by "
                f"{_decision(check)}: {tail}.")
    hint = _hint(analysis, variant, failed, check)
    if hint:
        sentence += f" Fix: {hint}"
    if variant.ecn and failed is first:
        fallback = analysis.fallback
        if fallback is not None and fallback.passes:
            sentence += (" Linux retries an unanswered SYN after 1 s without ECE/CWR, so the "
                         "connection still opens, a second late and without ECN.")
        elif fallback is not None and fallback.passes is False:
            sentence += " The retry without ECN is blocked too."
    return sentence


# ---------------------------------------------------------------------------
# Text
# ---------------------------------------------------------------------------


def _cell(leg: PathLeg, checks: list[Check]) -> Text:
    if not leg.sent:
        return Text("not sent", style="dim")
    if not checks:
        return Text("·", style="dim")
    verdicts = [c.verdict for c in checks]
    verdict = "drop" if "drop" in verdicts else "unknown" if "unknown" in verdicts else "accept"
    text = CELL[verdict]
    if len(checks) > 1 and verdict != "accept":
        bad = next(c for c in checks if c.verdict == verdict)
        text += f" ({bad.side})"
    return Text(text, style=VERDICT_STYLE[verdict])


def _layer_label(node, fw) -> str:
    return f"{node.name} · {fw.name}"


def render_text(report: PathReport, console) -> None:
    topo = report.topology
    console.print(f"TCP {report.source} ({report.client}) → {report.target} ({report.server}):"
                  f"{report.dport}  [{topo.source}]", highlight=False, markup=False)
    for analysis in report.routes:
        for variant in analysis.variants:
            layers = route_layers(topo, variant.route)
            table = RichTable(title=f"{'ECN on' if variant.ecn else 'ECN off'} — route: "
                                    f"{' → '.join(variant.route)}", title_justify="left")
            table.add_column("hop · firewall")
            for leg in variant.legs:
                table.add_column(LEG_LABELS.get(leg.name, leg.name))
            for node, fw in layers:
                row = [_layer_label(node, fw)]
                for leg in variant.legs:
                    row.append(_cell(leg, leg.at(node.name, fw)))
                table.add_row(*row)
            if not layers:
                table.add_row("(no firewall on this route)", *["✓" for _ in variant.legs])
            console.print(table)
            for leg in variant.legs:
                check = leg.first_failure
                if check is not None and leg.verdict != "not sent":
                    what = "dies" if check.verdict == "drop" else "is undecided"
                    console.print(f"  {leg.name} {what} at {check.where}: {_decision(check)}",
                                  highlight=False, markup=False)
            console.print(explain_variant(analysis, variant), highlight=False, markup=False)
            for note in variant.notes:
                console.print(f"  note: {note}", style="dim", highlight=False, markup=False)


# ---------------------------------------------------------------------------
# JSON
# ---------------------------------------------------------------------------


def check_data(check: Check) -> dict:
    result = check.result
    data = {"node": check.node.name, "firewall": check.firewall.name, "side": check.side,
            "hook": check.packet.hook, "verdict": result.verdict, "outcome": result.outcome,
            "state": result.state, "decided_by": serialize.decision_data(result.decided_by),
            "packet": serialize.packet_data(check.packet), "depends_on": list(result.depends_on)}
    if result.packet != check.packet and result.verdict == "accept":
        data["packet_out"] = serialize.packet_data(result.packet)
    if result.notes:
        data["notes"] = list(result.notes)
    return data


def variant_data(analysis: RouteAnalysis, variant: PathVariant) -> dict:
    failed = variant.first_failure
    where = failed.first_failure if failed else None
    return {
        "ecn": variant.ecn, "route": list(variant.route), "passes": variant.passes,
        "first_failure": None if failed is None else {
            "leg": failed.name, "verdict": failed.verdict, "node": where.node.name,
            "firewall": where.firewall.name, "side": where.side, "hook": where.packet.hook,
            "decided_by": serialize.decision_data(where.result.decided_by)},
        "explanation": explain_variant(analysis, variant),
        "notes": list(variant.notes),
        "legs": [{"leg": leg.name, "direction": leg.spec.direction, "verdict": leg.verdict,
                  "checks": [check_data(c) for c in leg.checks]} for leg in variant.legs],
    }


def path_data(report: PathReport) -> dict:
    """The report as plain data (``--format json``)."""
    return {
        "topology": report.topology.source, "from": report.source, "to": report.target,
        "client": report.client, "server": report.server, "dport": report.dport,
        "proto": "tcp", "ecn": report.ecn, "passes": report.passes,
        "routes": [{"route": list(a.route), "passes": a.passes,
                    "variants": [variant_data(a, v) for v in a.variants]}
                   for a in report.routes],
    }


# ---------------------------------------------------------------------------
# Mermaid
# ---------------------------------------------------------------------------


def _mermaid_text(text: str) -> str:
    return text.replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")


def render_mermaid(report: PathReport) -> str:
    """A left-to-right flowchart of the (first) route: each node with its
    firewalls, the legs that die there in red, undecided ones in yellow."""
    analysis = report.routes[0]
    route = max((v.route for v in analysis.variants), key=len)
    topo = report.topology
    ids = {name: f"n{i}" for i, name in enumerate(route)}
    problems: dict[str, list[tuple[str, str]]] = {name: [] for name in route}
    for variant in analysis.variants:
        tag = ""
        for leg in variant.legs:
            check = leg.first_failure
            if check is None or not leg.sent:
                continue
            d = check.result.decided_by
            why = (f"{d.chain.name} policy {(d.chain.policy or 'accept').upper()}" if d and d.is_policy
                   else f"{d.chain.name} rule {d.rule.index}" if d else "undecided")
            mark = "✗" if check.verdict == "drop" else "?"
            problems[check.node.name].append(
                (check.verdict, f"{mark} {leg.name}{tag} — {check.firewall.name}: {why}"))
    lines = ["flowchart LR"]
    for name in route:
        node = topo.node(name)
        label = [f"<b>{_mermaid_text(name)}</b>"]
        if node.address is not None:
            label.append(str(node.address))
        label += [f"🛡 {_mermaid_text(fw.name)}" for fw in node.firewalls]
        label += [_mermaid_text(text) for _, text in problems[name]]
        lines.append(f'    {ids[name]}["{"<br/>".join(label)}"]')
    first = analysis.variants[0]
    syn = first.legs[0]
    reached = {c.node.name for c in syn.checks}
    for a, b in zip(route, route[1:]):
        arrow = "-->" if a in reached or not topo.node(a).firewalls else "-.->"
        lines.append(f"    {ids[a]} {arrow} {ids[b]}")
    lines.append("    classDef drop fill:#fdd,stroke:#c00,stroke-width:2px")
    lines.append("    classDef unknown fill:#ffd,stroke:#aa0")
    lines.append("    classDef ok fill:#dfd,stroke:#080")
    for name in route:
        verdicts = {v for v, _ in problems[name]}
        cls = "drop" if "drop" in verdicts else "unknown" if "unknown" in verdicts else (
            "ok" if topo.node(name).firewalls else None)
        if cls:
            lines.append(f"    class {ids[name]} {cls}")
    return "\n".join(lines) + "\n"


def render(report: PathReport, fmt: str, out) -> None:
    """Write ``report`` to ``out`` as ``text``, ``json`` or ``mermaid``."""
    if fmt == "json":
        json.dump(path_data(report), out, indent=2, ensure_ascii=False)
        out.write("\n")
    elif fmt == "mermaid":
        out.write(render_mermaid(report))
    else:
        render_text(report, make_console(out))
