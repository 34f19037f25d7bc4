"""The topology file: nodes, links and the firewalls that apply where.

A topology (YAML, documented in ``docs/topology.md``) names the places a
connection crosses — hosts, routers, subnets, "the internet" — with their
addresses, the links between them, and, per node, the firewalls in front of
it, outermost first. :func:`load_topology` reads it into a :class:`Topology`:
a networkx graph whose nodes carry :class:`Node` objects with their loaded
:class:`Firewall` layers.

Two kinds of firewall layer exist, because they sit differently on a path:

- ``netfilter`` — a Linux host's own rules (iptables, nftables, ufw): one
  evaluation per crossing, on the hook the kernel would use (``output`` where
  the packet starts, ``input`` where it is addressed to the host, ``forward``
  where the host routes it), with NAT;
- ``boundary`` — a cloud firewall (security group, network ACL, GCP rules,
  NSG) guarding the edge of an instance or a subnet: its ``ingress`` chain
  (hook ``input``) filters what enters, its ``egress`` chain (hook
  ``output``) what leaves.

Rule files are named relative to the topology file and must stay inside its
directory tree; a ``../`` escape (or a symlink leading out) is refused with
a located error. A file used by several nodes is parsed once.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx
import yaml

from .errors import RuleAnalyzerError, line_of
from .loader import DEFAULT_MAX_BYTES, load, read_text
from .model import IPAddress, IPNetwork, Location, Ruleset
# The cloud readers' SafeLoader already refuses alias bombs; reuse it.
from .safeyaml import load_yaml_node, located_errors

NODE_KINDS = ("host", "router", "subnet", "internet")
CLOUD_DIALECTS = ("aws-sg", "aws-nacl", "gcp", "azure")
#: Cloud dialects with no connection state: replies need their own rules.
STATELESS_DIALECTS = frozenset({"aws-nacl"})

_TOP_KEYS = ("name", "description", "nodes", "links")
_NODE_KEYS = ("kind", "address", "addresses", "network", "networks", "interfaces", "subnet",
              "firewalls", "description")
_FIREWALL_KEYS = ("name", "file", "files", "dialect", "target", "inventory")
_LINK_KEYS = ("between", "cost")


# ---------------------------------------------------------------------------
# The model of a topology
# ---------------------------------------------------------------------------


@dataclass(eq=False)
class Firewall:
    """One firewall layer of a node: the rules, where they came from, and
    how they sit on a path (``netfilter`` or ``boundary``)."""

    name: str
    ruleset: Ruleset
    kind: str
    files: tuple[str, ...]
    location: Location
    dialects: tuple[str, ...] = ()

    @property
    def stateful(self) -> bool:
        """Does this layer remember connections (conntrack, SG, NSG, GCP)?"""
        return not (set(self.dialects) and set(self.dialects) <= STATELESS_DIALECTS)


@dataclass(eq=False)
class Node:
    """A place on the network with its addresses and firewalls."""

    name: str
    kind: str = "host"
    addresses: tuple[IPAddress, ...] = ()
    networks: tuple[IPNetwork, ...] = ()
    #: Interface name → the neighbour it faces.
    interfaces: dict[str, str] = field(default_factory=dict)
    #: Interface name → its own address, where given (MASQUERADE uses it).
    interface_addresses: dict[str, IPAddress] = field(default_factory=dict)
    #: The subnet node this node sits in, if declared.
    subnet: str | None = None
    #: Outermost first: entering packets meet them in this order.
    firewalls: list[Firewall] = field(default_factory=list)
    location: Location | None = None

    def interface_to(self, neighbour: str | None) -> str | None:
        """The interface facing ``neighbour`` (None when not named)."""
        if neighbour is None:
            return None
        for name, peer in self.interfaces.items():
            if peer == neighbour:
                return name
        return None

    def source_address(self, interface: str | None, toward: IPAddress) -> IPAddress | None:
        """The address this node sends from on ``interface`` (what
        MASQUERADE picks): the interface's own address when given, else the
        node's address sharing the longest prefix with ``toward``."""
        if interface in self.interface_addresses:
            return self.interface_addresses[interface]
        same = [a for a in self.addresses if a.version == toward.version]
        if not same:
            return None
        # Fewest differing high bits = longest common prefix.
        return min(same, key=lambda a: (int(a) ^ int(toward)).bit_length())

    def owns(self, address: IPAddress) -> bool:
        return address in self.addresses

    @property
    def address(self) -> IPAddress | None:
        return self.addresses[0] if self.addresses else None


@dataclass(eq=False)
class Topology:
    """Nodes and links as a networkx graph (node attribute ``node``, edge
    attribute ``cost``)."""

    graph: nx.Graph
    source: str
    name: str = ""

    @property
    def nodes(self) -> dict[str, Node]:
        return {n: data["node"] for n, data in self.graph.nodes(data=True)}

    def node(self, name: str) -> Node:
        """The node called ``name``; a misspelling gets a suggestion."""
        if name in self.graph:
            return self.graph.nodes[name]["node"]
        close = difflib.get_close_matches(name, list(self.graph), n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"nodes: {', '.join(self.graph)}"
        raise RuleAnalyzerError(f"no node named {name!r} in {self.source}", hint=hint)

    def owner(self, address: IPAddress) -> Node | None:
        """The node holding ``address`` (hosts and routers), if any."""
        for node in self.nodes.values():
            if node.owns(address):
                return node
        return None

    def is_member(self, subnet: Node, node: Node | None) -> bool:
        """Is ``node`` inside ``subnet`` (declared, or a host addressed in it)?"""
        if node is None:
            return False
        if node.subnet is not None:
            return node.subnet == subnet.name
        if node.kind != "host":
            return False
        return any(addr in net for addr in node.addresses for net in subnet.networks
                   if addr.version == net.version)

    def routes(self, source: str, target: str, limit: int = 16) -> list[list[str]]:
        """Every least-cost route from ``source`` to ``target`` (at most
        ``limit``, in a stable order)."""
        self.node(source), self.node(target)
        if source == target:
            return [[source]]
        try:
            found = nx.all_shortest_paths(self.graph, source, target, weight="cost")
            routes = []
            for route in found:
                routes.append(route)
                if len(routes) >= limit:
                    break
        except nx.NetworkXNoPath:
            raise RuleAnalyzerError(f"no route from {source!r} to {target!r} in {self.source}",
                                    hint="link the nodes (links:, interfaces: or subnet:)") from None
        return sorted(routes)


# ---------------------------------------------------------------------------
# Reading YAML with positions
# ---------------------------------------------------------------------------


class _Map(dict):
    """A YAML mapping that remembers where it and each of its keys were."""

    mark: tuple[int, int] = (1, 1)
    key_marks: dict


class _List(list):
    """A YAML sequence that remembers where it and each item were."""

    mark: tuple[int, int] = (1, 1)

    def __init__(self, *args):
        super().__init__(*args)
        self.item_marks: list = []


class _Str(str):
    mark: tuple[int, int] = (1, 1)


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _convert(loader: yaml.SafeLoader, node: yaml.Node, depth: int = 0) -> Any:
    """Plain Python values from a composed YAML node, keeping positions."""
    if depth > 100:
        raise RecursionError
    if isinstance(node, yaml.MappingNode):
        out = _Map()
        out.mark, out.key_marks = _mark(node), {}
        for key_node, value_node in node.value:
            key = _convert(loader, key_node, depth + 1)
            if isinstance(key, (dict, list)):
                raise _located_at(loader.name, _mark(key_node), "a mapping key must be a name")
            out[key] = _convert(loader, value_node, depth + 1)
            out.key_marks[key] = _mark(key_node)
        return out
    if isinstance(node, yaml.SequenceNode):
        out = _List()
        out.mark, out.item_marks = _mark(node), []
        for item in node.value:
            out.append(_convert(loader, item, depth + 1))
            out.item_marks.append(_mark(item))
        return out
    value = loader.construct_object(node, deep=True)
    if isinstance(value, str):
        value = _Str(value)
        value.mark = _mark(node)
    return value


def _located_at(name: str, mark: tuple[int, int], message: str) -> RuleAnalyzerError:
    return RuleAnalyzerError(message, Location(name, mark[0], mark[1]))


def _read_yaml(text: str, name: str) -> Any:
    loader, node = load_yaml_node(text, name)
    try:
        with located_errors(text, name):  # _convert refuses absurd nesting
            return None if node is None else _convert(loader, node)
    finally:
        loader.dispose()


# ---------------------------------------------------------------------------
# Building a topology
# ---------------------------------------------------------------------------


class _Builder:
    """Reads one topology document into a graph, loading firewalls once."""

    def __init__(self, text: str, name: str, base: Path, max_bytes: int):
        self.text, self.name, self.base, self.max_bytes = text, name, base.resolve(), max_bytes
        self._loaded: dict[tuple, Ruleset] = {}

    # -- errors -------------------------------------------------------------

    def error(self, where: Any, message: str, hint: str | None = None) -> RuleAnalyzerError:
        mark = where if isinstance(where, tuple) else getattr(where, "mark", (1, 1))
        return RuleAnalyzerError(message, Location(self.name, mark[0], mark[1]),
                                 source_line=line_of(self.text, mark[0]), hint=hint)

    def key_error(self, mapping: _Map, key: str, message: str, hint: str | None = None):
        return self.error(mapping.key_marks.get(key, mapping.mark), message, hint)

    def check_keys(self, mapping: Any, allowed: tuple[str, ...], what: str) -> _Map:
        if not isinstance(mapping, dict):
            raise self.error(mapping if hasattr(mapping, "mark") else (1, 1),
                             f"{what} should be a mapping (key: value lines)")
        for key in mapping:
            if key not in allowed:
                close = difflib.get_close_matches(str(key), allowed, n=1)
                raise self.key_error(mapping, key, f"unknown key {key!r} in {what}",
                                     hint=f"did you mean {close[0]!r}?" if close
                                     else f"known keys: {', '.join(allowed)}")
        return mapping

    def strings(self, mapping: _Map, single: str, plural: str, what: str) -> list[_Str]:
        """``single: x`` or ``plural: [x, y]`` as a list of strings."""
        values: list = []
        if single in mapping and plural in mapping:
            raise self.key_error(mapping, plural, f"give either {single!r} or {plural!r} in {what}")
        if single in mapping:
            values = [mapping[single]]
            marks = [mapping.key_marks[single]]
        elif plural in mapping:
            seq = mapping[plural]
            if not isinstance(seq, list):
                raise self.key_error(mapping, plural, f"{plural} should be a list in {what}")
            values, marks = list(seq), list(seq.item_marks)
        else:
            return []
        out = []
        for value, mark in zip(values, marks):
            if isinstance(value, bool) or not isinstance(value, (str, int)):
                raise self.error(mark, f"expected a single value in {what}, found {type(value).__name__}")
            s = _Str(str(value))
            s.mark = getattr(value, "mark", mark)
            out.append(s)
        return out

    # -- document ---------------------------------------------------------------

    def build(self, doc: Any) -> Topology:
        if doc is None:
            raise RuleAnalyzerError("empty topology file", Location(self.name, 1, 1),
                                    hint="a topology needs nodes: and links: (see docs/topology.md)")
        top = self.check_keys(doc, _TOP_KEYS, "the topology")
        nodes = top.get("nodes")
        if not isinstance(nodes, dict) or not nodes:
            raise self.key_error(top, "nodes", "the topology needs a non-empty 'nodes:' mapping")
        graph = nx.Graph()
        for key, spec in nodes.items():
            node = self.node(str(key), spec, nodes.key_marks[key])
            graph.add_node(node.name, node=node)
        for node in [d["node"] for _, d in graph.nodes(data=True)]:
            for iface, peer in node.interfaces.items():
                self.link(graph, node.name, peer, 1, getattr(peer, "mark", None))
            if node.subnet is not None:
                self.link(graph, node.name, node.subnet, 1, getattr(node.subnet, "mark", None))
                if graph.nodes[node.subnet]["node"].kind != "subnet":
                    raise self.error(node.subnet, f"{node.subnet!r} is not a subnet node")
        links = top.get("links") or _List()
        if not isinstance(links, list):
            raise self.key_error(top, "links", "links should be a list")
        for item, mark in zip(links, links.item_marks):
            self.link_item(graph, item, mark)
        return Topology(graph, self.name, str(top.get("name") or ""))

    def link_item(self, graph: nx.Graph, item: Any, mark: tuple[int, int]) -> None:
        cost = 1
        if isinstance(item, dict):
            self.check_keys(item, _LINK_KEYS, "a link")
            ends = item.get("between")
            cost = item.get("cost", 1)
            if isinstance(cost, bool) or not isinstance(cost, (int, float)) or cost <= 0:
                raise self.key_error(item, "cost", "a link's cost should be a positive number")
        else:
            ends = item
        if not isinstance(ends, list) or len(ends) != 2 or not all(isinstance(e, str) for e in ends):
            raise self.error(mark, "a link names two nodes: [a, b] or {between: [a, b], cost: N}")
        self.link(graph, ends[0], ends[1], cost, mark)

    def link(self, graph: nx.Graph, a: str, b: str, cost, mark) -> None:
        for end in (a, b):
            if end not in graph:
                close = difflib.get_close_matches(str(end), list(graph), n=1)
                raise self.error(getattr(end, "mark", mark) or (1, 1),
                                 f"link to unknown node {end!r}",
                                 hint=f"did you mean {close[0]!r}?" if close else None)
        if a == b:
            raise self.error(mark or (1, 1), f"a link from {a!r} to itself")
        if graph.has_edge(a, b):
            cost = min(cost, graph.edges[a, b]["cost"])
        graph.add_edge(str(a), str(b), cost=cost)

    # -- nodes ----------------------------------------------------------------

    def node(self, name: str, spec: Any, mark: tuple[int, int]) -> Node:
        if spec is None:
            spec = _Map()
            spec.mark, spec.key_marks = mark, {}
        what = f"node {name!r}"
        self.check_keys(spec, _NODE_KEYS, what)
        kind = str(spec.get("kind", "internet" if name == "internet" else "host"))
        if kind not in NODE_KINDS:
            raise self.key_error(spec, "kind", f"unknown node kind {kind!r}",
                                 hint=f"kinds: {', '.join(NODE_KINDS)}")
        node = Node(name, kind, location=Location(self.name, *mark))
        node.addresses = tuple(self.address(v) for v in self.strings(spec, "address", "addresses", what))
        node.networks = tuple(self.network(v) for v in self.strings(spec, "network", "networks", what))
        if kind == "internet" and not node.networks:
            node.networks = (ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0"))
        if kind == "subnet" and not node.networks:
            raise self.error(mark, f"subnet {name!r} needs network: or networks:")
        interfaces = spec.get("interfaces", {})
        if interfaces:
            if not isinstance(interfaces, dict):
                raise self.key_error(spec, "interfaces", "interfaces maps interface names to "
                                     "the neighbour they face: {eth0: router}")
            for iface, peer in interfaces.items():
                if isinstance(peer, dict):
                    # {to: neighbour, address: the interface's own address}
                    self.check_keys(peer, ("to", "address"), f"interface {iface!r}")
                    if "address" in peer:
                        addr = self.address(peer["address"])
                        node.interface_addresses[str(iface)] = addr
                        node.addresses += (addr,)
                    peer = peer.get("to")
                if not isinstance(peer, str):
                    raise self.error(interfaces.key_marks[iface],
                                     f"interface {iface!r} should name the neighbour node it faces",
                                     hint="eth0: router, or eth0: {to: router, address: 192.0.2.1}")
                node.interfaces[str(iface)] = peer
        if "subnet" in spec:
            if not isinstance(spec["subnet"], str):
                raise self.key_error(spec, "subnet", "subnet names the subnet node this node is in")
            node.subnet = spec["subnet"]
        firewalls = spec.get("firewalls") or _List()
        if not isinstance(firewalls, list):
            raise self.key_error(spec, "firewalls", "firewalls should be a list (outermost first)")
        for item, item_mark in zip(firewalls, firewalls.item_marks):
            node.firewalls.append(self.firewall(node, item, item_mark))
        if sum(fw.kind == "netfilter" for fw in node.firewalls) > 1:
            raise self.key_error(spec, "firewalls",
                                 f"node {name!r} has two host firewalls",
                                 hint="give the files of one host together in one entry "
                                      "(files: [rules.v4, ruleset.nft])")
        if kind == "subnet" and any(fw.kind == "netfilter" for fw in node.firewalls):
            raise self.key_error(spec, "firewalls", f"subnet {name!r} cannot have a host firewall",
                                 hint="put iptables/nftables rules on a host or router node")
        return node

    def address(self, value: _Str) -> IPAddress:
        try:
            return ipaddress.ip_address(str(value).strip())
        except ValueError:
            raise self.error(value, f"not an IP address: {str(value)!r}") from None

    def network(self, value: _Str) -> IPNetwork:
        try:
            return ipaddress.ip_network(str(value).strip(), strict=False)
        except ValueError:
            raise self.error(value, f"not a network (CIDR): {str(value)!r}") from None

    # -- firewalls -------------------------------------------------------------

    def firewall(self, node: Node, spec: Any, mark: tuple[int, int]) -> Firewall:
        if isinstance(spec, str):
            as_map = _Map({"file": spec})
            as_map.mark, as_map.key_marks = mark, {"file": mark}
            spec = as_map
        what = f"a firewall of node {node.name!r}"
        self.check_keys(spec, _FIREWALL_KEYS, what)
        files = self.strings(spec, "file", "files", what)
        if not files:
            raise self.error(mark, f"{what} names no rule file", hint="file: rules.v4")
        paths = tuple(self.inside(f) for f in files)
        dialect = spec.get("dialect")
        if dialect is not None:
            dialect = str(dialect)
        target = spec.get("target")
        inventory = self.inside(spec["inventory"]) if "inventory" in spec else None
        ruleset = self.load(paths, dialect, None if target is None else str(target), inventory)
        dialects = tuple(sorted({t.dialect for t in ruleset.tables if t.dialect}
                                | ({ruleset.meta["dialect"]} if "dialect" in ruleset.meta else set())))
        cloud = [d for d in dialects if d in CLOUD_DIALECTS]
        if cloud and len(cloud) != len(dialects):
            raise self.error(mark, f"{what} mixes cloud rules ({', '.join(cloud)}) with host rules",
                             hint="list them as two firewalls of the node")
        label = str(spec.get("name") or (f"{' '.join(cloud)} {target}" if cloud and target
                                         else ", ".join(os.path.basename(p) for p in files)))
        return Firewall(label, ruleset, "boundary" if cloud else "netfilter",
                        tuple(str(p) for p in paths), Location(self.name, *mark), dialects)

    def inside(self, value: Any) -> str:
        """``value`` resolved against the topology's directory, refusing escapes."""
        mark = getattr(value, "mark", (1, 1))
        text = str(value)
        resolved = (self.base / text).resolve()
        if resolved != self.base and self.base not in resolved.parents:
            raise self.error(mark, f"rule file {text!r} is outside the topology's directory "
                                   f"{self.base}", hint="keep rule files next to the topology "
                                                        "file or below it")
        if not resolved.is_file():
            raise self.error(mark, f"no such file: {text!r} (looked in {self.base})")
        # Relative to the working directory: reports then name files as the user sees them.
        return os.path.relpath(resolved)

    def load(self, paths: tuple[str, ...], dialect: str | None, target: str | None,
             inventory: str | None) -> Ruleset:
        key = (paths, dialect, target, inventory)
        if key in self._loaded:
            return self._loaded[key]
        base_key = (paths, dialect)
        ruleset = self._loaded.get(base_key)
        if ruleset is None:
            ruleset = load(*paths, dialect=dialect, max_bytes=self.max_bytes)
            self._loaded[base_key] = ruleset
        if target is not None or inventory is not None or any(
                t.dialect in CLOUD_DIALECTS for t in ruleset.tables):
            from .targets import select_target

            inv = None
            if inventory is not None:
                from .inventory import apply_inventory, load_inventory

                inv = load_inventory(inventory)
                # Named references (sg-web, tags) become the inventory's CIDRs.
                ruleset = apply_inventory(ruleset, inv)
            ruleset = select_target(ruleset, target, inv)
        self._loaded[key] = ruleset
        return ruleset


def parse_topology(text: str, name: str = "<topology>", base: str | os.PathLike = ".",
                   max_bytes: int = DEFAULT_MAX_BYTES) -> Topology:
    """A topology from YAML ``text``; rule files resolve against ``base``."""
    builder = _Builder(text, name, Path(base), max_bytes)
    return builder.build(_read_yaml(text, name))


def load_topology(path: str | os.PathLike, max_bytes: int = DEFAULT_MAX_BYTES) -> Topology:
    """Read the topology file at ``path`` and every rule file it names.

    >>> topo = load_topology("fixtures/topologies/docker-ufw/topology.yaml")  # doctest: +SKIP
    >>> topo.routes("laptop", "db-host")                                     # doctest: +SKIP
    [['laptop', 'internet', 'db-host']]
    """
    text = read_text(path, max_bytes)
    return parse_topology(text, str(path), Path(path).parent, max_bytes)
