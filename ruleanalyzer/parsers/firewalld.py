"""firewalld: a configuration directory read the way firewalld compiles it.

    >>> from ruleanalyzer.parsers.firewalld import load_directory   # doctest: +SKIP
    >>> rs = load_directory("/etc/firewalld")                        # doctest: +SKIP

Input is ``/etc/firewalld`` (or a copy, or a snapshot folder holding one):
``firewalld.conf``, ``zones/``, ``policies/``, ``services/``, ``ipsets/``,
``icmptypes/``, ``helpers/`` and ``direct.xml``, layered over the stock
definitions firewalld ships (``ruleanalyzer/data/firewalld/<version>``) as
firewalld layers ``/etc/firewalld`` over ``/usr/lib/firewalld``. The model
is the nftables ruleset firewalld builds with ``FirewallBackend=nftables``
(:mod:`.firewalld_compile`), every rule carrying its
:class:`~ruleanalyzer.model.Origin`: "zone public, service ssh" with the
line of ``zones/public.xml`` it came from. ``direct.xml`` rules go to
iptables tables, as firewalld passes them to iptables.

A single zone file given alone is read as that zone over the stock
configuration; when its name is not the default zone it is taken as the
default zone (said in a diagnostic), since nothing else binds it.
``firewall-cmd --list-all(-zones|-policies)`` output is read too
(:mod:`.firewalld_listall`).

The layout is firewalld 1.x's (:mod:`.firewalld_compile`) or, for a 2.x
version, 2.x's (:mod:`.firewalld_compile2`): the version comes from the
caller (``--firewalld-version``, the config's ``firewalld-version``) or
from a ``versions.txt`` a snapshot recorded. The reader never leaves the
tree it is given (a symlink out is refused) and reads at most
:data:`MAX_FILES` files and :data:`MAX_TOTAL_BYTES` bytes.
"""

from __future__ import annotations

import os
import re
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

from ..errors import RuleAnalyzerError
from ..model import Diagnostic, Location, Origin, Ruleset
from . import firewalld_xml as fx
from .firewalld_compile import Compiler, Config, _policy_names
from .firewalld_compile2 import Compiler2, is_2x, version_tuple

#: firewalld 2.4's policy sets: a policy file may say ``<disable/>``.
DISABLE_POLICIES = (2, 4)

#: The stock definitions shipped with the analyzer, by firewalld version.
STOCK_VERSIONS = ("1.3.3",)
DEFAULT_VERSION = "1.3.3"
DATA = Path(__file__).resolve().parent.parent / "data" / "firewalld"
#: The sub-folders of a firewalld configuration directory, in load order.
KINDS = ("ipsets", "icmptypes", "helpers", "services", "zones", "policies")
MARKERS = ("firewalld.conf", "zones", "policies", "direct.xml")
MAX_FILE_BYTES = 16 * 1024 * 1024


def sniff(text: str, name: str) -> int:
    """A firewalld XML document (zone, policy, service, ipset, …) or
    firewalld.conf; nft rulesets firewalld generated are nft's."""
    head = text.lstrip("\ufeff \t\r\n")[:2000]
    from .firewalld_listall import looks_like

    if looks_like(head):
        return 90  # firewall-cmd --list-all(-zones) output
    if head.startswith("<?xml") or head.startswith("<"):
        if re.search(r"<(zone|policy|service|ipset|icmptype|helper|direct)\b", head):
            return 90
        return 10
    if re.search(r"^\s*(DefaultZone|FirewallBackend)\s*=", head, re.M):
        return 80
    return 0


def is_config_dir(path: str | os.PathLike) -> bool:
    """Does ``path`` look like an ``/etc/firewalld`` (or contain one)?"""
    p = Path(path)
    return p.is_dir() and (find_config_dir(p) is not None)


def find_config_dir(path: Path) -> Path | None:
    """``path`` itself, or ``etc/firewalld`` / ``firewalld`` inside it (a snapshot)."""
    from ..loader import is_inside

    top = os.path.realpath(path)
    for candidate in (path, path / "etc" / "firewalld", path / "firewalld"):
        if not is_inside(os.path.realpath(candidate), top):
            continue  # a link leading out of the directory given is not followed
        if candidate.is_dir() and any((candidate / m).exists() for m in MARKERS):
            return candidate
    return None


#: Bounds on what one configuration directory may make the reader open.
MAX_FILES = 5000
MAX_TOTAL_BYTES = 64 * 1024 * 1024


class Tree:
    """The configuration tree a reader was given: every file it opens must
    resolve inside it (a symlink out of it is refused, not followed), and
    the number and total size of the files read are bounded."""

    def __init__(self, given: Path):
        self.given = given
        self.base = given.resolve()
        self.files = 0
        self.bytes = 0

    def inside(self, path: Path) -> Path:
        resolved = path.resolve()
        if resolved != self.base and self.base not in resolved.parents:
            raise RuleAnalyzerError(f"{path} leads out of the configuration directory {self.given}: "
                                    f"symlink to {str(resolved)!r}, outside the directory given; not read",
                                    Location(str(path)),
                                    hint="copy the files into the directory instead of linking them")
        return path

    def entries(self, folder: Path) -> list[Path]:
        self.inside(folder)
        out = []
        for entry in folder.iterdir():
            out.append(entry)
            if len(out) + self.files > MAX_FILES:
                raise RuleAnalyzerError(f"more than {MAX_FILES} files in the configuration directory "
                                        f"{self.given}: refused", Location(str(folder)),
                                        hint="give the firewalld configuration directory itself")
        return sorted(out)

    def read(self, path: Path) -> str:
        self.inside(path)
        self.files += 1
        if self.files > MAX_FILES:
            raise RuleAnalyzerError(f"more than {MAX_FILES} files in the configuration directory {self.given}: "
                                    "refused", Location(str(path)))
        text = _read(path, self.base)
        self.bytes += len(text)
        if self.bytes > MAX_TOTAL_BYTES:
            raise RuleAnalyzerError(f"the configuration directory {self.given} holds more than "
                                    f"{MAX_TOTAL_BYTES // (1024 * 1024)} MiB of files: refused", Location(str(path)))
        return text


def _read(path: Path, root: Path | None = None) -> str:
    from ..loader import read_text

    return read_text(path, MAX_FILE_BYTES, root=root)


def stock_config(version: str = DEFAULT_VERSION) -> dict:
    """The stock objects of a firewalld version, by kind and name."""
    if version not in STOCK_VERSIONS:
        raise RuleAnalyzerError(f"no stock definitions for firewalld {version}",
                                hint=f"known versions: {', '.join(STOCK_VERSIONS)}")
    return _load_kinds(DATA / version, [], stock=True, label=Path(f"<firewalld {version} stock>"))


_CACHE: dict[str, dict] = {}


def _stock(version: str) -> dict:
    if version not in _CACHE:
        _CACHE[version] = stock_config(version)
    # Objects are not changed by compiling; a shallow copy per kind keeps
    # user files from replacing stock ones in the cache.
    return {k: dict(v) for k, v in _CACHE[version].items()}


def _load_kinds(root: Path, diagnostics: list, stock: bool = False, label: Path | None = None,
                tree: Tree | None = None) -> dict:
    out: dict = {k: {} for k in KINDS}
    readers = {"ipsets": fx.read_ipset, "icmptypes": fx.read_icmptype, "helpers": fx.read_helper,
               "services": fx.read_service}
    for kind in KINDS:
        folder = root / kind
        if not folder.is_dir():
            continue
        for path in (tree.entries(folder) if tree else sorted(folder.iterdir())):
            if not path.name.endswith(".xml") or not path.is_file():
                continue
            name = path.name[:-4]
            shown = str(path if label is None else label / kind / path.name)
            text = tree.read(path) if tree else _read(path)
            if kind == "zones":
                out[kind][name] = fx.read_zone(text, shown, name, diagnostics, stock=stock)
            elif kind == "policies":
                out[kind][name] = fx.read_policy(text, shown, name, diagnostics, stock=stock)
            else:
                out[kind][name] = readers[kind](text, shown, name)
    return out


def load_directory(path: str | os.PathLike, version: str | None = None,
                   bindings: list[tuple[str, str]] | None = None, shown: str | None = None) -> Ruleset:
    """The ruleset firewalld builds from the configuration directory ``path``.

    ``bindings`` are runtime interface/source bindings ``(zone, interface or
    source)`` added as ``firewall-cmd --zone=Z --add-interface=I`` would;
    ``shown`` is how the configuration directory is named in messages
    (a snapshot's member path) when ``path`` is a copy of it."""
    root = find_config_dir(Path(path))
    if root is None:
        raise RuleAnalyzerError("not a firewalld configuration directory (no firewalld.conf, zones/, "
                                "policies/ or direct.xml)", Location(str(path)))
    diagnostics: list = []
    tree = Tree(Path(path))
    tree.inside(root)
    label = Path(shown) if shown else root
    conf, where = {}, {}
    if (root / "firewalld.conf").is_file():
        conf, where = fx.read_conf(tree.read(root / "firewalld.conf"), str(label / "firewalld.conf"))
    # given, else in force for this reading (version_for_files), else the recorded one
    version = version or _VERSION.get() or recorded_version(Path(path), tree) or DEFAULT_VERSION
    objects = _stock(stock_version(version, diagnostics))
    user = _load_kinds(root, diagnostics, tree=tree, label=Path(shown) if shown else None)
    for kind in KINDS:
        objects[kind].update(user[kind])
    direct = None
    if (root / "direct.xml").is_file():
        direct = fx.read_direct(tree.read(root / "direct.xml"), str(label / "direct.xml"))
    config = Config(conf, where, objects["zones"], objects["policies"], objects["services"],
                    objects["ipsets"], objects["icmptypes"], objects["helpers"], direct, str(label), version)
    for zone, what in bindings or []:
        if zone not in config.zones:
            raise RuleAnalyzerError(f"runtime binding names zone {zone!r}, which does not exist")
        target = config.zones[zone].sources if ("/" in what or ":" in what or "." in what) \
            else config.zones[zone].interfaces
        target.append(fx.Entry(what, Location("<runtime binding>")))
    return compile_config(config, diagnostics, str(label))


def snapshot_config(files: dict[str, bytes], versions: str | None, shown: str) -> tuple[dict | None, list]:
    """A host snapshot's ``etc/firewalld`` compiled with the version the
    snapshot recorded (``versions`` is its versions.txt), for the checks
    that need the configuration beside the live ruleset (RA705, RA706):
    (``meta["firewalld"]`` or None, diagnostics). A configuration firewalld
    would refuse is said, not raised: the snapshot's live ruleset stands."""
    import tempfile

    prefix = "etc/firewalld/"
    members = {name[len(prefix):]: data for name, data in files.items() if name.startswith(prefix)}
    if not members:
        return None, []
    m = re.search(r"^firewalld:\s*v?(\d+(?:\.\d+)*)\s*$", versions or "", re.M)
    with tempfile.TemporaryDirectory(prefix="ra-firewalld-") as tmp:
        root = Path(tmp)
        for rel, data in members.items():
            target = root / rel
            if ".." in Path(rel).parts or not target.resolve().is_relative_to(root.resolve()):
                continue  # the snapshot reader refuses such names already
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        if find_config_dir(root) is None:
            return None, []
        try:
            compiled = load_directory(root, version=m.group(1) if m else None, shown=shown)
        except RuleAnalyzerError as exc:
            return None, [Diagnostic(f"the snapshot's /etc/firewalld does not compile as firewalld "
                                     f"{m.group(1) if m else DEFAULT_VERSION} would: {exc.message} (firewalld "
                                     "refuses such a configuration; the live ruleset is what runs)",
                                     exc.location or Location(shown))]
    return compiled.meta["firewalld"], []  # the compiled model's own notes concern no verdict here


def recorded_version(path: Path, tree: Tree) -> str | None:
    """The firewalld version a host snapshot recorded (``versions.txt``:
    ``firewalld: 2.1.1``), when ``path`` is one (a snapshot's
    ``etc/firewalld`` given alone has no record inside it: 1.3.3 then)."""
    versions = path / "versions.txt"
    if not versions.is_file():
        return None
    m = re.search(r"^firewalld:\s*v?(\d+(?:\.\d+)*)\s*$", tree.read(versions), re.M)
    return m.group(1) if m else None


def stock_version(version: str, diagnostics: list, at: Location | None = None) -> str:
    """The stock definitions used for ``version``: its own when shipped,
    else the nearest shipped (said in a diagnostic, at ``at``: where the
    version was read or inferred)."""
    if not re.fullmatch(r"\d+(\.\d+){0,3}", version or ""):
        raise RuleAnalyzerError(f"firewalld version {version!r} is not a version number",
                                hint="e.g. --firewalld-version 1.3.3 or 2.1.1")
    if version_tuple(version) < (1, 0):
        raise RuleAnalyzerError(f"firewalld {version}: versions before 1.0 are not modelled",
                                hint="known layouts: 1.x (1.0-1.3) and 2.x (2.0-2.4)")
    if version in STOCK_VERSIONS:
        return version
    diagnostics.append((f"firewalld {version}: its layout is used, but the stock services, zones and "
                        f"policies are firewalld {DEFAULT_VERSION}'s (the shipped ones); a service that "
                        f"{version} added or changed may differ — give /usr/lib/firewalld's files in "
                        "services/ to be exact", at))
    return DEFAULT_VERSION


def check_config(config: Config) -> None:
    """What firewalld checks before applying anything (``full_check_config``);
    a failure is the located error firewalld would log before falling back
    to its stock configuration."""
    for z in ("block", "drop", "trusted"):
        if z not in config.zones:
            raise RuleAnalyzerError(f"zone {z!r} is missing: firewalld needs it")
    seen_if: dict[str, str] = {}
    seen_src: dict[str, str] = {}
    for name in sorted(config.zones):
        zone = config.zones[name]
        if name in config.policies:
            raise RuleAnalyzerError(f"zone {name!r} has the same name as a policy", zone.location)
        if (zone.ingress_priority is not None or zone.egress_priority is not None) and not is_2x(config.version):
            raise RuleAnalyzerError(f"zone {name}: zone priorities need firewalld 2.0 or later (this "
                                    f"configuration is read as firewalld {config.version})", zone.location,
                                    hint="give the host's firewalld version (--firewalld-version)")
        if len(name) > fx.MAX_NAME and zone.name_problem != "too-long":
            raise RuleAnalyzerError(f"zone name {name!r} is longer than {fx.MAX_NAME} characters: "
                                    "firewalld refuses it", zone.location)
        for entry in zone.interfaces:
            if entry.value in seen_if:
                raise RuleAnalyzerError(
                    f"interface {entry.value!r} is bound to zone {name!r} and to zone {seen_if[entry.value]!r}: "
                    "firewalld refuses the configuration and falls back to its stock ruleset", entry.location,
                    hint="an interface belongs to one zone; remove one of the bindings")
            seen_if[entry.value] = name
        for entry in zone.sources:
            if entry.value in seen_src:
                raise RuleAnalyzerError(
                    f"source {entry.value!r} is bound to zone {name!r} and to zone {seen_src[entry.value]!r}: "
                    "firewalld refuses the configuration and falls back to its stock ruleset", entry.location)
            seen_src[entry.value] = name
            if entry.value.startswith("ipset:"):
                ipset = config.ipsets.get(entry.value[6:])
                if ipset is None:
                    raise RuleAnalyzerError(f"zone {name}: ipset {entry.value[6:]!r} does not exist",
                                            entry.location)
                if ipset.type not in fx.SOURCE_IPSET_TYPES:
                    raise RuleAnalyzerError(f"zone {name}: ipset {ipset.name} of type {ipset.type} cannot "
                                            "be a source", entry.location)
        for entry in zone.services:
            if entry.value not in config.services:
                raise RuleAnalyzerError(f"zone {name}: service {entry.value!r} does not exist (firewalld "
                                        "refuses the configuration)", entry.location)
        for entry in zone.icmp_blocks:
            if entry.value not in config.icmptypes:
                raise RuleAnalyzerError(f"zone {name}: icmptype {entry.value!r} does not exist", entry.location)
    for name, policy in config.policies.items():
        if policy.disabled is not None and version_tuple(config.version) < DISABLE_POLICIES:
            raise RuleAnalyzerError(f"policy {name}: <disable/> came with firewalld 2.4 (policy sets); firewalld "
                                    f"{config.version} refuses the file", policy.disabled.location,
                                    hint="give the host's firewalld version (--firewalld-version)")
        if len(name) > 18:
            raise RuleAnalyzerError(f"policy name {name!r} is longer than 18 characters: firewalld 1.3 "
                                    "refuses it", policy.location)
        for entry in policy.ingress + policy.egress:
            if entry.value not in ("ANY", "HOST") and entry.value not in config.zones:
                raise RuleAnalyzerError(f"policy {name}: zone {entry.value!r} does not exist", entry.location)
        names_in = {e.value for e in policy.ingress}
        names_out = {e.value for e in policy.egress}
        if not names_in or not names_out:
            continue
        if ("HOST" in names_in and len(names_in) > 1) or ("ANY" in names_in and len(names_in) > 1) or \
                ("HOST" in names_out and len(names_out) > 1) or ("ANY" in names_out and len(names_out) > 1):
            raise RuleAnalyzerError(f"policy {name}: ANY and HOST cannot be mixed with other zones",
                                    policy.location)
        if "HOST" in names_in and "HOST" in names_out:
            raise RuleAnalyzerError(f"policy {name}: HOST to HOST is not allowed", policy.location)
        for entry in policy.services:
            if entry.value not in config.services:
                raise RuleAnalyzerError(f"policy {name}: service {entry.value!r} does not exist", entry.location)


def compile_config(config: Config, diagnostics: list, name: str) -> Ruleset:
    """The :class:`Ruleset` of a loaded configuration."""
    from . import nftables

    backend = config.conf.get("FirewallBackend", "nftables").lower()
    if backend != "nftables":
        raise RuleAnalyzerError(f"FirewallBackend={backend}: only firewalld's nftables backend is modelled",
                                config.conf_where.get("FirewallBackend"),
                                hint="firewalld's iptables backend builds different chains; set "
                                     "FirewallBackend=nftables (the default since firewalld 0.6)")
    check_config(config)
    from .firewalld_compile2 import STRICT_FORWARD_PORTS

    for key, since in (("NftablesFlowtable", (2, 0)), ("NftablesCounters", (2, 0)), ("NftablesTableOwner", (2, 0))):
        if key in config.conf and version_tuple(config.version) < since:
            diagnostics.append((f"{key} came with firewalld {since[0]}.{since[1]}: firewalld {config.version} "
                                "logs an error and ignores it", config.conf_where.get(key)))
    if "NftablesCounters" in config.conf and config.conf["NftablesCounters"].lower() in ("yes", "true") and \
            is_2x(config.version):
        diagnostics.append(("NftablesCounters=yes: firewalld adds a counter to every rule; the model leaves "
                            "them out (they change no verdict)", config.conf_where.get("NftablesCounters")))
    if config.conf.get("StrictForwardPorts", "no").lower() in ("yes", "true") and \
            version_tuple(config.version) < STRICT_FORWARD_PORTS:
        diagnostics.append((f"StrictForwardPorts came with firewalld 2.3: firewalld {config.version} ignores it "
                            "and still accepts every DNATed connection (ct status dnat accept)",
                            config.conf_where.get("StrictForwardPorts")))
    for policy in config.policies.values():
        _policy_names(policy)
    compiler = (Compiler2 if is_2x(config.version) else Compiler)(config, diagnostics)
    compiler.compile()
    text, order = compiler.render()
    generated = f"{name} (firewalld's nft ruleset)"
    ruleset = nftables.parse(text, generated, check_names=False)  # ipset names are the admin's
    table = ruleset.tables[0]
    table.dialect = "firewalld"
    for chain_name, lines in order:
        chain = table.chains[chain_name]
        if len(chain.rules) != len(lines):  # one nft rule per line, by construction
            raise RuleAnalyzerError(f"internal: chain {chain_name} compiled to {len(lines)} lines, "
                                    f"read back as {len(chain.rules)} rules")
        for rule, line in zip(chain.rules, lines):
            rule.origin = line.origin
            rule.implicit = line.origin.generated
            if line.location is not None:
                rule.location = line.location
            rule.comment = rule.comment or None
        chain.policy_text = "firewalld: nothing decided here, the next chain or hook goes on"
    if config.direct is not None and (config.direct.rules or config.direct.chains or config.direct.passthroughs):
        from .firewalld_direct import direct_ruleset

        ruleset.merge(direct_ruleset(config.direct, diagnostics))
    ruleset.sources = [name]
    ruleset.meta["dialect"] = "firewalld"
    ruleset.meta["firewalld"] = {"nft": text, "version": config.version, "config": config,
                                 "layout": "2.x" if is_2x(config.version) else "1.x",
                                 "default_zone": compiler.default_zone,
                                 "active_zones": compiler.active_zones()}
    ruleset.diagnostics += [Diagnostic(message, where or Location(name)) for message, where in diagnostics]
    return ruleset


_VERSION: ContextVar[str | None] = ContextVar("firewalld_version", default=None)


@contextmanager
def version_for_files(version: str | None):
    """Files given alone (:func:`parse`) and configuration directories read
    without a version of their own compile to ``version``'s layout while
    this is in force (``load(..., firewalld_version=…)``, ``diff``)."""
    token = _VERSION.set(version)
    try:
        yield
    finally:
        _VERSION.reset(token)


def parse(text: str, name: str) -> Ruleset:
    """One firewalld file given alone: a zone or policy over the stock
    configuration, or a firewalld.conf over the stock zones."""
    stripped = text.lstrip("\ufeff \t\r\n")
    diagnostics: list = []
    given = _VERSION.get()
    objects = _stock(stock_version(given, diagnostics) if given else DEFAULT_VERSION)
    from . import firewalld_listall

    if firewalld_listall.looks_like(stripped):
        zones, policies, conf, where = firewalld_listall.read(text, name, objects, diagnostics)
        inferred = None if given else _listing_version_line(text, name)
        part = {"zones": zones, "policies": policies, "conf": conf, "where": where, "name": name,
                "version": given or ("2.0.0" if inferred else None), "version_at": inferred,
                "notes": diagnostics}
        try:
            ruleset = _compile_listings([part])
        except RuleAnalyzerError as exc:
            if not policies:
                raise
            # a policy listing may name zones only the zones' listing has: said once
            # every file is read (combine), raised if still missing then
            ruleset = Ruleset()
            ruleset.meta.update({"dialect": "firewalld", "pending": exc})
        ruleset.meta["firewall_cmd_listing"] = part
        return ruleset
    conf, where = {}, {}
    direct = None
    stem, problem = object_name(name)
    if not stripped.startswith("<"):
        conf, where = fx.read_conf(text, name)
    else:
        root = fx.parse_xml(text, name)
        if root.tag == "zone":
            zone = fx.read_zone(text, name, stem, diagnostics)
            zone.name_problem = problem
            if problem == "too-long":
                diagnostics.append((f"zone name {stem!r} has {len(stem)} characters: firewalld refuses zone names "
                                    f"longer than {fx.MAX_NAME}, so it never loads this file (read as if it did)",
                                    zone.location))
            elif problem == "unknown":
                diagnostics.append(("the file's name gives no zone name: read as zone 'custom' (fixes say "
                                    "<zone>)", zone.location))
            objects["zones"][stem] = zone
            if stem != conf.get("DefaultZone", "public") and not zone.interfaces and not zone.sources:
                conf["DefaultZone"] = stem
                diagnostics.append((f"zone {stem} given alone, with no interface or source: read as the "
                                    "default zone (give the whole /etc/firewalld to know what binds it)",
                                    zone.location))
        elif root.tag == "policy":
            objects["policies"][stem] = fx.read_policy(text, name, stem, diagnostics)
        elif root.tag == "service":
            objects["services"][stem] = fx.read_service(text, name, stem)
            diagnostics.append((f"service {stem} given alone: no zone uses it, so it opens nothing",
                                Location(name, 1, 1)))
        elif root.tag == "ipset":
            objects["ipsets"][stem] = fx.read_ipset(text, name, stem)
        elif root.tag == "icmptype":
            objects["icmptypes"][stem] = fx.read_icmptype(text, name, stem)
        elif root.tag == "helper":
            objects["helpers"][stem] = fx.read_helper(text, name, stem)
        elif root.tag == "direct":
            # Direct rules go into iptables tables beside firewalld's own
            # nft table, which filters the same packets: read them with the
            # stock zones, as for a zone given alone (their ACCEPT policies
            # alone would read as a host with no filter at all).
            direct = fx.read_direct(text, name)
            diagnostics.append(("direct.xml given alone: read beside firewalld's stock zones (give the whole "
                                "/etc/firewalld to know which zones filter the same packets)", Location(name, 1, 1)))
        else:
            raise RuleAnalyzerError(f"<{root.tag}> is not a firewalld document", root.location,
                                    hint="firewalld files are <zone>, <policy>, <service>, <ipset>, "
                                         "<icmptype>, <helper> and <direct>")
    config = Config(conf, where, objects["zones"], objects["policies"], objects["services"],
                    objects["ipsets"], objects["icmptypes"], objects["helpers"], direct, name,
                    given or DEFAULT_VERSION)
    return compile_config(config, diagnostics, name)


def _listing_version_line(text: str, name: str) -> Location | None:
    """Where a firewall-cmd listing shows it comes from firewalld 2.x (the
    ``ingress-priority:`` line 2.0 added), or None."""
    at = text.find("ingress-priority")
    if at < 0:
        return None
    start = text.rfind("\n", 0, at) + 1
    return Location(name, text.count("\n", 0, at) + 1, at - start + 1)


def _compile_listings(parts: list[dict]) -> Ruleset:
    """firewall-cmd listings (zones, policies) read together as one host."""
    versions = [p["version"] for p in parts if p["version"]]
    at = next((p.get("version_at") for p in parts if p["version"]), None)
    diagnostics: list = []
    objects = _stock(stock_version(versions[0], diagnostics, at) if versions else DEFAULT_VERSION)
    conf, where, notes = {}, {}, []
    for p in parts:
        objects["zones"].update(p["zones"])
        objects["policies"].update(p["policies"])
        if p["conf"]:
            conf, where = p["conf"], p["where"]
        notes += p["notes"]
    name = " + ".join(p["name"] for p in parts)
    notes = list({message: (message, at) for message, at in notes + diagnostics}.values())
    config = Config(conf, where, objects["zones"], objects["policies"], objects["services"], objects["ipsets"],
                    objects["icmptypes"], objects["helpers"], None, name, versions[0] if versions else DEFAULT_VERSION)
    return compile_config(config, notes, name)


def combine(rulesets: list[Ruleset]) -> list[Ruleset]:
    """firewall-cmd listings given together (``--list-all-zones`` and
    ``--list-all-policies``) are one host; other firewalld input passes."""
    parts = [r for r in rulesets if r.meta.get("firewall_cmd_listing")]
    pending = [r.meta["pending"] for r in parts if r.meta.get("pending")]
    if len(parts) < 2:
        if pending:
            exc = pending[0]
            raise RuleAnalyzerError(exc.message, exc.location,
                                    hint="give the zones' listing (firewall-cmd --list-all-zones) with the "
                                         "policies' listing")
        return rulesets
    host = _compile_listings([r.meta["firewall_cmd_listing"] for r in parts])
    host.meta["firewall_cmd_listing"] = None
    return [host] + [r for r in rulesets if not r.meta.get("firewall_cmd_listing")]


def object_name(path: str) -> tuple[str, str | None]:
    """The zone (or policy) name a file given alone stands for, and what is
    wrong with it. A copied tree flattened with ``__`` keeps its name in the
    last part (``owner__repo__zones__public.xml`` is zone public); a name
    firewalld would refuse for its length is kept and said (``too-long``);
    a file named for something else reads as ``custom`` (``unknown``)."""
    base = Path(path).name.rsplit("__", 1)[-1]
    stem = base[:-4] if base.endswith(".xml") else base
    if not re.fullmatch(r"[A-Za-z0-9_\-]+", stem or ""):
        return "custom", "unknown"
    if len(stem) > fx.MAX_NAME:
        return stem, "too-long"
    return stem, None


def origin_text(rule) -> str:
    """How a rule reads in firewalld's terms (for reports)."""
    origin: Origin | None = rule.origin
    return str(origin) if origin else str(rule)
