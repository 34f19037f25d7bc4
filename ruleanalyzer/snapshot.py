"""Reading a host snapshot (``ruleanalyzer collect``, docs/collect.md).

A snapshot is a directory — or a tar archive of one (``.tar``, ``.tar.gz``,
``.tgz``, ``.tar.xz``, ``.tar.bz2``) — holding ``manifest.txt`` and the
outputs of the host's own tools under fixed names (:data:`FILES`). Reading
one gives a :class:`~ruleanalyzer.model.Ruleset` whose ``host`` is the
:class:`~ruleanalyzer.host.HostContext`, with the ipsets and address types
it decides already resolved (:mod:`ruleanalyzer.hostrules`).

Archives are read in memory, never extracted: a member with an absolute
path or ``..``, a link, a device or a FIFO is refused, and so is an archive
with more than :data:`MAX_MEMBERS` members or more than
:data:`MAX_TOTAL_BYTES` bytes unpacked (docs/limits.md). A corrupt archive
is a located error.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import tarfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from .errors import RuleAnalyzerError, line_of, split_lines
from .host import HostContext, IPSet, PolicyRule, Route
from .model import Location, Ruleset

MANIFEST = "manifest.txt"
FORMAT_LINE = "format: ruleanalyzer-snapshot 1"

#: Snapshot file → the command whose output it holds (docs/collect.md).
FILES = {
    "iptables-legacy-save.txt": ("iptables-legacy-save",),
    "ip6tables-legacy-save.txt": ("ip6tables-legacy-save",),
    "iptables-nft-save.txt": ("iptables-nft-save",),
    "ip6tables-nft-save.txt": ("ip6tables-nft-save",),
    "nft-ruleset.json": ("nft", "-j", "list", "ruleset"),
    "nft-ruleset.txt": ("nft", "list", "ruleset"),
    "ipset-save.txt": ("ipset", "save"),
    "ip-addr.json": ("ip", "-j", "addr"),
    "ip-route4.json": ("ip", "-j", "-4", "route", "show", "table", "all"),
    "ip-route6.json": ("ip", "-j", "-6", "route", "show", "table", "all"),
    "ip-rule4.json": ("ip", "-j", "-4", "rule"),
    "ip-rule6.json": ("ip", "-j", "-6", "rule"),
}
SYSCTLS = "sysctl.txt"
VERSIONS = "versions.txt"
#: Copies of the tools' configuration directories.
CONFIG_DIRS = {"ufw": "etc/ufw", "firewalld": "etc/firewalld"}
#: The iptables tables iptables-nft keeps in nftables tables of the same name.
IPTABLES_TABLES = ("raw", "mangle", "nat", "filter", "security")

#: Archive limits (module constants; docs/limits.md).
MAX_MEMBERS = 10_000
MAX_TOTAL_BYTES = 1024 * 1024 * 1024
ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.xz", ".txz", ".tar.bz2", ".tbz2")


@dataclass
class Snapshot:
    """The files of one snapshot (name → bytes) and where they came from."""

    source: str
    files: dict[str, bytes] = field(default_factory=dict)
    #: ``manifest.txt`` as key → list of values.
    manifest: dict[str, list[str]] = field(default_factory=dict)
    #: The line of each of those values (findings point at them).
    manifest_lines: dict[str, list[int]] = field(default_factory=dict)

    def name(self, member: str) -> str:
        """How a member is named in messages: ``host.tar.gz/ip-addr.json``."""
        return f"{self.source.rstrip('/')}/{member}"

    def text(self, member: str) -> str | None:
        data = self.files.get(member)
        if data is None:
            return None
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = data.count(b"\n", 0, exc.start) + 1
            raise RuleAnalyzerError(f"not UTF-8 text (byte 0x{data[exc.start]:02x})",
                                    Location(self.name(member), line, 1)) from None

    @property
    def hostname(self) -> str | None:
        return (self.manifest.get("hostname") or [None])[0]


# -- recognising and opening ----------------------------------------------------


def is_archive_name(path: str | os.PathLike) -> bool:
    return str(path).lower().endswith(ARCHIVE_SUFFIXES)


def is_snapshot(path: str | os.PathLike) -> bool:
    """Is ``path`` a snapshot directory or an archive (by name)?"""
    p = Path(path)
    if p.is_dir():
        return (p / MANIFEST).is_file()
    return p.is_file() and is_archive_name(p)


def open_snapshot(path: str | os.PathLike, max_bytes: int = 256 * 1024 * 1024) -> Snapshot:
    """Read a snapshot directory or archive into memory."""
    p = Path(path)
    snap = _read_directory(p, max_bytes) if p.is_dir() else _read_archive(p, max_bytes)
    text = snap.text(MANIFEST)
    if text is None:
        raise RuleAnalyzerError(f"not a host snapshot: no {MANIFEST}", Location(str(path)),
                                hint="make one with `ruleanalyzer collect` (docs/collect.md)")
    snap.manifest, snap.manifest_lines = _parse_manifest(text, snap.name(MANIFEST))
    return snap


def _read_directory(root: Path, max_bytes: int) -> Snapshot:
    snap = Snapshot(str(root))
    real_root = os.path.realpath(root)
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        for fname in sorted(filenames):
            full = os.path.join(dirpath, fname)
            rel = os.path.relpath(full, root).replace(os.sep, "/")
            if len(snap.files) >= MAX_MEMBERS:
                raise RuleAnalyzerError(f"snapshot has more than {MAX_MEMBERS} files", Location(str(root)),
                                        hint="snapshot.MAX_MEMBERS (docs/limits.md)")
            real = os.path.realpath(full)
            if os.path.commonpath([real_root, real]) != real_root:
                raise RuleAnalyzerError("refused: a link that leaves the snapshot directory",
                                        Location(snap.name(rel)))
            if not os.path.isfile(real):
                raise RuleAnalyzerError("refused: not a regular file (a device, FIFO or socket)",
                                        Location(snap.name(rel)))
            size = os.path.getsize(real)
            if size > max_bytes:
                raise RuleAnalyzerError(f"file is {size} bytes, over the limit of {max_bytes} bytes",
                                        Location(snap.name(rel)), hint="raise the limit with --max-bytes")
            try:
                snap.files[rel] = Path(real).read_bytes()
            except OSError as exc:
                raise RuleAnalyzerError(f"cannot read file: {exc.strerror or exc}",
                                        Location(snap.name(rel))) from None
    return snap


def _member_name(raw: str, archive: str) -> str | None:
    """The member's path inside the snapshot (``./x`` → ``x``); refused when
    absolute or climbing out with ``..``."""
    if raw.startswith("/") or re.match(r"^[A-Za-z]:[\\/]", raw) or "\\" in raw:
        raise RuleAnalyzerError(f"refused: archive member {raw!r} has an absolute path",
                                Location(archive), hint="snapshot archives hold relative paths only")
    parts = [p for p in raw.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise RuleAnalyzerError(f"refused: archive member {raw!r} climbs out with '..'", Location(archive))
    return "/".join(parts) or None


def _read_archive(path: Path, max_bytes: int) -> Snapshot:
    archive = str(path)
    snap = Snapshot(archive)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise RuleAnalyzerError(f"cannot read file: {exc.strerror or exc}", Location(archive)) from None
    if size > max_bytes:
        raise RuleAnalyzerError(f"file is {size} bytes, over the limit of {max_bytes} bytes",
                                Location(archive), hint="raise the limit with --max-bytes")
    total = 0
    count = 0
    member = None
    try:
        # Streaming mode: members are read in order, nothing is seeked or
        # extracted to disk.
        with tarfile.open(archive, mode="r|*") as tar:
            for member in tar:
                count += 1
                if count > MAX_MEMBERS:
                    raise RuleAnalyzerError(f"archive has more than {MAX_MEMBERS} members",
                                            Location(archive), hint="snapshot.MAX_MEMBERS (docs/limits.md)")
                name = _member_name(member.name, archive)
                if member.issym() or member.islnk():
                    raise RuleAnalyzerError(f"refused: archive member {member.name!r} is a link",
                                            Location(archive), hint="snapshot archives hold plain files only")
                if member.isdir():
                    continue
                if not member.isreg():
                    raise RuleAnalyzerError(f"refused: archive member {member.name!r} is a device, FIFO "
                                            "or other special file", Location(archive))
                if name is None:
                    continue
                if member.size > max_bytes:
                    raise RuleAnalyzerError(f"archive member {member.name!r} is {member.size} bytes, over "
                                            f"the limit of {max_bytes} bytes", Location(archive),
                                            hint="raise the limit with --max-bytes")
                total += member.size
                if total > MAX_TOTAL_BYTES:
                    raise RuleAnalyzerError(f"archive unpacks to more than {MAX_TOTAL_BYTES} bytes",
                                            Location(archive), hint="snapshot.MAX_TOTAL_BYTES (docs/limits.md)")
                if name in snap.files:
                    raise RuleAnalyzerError(f"refused: archive member {member.name!r} appears twice",
                                            Location(archive), hint="a later copy would replace the first "
                                            "(tar --append); make the archive again")
                handle = tar.extractfile(member)
                data = handle.read() if handle is not None else b""
                if len(data) != member.size:
                    raise tarfile.ReadError("unexpected end of data")
                snap.files[name] = data
    except RuleAnalyzerError:
        raise
    except (tarfile.TarError, EOFError, zlib.error, OSError, ValueError) as exc:
        where = f" in member {count} ({member.name!r})" if member is not None else ""
        why = str(exc) or type(exc).__name__
        raise RuleAnalyzerError(f"corrupt or unreadable archive{where}: {why}", Location(archive),
                                hint="a snapshot archive is a tar file, optionally gzip/xz/bzip2-compressed") from None
    # An archive of the snapshot directory itself (``tar czf x.tgz host1/``):
    # strip the one top-level directory.
    if MANIFEST not in snap.files:
        tops = {n.split("/", 1)[0] for n in snap.files}
        if len(tops) == 1:
            top = next(iter(tops))
            if f"{top}/{MANIFEST}" in snap.files:
                snap.files = {n.split("/", 1)[1]: d for n, d in snap.files.items() if "/" in n}
    return snap


def _parse_manifest(text: str, name: str) -> tuple[dict[str, list[str]], dict[str, list[int]]]:
    out: dict[str, list[str]] = {}
    lines_of: dict[str, list[int]] = {}
    lines = split_lines(text)
    if not lines or lines[0].strip() != FORMAT_LINE:
        raise RuleAnalyzerError(f"not a host snapshot manifest (expected {FORMAT_LINE!r})",
                                Location(name, 1, 1), source_line=lines[0] if lines else "")
    for number, line in enumerate(lines[1:], 2):
        if not line.strip() or line.startswith("#"):
            continue
        key, sep, value = line.partition(":")
        if not sep:
            continue
        out.setdefault(key.strip(), []).append(value.strip())
        lines_of.setdefault(key.strip(), []).append(number)
    return out, lines_of


# -- the host context ---------------------------------------------------------------


def _json(snap: Snapshot, member: str):
    text = snap.text(member)
    if text is None:
        return None
    if not text.strip():
        return []
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise RuleAnalyzerError(f"bad JSON: {exc.msg}", Location(snap.name(member), exc.lineno, exc.colno),
                                source_line=line_of(text, exc.lineno)) from None
    except RecursionError:
        raise RuleAnalyzerError("JSON nested too deeply", Location(snap.name(member))) from None


def _expect_list(data, snap: Snapshot, member: str) -> list:
    if not isinstance(data, list) or not all(isinstance(x, dict) for x in data):
        raise RuleAnalyzerError("expected a JSON list of objects (ip -j output)", Location(snap.name(member)))
    return data


def _network(text: str, plen, family: int, where: Location) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        if text == "default" or text == "all":
            return ipaddress.ip_network("0.0.0.0/0" if family == 4 else "::/0")
        if plen is not None and "/" not in text:
            text = f"{text}/{int(plen)}"
        net = ipaddress.ip_network(text, strict=False)
    except (ValueError, TypeError):
        raise RuleAnalyzerError(f"bad address {text!r}", where) from None
    if net.version != family:
        raise RuleAnalyzerError(f"{text} is not an IPv{family} address", where)
    return net


def parse_addresses(data: list, snap: Snapshot, member: str, host: HostContext) -> None:
    for i, link in enumerate(_expect_list(data, snap, member)):
        where = Location(snap.name(member), path=f"[{i}]")
        name = link.get("ifname")
        if not isinstance(name, str):
            raise RuleAnalyzerError("interface without a name (ifname)", where)
        ifaces = host.addresses.setdefault(name, [])
        if isinstance(link.get("master"), str):
            host.bridge_ports[name] = link["master"]
        for j, info in enumerate(link.get("addr_info") or []):
            if not isinstance(info, dict) or info.get("family") not in ("inet", "inet6"):
                continue
            try:
                ifaces.append(ipaddress.ip_interface(f"{info['local']}/{int(info['prefixlen'])}"))
            except (KeyError, ValueError, TypeError):
                raise RuleAnalyzerError("bad address entry", Location(snap.name(member),
                                                                       path=f"[{i}].addr_info[{j}]")) from None
    host.known.add("addresses")


def parse_routes(data: list, snap: Snapshot, member: str, family: int, host: HostContext) -> None:
    for i, entry in enumerate(_expect_list(data, snap, member)):
        where = Location(snap.name(member), path=f"[{i}]")
        dst = entry.get("dst")
        if not isinstance(dst, str):
            raise RuleAnalyzerError("route without a destination (dst)", where)
        net = _network(dst, None, family, where)
        gateway = None
        if isinstance(entry.get("gateway"), str):
            try:
                gateway = ipaddress.ip_address(entry["gateway"])
            except ValueError:
                raise RuleAnalyzerError(f"bad gateway {entry['gateway']!r}", where) from None
        prefsrc = None
        if isinstance(entry.get("prefsrc"), str):
            try:
                prefsrc = ipaddress.ip_address(entry["prefsrc"])
            except ValueError:
                prefsrc = None
        devs = tuple(h["dev"] for h in entry.get("nexthops") or () if isinstance(h, dict)
                     and isinstance(h.get("dev"), str))
        try:
            metric = int(entry.get("metric") or 0)
        except (TypeError, ValueError):
            raise RuleAnalyzerError(f"bad metric {entry.get('metric')!r}", where) from None
        host.routes.append(Route(net, entry.get("dev") if isinstance(entry.get("dev"), str) else None,
                                 gateway, str(entry.get("table") or "main"), str(entry.get("type") or "unicast"),
                                 metric, prefsrc, devs))
    host.known.add(f"routes{family}")


_PROTO = {"tcp": 6, "udp": 17, "icmp": 1, "sctp": 132, "ipv6-icmp": 58, "icmpv6": 58, "gre": 47,
          "esp": 50, "ah": 51, "udplite": 136, "dccp": 33}


def _port_span(entry: dict, name: str) -> tuple[int, int] | None:
    if isinstance(entry.get(name), int):
        return entry[name], entry[name]
    if isinstance(entry.get(f"{name}_start"), int):
        return entry[f"{name}_start"], int(entry.get(f"{name}_end", entry[f"{name}_start"]))
    return None


def parse_rules(data: list, snap: Snapshot, member: str, family: int, host: HostContext) -> None:
    for i, entry in enumerate(_expect_list(data, snap, member)):
        where = Location(snap.name(member), path=f"[{i}]")
        try:
            priority = int(entry.get("priority", 0))
            src = dst = None
            if entry.get("src") not in (None, "all"):
                src = _network(entry["src"], entry.get("srclen"), family, where)
            if entry.get("dst") not in (None, "all"):
                dst = _network(entry["dst"], entry.get("dstlen"), family, where)
            fwmark = int(entry["fwmark"], 0) if isinstance(entry.get("fwmark"), str) else None
            fwmask = int(entry["fwmask"], 0) if isinstance(entry.get("fwmask"), str) else 0xFFFFFFFF
            ipproto = entry.get("ipproto")
            if isinstance(ipproto, str):
                ipproto = _PROTO.get(ipproto.lower(), int(ipproto) if ipproto.isdigit() else None)
                if ipproto is None:
                    raise ValueError(f"unknown ipproto {entry['ipproto']!r}")
        except (ValueError, TypeError) as exc:
            raise RuleAnalyzerError(f"bad policy rule: {exc}", where) from None
        action = "lookup"
        if isinstance(entry.get("action"), str):
            action = entry["action"]
        elif "goto" in entry:
            action = "goto"
        elif "nop" in entry:
            action = "nop"
        opaque = [w for w in ("tos", "dsfield", "uid_start", "l3mdev", "tun_id", "realms", "protocol_match")
                  if w in entry and w != "protocol_match"]
        host.rules.append(PolicyRule(
            priority, str(entry.get("table", "main")), src, dst,
            entry.get("iif") if isinstance(entry.get("iif"), str) else None,
            entry.get("oif") if isinstance(entry.get("oif"), str) else None,
            fwmark, fwmask if fwmark is not None else 0xFFFFFFFF, action, "not" in entry,
            entry.get("suppress_prefixlen") if isinstance(entry.get("suppress_prefixlen"), int) else None,
            ipproto, _port_span(entry, "sport"), _port_span(entry, "dport"),
            entry.get("goto") if isinstance(entry.get("goto"), int) else None,
            ", ".join(o.replace("_start", "range") for o in opaque) or None, family))
    host.known.add(f"rules{family}")


def parse_ipsets(text: str, name: str, host: HostContext) -> None:
    """``ipset save`` output: ``create NAME TYPE [options]`` and
    ``add NAME ENTRY [options]`` lines."""
    for number, line in enumerate(split_lines(text), 1):
        words = _split_words(line)
        if not words or words[0].startswith("#"):
            continue
        where = Location(name, number, 1)
        if words[0] == "create" and len(words) >= 3:
            options = _options(words[3:])
            ipset = IPSet(words[1], words[2], options.get("family", ""), options=options,
                          expiring="timeout" in options)
            host.sets[ipset.name] = ipset
        elif words[0] == "add" and len(words) >= 3:
            ipset = host.sets.get(words[1])
            if ipset is None:
                raise RuleAnalyzerError(f"add to ipset {words[1]!r} before its create line", where,
                                        source_line=line)
            ipset.entries.append(words[2])
            rest = words[3:]
            if "nomatch" in rest:
                ipset.nomatch.add(words[2])
            if "timeout" in rest:
                t = rest[rest.index("timeout") + 1] if rest.index("timeout") + 1 < len(rest) else "0"
                if t != "0":
                    ipset.expiring = True
        else:
            raise RuleAnalyzerError("not an `ipset save` line (create/add)", where, source_line=line)
    for ipset in host.sets.values():
        host.ipsets[ipset.name] = (ipset.type, ipset.entries)
    host.known.add("ipsets")


def _split_words(line: str) -> list[str]:
    out, buf, quoted = [], "", False
    for ch in line.strip():
        if ch == '"':
            quoted = not quoted
        elif ch.isspace() and not quoted:
            if buf:
                out.append(buf)
            buf = ""
        else:
            buf += ch
    if buf:
        out.append(buf)
    return out


def _options(words: list[str]) -> dict[str, str]:
    out, i = {}, 0
    flags = {"counters", "comment", "skbinfo", "forceadd", "nomatch"}
    while i < len(words):
        if words[i] in flags or i + 1 >= len(words):
            out[words[i]] = ""
            i += 1
        else:
            out[words[i]] = words[i + 1]
            i += 2
    return out


def parse_sysctls(text: str, name: str, host: HostContext) -> None:
    """``key = value`` lines (``sysctl -a`` form)."""
    for number, line in enumerate(split_lines(text), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise RuleAnalyzerError("not a `key = value` sysctl line", Location(name, number, 1),
                                    source_line=line)
        host.sysctls[key.strip().replace("/", ".")] = value.strip()
        host.sysctl_lines[key.strip().replace("/", ".")] = number
    host.sysctl_file = name
    host.known.add("sysctls")


def host_context(snap: Snapshot) -> HostContext:
    """The :class:`HostContext` of a snapshot: whatever it holds; what it
    lacks is listed in ``missing``."""
    host = HostContext(name=snap.hostname, source=snap.source,
                       time=(snap.manifest.get("time") or [None])[0])
    host.missing = list(snap.manifest.get("missing", []))
    host.manifest_file = snap.name(MANIFEST)
    host.manifest_lines = {k: list(v) for k, v in snap.manifest_lines.items()}
    data = _json(snap, "ip-addr.json")
    if data is not None:
        parse_addresses(data, snap, "ip-addr.json", host)
    for family in (4, 6):
        for member, parse in ((f"ip-route{family}.json", parse_routes), (f"ip-rule{family}.json", parse_rules)):
            data = _json(snap, member)
            if data is not None:
                parse(data, snap, member, family, host)
    text = snap.text("ipset-save.txt")
    if text is not None:
        parse_ipsets(text, snap.name("ipset-save.txt"), host)
    text = snap.text(SYSCTLS)
    if text is not None:
        parse_sysctls(text, snap.name(SYSCTLS), host)
    return host


# -- the ruleset ----------------------------------------------------------------------


def _parse_member(snap: Snapshot, member: str, dialect: str) -> Ruleset | None:
    from . import parsers

    text = snap.text(member)
    if text is None or not text.strip():
        return None
    return parsers.parse(text, snap.name(member), dialect)


def load_snapshot(path: str | os.PathLike, max_bytes: int = 256 * 1024 * 1024, apply: bool = True) -> Ruleset:
    """The ruleset of a host snapshot with its host context attached and
    applied: every table the host has — legacy iptables, iptables-nft
    (read from ``iptables-nft-save``, which keeps each rule's own words,
    instead of the compat expressions nft shows for it) and native
    nftables — and (``apply``) the ipsets and address types the context
    decides."""
    return snapshot_ruleset(open_snapshot(path, max_bytes), apply)


def snapshot_ruleset(snap: Snapshot, apply: bool = True) -> Ruleset:
    """:func:`load_snapshot` for a snapshot already read (a fleet audit
    sends these to its workers)."""
    from .hostrules import apply_host

    host = host_context(snap)
    ruleset = Ruleset()
    covered: set[tuple[str, str]] = set()
    for member, family in (("iptables-legacy-save.txt", "ip"), ("ip6tables-legacy-save.txt", "ip6"),
                           ("iptables-nft-save.txt", "ip"), ("ip6tables-nft-save.txt", "ip6")):
        part = _parse_member(snap, member, "iptables")
        if part is None:
            continue
        if "nft" in member:
            covered |= {(family, t.name) for t in part.tables}
        ruleset.merge(part)
    nft = _parse_member(snap, "nft-ruleset.json", "nft-json")
    if nft is None:
        nft = _parse_member(snap, "nft-ruleset.txt", "nftables")
    if nft is not None:
        nft.tables = [t for t in nft.tables if (t.family, t.name) not in covered]
        ruleset.merge(nft)
    ruleset.meta.setdefault("dialect", "snapshot")
    ruleset.meta["snapshot"] = snap.source
    if snap.manifest.get("role"):
        ruleset.meta["role"] = snap.manifest["role"][0]
    if not ruleset.sources:
        ruleset.sources.append(snap.source)
    ruleset.host = host
    from .parsers.firewalld import snapshot_config

    # a running firewalld's configuration beside its live ruleset, for the checks that need it (RA705, RA706)
    if any((t.family, t.name) == ("inet", "firewalld") for t in ruleset.tables):
        firewalld, notes = snapshot_config(snap.files, snap.text(VERSIONS), snap.name("etc/firewalld"))
        if firewalld is not None:
            ruleset.meta["firewalld"] = firewalld
        ruleset.diagnostics += notes
    if apply:
        apply_host(ruleset, host)
    return ruleset
