"""Fleet audits: ``audit`` over a directory of host snapshots.

Each host is audited on its own — in a separate worker process
(``jobs``, default one per core), or as one task on an existing Dask
cluster (``dask_scheduler``; the optional extra ``ruleanalyzer[dask]``) —
and then the hosts are compared:

- per host: its findings, the services (ports) every public address can
  open a connection to, on the input path (to the host) and the forward
  path (through it);
- drift (RA610): within a group of hosts (the ``role:`` line of a
  snapshot's manifest, else the host name without its number), a host
  whose answer for a service differs from the majority's;
- findings counted across hosts, per code.

A host whose analysis crashes, runs past ``host_timeout`` seconds or past
``worker_memory`` bytes becomes an RA611 finding; the other hosts go on.
Results do not depend on how the hosts were run (the tests compare local
processes, in-process runs and a Dask ``LocalCluster``).
"""

from __future__ import annotations

import math
import os
import re
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field, replace

from .checks.base import Finding, Where

#: Default seconds one host may take in a fleet audit.
HOST_TIMEOUT = 600.0
#: Default address-space limit of one worker process (RLIMIT_AS).
WORKER_MEMORY = 4 * 1024 ** 3
#: A worker is replaced after this many hosts, so what one process keeps
#: between hosts (packet spaces, caches) cannot grow without bound.
HOSTS_PER_WORKER = 100
#: Ports whose exposure the fleet summary compares: the audit's sensitive
#: ports (RA401) and the common public services.
PUBLIC_SERVICES = {21: "FTP", 25: "SMTP", 53: "DNS", 80: "HTTP", 110: "POP3", 143: "IMAP",
                   443: "HTTPS", 465: "SMTPS", 587: "submission", 993: "IMAPS", 8080: "HTTP-alt",
                   8443: "HTTPS-alt"}
#: The smallest group in which a majority is worth comparing against.
MIN_GROUP = 3


@dataclass
class HostReport:
    """What one host's audit gives the fleet summary (plain data: it
    crosses process and network boundaries)."""

    source: str
    name: str
    role: str
    findings: list[Finding] = field(default_factory=list)
    suppressed: int = 0
    rule_count: int = 0
    #: ``"input 22/tcp"`` → ``open`` (every public address can connect),
    #: ``closed`` (none can), ``partial`` or ``unknown``.
    services: dict[str, str] = field(default_factory=dict)
    unreadable: bool = False
    failed: str | None = None
    #: Where findings about the host as a whole point: its manifest's
    #: ``hostname:`` line (the snapshot itself when there is none).
    anchor: Where | None = None
    #: Config suppression entries (by index) that silenced a finding here.
    used_config: list[int] = field(default_factory=list)
    cpu_seconds: float = 0.0
    wall_seconds: float = 0.0
    peak_rss: int = 0


def host_role(name: str, manifest_role: str | None = None) -> str:
    """The group a host belongs to: its manifest's ``role:``, else its short
    name without a trailing number (``web-03.example`` → ``web``)."""
    if manifest_role:
        return manifest_role
    short = name.split(".", 1)[0]
    return re.sub(r"[-_]?\d+$", "", short) or short


# -- one host -----------------------------------------------------------------------


def audit_host(source, codes: list[str], options: dict, suppress: list | None = None,
               config_source: str | None = None, max_bytes: int | None = None,
               include_generated: bool = False) -> HostReport:
    """Audit one snapshot (a path, or a :class:`~ruleanalyzer.snapshot.Snapshot`
    already read) and summarise its exposed services. Never raises for bad
    input: an unreadable snapshot is an RA001 finding."""
    from . import checks
    from .audit import ruleset_findings, settle_findings
    from .checks.meta import UnreadableInput
    from .checks.suppress import from_config
    from .errors import RuleAnalyzerError
    from .loader import DEFAULT_MAX_BYTES, load
    from .snapshot import Snapshot
    from .space.packetset import cyclic_gc_paused

    cpu, wall = time.process_time(), time.perf_counter()
    name = source.source if isinstance(source, Snapshot) else str(source)
    try:
        ruleset = load(source, max_bytes=max_bytes or DEFAULT_MAX_BYTES)
    except RuleAnalyzerError as exc:
        report = HostReport(name, os.path.basename(name.rstrip("/")), "?", unreadable=True)
        if "RA001" in codes:
            report.findings = [UnreadableInput().from_error(exc, name)]
        return report
    host = ruleset.host
    manifest_role = ruleset.meta.get("role")
    hostname = (host.name if host and host.name else os.path.basename(name.rstrip("/")))
    report = HostReport(name, hostname, host_role(hostname, manifest_role), rule_count=ruleset.rule_count)
    if host is not None and host.manifest_file:
        lines = host.manifest_lines.get("hostname", [0])
        report.anchor = Where(host.manifest_file, lines[0], 1 if lines[0] else 0,
                              text=f"hostname: {host.name or ''}")
    configured = from_config(suppress, config_source) if suppress else []
    with cyclic_gc_paused():  # exposed_services asks the host's analyses more (BDD work)
        findings, inline, ctx = ruleset_findings(ruleset, codes, options, set(checks.registry()),
                                                 hidden=None if include_generated else configured)
        services = exposed_services(ctx) if ctx is not None else {}
        if ctx is not None:
            ctx.release()  # freed now, not walked by the collector (Context.release)
    kept, suppressed, _generated, _hidden = settle_findings(findings, configured + inline, codes,
                                                            include_generated)
    # The entries used here are not unused for the whole audit (RA901).
    report.used_config = [i for i, entry in enumerate(configured) if entry.used]
    if "RA901" in codes:
        kept = [f for f in kept if not (f.code == "RA901" and f.where and f.where.path
                                        and f.where.path.startswith("suppress["))]
    # Model objects stay here: the findings cross a process boundary.
    report.findings = [_plain(f) for f in kept]
    report.suppressed = len(suppressed)
    report.services = services
    report.cpu_seconds = time.process_time() - cpu
    report.wall_seconds = time.perf_counter() - wall
    return report


def exposed_services(ctx) -> dict[str, str]:
    """Per path and service port: can every public address open a TCP
    connection (a new SYN surely accepted, from any public source, arriving
    on an interface that faces the internet — the default route's, with a
    snapshot that has one, else any but ``lo``)?"""
    from .checks import _sets as S
    from .checks.exposure import SENSITIVE_PORTS, public_sources
    from .model import SYN

    ports = {**PUBLIC_SERVICES, **SENSITIVE_PORTS}
    host = ctx.ruleset.host
    uplinks = host.internet_interfaces() if host is not None else []
    out: dict[str, str] = {}
    for hook, family, reach in ctx.analyses():
        if hook not in ("input", "forward"):
            continue
        sp = reach.space
        syn = S.tcp_flags(sp, SYN) & S.state_is(sp, "new") & sp.family(family)
        public = public_sources(sp, family)
        if uplinks:
            facing = sp.false
            for dev in uplinks:
                facing |= S.iface(sp, "iif", dev)
            if facing == sp.false:  # not named in the space: the "other" class
                facing = sp.eq("iif", sp.spec("iif").names.index("*"))
        else:
            facing = ~S.iface(sp, "iif", "lo")
        lower = reach.accepted.lower.node & syn & facing
        upper = reach.accepted.upper.node & syn & facing & public
        src_vars = set(S.field_vars(sp, "src") + S.field_vars(sp, "family"))
        others = [v for v in sp.layout.variables() if v not in src_vars]
        for port, service in sorted(ports.items()):
            at = sp.eq("dport", port)
            key = f"{hook} {port}/tcp ({service})"
            if upper & at == sp.false:
                status = "closed"
            else:
                sources = sp.bdd.exist(others, lower & at)
                status = "open" if public & ~sources == sp.false else "partial"
            previous = out.get(key)
            if previous is None or _RANK[status] > _RANK[previous]:
                out[key] = status
    return {k: v for k, v in out.items() if v != "closed" or k.startswith("input")}


_RANK = {"closed": 0, "partial": 1, "open": 2}


def _plain(finding: Finding) -> Finding:
    """``finding`` without its model objects (rules, chains), which need
    not cross a process boundary."""
    return replace(finding, rule=None, chain=None)


# -- running many ---------------------------------------------------------------------------


def _failed(source, why: str, codes: list[str]) -> HostReport:
    name = str(source)
    report = HostReport(name, os.path.basename(name.rstrip("/")), "?", failed=why)
    if "RA611" in codes:
        report.findings = [Finding("RA611", "host-analysis-failed", "error",
                                   f"the analysis of this host {why}; its findings are missing", Where(name))]
    return report


def _worker_main(conn, memory: int | None) -> None:
    """A worker process: audit the hosts it is sent, one at a time."""
    import resource

    if memory:
        try:
            resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        except (ValueError, OSError):
            pass
    while True:
        try:
            task = conn.recv()
        except EOFError:
            return
        if task is None:
            return
        index, source, args = task
        try:
            report = audit_host(source, *args)
        except MemoryError:
            report = _failed(source, f"ran out of memory (worker limit {memory} bytes)", args[0])
        except BaseException as exc:  # noqa: BLE001 - one host's crash is its finding
            tb = traceback.extract_tb(exc.__traceback__)[-1]
            report = _failed(source, f"crashed: {type(exc).__name__}: {exc} "
                                     f"(at {os.path.basename(tb.filename)}:{tb.lineno})", args[0])
        report.peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        _forget_host(source)
        conn.send((index, report))


def _forget_host(source) -> None:
    """Drop what a worker's process-wide caches keep of the host just done
    (its chains' duplicate indexes, the texts of its files): nothing of one
    host is of use to the next, and kept they grow a worker by ~0.4 MiB a
    host until the caches' own limits."""
    from . import loader
    from .checks import structure

    structure._CHAIN_CACHE.clear()
    loader.forget_texts()


def _died(proc) -> str:
    proc.join(2)
    code = proc.exitcode
    how = f", exit {code}" if code and code > 0 else f", signal {-code}" if code else ""
    return f"crashed (its worker process died{how})"


def run_local(sources: list, args: tuple, jobs: int, host_timeout: float, memory: int | None,
              progress=None) -> list[HostReport]:
    """Audit ``sources`` in ``jobs`` worker processes; a worker that dies or
    overruns its host's time is replaced and that host reported failed."""
    import multiprocessing as mp
    from multiprocessing.connection import wait

    # fork: a worker starts with the analyzer already imported (no threads
    # run in this process while workers start); spawn where there is no fork.
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    results: list[HostReport | None] = [None] * len(sources)
    pending = list(range(len(sources)))
    pending.reverse()
    workers: list[dict] = []

    def start():
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_worker_main, args=(child, memory), daemon=True)
        proc.start()
        child.close()
        return {"proc": proc, "conn": parent, "task": None, "since": 0.0, "served": 0}

    def retire(w) -> None:
        try:
            w["conn"].send(None)
        except OSError:
            pass
        w["proc"].join(60)  # a worker frees its packet spaces on the way out
        if w["proc"].is_alive():
            w["proc"].kill()
            w["proc"].join()

    done = 0
    try:
        for _ in range(max(1, min(jobs, len(sources)))):
            workers.append(start())
        while done < len(sources):
            for i, w in enumerate(workers):
                if w["task"] is None and pending and w["served"] >= HOSTS_PER_WORKER:
                    retire(w)
                    workers[i] = w = start()
                if w["task"] is None and pending:
                    index = pending.pop()
                    w["task"], w["since"] = index, time.monotonic()
                    w["conn"].send((index, sources[index], args))
            busy = [w for w in workers if w["task"] is not None]
            soonest = min((w["since"] + host_timeout for w in busy), default=time.monotonic() + 1.0)
            ready = wait([w["conn"] for w in busy] + [w["proc"].sentinel for w in busy],
                         timeout=min(1.0, max(0.0, soonest - time.monotonic())))
            now = time.monotonic()
            for i, w in enumerate(workers):
                if w["task"] is None:
                    continue
                index = w["task"]
                failure = None
                if w["conn"] in ready:
                    try:
                        got, report = w["conn"].recv()
                        results[got] = report
                        w["task"] = None
                        w["served"] += 1
                        done += 1
                        if progress:
                            progress(done, len(sources), str(sources[got]))
                        continue
                    except (EOFError, OSError):
                        failure = _died(w["proc"])
                elif w["proc"].sentinel in ready or not w["proc"].is_alive():
                    failure = _died(w["proc"])
                elif now - w["since"] > host_timeout:
                    failure = f"took longer than {host_timeout:g} s and was stopped"
                if failure is not None:
                    results[index] = _failed(sources[index], failure, args[0])
                    done += 1
                    if progress:
                        progress(done, len(sources), str(sources[index]))
                    w["proc"].kill()
                    w["proc"].join()  # reaped: its CPU time counts, no zombie is left
                    workers[i] = start()
    finally:
        for w in workers:
            retire(w)
    return [r for r in results if r is not None]


def run_dask(sources: list, args: tuple, scheduler, host_timeout: float, progress=None) -> list[HostReport]:
    """One task per host on a Dask cluster (``scheduler``: an address or a
    ``distributed.Client``). Snapshots are read here and sent whole, so the
    workers need no shared filesystem."""
    try:
        from distributed import Client, wait
    except ImportError:
        from .errors import RuleAnalyzerError

        raise RuleAnalyzerError("--dask-scheduler needs dask.distributed",
                                hint="pip install 'ruleanalyzer[dask]'") from None
    from .errors import RuleAnalyzerError
    from .snapshot import open_snapshot

    own = not isinstance(scheduler, Client)
    try:
        client = Client(scheduler, timeout=30) if own else scheduler
    except OSError as exc:
        raise RuleAnalyzerError(f"cannot reach the Dask scheduler {scheduler}: {exc}") from None
    try:
        payloads = []
        for source in sources:
            try:
                payloads.append(open_snapshot(source, args[4] or 256 * 1024 * 1024))
            except RuleAnalyzerError:
                payloads.append(source)  # the task reports it as unreadable, as a local run does
        futures = [client.submit(audit_host, payload, *args, pure=False) for payload in payloads]
        workers = max(1, sum(client.nthreads().values()))
        budget = host_timeout * math.ceil(len(futures) / workers) + 30
        wait(futures, timeout=budget, return_when="ALL_COMPLETED") if futures else None
        out = []
        for n, (source, future) in enumerate(zip(sources, futures), 1):
            if future.status == "finished":
                out.append(future.result())
            elif future.status == "error":
                exc = future.exception()
                out.append(_failed(source, f"crashed: {type(exc).__name__}: {exc}", args[0]))
            else:
                future.cancel()
                out.append(_failed(source, f"did not finish within {budget:g} s on the cluster", args[0]))
            if progress:
                progress(n, len(sources), str(source))
        return out
    finally:
        if own:
            client.close()


# -- the fleet summary -------------------------------------------------------------------


def summarize(reports: list[HostReport], codes: list[str]) -> tuple[dict, list[Finding]]:
    """The fleet summary and the drift findings (RA610)."""
    hosts = sorted(reports, key=lambda r: (r.role, r.name, r.source))
    exposure: dict[str, list[str]] = {}
    for r in hosts:
        for service, status in r.services.items():
            if status == "open":
                exposure.setdefault(service, []).append(r.name)
    drift: list[Finding] = []
    groups: dict[str, list[HostReport]] = {}
    for r in hosts:
        if not r.unreadable and r.failed is None:
            groups.setdefault(r.role, []).append(r)
    drifted: dict[str, list[str]] = {}
    for role, members in sorted(groups.items()):
        if len(members) < MIN_GROUP:
            continue
        services = sorted({s for m in members for s in m.services})
        notes: dict[str, list[str]] = {}
        for service in services:
            votes = Counter(m.services.get(service, "closed") for m in members)
            status, count = votes.most_common(1)[0]
            if count * 2 <= len(members) or count == len(members):
                continue  # no clear majority, or all alike
            for m in members:
                mine = m.services.get(service, "closed")
                if mine != status:
                    alike = [o.name for o in members if o.services.get(service, "closed") == status]
                    notes.setdefault(m.source, []).append(
                        f"{service} is {mine} here but {status} on {count} of {len(members)} "
                        f"'{role}' hosts ({', '.join(alike[:5])}{', …' if len(alike) > 5 else ''})")
        for m in members:
            if m.source in notes:
                drifted.setdefault(role, []).append(m.name)
                if "RA610" in codes:
                    drift.append(Finding("RA610", "host-drift", "warning",
                                         f"host {m.name} differs from most of its group '{role}': "
                                         + "; ".join(notes[m.source]), m.anchor or Where(m.source)))
    per_code: dict[str, dict] = {}
    counted = [(r.name, Counter(f.code for f in r.findings)) for r in hosts]
    if "RA610" in codes:
        counted += [(name, Counter({"RA610": 1})) for names in drifted.values() for name in names]
    for name, here in counted:
        for code, n in here.items():
            entry = per_code.setdefault(code, {"hosts": 0, "findings": 0, "host_names": []})
            entry["hosts"] += 1
            entry["findings"] += n
            entry["host_names"] = sorted({*entry["host_names"], name})
    summary = {
        "hosts": [{"name": r.name, "source": r.source, "role": r.role, "rules": r.rule_count,
                   "findings": len(r.findings), "open_services": sorted(s for s, v in r.services.items()
                                                                       if v == "open"),
                   "status": "unreadable" if r.unreadable else "failed" if r.failed else "ok",
                   "cpu_seconds": round(r.cpu_seconds, 3), "wall_seconds": round(r.wall_seconds, 3),
                   "peak_rss": r.peak_rss}
                  for r in hosts],
        "exposure": {s: sorted(names) for s, names in sorted(exposure.items())},
        "groups": {role: sorted(m.name for m in members) for role, members in sorted(groups.items())},
        "drift": {role: sorted(names) for role, names in sorted(drifted.items())},
        "findings_per_code": dict(sorted(per_code.items())),
    }
    return summary, drift


def audit_fleet(sources: list, *, codes: list[str], options: dict, suppress: list | None = None,
                config_source: str | None = None, max_bytes: int | None = None, jobs: int | None = None,
                dask_scheduler=None, host_timeout: float = HOST_TIMEOUT,
                worker_memory: int | None = WORKER_MEMORY, in_process: bool = False, progress=None,
                include_generated: bool = False):
    """Audit every snapshot in ``sources`` and compare the hosts; an
    :class:`~ruleanalyzer.audit.AuditResult` whose ``fleet`` is the summary."""
    from .audit import AuditResult

    start = time.perf_counter()
    args = (codes, options, suppress, config_source, max_bytes, include_generated)
    if dask_scheduler is not None:
        reports = run_dask(sources, args, dask_scheduler, host_timeout, progress)
    elif in_process:
        reports = [audit_host(s, *args) for s in sources]
    else:
        reports = run_local(sources, args, jobs or default_jobs(), host_timeout, worker_memory, progress)
    summary, drift = summarize(reports, codes)
    result = AuditResult(codes=codes)
    result.inputs = [r.source for r in reports]
    result.bad_inputs = [r.source for r in reports if r.unreadable]
    result.rule_count = sum(r.rule_count for r in reports)
    result.findings = sorted([f for r in reports for f in r.findings] + drift, key=Finding.sort_key)
    result.fleet = summary
    result.used_config = sorted({i for r in reports for i in r.used_config})
    result.seconds = time.perf_counter() - start
    return result


def default_jobs() -> int:
    """One worker per core this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return os.cpu_count() or 1

