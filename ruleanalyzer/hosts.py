"""Files that form one host, found among the files of one audit call:
``rules.v4`` + ``rules.v6`` (iptables-persistent), ``iptables-save`` +
``ip6tables-save`` dumps of one host, an ``/etc/ufw`` directory (user
rules of both families, before/after rules, ``ufw.conf``, application
profiles, ``/etc/default/ufw``). Audited together, checks that need the
whole host (RA207: IPv6 left open while IPv4 is filtered) can fire, and
ufw's files make one firewall instead of several unreadable ones.
``/etc/nftables.conf`` and the files it includes are one host too; that
is settled at load time (:func:`included_files`), since only the parser
knows what a file includes.

    >>> host_groups(["etc/iptables/rules.v4", "etc/iptables/rules.v6", "other.nft"])
    [['etc/iptables/rules.v4', 'etc/iptables/rules.v6']]
    >>> host_groups(["e/ufw/user.rules", "e/ufw/user6.rules", "e/ufw/ufw.conf",
    ...              "e/ufw/applications.d/nginx", "e/default/ufw"])[0][-1]
    'e/default/ufw'
"""

from __future__ import annotations

import re
from pathlib import PurePath

#: Pairs of names that differ only in the IP version: (IPv4 form, IPv6 form).
_FAMILY_PAIRS = (("rules.v4", "rules.v6"), ("iptables", "ip6tables"), ("ipv4", "ipv6"),
                 ("v4", "v6"))
#: Files of an ufw configuration directory (``/etc/ufw``; ufw's source tree has them in ``conf/``).
UFW_FILES = frozenset({"user.rules", "user6.rules", "before.rules", "before6.rules", "after.rules",
                       "after6.rules", "ufw.conf", "ufw.defaults", "sysctl.conf"})
_UFW_USER = ("user.rules", "user6.rules")


def _parts(path: str) -> tuple[str, ...]:
    """Path components; a name flattened with ``__`` (``etc__ufw__user.rules``)
    is split too, so a copied tree is recognised like the original."""
    out: list[str] = []
    for part in PurePath(path).parts:
        out += [p for p in part.split("__") if p]
    return tuple(out)


def host_groups(paths: list[str]) -> list[list[str]]:
    """Groups (two files or more) of ``paths`` that form one host, each in
    the order given; a file is in at most one group."""
    groups = _ufw_groups(paths)
    taken = {p for g in groups for p in g}
    groups += _family_pairs([p for p in paths if p not in taken])
    order = {p: i for i, p in enumerate(paths)}
    return sorted((sorted(g, key=order.get) for g in groups), key=lambda g: order[g[0]])


def _ufw_groups(paths: list[str]) -> list[list[str]]:
    by_dir: dict[tuple, dict[str, list[str]]] = {}
    for p in paths:
        parts = _parts(p)
        if len(parts) >= 2 and parts[-1] in UFW_FILES:
            by_dir.setdefault(parts[:-1], {}).setdefault("main", []).append(p)
        elif len(parts) >= 3 and parts[-2] == "applications.d":
            by_dir.setdefault(parts[:-2], {}).setdefault("apps", []).append(p)
        elif len(parts) >= 2 and parts[-2:] == ("default", "ufw"):
            by_dir.setdefault(parts[:-2] + ("ufw",), {}).setdefault("default", []).append(p)
    groups = []
    for where, files in by_dir.items():
        main = files.get("main", [])
        if not any(_parts(p)[-1] in _UFW_USER for p in main):
            continue  # no rules of the user's: before.rules alone is a template
        groups.append(main + files.get("apps", []) + files.get("default", []))
    return groups


def _family_pairs(paths: list[str]) -> list[list[str]]:
    by_name = {(str(PurePath(p).parent), PurePath(p).name): p for p in paths}
    groups = []
    used: set[str] = set()
    for (parent, name), p in by_name.items():
        if p in used:
            continue
        for v4, v6 in _FAMILY_PAIRS:
            if v4 not in name or v6 in name:
                continue
            twin = _swap(name, v4, v6)
            other = by_name.get((parent, twin)) if twin != name else None
            if other is not None and other not in used:
                groups.append([p, other])
                used.update((p, other))
                break
    return groups


def _swap(name: str, v4: str, v6: str) -> str:
    """``name`` with its IPv4 word replaced by the IPv6 one (the first
    occurrence standing as a word of its own)."""
    return re.sub(rf"(?<![A-Za-z0-9]){re.escape(v4)}(?![0-9])", v6, name, count=1)


def included_files(ruleset) -> set[str]:
    """Files other than the ones loaded whose rules ``ruleset`` holds (an
    nft ``include``): they are part of this host, not hosts of their own."""
    sources = set(ruleset.sources)
    return {r.location.file for r in ruleset.rules()
            if r.location.file and r.location.file not in sources}
