"""``collect`` where tools are missing or root is not: it takes what it can
read, says what it could not, and the snapshot still loads (RA602 names the
gaps). Collecting on a real namespace, read-only, is proven in
``tests/kernel/test_kernel_snapshot.py``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from ruleanalyzer import load
from ruleanalyzer.audit import run_audit
from ruleanalyzer.cli import main
from ruleanalyzer.collect import collect, write_snapshot
from ruleanalyzer.snapshot import FILES


def test_missing_tools_are_skipped_with_a_note(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    proc = tmp_path / "proc-sys"
    (proc / "net/ipv4/conf/eth0").mkdir(parents=True)
    (proc / "net/ipv4/ip_forward").write_text("1\n")
    (proc / "net/ipv4/conf/eth0/rp_filter").write_text("2\n")
    etc = tmp_path / "etc"
    (etc / "ufw").mkdir(parents=True)
    (etc / "ufw" / "ufw.conf").write_text("ENABLED=yes\n")
    got = collect(etc=etc, proc_sys=proc)
    assert set(FILES) & set(got.files) == set()
    notes = "\n".join(got.missing)
    for name, argv in FILES.items():
        assert f"{name}: " in notes
    assert "ip is not installed" in notes
    assert "net.ipv4.tcp_ecn absent" in notes
    assert got.files["etc/ufw/ufw.conf"] == b"ENABLED=yes\n"
    assert "etc/firewalld: " in notes
    path = write_snapshot(got, tmp_path / "out" / "h.tar.gz")
    rs = load(path)
    assert rs.rule_count == 0 and rs.host.sysctls == {"net.ipv4.ip_forward": "1",
                                                      "net.ipv4.conf.eth0.rp_filter": "2"}
    assert rs.host.rp_filter("eth0") == 2 and rs.host.forwarding(4) is True
    gaps = run_audit([path], select=["RA602"]).findings
    # One finding per thing that could not be read, at its manifest line.
    assert len(gaps) == len(FILES)  # every tool; absent sysctls and configuration are no gap
    assert all(f.where.file == f"{path}/manifest.txt" and f.where.line > 1 for f in gaps)
    assert any("ip-addr.json: ip is not installed" in f.message for f in gaps)
    with pytest.raises(Exception, match="already exists"):
        write_snapshot(got, path)


def test_cli_collect_refuses_to_overwrite(tmp_path, capsys):
    existing = tmp_path / "snap"
    existing.mkdir()
    assert main(["collect", "-o", str(existing)]) == 2
    assert "already exists" in capsys.readouterr().err


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                    reason="needs root to drop to another user (setpriv) for the non-root run")
def test_without_root_it_takes_what_it_can(tmp_path):
    """As an unprivileged user the rule dumps fail (no CAP_NET_ADMIN); the
    routes, addresses and sysctls are still read, and the manifest says why
    the rest is missing."""
    import tempfile

    shared = tempfile.mkdtemp(prefix="ra-collect-")  # pytest's own tmp_path is root's alone
    os.chmod(shared, 0o777)
    out = os.path.join(shared, "nobody")
    exe = os.path.join(os.path.dirname(sys.executable), "ruleanalyzer")
    done = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", exe, "collect",
                           "-o", out, "--etc", os.path.join(shared, "none")],
                          capture_output=True, text=True, timeout=120)
    try:
        assert done.returncode == 0, done.stderr
        manifest = open(os.path.join(out, "manifest.txt")).read()
        host = load(out).host
    finally:
        shutil.rmtree(shared, ignore_errors=True)
    assert "uid: 65534" in manifest
    assert "file: ip-route4.json <- ip -j -4 route show table all" in manifest
    denied = [line for line in manifest.splitlines() if line.startswith("missing: ") and "failed" in line]
    assert any(line.startswith(("missing: iptables-nft-save.txt", "missing: nft-ruleset")) for line in denied), manifest
    assert "routes4" in host.known and "sysctls" in host.known
