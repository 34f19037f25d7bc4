"""Constructors for the frozen model objects a reader makes by the hundred
thousand (a rule's Location, its address and port matches).

A frozen dataclass' ``__init__`` sets each field through
``object.__setattr__`` by name; these set the same slots directly (a third
of the cost). They are used only where they give the object the generated
``__init__`` gives it: :func:`slots_constructor` checks the class (slots, no
``__post_init__``, the fields named and the defaults of the others) and
compares a sample built both ways, and returns the class itself otherwise.
"""

from __future__ import annotations

import dataclasses
from typing import Callable


def slots_constructor(cls: type, names: tuple[str, ...], sample: tuple) -> Callable:
    """``f(*values)`` equal to ``cls(**dict(zip(names, values)))``; the other
    fields keep their defaults. ``sample``: values to check it on."""
    plain = _plain(cls, names)
    if not hasattr(cls, "__slots__") or any("__post_init__" in vars(k) for k in cls.__mro__):
        return plain
    fields = {f.name: f for f in dataclasses.fields(cls)}
    if not set(names) <= fields.keys() or len(set(names)) != len(names):
        return plain
    rest = [f for name, f in fields.items() if name not in names]
    if any(f.default is dataclasses.MISSING or not f.init for f in rest) or \
            any(not fields[n].init for n in names):
        return plain
    setters = [getattr(cls, n).__set__ for n in names]
    defaults = [(getattr(cls, f.name).__set__, f.default) for f in rest]
    new = object.__new__
    if len(names) == 3 and len(defaults) == 1:
        s0, s1, s2 = setters
        (d0, v0), = defaults

        def make(a, b, c):
            obj = new(cls)
            s0(obj, a)
            s1(obj, b)
            s2(obj, c)
            d0(obj, v0)
            return obj
    elif len(names) == 4 and not defaults:
        s0, s1, s2, s3 = setters

        def make(a, b, c, d):
            obj = new(cls)
            s0(obj, a)
            s1(obj, b)
            s2(obj, c)
            s3(obj, d)
            return obj
    else:
        def make(*values):
            obj = new(cls)
            for setter, value in zip(setters, values):
                setter(obj, value)
            for setter, value in defaults:
                setter(obj, value)
            return obj
    try:
        ours, theirs = make(*sample), plain(*sample)
        same = type(ours) is type(theirs) and repr(ours) == repr(theirs) and ours == theirs and \
            all(getattr(ours, f) == getattr(theirs, f) for f in fields)
    except Exception:  # a class whose fields are not what this expects
        return plain
    return make if same else plain


def _plain(cls: type, names: tuple[str, ...]) -> Callable:
    def plain(*values):
        return cls(**dict(zip(names, values)))
    return plain
