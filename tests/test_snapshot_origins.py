"""Where findings from host snapshots point: the snapshot's member file and
line (``web02/iptables-nft-save.txt:10``, ``db01.tar.gz/…``, the sysctl
that decides, ``sysctl.txt:N``), and a fleet summary that names its hosts
(per code, per group). Exposure witnesses are connections a host can
accept: to its own address, not to a subnet's broadcast address."""

from __future__ import annotations

import json

import pytest

from ruleanalyzer.audit import run_audit
from ruleanalyzer.cli import main

from .snapshot_factory import make_snapshot, web_host


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    root = tmp_path_factory.mktemp("origins")
    for i in range(1, 4):
        web_host(root / f"web0{i}", f"web0{i}",
                 extra="-A INPUT -p tcp --dport 5432 -j ACCEPT\n" if i == 2 else "")
    web_host(root / "db01.tar.gz", "db01", role="database",
             extra="-A INPUT -p tcp --dport 5432 -j ACCEPT\n-A INPUT -p tcp --dport 5432 -j ACCEPT\n")
    return root


def test_fleet_text_names_members_and_hosts(fleet, capsys):
    assert main(["audit", str(fleet), "--jobs", "1"]) == 1
    out = capsys.readouterr().out
    # Every finding is located in its snapshot's member, with the line.
    assert f"{fleet}/web02/iptables-nft-save.txt:10:1: RA401" in out
    assert f"{fleet}/db01.tar.gz/iptables-nft-save.txt:11:1: RA505" in out
    assert f"{fleet}/web02/manifest.txt:2:1: RA610" in out
    # Summary lines keep the host: two hosts have an iptables-nft-save.txt:10.
    assert "worst: web02/iptables-nft-save.txt:10: RA401" in out
    assert "worst: db01.tar.gz/iptables-nft-save.txt:10: RA401" in out
    # The fleet summary names the hosts per code and per group.
    rows = {line.split()[0]: line.split(None, 3)[3] for line in out.splitlines()
            if line.startswith("RA") and len(line.split()) >= 4}
    assert rows["RA401"].strip() == "db01, web02" and rows["RA610"].strip() == "web02"
    assert "  web: web01, web02, web03" in out and "  database: db01" in out
    # Witnesses of exposure are the host's own address, not its subnet's broadcast.
    assert "-> 192.0.2.10:5432 [SYN]" in out and "192.0.2.255" not in out


def test_fleet_json_names_hosts_per_code(fleet, tmp_path):
    out = tmp_path / "f.json"
    main(["audit", str(fleet), "--jobs", "1", "--format", "json", "-o", str(out)])
    per_code = json.loads(out.read_text())["fleet"]["findings_per_code"]
    assert per_code["RA401"] == {"hosts": 2, "findings": 2, "host_names": ["db01", "web02"]}
    assert per_code["RA610"]["host_names"] == ["web02"]


FORWARDING = """*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A FORWARD -i wan0 -s 10.10.0.0/24 -j DROP
-A FORWARD -p tcp --dport 80 -j ACCEPT
COMMIT
"""


def test_findings_name_the_sysctl_line_that_decides(tmp_path):
    interfaces = {"wan0": ["192.0.2.1/24"], "lan0": ["10.10.0.1/24"]}
    off = make_snapshot(tmp_path / "off", "off", iptables=FORWARDING, interfaces=interfaces,
                        sysctls={"net.ipv4.ip_forward": "0"})
    moot = [f for f in run_audit([off], select=["RA601"]).findings]
    assert len(moot) == 1
    related = moot[0].related[0].where
    text = (tmp_path / "off" / "sysctl.txt").read_text().splitlines()
    assert related.file.endswith("off/sysctl.txt") and text[related.line - 1] == "net.ipv4.ip_forward = 0"
    strict = make_snapshot(tmp_path / "strict", "strict", iptables=FORWARDING, interfaces=interfaces,
                           default=("192.0.2.254", "wan0"),
                           sysctls={"net.ipv4.ip_forward": "1", "net.ipv4.conf.all.rp_filter": "1"})
    dead = [f for f in run_audit([strict], select=["RA103"]).findings]
    assert len(dead) == 1 and dead[0].where.file.endswith("strict/iptables-nft-save.txt")
    assert dead[0].where.line == 5
    related = dead[0].related[0].where
    text = (tmp_path / "strict" / "sysctl.txt").read_text().splitlines()
    assert text[related.line - 1] == "net.ipv4.conf.all.rp_filter = 1"
