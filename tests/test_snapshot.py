"""Reading host snapshots: directories and archives, safely; what the
snapshot's files mean (ip -j output, ipset save, sysctls); refusals located
and exit 2 from the command line."""

from __future__ import annotations

import io
import ipaddress
import json
import os
import tarfile

import pytest

from ruleanalyzer import load
from ruleanalyzer.cli import main
from ruleanalyzer.errors import RuleAnalyzerError
from ruleanalyzer import snapshot as snapshot_module
from ruleanalyzer.snapshot import load_snapshot

from .snapshot_factory import WEB_RULES, make_snapshot, web_host

ip = ipaddress.ip_address


def _tar(path, members: list[tuple[tarfile.TarInfo, bytes]], mode="w:gz"):
    with tarfile.open(path, mode) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return path


def _file(name: str, data: bytes = b"") -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


MANIFEST = b"format: ruleanalyzer-snapshot 1\nhostname: h1\n"


def test_directory_and_archive_give_the_same_ruleset(tmp_path):
    a = web_host(tmp_path / "web01", "web01")
    b = web_host(tmp_path / "web01.tar.gz", "web01")
    ra, rb = load(a), load(b)
    assert ra.rule_count == rb.rule_count == 5
    assert ra.host.name == rb.host.name == "web01"
    assert ra.host.internet_interfaces() == ["eth0"]
    # Members are named inside their snapshot in locations.
    assert {r.location.file for r in rb.rules()} == {f"{b}/iptables-nft-save.txt"}


def test_archive_of_a_directory_with_its_top_folder(tmp_path):
    source = web_host(tmp_path / "web02", "web02")
    archive = tmp_path / "web02.tgz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(source, arcname="web02")
    assert load(archive).host.name == "web02"


@pytest.mark.parametrize("member,why", [
    (_file("/etc/passwd", b"x"), "absolute path"),
    (_file("../escape.txt", b"x"), "climbs out"),
    (_file("a/../../escape.txt", b"x"), "climbs out"),
])
def test_archive_members_with_bad_paths_are_refused(tmp_path, member, why):
    path = _tar(tmp_path / "bad.tar.gz", [_file("manifest.txt", MANIFEST), member])
    with pytest.raises(RuleAnalyzerError, match=why) as err:
        load(path)
    assert err.value.location.file == str(path)


@pytest.mark.parametrize("kind,why", [(tarfile.SYMTYPE, "is a link"), (tarfile.LNKTYPE, "is a link"),
                                      (tarfile.CHRTYPE, "device"), (tarfile.BLKTYPE, "device"),
                                      (tarfile.FIFOTYPE, "device, FIFO")])
def test_archive_links_and_devices_are_refused(tmp_path, kind, why):
    info = tarfile.TarInfo("ip-addr.json")
    info.type = kind
    info.linkname = "/etc/shadow"
    path = _tar(tmp_path / "bad.tar", [_file("manifest.txt", MANIFEST), (info, b"")], mode="w")
    with pytest.raises(RuleAnalyzerError, match=why):
        load(path)


def test_archive_limits(tmp_path, monkeypatch):
    members = [_file("manifest.txt", MANIFEST)] + [_file(f"etc/ufw/f{i}", b"x" * 10) for i in range(20)]
    path = _tar(tmp_path / "many.tar.gz", members)
    monkeypatch.setattr(snapshot_module, "MAX_MEMBERS", 10)
    with pytest.raises(RuleAnalyzerError, match="more than 10 members"):
        load(path)
    monkeypatch.setattr(snapshot_module, "MAX_MEMBERS", 10_000)
    monkeypatch.setattr(snapshot_module, "MAX_TOTAL_BYTES", 100)
    with pytest.raises(RuleAnalyzerError, match="unpacks to more than 100 bytes"):
        load(path)
    # A member over --max-bytes is refused before it is read.
    monkeypatch.setattr(snapshot_module, "MAX_TOTAL_BYTES", 1 << 30)
    with pytest.raises(RuleAnalyzerError, match="over the limit of 5 bytes"):
        load_snapshot(path, max_bytes=5)


def test_compression_bomb_stops_at_the_total_limit(tmp_path, monkeypatch):
    """A member that inflates a thousandfold is refused by its declared
    size before it is inflated."""
    path = _tar(tmp_path / "bomb.tar.gz", [_file("manifest.txt", MANIFEST),
                                           _file("ipset-save.txt", b"\0" * 20_000_000)])
    assert os.path.getsize(path) < 100_000
    monkeypatch.setattr(snapshot_module, "MAX_TOTAL_BYTES", 1_000_000)
    with pytest.raises(RuleAnalyzerError, match="unpacks to more than"):
        load(path)


def test_corrupt_archive_is_a_located_error_with_exit_2(tmp_path, capsys):
    good = web_host(tmp_path / "h.tar.gz", "h")
    data = open(good, "rb").read()
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(data[: len(data) // 2])
    garbage = tmp_path / "garbage.tgz"
    garbage.write_bytes(b"\x1f\x8b\x08\x00" + os.urandom(200))
    for path in (cut, garbage):
        assert main(["audit", str(path), "--format", "json"]) == 2  # its only input unreadable: RA001
        assert json.loads(capsys.readouterr().out)["findings"][0]["code"] == "RA001"
        code = main(["query", str(path), "--src", "192.0.2.1", "--dst", "192.0.2.10", "--dport", "22"])
        err = capsys.readouterr().err
        assert code == 2
        assert err.startswith(f"{path}: error: corrupt or unreadable archive"), err
        assert "Traceback" not in err


def _hardlink(name, target):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = tarfile.LNKTYPE, target
    return info, b""


def _device(name):
    info = tarfile.TarInfo(name)
    info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, 1, 3
    return info, b""


@pytest.mark.parametrize("members,why", [
    ([_file("/etc/cron.d/x", b"x")], "has an absolute path"),
    ([_file("C:\\Windows\\x", b"x")], "has an absolute path"),
    ([_file("../../x", b"x")], "climbs out with '..'"),
    ([_hardlink("sysctl.txt", "/etc/shadow")], "is a link"),
    ([_device("ip-addr.json")], "device, FIFO"),
    ([_file("ip-addr.json", b"[]"), _file("./ip-addr.json", b"[]")], "appears twice"),
])
def test_every_refusal_is_exit_2_located_and_writes_nothing(tmp_path, capsys, members, why):
    path = _tar(tmp_path / "bad.tar.gz", [_file("manifest.txt", MANIFEST), *members])
    before = sorted(os.listdir(tmp_path))
    out = tmp_path.parent / f"{tmp_path.name}-report.json"
    # audit: the only input unreadable is an RA001 finding located at the archive, exit 2.
    assert main(["audit", str(path), "--format", "json", "-o", str(out)]) == 2
    finding = json.loads(out.read_text())["findings"][0]
    assert finding["code"] == "RA001" and finding["location"]["file"] == str(path) and why in finding["message"]
    code = main(["query", str(path), "--src", "192.0.2.1", "--dst", "192.0.2.10", "--dport", "22"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith(f"{path}: error: refused: archive member"), err
    assert sorted(os.listdir(tmp_path)) == before  # nothing extracted next to it


def test_an_empty_archive_is_a_located_error(tmp_path, capsys):
    empty = tmp_path / "empty.tar.gz"
    empty.write_bytes(b"")
    assert main(["query", str(empty), "--src", "192.0.2.1", "--dst", "192.0.2.10", "--dport", "22"]) == 2
    assert capsys.readouterr().err.startswith(f"{empty}: error: corrupt or unreadable archive")


def test_a_corrupt_archive_in_a_fleet_is_that_hosts_finding(tmp_path):
    from ruleanalyzer.checks import select
    from ruleanalyzer.fleet import audit_fleet

    for name in ("web01", "web02"):
        web_host(tmp_path / name, name)
    good = web_host(tmp_path / "web03.tar.gz", "web03")
    data = open(good, "rb").read()
    (tmp_path / "web04.tar.gz").write_bytes(data[: len(data) // 2])
    sources = sorted(str(p) for p in tmp_path.iterdir())
    result = audit_fleet(sources, codes=select(), options={}, in_process=True)
    bad = [f for f in result.findings if f.code == "RA001"]
    assert len(bad) == 1 and bad[0].where.file == str(tmp_path / "web04.tar.gz")
    assert "corrupt or unreadable archive" in bad[0].message
    status = {h["name"]: h["status"] for h in result.fleet["hosts"]}
    assert [s for s in status.values()].count("ok") == 3 and "unreadable" in status.values()


def test_directory_links_leaving_the_snapshot_are_refused(tmp_path):
    snap = web_host(tmp_path / "h", "h")
    secret = tmp_path / "secret.txt"
    secret.write_text("not for the analyzer")
    os.symlink(secret, os.path.join(snap, "sysctl.txt.extra"))
    with pytest.raises(RuleAnalyzerError, match="leaves the snapshot directory"):
        load(snap)


def test_directory_fifos_are_refused_unread(tmp_path):
    snap = web_host(tmp_path / "h", "h")
    os.mkfifo(os.path.join(snap, "ipset-save.txt.pipe"))  # reading it would block forever
    with pytest.raises(RuleAnalyzerError, match="not a regular file") as err:
        load(snap)
    assert err.value.location.file.endswith("h/ipset-save.txt.pipe")


def test_not_a_snapshot(tmp_path):
    path = _tar(tmp_path / "x.tar.gz", [_file("rules.v4", WEB_RULES.format(extra="").encode())])
    with pytest.raises(RuleAnalyzerError, match="not a host snapshot: no manifest.txt"):
        load(path)
    bad = _tar(tmp_path / "y.tar.gz", [_file("manifest.txt", b"hello\n")])
    with pytest.raises(RuleAnalyzerError, match="not a host snapshot manifest") as err:
        load(bad)
    assert err.value.location.line == 1


def test_bad_json_member_is_located(tmp_path):
    snap = web_host(tmp_path / "h", "h")
    with open(os.path.join(snap, "ip-route4.json"), "w") as f:
        f.write('[{"dst": "10.0.0.0/8",\n "dev": }]')
    with pytest.raises(RuleAnalyzerError) as err:
        load(snap)
    assert err.value.location.file.endswith("h/ip-route4.json") and err.value.location.line == 2


def test_ip_json_is_read_into_the_host_context(tmp_path):
    rules = [{"priority": 100, "src": "10.9.0.0", "srclen": 16, "iif": "eth1", "table": "100"},
             {"priority": 101, "src": "all", "fwmark": "0x1", "fwmask": "0xff", "table": "100"},
             {"priority": 102, "src": "all", "dst": "192.0.2.0", "dstlen": 24, "table": "main",
              "suppress_prefixlen": 0},
             {"priority": 103, "src": "all", "ipproto": "tcp", "dport": 22, "action": "prohibit"},
             {"priority": 104, "not": None, "src": "10.3.0.0", "srclen": 16, "table": "100"}]
    routes = [{"dst": "198.51.100.0/24", "gateway": "10.2.0.9", "dev": "eth1", "table": "100", "flags": []},
              {"type": "unreachable", "dst": "192.0.2.128/25", "table": "100", "flags": []},
              {"type": "throw", "dst": "198.51.100.128/25", "table": "100", "flags": []},
              {"type": "blackhole", "dst": "203.0.113.0/24", "flags": []},
              {"dst": "10.50.0.0/16", "flags": [], "nexthops": [{"gateway": "10.1.0.7", "dev": "eth0"},
                                                                 {"gateway": "10.2.0.7", "dev": "eth1"}]}]
    snap = make_snapshot(tmp_path / "r1", "r1", iptables=WEB_RULES.format(extra=""),
                         interfaces={"eth0": ["10.1.0.1/24"], "eth1": ["10.2.0.1/24"]},
                         default=("10.1.0.2", "eth0"), routes=routes, rules=rules,
                         sysctls={"net.ipv4.ip_forward": "1"})
    host = load(snap).host
    assert [r.priority for r in host.policy_rules(4)] == [0, 100, 101, 102, 103, 104, 32766, 32767]
    r104 = host.policy_rules(4)[5]
    assert r104.invert and str(r104.src) == "10.3.0.0/16" and r104.opaque is None
    route = lambda dst, **kw: host.route(ip(dst), **{"src": ip("10.1.0.50"), "iif": "eth0", "mark": 0,
                                                     "proto": 17, "sport": 1, "dport": 53, **kw})
    # from 10.9/16 on eth1 → table 100; elsewhere main
    assert route("198.51.100.5", src=ip("10.9.0.1"), iif="eth1").dev == "eth1"
    # fwmark 1 → table 100; a throw route there sends the lookup on (to rule 104, which
    # takes 10.1.0.50 (not from 10.3/16) to table 100 again, where it is thrown again, to main)
    assert route("198.51.100.200", mark=1).route.dst.prefixlen == 0
    # suppress_prefixlength 0: main's default route is ignored for 192.0.2.0/24, then
    # rule 104 finds the unreachable route of table 100
    assert route("192.0.2.200").type == "unreachable"
    assert route("203.0.113.9").type == "blackhole"
    assert route("8.8.8.8", proto=6, dport=22).type == "prohibit"
    assert route("10.50.1.1", src=ip("10.3.0.1")).devs == ("eth0", "eth1")
    # An unknown selector field makes the answer unknown, naming the rule.
    unknown = host.route(ip("8.8.8.8"), src=ip("10.9.0.1"), iif=None, mark=0)
    assert unknown.type == "unknown" and "100:" in unknown.reason
    # A selector the model does not decide (tos): a packet reaching it has an unknown route.
    tos = load(make_snapshot(tmp_path / "r2", "r2", default=("192.0.2.1", "eth0"),
                             rules=[{"priority": 5, "src": "all", "tos": "0x10", "table": "100"}])).host
    assert tos.policy_rules(4)[1].opaque == "tos"
    assert tos.route(ip("8.8.8.8"), src=ip("192.0.2.7"), iif="eth0").type == "unknown"
    assert tos.route(ip("192.0.2.10"), src=ip("192.0.2.7"), iif="eth0").type == "local"  # rule 0 first


def test_address_types_follow_the_kernels_table_merge(tmp_path):
    """addrtype looks in the local table; while no custom policy rule
    exists the kernel keeps main's routes in the same table, so a
    blackhole route of main makes its addresses BLACKHOLE."""
    routes = [{"type": "blackhole", "dst": "203.0.113.0/24", "flags": []}]
    plain = load(make_snapshot(tmp_path / "a", "a", routes=routes, default=("192.0.2.1", "eth0"))).host
    assert plain.address_type(ip("203.0.113.5")) == "blackhole"
    assert plain.address_type(ip("192.0.2.10")) == "local"
    assert plain.address_type(ip("192.0.2.255")) == "broadcast"
    assert plain.address_type(ip("0.1.2.3")) == "broadcast"
    assert plain.address_type(ip("239.1.1.1")) == "multicast"
    assert plain.address_type(ip("8.8.8.8")) == "unicast"
    custom = load(make_snapshot(tmp_path / "b", "b", routes=routes, default=("192.0.2.1", "eth0"),
                                rules=[{"priority": 10, "src": "10.0.0.0", "srclen": 8, "table": "7"}])).host
    assert custom.address_type(ip("203.0.113.5")) == "unicast"


def test_ipset_save_and_sysctls_are_read(tmp_path):
    ipsets = ("create blocked hash:ip family inet hashsize 1024 maxelem 65536 timeout 300\n"
              "add blocked 192.0.2.66 timeout 200\n"
              "create nets hash:net family inet hashsize 1024 maxelem 65536\n"
              "add nets 10.0.0.0/8\nadd nets 10.1.0.0/16 nomatch\n"
              "create c hash:ip family inet counters comment\nadd c 1.2.3.4 packets 0 bytes 0 comment \"a b\"\n")
    host = load(make_snapshot(tmp_path / "s", "s", ipsets=ipsets,
                              sysctls={"net.ipv4.conf.eth0.rp_filter": "2"})).host
    assert host.sets["blocked"].expiring and host.sets["blocked"].entries == ["192.0.2.66"]
    assert host.sets["nets"].nomatch == {"10.1.0.0/16"}
    assert host.sets["c"].entries == ["1.2.3.4"]
    assert host.ipsets["nets"] == ("hash:net", ["10.0.0.0/8", "10.1.0.0/16"])
    assert host.rp_filter("eth0") == 2 and host.tcp_ecn == 2 and host.forwarding(4) is False
    with pytest.raises(RuleAnalyzerError, match="before its create line") as err:
        load(make_snapshot(tmp_path / "t", "t", ipsets="add nope 1.2.3.4\n"))
    assert err.value.location.line == 1


def test_rules_of_iptables_nft_are_not_read_twice(tmp_path):
    """iptables-nft's tables show up in ``nft -j list ruleset`` too; the
    snapshot reads them once, from iptables-nft-save's own words."""
    nft = {"nftables": [{"metainfo": {"json_schema_version": 1}},
                        {"table": {"family": "ip", "name": "filter", "handle": 1}},
                        {"chain": {"family": "ip", "table": "filter", "name": "INPUT", "handle": 1,
                                   "type": "filter", "hook": "input", "prio": 0, "policy": "drop"}},
                        {"table": {"family": "inet", "name": "mine", "handle": 2}},
                        {"chain": {"family": "inet", "table": "mine", "name": "in", "handle": 1,
                                   "type": "filter", "hook": "input", "prio": 10, "policy": "accept"}}]}
    rs = load(make_snapshot(tmp_path / "n", "n", iptables=WEB_RULES.format(extra=""), nft_json=json.dumps(nft)))
    assert sorted((t.family, t.name, t.dialect) for t in rs.tables) == [
        ("inet", "mine", "nft-json"), ("ip", "filter", "iptables")]
