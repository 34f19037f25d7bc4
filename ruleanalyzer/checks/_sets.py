"""Small packet-set helpers the check families share (raw BDD nodes of a
context's space): a field's variables, header constants, and the decision
behind a witness."""

from __future__ import annotations

import ipaddress

from ..model import AddressMatch, Rule
from ..space.encode import encode_bounds


def field_vars(space, name: str) -> list[str]:
    spec = space.spec(name)
    if spec.kind == "set":
        return spec.vars_msb_first
    return [spec.var(b) for b in range(spec.width)]


def state_is(space, *names: str):
    spec = space.spec("state")
    return space.one_of("state", [spec.names.index(n) for n in names if n in spec.names])


def tcp_flags(space, flags: int):
    """TCP packets whose flags byte (with AE) is exactly ``flags``."""
    return space.eq("proto", 6) & space.eq("fragment", 0) & space.eq("flags", flags)


def networks(space, field: str, *cidrs: str):
    """Packets whose ``field`` lies in one of ``cidrs``."""
    nets = tuple(ipaddress.ip_network(c) for c in cidrs)
    return encode_bounds(AddressMatch(field, nets), space)[0]


def iface(space, field: str, name: str):
    spec = space.spec(field)
    if name not in spec.names:
        return space.false
    return space.eq(field, spec.names.index(name))


def decided_by(ctx, packet):
    """``(result, rule_or_None, chain)`` of evaluating ``packet``."""
    result = ctx.evaluator.evaluate(packet)
    d = result.decided_by
    return result, (d.rule if d else None), (d.chain if d else None)


def is_user_rule(rule: Rule | None) -> bool:
    return rule is not None and not rule.implicit
