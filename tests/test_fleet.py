"""Fleet audits over a directory of host snapshots: per-host findings, the
fleet summary (exposed services, drift within a group, findings per code),
worker isolation (a crash or a time-out is that host's RA611), and the same
results from local processes, in-process runs and a Dask LocalCluster."""

from __future__ import annotations

import json
import os

import pytest

from ruleanalyzer.checks import select
from ruleanalyzer.cli import main
from ruleanalyzer.fleet import audit_fleet, host_role

from .snapshot_factory import web_host

CODES = select()


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    root = tmp_path_factory.mktemp("fleet")
    for i in range(1, 5):
        # web03 has drifted: PostgreSQL open to everyone.
        extra = "-A INPUT -p tcp --dport 5432 -j ACCEPT\n" if i == 3 else ""
        web_host(root / f"web0{i}", f"web0{i}", extra=extra)
    web_host(root / "db01.tar.gz", "db01", role="database",
             extra="-A INPUT -s 10.0.0.0/8 -p tcp --dport 5432 -j ACCEPT\n")
    (root / "notes.md").write_text("not a snapshot, skipped like any documentation\n")
    return root


def _snapshots(root):
    return sorted(str(root / n) for n in os.listdir(root) if not n.endswith(".md"))


def _comparable(result):
    findings = [(f.code, f.where.file if f.where else None, f.where.line if f.where else 0, f.message)
                for f in result.findings]
    hosts = [{k: v for k, v in h.items() if k not in ("cpu_seconds", "wall_seconds", "peak_rss")}
             for h in result.fleet["hosts"]]
    return findings, {**result.fleet, "hosts": hosts}


def test_groups_are_roles_or_name_stems():
    assert host_role("web-03.example.org") == "web"
    assert host_role("db01") == "db"
    assert host_role("gateway") == "gateway"
    assert host_role("web03", "frontend") == "frontend"


def test_fleet_summary_drift_and_counts(fleet):
    result = audit_fleet(_snapshots(fleet), codes=CODES, options={}, in_process=True)
    summary = result.fleet
    assert summary["groups"] == {"database": ["db01"], "web": ["web01", "web02", "web03", "web04"]}
    assert summary["exposure"]["input 5432/tcp (PostgreSQL)"] == ["web03"]
    assert summary["exposure"]["input 443/tcp (HTTPS)"] == ["db01", "web01", "web02", "web03", "web04"]
    assert summary["drift"] == {"web": ["web03"]}
    drift = [f for f in result.findings if f.code == "RA610"]
    assert len(drift) == 1 and drift[0].where.file.endswith("web03/manifest.txt") and drift[0].where.line == 2
    assert "5432/tcp (PostgreSQL) is open here but closed on 3 of 4 'web' hosts" in drift[0].message
    assert summary["findings_per_code"]["RA401"] == {"hosts": 1, "findings": 1, "host_names": ["web03"]}
    assert summary["findings_per_code"]["RA610"] == {"hosts": 1, "findings": 1, "host_names": ["web03"]}
    # db01 admits 5432 only from 10/8: not open to the internet, and alone in its group.
    db = next(h for h in summary["hosts"] if h["name"] == "db01")
    assert "input 5432/tcp (PostgreSQL)" not in db["open_services"]


def test_local_workers_give_the_in_process_answer(fleet, monkeypatch):
    from ruleanalyzer import fleet as fleet_module

    monkeypatch.setattr(fleet_module, "HOSTS_PER_WORKER", 2)  # workers are replaced on the way
    local = audit_fleet(_snapshots(fleet), codes=CODES, options={}, jobs=2)
    alone = audit_fleet(_snapshots(fleet), codes=CODES, options={}, in_process=True)
    assert _comparable(local) == _comparable(alone)
    assert all(h["peak_rss"] > 0 for h in local.fleet["hosts"])


class _KillsItsWorker:
    """A snapshot path whose unpickling ends the process that receives it:
    stands in for a crash (a segfault in native code) during one host."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os._exit, (7,))

    def __str__(self):
        return self.path


def test_a_crash_or_a_time_out_is_that_hosts_finding(fleet):
    sources = _snapshots(fleet)
    sources[1] = _KillsItsWorker(sources[1])
    result = audit_fleet(sources, codes=CODES, options={}, jobs=2)
    failed = [f for f in result.findings if f.code == "RA611"]
    assert [f.where.file for f in failed] == [str(sources[1])]  # no manifest was read: the snapshot
    assert "crashed (its worker process died, exit 7)" in failed[0].message
    assert {h["name"] for h in result.fleet["hosts"] if h["status"] == "ok"} == {
        "db01", "web02", "web03", "web04"}
    slow = audit_fleet(_snapshots(fleet)[:2], codes=CODES, options={}, jobs=1, host_timeout=0.001)
    assert [f.code for f in slow.findings] == ["RA611", "RA611"]
    assert "took longer than 0.001 s" in slow.findings[0].message


def test_dask_local_cluster_gives_the_same_answer(fleet):
    distributed = pytest.importorskip(
        "distributed", reason="dask.distributed is not installed (pip install 'ruleanalyzer[dask]'); "
                              "scripts/setup.sh installs it")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        on_cluster = audit_fleet(_snapshots(fleet), codes=CODES, options={}, dask_scheduler=client)
    alone = audit_fleet(_snapshots(fleet), codes=CODES, options={}, in_process=True)
    assert _comparable(on_cluster) == _comparable(alone)


def test_cli_audit_of_a_directory_of_snapshots(fleet, tmp_path, capsys):
    out = tmp_path / "fleet.json"
    assert main(["audit", str(fleet), "--jobs", "2", "--format", "json", "-o", str(out)]) == 1
    data = json.loads(out.read_text())
    assert data["fleet"]["drift"] == {"web": ["web03"]}
    assert data["summary"]["inputs"] == 5
    from ruleanalyzer.report import findings_text, text

    import io

    buffer = io.StringIO()
    findings_text.render_findings(text.make_console(buffer),
                                  audit_fleet(_snapshots(fleet), codes=CODES, options={}, in_process=True))
    shown = buffer.getvalue()
    assert "Open to the whole internet" in shown and "Drift in group 'web' (4 hosts): web03" in shown


def test_a_worker_keeps_nothing_of_a_host_it_is_done_with(fleet):
    """Process-wide caches (chain indexes, file texts) would keep every
    host's rules alive in a worker until their own limits (~0.4 MiB a
    host); the worker drops them after each host."""
    import gc

    from ruleanalyzer.fleet import _forget_host, audit_host
    from ruleanalyzer.model import Rule

    source = _snapshots(fleet)[2]
    audit_host(source, CODES, {})
    _forget_host(source)
    gc.collect()
    kept = [o for o in gc.get_objects() if isinstance(o, Rule) and o.location is not None
            and str(o.location.file).startswith(source)]
    assert kept == []
