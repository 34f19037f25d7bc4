"""Finding a jump loop among a table's chains, in linear time.

Both kernels refuse a ruleset in which a chain can reach itself through
jumps and gotos (iptables-restore: "Too many levels of symbolic links",
nft: "Could not process rule: Too many levels of symbolic links", ELOOP), so
the readers refuse it too, at the jump that closes the loop. Real rulesets
have long jump chains (kube-proxy, generated per-host chains; the hostile
tests use a 100k-chain C0 -> C1 -> ... chain), so the search is an
iterative depth-first search — no recursion to overflow, every edge looked
at once.
"""

from __future__ import annotations

from typing import Hashable, Sequence

__all__ = ["find_loop", "loop_path"]


def find_loop(edges: Sequence[tuple[Hashable, Hashable]]) -> list[int] | None:
    """Indices into ``edges`` (``(from, to)`` pairs, in file order) of one
    loop, or None when the graph has none.

    The edges are given in loop order (each ends where the next starts) and
    rotated so that the last one is the latest in ``edges`` among them: the
    jump that closes the loop when the rules are added in file order.
    Linear in the number of edges; a self-jump is a loop of one edge."""
    if _no_loop_by_pruning(edges):
        return None
    return _search(edges)


def _search(edges: Sequence[tuple[Hashable, Hashable]]) -> list[int] | None:
    """:func:`find_loop`'s depth-first search."""
    out: dict[Hashable, list[int]] = {}
    for i, (a, _) in enumerate(edges):
        lst = out.get(a)
        if lst is None:
            out[a] = [i]
        else:
            lst.append(i)
    ON_PATH, DONE = 1, 2
    state: dict[Hashable, int] = {}
    for root in out:  # in order of first appearance: deterministic answers
        if root in state:
            continue
        state[root] = ON_PATH
        path: list[Hashable] = [root]       # the nodes of the current path
        via: list[int] = []                 # via[k]: the edge from path[k] to path[k + 1]
        pending = [iter(out[root])]         # the unexplored edges of each node on the path
        while pending:
            for i in pending[-1]:
                b = edges[i][1]
                seen = state.get(b)
                if seen is None:
                    following = out.get(b)
                    if following is None:
                        state[b] = DONE  # jumps nowhere: on no loop
                        continue
                    state[b] = ON_PATH
                    path.append(b)
                    via.append(i)
                    pending.append(iter(following))
                    break
                if seen == ON_PATH:
                    loop = via[path.index(b):] + [i]
                    last = loop.index(max(loop))
                    return loop[last + 1:] + loop[:last + 1]
            else:  # every edge of the top node explored
                state[path.pop()] = DONE
                pending.pop()
                if via:
                    via.pop()
    return None


def _no_loop_by_pruning(edges: Sequence[tuple[Hashable, Hashable]], rounds: int = 8) -> bool:
    """True when dropping, a few times over, the edges that leave a node
    nothing jumps to or reach a node that jumps nowhere leaves no edge: a
    loop's edges are never dropped, so there is none. Set operations per
    round instead of a step per edge of the search (a kube-proxy nat table:
    70k jumps, 3 rounds, 4x faster); False (search) when edges remain after
    ``rounds`` (long jump chains would need one round per link)."""
    live = edges
    for _ in range(rounds):
        if not live:
            return True
        sources = {a for a, _ in live}
        targets = {b for _, b in live}
        kept = [e for e in live if e[1] in sources and e[0] in targets]
        if len(kept) == len(live):
            return False
        live = kept
    return not live


def loop_path(edges: Sequence[tuple[Hashable, Hashable]], loop: list[int]) -> str:
    """``A -> B -> A`` for a loop found by :func:`find_loop`."""
    names = [str(edges[loop[0]][0])] + [str(edges[i][1]) for i in loop]
    return " -> ".join(names)
