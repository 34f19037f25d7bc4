"""``f ⊆ g`` without building ``f ∧ ¬g``: CUDD's ``Cudd_bddLeq``.

dd binds CUDD's operators that build BDDs but not ``Cudd_bddLeq``, which
answers inclusion (so disjointness: ``f ∧ g = ∅`` iff ``f ⊆ ¬g``) by a walk
that stops at the first counter-example and creates no node. The audit asks
that question once per rule, about small sets against the validity
constraint; building the intersection costs ~50× more.

The function is reached through ctypes in the very extension module dd
loaded (it exports CUDD's symbols), with the manager and node pointers read
from dd's objects; the object layout is checked against dd's version and
the result against dd's own operators on a few sets before it is trusted.
Anything unexpected (another dd version, the pure-Python backend, a failed
self-test) returns None, and callers build the intersection instead.

:func:`count_for` reaches ``Cudd_CountMinterm`` the same way, to count a
set's packets with CUDD's garbage collection held off (see there), and
:func:`collector_for` CUDD's own garbage collection, run where an analysis
has just let go of many sets.
"""

from __future__ import annotations

import ctypes
import sys
from array import array

#: dd versions whose Cython object layout this module knows (dd/cudd.c:
#: ``struct __pyx_obj_2dd_4cudd_BDD { PyObject_HEAD; vtab; DdManager *manager; …}``).
KNOWN_DD_VERSIONS = ("0.6.0",)
_MANAGER_OFFSET = 3 * ctypes.sizeof(ctypes.c_void_p)  # refcount, type, vtab


def _cudd(cudd_module):
    """CUDD's functions in the extension module dd loaded, called WITH the
    GIL held (``ctypes.PyDLL``), as dd's own calls are: threads that share
    a manager (audits run in a thread pool with a shared space) never run
    CUDD at once. ``ctypes.CDLL`` releases the GIL, and
    ``Cudd_SupportIndices`` marks the nodes it visits in place: another
    thread's operation meeting such a node crashed the process."""
    return ctypes.PyDLL(cudd_module.__file__)


def _manager(bdd):
    """The CUDD manager pointer of the dd.cudd manager ``bdd``, or None
    when it cannot be read safely (another dd version, another backend)."""
    try:
        import dd
        from dd import cudd
    except ImportError:
        return None
    if getattr(dd, "__version__", None) not in KNOWN_DD_VERSIONS or not isinstance(bdd, cudd.BDD):
        return None
    try:
        read_size = _cudd(cudd).Cudd_ReadSize
    except (OSError, AttributeError):
        return None
    read_size.argtypes = [ctypes.c_void_p]
    read_size.restype = ctypes.c_int
    manager = ctypes.c_void_p.from_address(id(bdd) + _MANAGER_OFFSET).value
    if not manager or read_size(manager) != len(bdd.vars):
        return None
    return manager


def leq_for(bdd):
    """A function ``leq(f, g) -> bool`` (``f`` implies ``g``) for nodes of
    the dd.cudd manager ``bdd``, or None when it cannot be had safely."""
    manager = _manager(bdd)
    if manager is None:
        return None
    from dd import cudd

    try:
        c_leq = _cudd(cudd).Cudd_bddLeq
    except AttributeError:
        return None
    c_leq.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
    c_leq.restype = ctypes.c_int

    def leq(f, g) -> bool:
        # int(u) is dd's node pointer + 2 (0 and 1 name the constants)
        return bool(c_leq(manager, int(f) - 2, int(g) - 2))

    return leq if _self_test(bdd, leq) else None


def collector_for(bdd):
    """A function ``collect(share, above) -> bool`` for the dd.cudd manager
    ``bdd``: CUDD's garbage collection (``cuddGarbageCollect``, which its
    own policy runs; the cache entries of dead nodes cleared) when the dead
    nodes are at least ``share`` of the table and CUDD holds at least
    ``above`` bytes; None without dd.cudd's manager (pure-Python dd frees a
    node with its last reference)."""
    manager = _manager(bdd)
    if manager is None:
        return None
    from dd import cudd

    lib = _cudd(cudd)
    try:
        c_keys, c_dead, c_memory, c_collect = (lib.Cudd_ReadKeys, lib.Cudd_ReadDead,
                                               lib.Cudd_ReadMemoryInUse, lib.cuddGarbageCollect)
    except AttributeError:
        return None
    for f, kind in ((c_keys, ctypes.c_uint), (c_dead, ctypes.c_uint), (c_memory, ctypes.c_size_t)):
        f.argtypes, f.restype = [ctypes.c_void_p], kind
    c_collect.argtypes, c_collect.restype = [ctypes.c_void_p, ctypes.c_int], ctypes.c_int

    def collect(share: float, above: int) -> bool:
        if c_memory(manager) < above or c_dead(manager) < share * c_keys(manager):
            return False
        c_collect(manager, 1)
        return True

    return collect


def count_for(bdd):
    """A function ``count(f, nvars) -> float``: ``Cudd_CountMinterm`` — the
    very count ``bdd.count`` returns — with CUDD's garbage collection held
    off while it runs, or None when it cannot be had safely.

    The count stores each shared node's value as a constant node; when the
    constants' table fills, CUDD collects the garbage of the whole table
    (8.7M nodes at 20k mixed rules: 6 of 7 collections, 5.9 s, came from
    counts there). Held off, the table of constants grows instead and the
    dead constants go with the next collection. dd's own ``count`` also
    makes the support first, only to check ``nvars``."""
    manager = _manager(bdd)
    if manager is None:
        return None
    from dd import cudd

    lib = _cudd(cudd)
    try:
        c_count, c_gc, c_off, c_on = (lib.Cudd_CountMinterm, lib.Cudd_GarbageCollectionEnabled,
                                      lib.Cudd_DisableGarbageCollection, lib.Cudd_EnableGarbageCollection)
    except AttributeError:
        return None
    c_count.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int]
    c_count.restype = ctypes.c_double
    for f in (c_gc, c_off, c_on):
        f.argtypes = [ctypes.c_void_p]
    c_gc.restype = ctypes.c_int

    def count(f, nvars: int) -> float:
        enabled = c_gc(manager)
        if enabled:
            c_off(manager)
        try:
            n = c_count(manager, int(f) - 2, nvars)
        finally:
            if enabled:
                c_on(manager)
        if n == -1 or n == float("inf"):  # CUDD_OUT_OF_MEM, or more than a double holds
            return float(bdd.count(f, nvars=nvars))  # dd raises as it would
        return n

    samples = _samples(bdd)
    ok = bool(samples) and all(count(f, n) == bdd.count(f, nvars=n)
                               for f in samples for n in (2, len(bdd.vars)))
    return count if ok else None


def support_for(bdd):
    """A function ``support(f) -> list of variable names`` (the variables
    ``f`` depends on; ``bdd.support``'s set as a list), through
    ``Cudd_SupportIndices``, or None when it cannot be had safely. dd's own
    goes through a cube it reads back over every declared variable (~24 us
    per call with ~550 variables; the walk asks it of every rule's match)."""
    manager = _manager(bdd)
    if manager is None:
        return None
    from dd import cudd

    lib = _cudd(cudd)
    try:
        c_support = lib.Cudd_SupportIndices
        c_free = ctypes.CDLL(None).free
    except AttributeError:
        return None
    c_support.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.POINTER(ctypes.POINTER(ctypes.c_int))]
    c_support.restype = ctypes.c_int
    c_free.argtypes = [ctypes.c_void_p]
    c_free.restype = None
    index = bdd._index_of_var
    names = [None] * (max(index.values(), default=-1) + 1)
    for name, i in index.items():
        names[i] = name
    name_at = tuple(names).__getitem__

    int_pointer, byref = ctypes.POINTER(ctypes.c_int), ctypes.byref

    def indices(f) -> list:
        out = int_pointer()  # (one per call: threads may share the manager)
        n = c_support(manager, int(f) - 2, byref(out))
        if n < 0:  # (out of memory: dd's way raises as it would)
            return [index[v] for v in bdd.support(f)]
        if not n:
            return []
        try:
            # (the pointer's slice reads the ints in one step: ~0.7 us less
            # per call than a bytes copy read back as an array)
            return out[:n]
        finally:
            c_free(out)

    def support(f) -> list:
        return list(map(name_at, indices(f)))

    #: the variables' indices instead of their names, and the name of each
    #: index: a caller that maps variables to something else (the walk:
    #: to fields) reads a tuple by index rather than a dict by name
    support.indices, support.names = indices, tuple(names)
    samples = _samples(bdd)
    ok = bool(samples) and all(set(support(f)) == bdd.support(f) for f in samples)
    return support if ok else None


def cube_for(bdd):
    """A function ``cube(segments) -> node``: the conjunction of the
    literals ``segments`` (``(first index, end index, values)`` each: the
    variables of indices ``first`` up to ``end``, their values ``values``
    as CUDD's ints, 4 bytes each; segments in ascending index) made in one
    call of ``Cudd_bddComputeCube``, or None when it cannot be had safely.
    A BDD is canonical: the very node the literals ANDed one by one give,
    and CUDD makes it the same way (bottom up, one node per literal),
    without a dd operation, a wrapper and a dereference per literal in
    Python (~16 us for a 32-bit address; the walk makes one per endpoint
    address). Over the literals alone: ``Cudd_CubeArrayToBdd`` reads one
    entry per declared variable (556 for an IPv4 and IPv6 layout), ~30%
    of a 32-bit cube's instructions. None as a result: CUDD ran out of
    memory."""
    manager = _manager(bdd)
    if manager is None or not hasattr(bdd, "_add_int"):
        return None
    from dd import cudd

    lib = _cudd(cudd)
    try:
        c_cube, c_var, read_size = lib.Cudd_bddComputeCube, lib.Cudd_bddIthVar, lib.Cudd_ReadSize
    except AttributeError:
        return None
    c_cube.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int]
    c_cube.restype = ctypes.c_void_p
    c_var.argtypes, c_var.restype = [ctypes.c_void_p, ctypes.c_int], ctypes.c_void_p
    read_size.argtypes, read_size.restype = [ctypes.c_void_p], ctypes.c_int
    add_int = bdd._add_int
    # each variable's node by index (the projection functions, which the
    # manager keeps referenced), as the pointers CUDD reads: extended when a
    # segment names a variable declared after they were read
    pointers = [b""]

    def refresh():
        size = read_size(manager)
        pointers[0] = array("Q", [c_var(manager, i) for i in range(size)]).tobytes()

    def cube(segments):
        known = pointers[0]
        if len(segments) == 1:  # (most: one field's bits)
            first, end, values = segments[0]
            variables = known[8 * first:8 * end]
        else:
            variables = b"".join([known[8 * first:8 * end] for first, end, _ in segments])
            values = b"".join([v for _, _, v in segments])
        n = len(values) >> 2
        if len(variables) != 8 * n:
            refresh()
            known = pointers[0]
            variables = b"".join([known[8 * first:8 * end] for first, end, _ in segments])
            if len(variables) != 8 * n:
                raise ValueError("a cube's variable is not declared")
        node = c_cube(manager, variables, values, n)
        # (returned unreferenced; dd's wrapper references it before any
        # other CUDD call could collect it: int(u) is the pointer + 2)
        return add_int(node + 2) if node else None

    refresh()
    index = bdd._index_of_var
    names = list(bdd.vars)[:2]
    ok = len(names) == 2
    one, zero = (1).to_bytes(4, sys.byteorder), (0).to_bytes(4, sys.byteorder)

    def of(**bits):
        return cube(sorted((index[names[int(name[1:])]], index[names[int(name[1:])]] + 1, one if bit else zero)
                           for name, bit in bits.items()))

    if ok:
        x, y = bdd.var(names[0]), bdd.var(names[1])
        ok = all(got == want for got, want in (
            (of(v0=1, v1=1), x & y), (of(v0=0, v1=1), ~x & y), (of(v0=1), x), (of(v1=0), ~y), (of(), bdd.true)))
    return cube if ok else None


def _samples(bdd) -> list:
    """A few sets over the manager's first two variables (none without two)."""
    names = list(bdd.vars)[:2]
    if len(names) < 2:
        return []
    x, y = bdd.var(names[0]), bdd.var(names[1])
    return [x, y, ~x, x & y, x | y, x & ~y, bdd.true, bdd.false, ~(x & y)]


def _self_test(bdd, leq) -> bool:
    samples = _samples(bdd)
    return bool(samples) and all(leq(f, g) == ((f & ~g) == bdd.false) for f in samples for g in samples)
