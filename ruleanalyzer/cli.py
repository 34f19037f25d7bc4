"""The command line: parse arguments, call the library, pick an exit code.

Every command is a documented Python call (``load``, ``evaluate``,
``connect`` …); this module only wires arguments to them and renders.
Exit codes follow DESIGN.md: 0 all accepted / passes, 1 dropped / blocked,
3 unknown, 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Callable

from . import __version__
from .errors import RuleAnalyzerError, split_lines
from .loader import DEFAULT_MAX_BYTES, forget_stdin, input_name, load, read_text
from .output import atomic_output
from .packets import make_packet, read_packets
from .parsers import DIALECTS

EXIT_OK, EXIT_FINDINGS, EXIT_BAD_INPUT, EXIT_UNKNOWN, EXIT_INTERNAL = 0, 1, 2, 3, 4

#: What each command's exit codes mean (shown in its --help).
EXIT_HELP = {
    "query": "0 every packet accepted, 1 a packet dropped, 3 a verdict unknown, 2 bad input",
    "connect": "0 the connection passes, 1 it is blocked, 3 unknown, 2 bad input",
    "path": "0 the connection passes every hop, 1 blocked, 3 unknown, 2 bad input",
    "audit": "0 no finding at or above --fail-on, 1 findings at or above it, 2 bad input "
             "(every input unreadable, a bad option or config)",
    "diff": "0 no verdict changed (or --fail-on never), 1 verdicts changed (--fail-on) or a policy "
            "assertion fails, 2 bad input",
    "rules": "0, or 2 on a bad option",
    "explain": "0, 2 for an unknown check",
    "collect": "0 written, 2 bad input",
}


def port_number(text: str) -> int:
    """A port given on the command line: a number or a service name (``ssh``)."""
    from .parsers.iptables_values import BadValue, parse_port

    try:
        return parse_port(text)
    except BadValue as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_input_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("files", nargs="+", metavar="FILE",
                   help="rule files describing one firewall, or a host snapshot (directory or archive); "
                        "- reads standard input")
    p.add_argument("--dialect", choices=DIALECTS, help="the files' dialect (sniffed when omitted)")
    p.add_argument("--target", help="cloud exports: the security group, NACL, NSG or tag to evaluate")
    p.add_argument("--inventory", help="cloud exports: YAML mapping names (groups, tags) to CIDRs")
    p.add_argument("--max-bytes", type=int, default=DEFAULT_MAX_BYTES, help="refuse larger files")
    p.add_argument("--firewalld-version", metavar="X.Y.Z",
                   help="firewalld configuration directories: the version whose layout they compile to "
                        "(1.x or 2.x; default: a snapshot's recorded version, else 1.3.3)")
    p.add_argument("--table", choices=("filter", "nat", "mangle", "raw", "security"),
                   help="iptables -S output and script commands without -t: their table (default filter)")
    p.add_argument("-o", "--output", help="write the report here (atomically) instead of stdout")
    p.add_argument("--sets", default="snapshot", choices=("snapshot", "unknown"),
                   help="nft sets maintained at runtime (flags timeout/dynamic) listed with elements: "
                        "answer from the listing (snapshot, default) or leave them unknown")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ruleanalyzer", description="Static analyzer for firewall rules.")
    parser.add_argument("--version", action="version", version=f"ruleanalyzer {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    q = sub.add_parser("query", help="verdict of one packet (or a batch) with the deciding rule")
    _add_input_options(q)
    q.add_argument("--src", help="the packet's source address")
    q.add_argument("--dst", help="the packet's destination address")
    q.add_argument("--proto", default=None,
                   help="tcp (default), udp, icmp, icmpv6, a number, or all (any protocol)")
    q.add_argument("--sport", type=port_number, help="source port: a number or a service name")
    q.add_argument("--dport", type=port_number,
                   help="destination port: a number or a service name (ssh, https)")
    q.add_argument("--flags", help='TCP flags, e.g. "SYN,ECE,CWR" (default SYN)')
    q.add_argument("--ecn", help="IP ECN codepoint: not-ect, ect0, ect1, ce")
    q.add_argument("--state", default="auto",
                   help="auto, new (no connection yet), established, related, invalid, untracked")
    q.add_argument("--hook", default=None, choices=("input", "forward", "output", "auto"),
                   help="the packet's path (default: input; auto with a host snapshot, decided by "
                        "the host's addresses)")
    q.add_argument("--iif", help="interface the packet arrives on (eth0)")
    q.add_argument("--oif", help="interface the packet leaves by")
    q.add_argument("--icmp-type", help="ICMP type: a number or a name (echo-request)")
    q.add_argument("--icmp-code", type=int, help="ICMP code")
    q.add_argument("--mark", help="the packet's firewall mark (0x10)")
    q.add_argument("--length", type=int, help="IP total length (default: the headers alone)")
    q.add_argument("--ttl", help="TTL / hop limit (default 64)")
    q.add_argument("--dscp", help="DSCP (default 0)")
    q.add_argument("--frag", help="none (default), first, middle, last, or an offset in 8-byte units")
    q.add_argument("--mf", help="More Fragments bit: yes/no")
    q.add_argument("--df", help="IPv4 Don't Fragment bit: yes/no (default: yes for TCP)")
    q.add_argument("--ip-id", help="IPv4 identification (default 0)")
    q.add_argument("--ip-options", help="IPv4 options present: yes/no (default no)")
    q.add_argument("--ext-headers", help="IPv6 extension headers present: yes/no (default no)")
    q.add_argument("--packets", help="JSON-lines file of packets (keys as the flags), `conntrack -L` "
                                     "output or AWS VPC flow log records")
    q.add_argument("--trace", action="store_true",
                   help="with --packets and --format json/jsonl: also the full trace of every packet "
                        "(by default each answer has the verdict, deciding rule and depends-on, not the trace)")
    q.add_argument("--format", default="text", choices=("text", "json", "jsonl"),
                   help="text (default), json, or jsonl (one line per packet)")

    c = sub.add_parser("connect", help="every leg of a TCP connection, both directions, with state")
    _add_input_options(c)
    c.add_argument("--client", required=True)
    c.add_argument("--server", required=True)
    c.add_argument("--dport", type=port_number, required=True,
                   help="the server's port: a number or a service name")
    c.add_argument("--sport", type=port_number, default=40000, help="the client's port (default 40000)")
    c.add_argument("--hook", default=None, choices=("input", "forward", "output", "auto"),
                   help="where the firewall sits: input = it is the server, output = the client "
                        "(default: input; auto with a host snapshot)")
    c.add_argument("--ecn", default=None, choices=("off", "on", "both"),
                   help="default: both; with a host snapshot, what the host's net.ipv4.tcp_ecn does")
    c.add_argument("--iif", help="interface the client's packets arrive on")
    c.add_argument("--oif", help="interface the client's packets leave by")
    c.add_argument("--format", default="text", choices=("text", "json"))

    pa = sub.add_parser("path", help="a TCP connection across several firewalls, hop by hop")
    pa.add_argument("topology", metavar="TOPOLOGY", help="topology YAML (docs/topology.md)")
    pa.add_argument("--from", dest="source", required=True, help="the client node")
    pa.add_argument("--to", dest="target", required=True, help="the server node")
    pa.add_argument("--dport", type=port_number, required=True,
                    help="the server's port: a number or a service name")
    pa.add_argument("--sport", type=port_number, default=40000, help="the client's port (default 40000)")
    pa.add_argument("--proto", default="tcp")
    pa.add_argument("--ecn", default="both", choices=("off", "on", "both"))
    pa.add_argument("--format", default="text", choices=("text", "json", "mermaid"))
    pa.add_argument("--max-bytes", type=int, default=DEFAULT_MAX_BYTES, help="refuse larger files")
    pa.add_argument("-o", "--output", help="write the report here (atomically) instead of stdout")

    au = sub.add_parser("audit", help="findings with stable codes (see `ruleanalyzer rules`)")
    au.add_argument("paths", nargs="*", metavar="PATH", help="rule files or directories (one ruleset per file); - reads standard input")
    au.add_argument("--together", action="append", default=[], metavar="F1,F2",
                    help="files that describe one firewall (e.g. rules.v4,rules.v6); repeatable")
    au.add_argument("--dialect", choices=DIALECTS, help="the files' dialect (sniffed when omitted)")
    au.add_argument("--format", default="text", choices=("text", "json", "sarif", "github"))
    au.add_argument("--sarif-snippets", action="store_true",
                    help="put each rule's text in the SARIF output as a snippet (off: SARIF is uploaded)")
    au.add_argument("--select", help="codes, prefixes or names to run (comma-separated; default: all "
                                     "but the opt-in checks, which need their exact code or name)")
    au.add_argument("--ignore", help="codes, prefixes or names to skip (comma-separated)")
    au.add_argument("--fail-on", choices=("error", "warning", "info", "never"),
                    help="exit 1 when a finding is at least this severe (default: warning, or the config's)")
    au.add_argument("--config", help="settings file (default: nearest .ruleanalyzer.yaml or pyproject.toml)")
    au.add_argument("--no-config", action="store_true", help="ignore config files")
    au.add_argument("--max-bytes", type=int, default=DEFAULT_MAX_BYTES, help="refuse larger files")
    au.add_argument("--firewalld-version", metavar="X.Y.Z",
                    help="firewalld configuration directories: the layout's version (1.x or 2.x; default: "
                         "the config's firewalld-version, a snapshot's recorded version, else 1.3.3)")
    au.add_argument("--max-findings", type=int, metavar="N", default=None,
                    help="text: print at most N findings in full after the summary (default 30; "
                         "0: all); JSON and SARIF always hold every finding")
    au.add_argument("--include-generated", action="store_true",
                    help="also report dead-rule and structure findings about tools' stock rules "
                         "(ufw, Docker, kube-proxy, firewalld, OpenWrt, Shorewall, libvirt, …)")
    au.add_argument("--one-by-one", action="store_true",
                    help="audit every file alone, even files that form one host "
                         "(rules.v4 + rules.v6, an /etc/ufw directory)")
    au.add_argument("-o", "--output", help="write the report here (atomically) instead of stdout")
    au.add_argument("--table", choices=("filter", "nat", "mangle", "raw", "security"),
                    help="iptables -S output and script commands without -t: their table (default filter)")
    au.add_argument("--annotate", action="store_true",
                    help="also print GitHub annotations to stdout (one run for -o report.sarif and "
                         "the annotations)")
    fl = au.add_argument_group("fleets (a directory of host snapshots)")
    fl.add_argument("--jobs", type=int, help="hosts analysed in parallel processes (default: the cores)")
    fl.add_argument("--dask-scheduler", metavar="ADDRESS",
                    help="run one task per host on this Dask cluster (needs ruleanalyzer[dask])")
    fl.add_argument("--host-timeout", type=float, default=600.0,
                    help="seconds one host may take before it is a finding (default 600)")
    ru = sub.add_parser("rules", help="list every check: code, name, severity, summary")
    ru.add_argument("--format", default="text", choices=("text", "json"))
    ex = sub.add_parser("explain", help="document one check (what it does, why, examples)")
    ex.add_argument("code", metavar="CODE", help="a check code (RA101) or name (shadowed-rule)")
    _add_diff_parser(sub)
    _add_collect_parser(sub)
    for name, command in sub.choices.items():
        out = command.add_argument_group("output")
        out.add_argument("-q", "--quiet", action="store_true",
                         help="only the findings / answers: no summary, notes or progress bar")
        out.add_argument("--color", default="auto", choices=("auto", "always", "never"),
                         help="colours: auto (on a terminal, unless NO_COLOR is set), always, never")
        command.epilog = f"exit codes: {EXIT_HELP[name]}"
    return parser


def parse_args(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """Arguments of one command; an unknown or misspelt option is reported
    with that command's usage (and the closest option), exit 2."""
    import difflib

    args, extras = parser.parse_known_args(argv)
    if extras:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        command = sub.choices[args.command]
        options = [o for a in command._actions for o in a.option_strings]
        unknown = next((e for e in extras if e.startswith("-")), extras[0])
        close = difflib.get_close_matches(unknown.split("=")[0], options, n=1)
        command.error(f"unrecognized arguments: {' '.join(extras)}"
                      + (f" (did you mean {close[0]}?)" if close else ""))
    return args


def _load(args) -> "object":
    import gc

    from .gcpause import gc_paused
    from .parsers import lazy_reading

    # The ruleset lives until the process ends (frozen below). The readers
    # pause the cyclic collector while they build it, and the first
    # collection after that walked all of it (7% of reading 100k rules):
    # it stays paused until the model is frozen. query and connect (this
    # function's callers) look at the chains a packet enters: read lazily.
    with gc_paused(), lazy_reading():
        try:
            ruleset = load(*args.files, dialect=args.dialect, max_bytes=args.max_bytes,
                           firewalld_version=getattr(args, "firewalld_version", None), table=args.table)
        finally:
            gc.freeze()
    if getattr(args, "sets", "snapshot") != "snapshot":
        from .runtime_sets import read_sets

        read_sets(ruleset, args.sets)
    if getattr(args, "inventory", None) or getattr(args, "target", None) or ruleset.meta.get("cloud"):
        try:
            from .targets import select_target
        except ImportError:
            select_target = None
        if select_target is not None:
            inventory = None
            if args.inventory:
                from .inventory import load_inventory

                inventory = load_inventory(args.inventory)
            ruleset = select_target(ruleset, args.target, inventory)
    # the ruleset lives until the process ends: the cyclic collector need
    # not walk its million objects through every generation (0.4 s at 100k rules)
    gc.freeze()
    return ruleset


def _packets_from_args(args, default_hook: str = "input") -> list:
    if args.packets:
        return read_packets(read_text(args.packets), args.packets, default_hook, args.hook)
    if not args.src or not args.dst:
        raise RuleAnalyzerError("query needs --src and --dst (or --packets FILE)")
    fields = {k: getattr(args, k) for k in ("src", "dst", "proto", "sport", "dport", "flags", "ecn",
                                            "state", "hook", "iif", "oif", "length", "ttl",
                                            "dscp", "frag", "mf", "df", "ip_id", "ip_options",
                                            "ext_headers")}
    fields["hook"] = fields["hook"] or default_hook
    fields["icmp_type"] = args.icmp_type
    fields["icmp_code"] = args.icmp_code
    if args.mark is not None:
        fields["mark"] = args.mark
    return [make_packet(**{k: v for k, v in fields.items() if v is not None})]


def _working(args, what: str):
    """A spinner on a terminal while one command reads and analyses its files."""
    if not sys.stderr.isatty() or args.quiet:
        import contextlib

        return contextlib.nullcontext()  # without importing the findings report (50 ms)
    from .report.findings_text import working

    return working(f"{what} {', '.join(args.files[:2])}", True)


def cmd_query(args, out) -> int:
    from .report.answers import write_answers

    with _working(args, "reading and evaluating"):
        ruleset = _load(args)
        packets = _packets_from_args(args, "auto" if ruleset.host is not None else "input")
    verdicts = write_answers(ruleset, packets, out, args.format,
                             trace=args.trace or not args.packets, single=not args.packets)
    if "drop" in verdicts:
        return EXIT_FINDINGS
    if "unknown" in verdicts:
        return EXIT_UNKNOWN
    return EXIT_OK


def cmd_connect(args, out) -> int:
    from .engine.connect import connect
    from .report import serialize, text

    with _working(args, "reading and following the connection"):
        ruleset = _load(args)
        report = connect(ruleset, args.client, args.server, args.dport, hook=args.hook, ecn=args.ecn,
                         sport=args.sport, iif=args.iif, oif=args.oif)
    if args.format == "json":
        json.dump(serialize.connect_data(report), out, indent=2)
        out.write("\n")
    else:
        console = text.make_console(out)
        text.render_diagnostics(console, ruleset.diagnostics)
        text.render_connect(console, report)
    return {True: EXIT_OK, False: EXIT_FINDINGS, None: EXIT_UNKNOWN}[report.passes]


def cmd_path(args, out) -> int:
    from .engine.path import trace_path
    from .report import path as path_report
    from .topology import load_topology

    topology = load_topology(args.topology, max_bytes=args.max_bytes)
    report = trace_path(topology, args.source, args.target, args.dport, proto=args.proto,
                        ecn=args.ecn, sport=args.sport)
    path_report.render(report, args.format, out)
    return {True: EXIT_OK, False: EXIT_FINDINGS, None: EXIT_UNKNOWN}[report.passes]


def cmd_audit(args, out) -> int:
    from .config import load_config

    config = load_config(args.config, search=not args.no_config)
    together = [[f.strip() for f in g.split(",") if f.strip()] for g in args.together]
    if any(not g for g in together):
        raise RuleAnalyzerError("--together needs file names (F1,F2), not an empty list")
    if not args.paths and not together:
        raise RuleAnalyzerError("audit needs at least one file or directory")
    split = lambda v: [c.strip() for c in v.split(",") if c.strip()] if v else None  # noqa: E731
    from .report.findings_text import ProgressBar

    progress = ProgressBar(f"reading and analysing {', '.join(args.paths[:2]) or 'the files'}") \
        if sys.stderr.isatty() and not args.quiet else None
    try:
        from .audit import run_audit

        result = run_audit(args.paths, select=split(args.select), ignore=split(args.ignore),
                           config=config, dialect=args.dialect, together=together,
                           max_bytes=args.max_bytes, progress=progress,
                           include_generated=args.include_generated, hosts=not args.one_by_one,
                           jobs=args.jobs, dask_scheduler=args.dask_scheduler,
                           host_timeout=args.host_timeout, firewalld_version=args.firewalld_version,
                           table=args.table)
    finally:
        if progress is not None:
            progress.close()
    if args.format == "json":
        from .report.json_report import audit_data

        json.dump(audit_data(result), out, indent=2)
        out.write("\n")
    elif args.format == "sarif":
        from .report.sarif import sarif_data

        json.dump(sarif_data(result, snippets=args.sarif_snippets), out, indent=2)
        out.write("\n")
    elif args.format == "github":
        from .report import github

        github.render(result, out)
    else:
        from .report import findings_text, text

        limit = findings_text.DEFAULT_MAX_FINDINGS if args.max_findings is None else args.max_findings
        findings_text.render_findings(text.make_console(out), result, limit, quiet=args.quiet)
    if args.annotate and not (args.format == "github" and out is sys.stdout):
        from .report import github

        github.render(result, sys.stdout)
    return result.exit_code(args.fail_on or config.fail_on)


def cmd_rules(args, out) -> int:
    from .checks import registry
    from .report import findings_text, text

    if args.format == "json":
        json.dump([{"code": c.code, "name": c.name, "severity": c.severity, "opt_in": bool(c.opt_in),
                    "summary": c.summary} for c in registry().values()], out, indent=2)
        out.write("\n")
        return EXIT_OK
    findings_text.render_rules(text.make_console(out), registry().values())
    return EXIT_OK


def cmd_explain(args, out) -> int:
    import difflib

    from .checks import get, registry
    from .checks.docs import explain_markdown
    from .report import findings_text, text

    by_name = {c.name: c for c in registry().values()}
    try:
        cls = by_name.get(args.code.lower()) or get(args.code)
    except KeyError:
        close = difflib.get_close_matches(args.code.upper(), list(registry()), n=1) or \
            difflib.get_close_matches(args.code.lower(), list(by_name), n=1)
        raise RuleAnalyzerError(f"unknown check {args.code!r}",
                                hint=f"did you mean {close[0]}?" if close else "see `ruleanalyzer rules`") from None
    findings_text.render_explain(text.make_console(out), cls, explain_markdown(cls))
    return EXIT_OK


COMMANDS: dict[str, Callable] = {"query": cmd_query, "connect": cmd_connect, "path": cmd_path,
                                 "audit": cmd_audit, "rules": cmd_rules, "explain": cmd_explain}


# -- diff: change impact between two versions (docs/diff.md) -----------------


def _add_diff_parser(sub) -> None:
    d = sub.add_parser("diff", help="traffic whose verdict changed between two versions")
    d.add_argument("files", nargs="*", metavar="FILE",
                   help="OLD NEW (either may be - for standard input); with --git: the files to compare "
                        "(default: the changed ones)")
    d.add_argument("--git", metavar="REV", help="compare the files at REV with the working tree, or A..B")
    d.add_argument("--dialect", choices=DIALECTS, help="the files' dialect (sniffed when omitted)")
    d.add_argument("--target", help="cloud inputs: the security group, NACL, NSG or tag to compare "
                                    "(required when a file holds several)")
    d.add_argument("--hook", action="append", choices=("input", "forward", "output"),
                   help="hooks to compare (repeatable; default all three)")
    d.add_argument("--format", default="text", choices=("text", "json", "markdown", "sarif", "github"))
    d.add_argument("--fail-on", default="any", choices=("any", "opened", "never"),
                   help="exit 1 on any verdict change (default), only on newly allowed traffic, or never")
    d.add_argument("--no-findings", action="store_true", help="skip the audit of both versions")
    d.add_argument("--no-connections", action="store_true", help="skip the per-region handshake check")
    d.add_argument("--flows", metavar="FILE",
                   help="real flows (`conntrack -L` output, AWS VPC flow logs): which of them the change "
                        "would block or newly allow, with counts")
    d.add_argument("--policy", help="YAML file with a policy: section (default: .ruleanalyzer.yaml)")
    d.add_argument("--max-bytes", type=int, default=DEFAULT_MAX_BYTES, help="refuse larger files")
    d.add_argument("--table", choices=("filter", "nat", "mangle", "raw", "security"),
                   help="iptables -S output and script commands without -t: their table (default filter)")
    d.add_argument("--firewalld-version", metavar="X.Y.Z",
                   help="firewalld configuration directories: the version whose layout they compile to "
                        "(default: the config's firewalld-version, a snapshot's recorded version, else 1.3.3)")
    d.add_argument("-o", "--output", help="write the report here (atomically) instead of stdout")


def cmd_diff(args, out) -> int:
    from .diff_run import run_diff

    def note(text: str) -> None:
        if not args.quiet:
            print(f"note: {text}", file=sys.stderr)

    run = run_diff(args.files, git=args.git, dialect=args.dialect, target=args.target,
                   hooks=tuple(args.hook or ("input", "forward", "output")), findings=not args.no_findings,
                   connections=not args.no_connections, flows=args.flows, policy=args.policy,
                   max_bytes=args.max_bytes, table=args.table, firewalld_version=args.firewalld_version,
                   note=note)
    reports = run.reports
    if args.format == "json":
        from .report.diff_json import diff_data

        data = [diff_data(r) for r in reports]
        json.dump(data[0] if len(data) == 1 and not args.git else data, out, indent=2)
        out.write("\n")
    elif args.format == "sarif":
        from .report.diff_sarif import sarif_data

        json.dump(sarif_data(reports), out, indent=2)
        out.write("\n")
    elif args.format == "github":
        from .report.diff_markdown import render as render_markdown
        from .report.diff_sarif import github_lines
        from .report.github import write_limited

        def markdown() -> str:
            import io

            text = io.StringIO()
            render_markdown(reports, text)
            return text.getvalue()

        write_limited(github_lines(reports), out, markdown, "ruleanalyzer diff")
    elif args.format == "markdown":
        from .report import diff_markdown

        diff_markdown.render(reports, out)
    else:
        from .report import diff_text

        diff_text.render(reports, out)
    return run.exit_code(args.fail_on)


COMMANDS["diff"] = cmd_diff


# -- collect: a snapshot of this host (docs/collect.md) -------------------------


def _add_collect_parser(sub) -> None:
    co = sub.add_parser("collect", help="snapshot this host's rules, routes, addresses, ipsets and sysctls")
    co.add_argument("-o", "--output", dest="snapshot", metavar="PATH",
                    help="directory, or archive (.tar.gz, .tgz, .tar.xz, .tar) to write "
                         "(default: snapshot-HOSTNAME)")
    co.add_argument("--etc", default="/etc", help="where ufw/ and firewalld/ are read from (default /etc)")
    co.add_argument("--role", help="the host's group for fleet audits (default: its name without its number)")


def cmd_collect(args, out) -> int:
    import socket

    from .collect import collect, write_snapshot

    collected = collect(etc=args.etc)
    collected.role = args.role
    path = write_snapshot(collected, args.snapshot or f"snapshot-{socket.gethostname()}")
    print(f"wrote {path}: {len(collected.files)} files in {collected.seconds:.2f} s", file=sys.stderr)
    for note in collected.missing:
        print(f"note: {note}", file=sys.stderr)
    return EXIT_OK


COMMANDS["collect"] = cmd_collect


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parse_args(parser, argv)
    forget_stdin()
    from .report.settings import configure

    configure(color=args.color, quiet=args.quiet)
    try:
        with atomic_output(getattr(args, "output", None)) as out:
            return COMMANDS[args.command](args, out)
    except RuleAnalyzerError as exc:
        print(exc.render(), file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader of stdout went away (`| head`): stop quietly
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        except (OSError, ValueError):
            pass
        return 141
    except RecursionError:
        print("error: input nested too deeply to analyse", file=sys.stderr)
        return EXIT_BAD_INPUT
    except MemoryError:
        print("error: out of memory while analysing the input", file=sys.stderr)
        return EXIT_BAD_INPUT


#: Commands whose packet spaces grow big (CUDD's node table: 0.5-1 GiB at
#: 100k rules, read at random addresses).
_SPACE_COMMANDS = frozenset({"audit", "diff"})
#: glibc's malloc tunable (glibc >= 2.35) that asks the kernel for
#: transparent huge pages on the heap where THP is only given on request
#: ("madvise", Debian's and Ubuntu's default): with 4 KiB pages a big
#: audit's BDD operations miss the TLB at almost every node. 100k-rule
#: audits (bench/bench_audit_shapes.py, load 1.0): kube-iptables 53.6-60.6
#: -> 46.1 s CPU, project 49.3 -> 44.4 s; peak RSS the same; findings the
#: same (it changes where memory is, not what is computed).
MALLOC_TUNABLES = "glibc.malloc.hugetlb=1"


def huge_page_environment(argv: list[str], environ=None) -> dict | None:
    """The environment to run the command ``argv`` in with glibc's malloc
    asking for transparent huge pages (:data:`MALLOC_TUNABLES`), or None
    where that changes nothing or is not ours to decide: not an audit or
    diff, not glibc, THP not "madvise", or ``GLIBC_TUNABLES`` already set
    (the user's choice is kept). API callers auditing big rulesets can set
    the variable themselves before Python starts."""
    environ = os.environ if environ is None else environ
    command = next((a for a in argv if a in COMMANDS), None)  # global options come first
    if command not in _SPACE_COMMANDS or "GLIBC_TUNABLES" in environ or sys.platform != "linux":
        return None
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION").startswith("glibc "):
            return None
        with open("/sys/kernel/mm/transparent_hugepage/enabled", encoding="ascii") as f:
            if "[madvise]" not in f.read():
                return None
    except (OSError, ValueError, AttributeError):
        return None
    return {**environ, "GLIBC_TUNABLES": MALLOC_TUNABLES}


def run() -> None:
    """The console entry point: :func:`main`, then exit without freeing the
    heap object by object (a third of a 100k-rule query's time); exit
    handlers still run and output is flushed first. An audit or diff first
    starts again with :func:`huge_page_environment`'s environment, where
    there is one (nothing has been read or written yet)."""
    env = huge_page_environment(sys.argv[1:])
    if env is not None:
        try:
            os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)
        except OSError:
            pass  # run as we are
    code = main()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        sys.exit(code)  # let the interpreter report a closed pipe as usual
    import atexit

    atexit._run_exitfuncs()
    os._exit(code or 0)


if __name__ == "__main__":
    run()
