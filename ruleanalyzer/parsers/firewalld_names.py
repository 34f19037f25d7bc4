"""A firewalld-generated ``nft list ruleset`` named back to zones and policies.

firewalld's chain names encode what they are for (1.x layout):
``filter_IN_public_allow`` is zone public's traffic to the host, the part
holding services, ports and accept rich rules; ``filter_FWD_policy_lan-out``
is policy lan-out; ``*_ZONES`` and ``*_POLICIES_pre/post`` dispatch (2.x:
one ``*_POLICIES`` chain per hook, ``filter_OUT_<zone>`` for the host's
own traffic, ``filter_*_dnat`` with StrictForwardPorts). Rules in
a zone's or policy's parts are the user's (``generated=False``); the base
chains, dispatch chains and the jumps between them are firewalld's stock
scaffolding. Origins a reader or an earlier pass set are kept.
"""

from __future__ import annotations

import re

from ..model import Origin, Ruleset

_PART = re.compile(r"^(filter|nat|mangle)_(IN|FWD|PRE|POST|OUT)_(?P<name>.+?)(_(?P<part>pre|log|deny|allow|post))?$")
_DIRECTION = {"IN": "to the host", "FWD": "forwarded", "PRE": "prerouting (DNAT, marks)",
              "POST": "postrouting (masquerade)", "OUT": "from the host"}


def name_back(ruleset: Ruleset) -> int:
    """Set origins on ``table inet firewalld`` rules; returns how many."""
    named = 0
    for table in ruleset.tables:
        if table.name != "firewalld" or table.family != "inet":
            continue
        for chain in table.chains.values():
            m = _PART.match(chain.name)
            if m and not chain.name.endswith(("_ZONES", "_POLICIES_pre", "_POLICIES_post")):
                name = m.group("name")
                owner = f"policy {name[7:]}" if name.startswith("policy_") else f"zone {name}"
                part = m.group("part")
                what = f"{owner}, {_DIRECTION[m.group(2)]}" + (f", {part} rules" if part else "")
                user = part is not None
            else:
                what, user = f"firewalld chain {chain.name}", False
            for rule in chain.rules:
                if rule.origin is None:
                    rule.origin = Origin("firewalld", f"{what}: {rule}", generated=not user)
                    named += 1
    return named
