"""RA6xx — what a host snapshot says about the rules, and fleets of hosts.

- RA601 :class:`HostDoesNotForward`: FORWARD rules on a host that forwards
  nothing (``ip_forward=0``) are moot;
- RA602 :class:`SnapshotIncomplete`: the snapshot could not read something
  the answers need, so they are less exact than they could be;
- RA610 :class:`HostDrift` and RA611 :class:`HostAnalysisFailed` come from
  a fleet audit (:mod:`ruleanalyzer.fleet`), which compares hosts; they do
  not run on one ruleset.

They need a host snapshot (``ruleanalyzer collect``); their fixtures are
snapshot directories (``tests/checks/RA6xx/*.snapshot``).
"""

from __future__ import annotations

from .base import Check, Context, Finding, Related, Where


def setting_related(host, key: str, note: str) -> list[Related]:
    """The line of sysctl ``key`` in the host's snapshot (``sysctl.txt:7``),
    as a related location of a finding; empty when the snapshot lacks it."""
    found = host.sysctl_where(key)
    if found is None:
        return []
    return [Related(Where(found[0], found[1], 1, text=f"{key} = {host.sysctl(key)}"), note)]


class HostDoesNotForward(Check):
    """FORWARD rules on a host that forwards nothing."""

    code = "RA601"
    name = "host-does-not-forward"
    summary = "The host does not forward (ip_forward=0): its FORWARD rules never see a packet"
    rationale = (
        "With net.ipv4.ip_forward=0 (or net.ipv6.conf.all.forwarding=0) the kernel routes "
        "nothing from one interface to another: packets not addressed to the host are dropped "
        "by routing before any FORWARD chain. The FORWARD rules are moot — whatever they "
        "accept is not exposed — until forwarding is switched on (Docker and libvirt switch "
        "it on when they start). Remove them, or keep them deliberately as a second line "
        "should forwarding be enabled. Needs a host snapshot; the audit then leaves the "
        "forward path out of every other check.")
    severity = "info"

    def run(self, ctx: Context):
        host = ctx.ruleset.host
        if host is None:
            return
        for family in ctx.families():
            if host.forwards_any(family) is not False:
                continue
            chains = [c for c in ctx.base_chains("forward", family) if c.hook == "forward"]
            rules = sum(len(c.rules) for c in chains)
            if not chains or not rules:
                continue
            key = "net.ipv4.ip_forward" if family == 4 else "net.ipv6.conf.all.forwarding"
            names = ", ".join(c.qualified_name for c in chains)
            yield self.finding(
                f"this host does not forward IPv{family} ({key}={host.sysctl(key) or '0'}): "
                + (f"the {rules} rules of {names} never see a packet, and nothing they accept is exposed"
                   if rules != 1 else f"the rule of {names} never sees a packet, and nothing it accepts "
                   "is exposed"), chain=chains[0], related=setting_related(host, key, "forwarding is off here"))


class SnapshotIncomplete(Check):
    """The snapshot lacks something the answers need."""

    code = "RA602"
    name = "snapshot-incomplete"
    summary = "The host snapshot could not read something; answers that need it stay unknown"
    rationale = (
        "A snapshot taken without root, or on a host missing a tool, lacks the rules, routes, "
        "ipsets or sysctls that tool would have shown. Answers that need them stay \"unknown, "
        "depends on …\" instead of exact. Take the snapshot again as root "
        "(`sudo ruleanalyzer collect`) or install the tool named.")
    severity = "info"

    def run(self, ctx: Context):
        host = ctx.ruleset.host
        if host is None:
            return
        lines = host.manifest_lines.get("missing", [])
        for n, entry in enumerate(host.missing):
            if any(benign in entry for benign in ("not used on this host", "absent (tool not configured here)",
                                                  "absent (module not loaded")):
                continue  # nothing there to read: not a gap
            line = lines[n] if n < len(lines) else 0
            yield Finding(self.code, self.name, self.severity,
                          f"the snapshot of {host.name or 'this host'} could not read {entry}",
                          Where(host.manifest_file or host.source, line, 1 if line else 0,
                                text=f"missing: {entry}"))


class HostDrift(Check):
    """A host whose verdict differs from the majority of its group."""

    code = "RA610"
    name = "host-drift"
    summary = "Fleet: a host treats some traffic differently from most hosts of its group"
    rationale = (
        "Hosts of one role (a group: the `role:` of their snapshot manifest, else their name "
        "without its number — web01, web02 → web) are meant to be configured alike. When most "
        "of them close a service to the internet and one opens it (or the other way round), "
        "the odd one out has drifted: a forgotten rule, a manual change, a failed deploy. "
        "Found by `ruleanalyzer audit` over a directory of host snapshots, which compares, "
        "per service port, whether every public address can open a connection.")
    severity = "warning"

    def run(self, ctx: Context):
        return ()


class HostAnalysisFailed(Check):
    """A host of a fleet audit could not be analysed."""

    code = "RA611"
    name = "host-analysis-failed"
    summary = "Fleet: one host's analysis crashed or ran out of time; the others went on"
    rationale = (
        "A fleet audit analyses each host in its own process. When one crashes, runs past its "
        "time limit (--host-timeout) or its memory limit, that host has no findings and this "
        "finding says why; every other host is still audited. A crash is a bug in ruleanalyzer: "
        "please report it with the snapshot.")
    severity = "error"

    def run(self, ctx: Context):
        return ()
