"""A host snapshot's /etc/firewalld beside its live ruleset: compiled with
the firewalld version the snapshot recorded, so the checks that need the
configuration and the host's interfaces (RA705, RA706) run on snapshots."""

from __future__ import annotations

import json

from ruleanalyzer import load
from ruleanalyzer.audit import run_audit

ADDRESSES = [{"ifname": "lo", "addr_info": [{"family": "inet", "local": "127.0.0.1", "prefixlen": 8}]},
             {"ifname": "ens3", "addr_info": [{"family": "inet", "local": "192.0.2.1", "prefixlen": 24}]}]


def _snapshot(tmp_path, version="2.1.1", internal='<zone>\n  <interface name="eth1"/>\n</zone>\n', running=True):
    snap = tmp_path / "host1"
    fw = snap / "etc" / "firewalld"
    (fw / "zones").mkdir(parents=True)
    (snap / "manifest.txt").write_text("format: ruleanalyzer-snapshot 1\nhostname: host1\n")
    (snap / "versions.txt").write_text(f"nft: nftables v1.0.9\nfirewalld: {version}\n")
    (snap / "ip-addr.json").write_text(json.dumps(ADDRESSES))
    (fw / "firewalld.conf").write_text("DefaultZone=public\n")
    (fw / "zones" / "internal.xml").write_text(internal)
    (fw / "zones" / "work.xml").write_text('<zone>\n  <service name="ssh"/>\n</zone>\n')
    if running:  # the live ruleset: what firewalld built (here: our compile of a plain configuration)
        plain = load(_plain(tmp_path), firewalld_version=version).meta["firewalld"]["nft"]
        (snap / "nft-ruleset.txt").write_text(plain)
    return snap


def _plain(tmp_path):
    root = tmp_path / "plain"
    (root / "zones").mkdir(parents=True)
    (root / "firewalld.conf").write_text("DefaultZone=public\n")
    return root


def test_snapshot_config_uses_the_recorded_version_and_feeds_the_checks(tmp_path):
    snap = _snapshot(tmp_path)
    rs = load(snap)
    assert rs.meta["firewalld"]["version"] == "2.1.1" and rs.meta["firewalld"]["layout"] == "2.x"
    findings = {f.code: f for f in run_audit([str(snap)], select=["RA705", "RA706"]).findings}
    assert findings["RA706"].where.file == f"{snap}/etc/firewalld/zones/internal.xml"
    assert "ens3" in findings["RA706"].message
    assert findings["RA705"].where.file == f"{snap}/etc/firewalld/zones/work.xml"


def test_a_snapshot_config_firewalld_refuses_is_said_not_raised(tmp_path):
    snap = _snapshot(tmp_path, version="1.3.3", internal='<zone priority="-5">\n  <interface name="eth1"/>\n</zone>\n')
    rs = load(snap)
    assert "firewalld" not in rs.meta
    note = next(d for d in rs.diagnostics if "does not compile" in d.message)
    assert "zone priorities need firewalld 2.0" in note.message and note.location.file.endswith("internal.xml")


def test_a_firewalld_that_is_not_running_is_left_alone(tmp_path):
    """Installed but not running (no table inet firewalld in the live ruleset): its files decide nothing."""
    rs = load(_snapshot(tmp_path, running=False))
    assert "firewalld" not in rs.meta
    assert run_audit([str(tmp_path / "host1")], select=["RA705", "RA706"]).findings == []
