"""Pausing Python's cyclic garbage collector for a block — one helper for
every place that needs it.

Why the places need it differs, and each says so where it pauses:

* readers and batches make millions of small objects with no cycles worth
  finding; the collector would walk the growing heap again and again
  (reading 100k rules ×1.5, a batch of answers a third of its time);
* BDD work must not run the collector at all, for correctness
  (:func:`ruleanalyzer.space.packetset.cyclic_gc_paused`).

The collector is restored afterwards only if it ran before, so blocks nest.
Importing this module costs nothing (the CLI's start-up time counts).
"""

from __future__ import annotations

import contextlib
import gc


@contextlib.contextmanager
def gc_paused(long_lived: bool = False):
    """No cyclic garbage collection inside the block (reference counting still
    frees what it can); the collector's previous state is restored after.

    ``long_lived``: what the block made lives on (a reader's model): the
    outermost block hands it to the oldest generation, where only a full
    collection looks at it, instead of the youngest, whose next collection
    would walk all of it at once (1.1 s after reading 100k rules) and the
    middle one's again. Garbage cycles made in the block wait for that full
    collection: for blocks that make few (a reader: 12k objects at 20k rules)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            if long_lived:
                gc.freeze()  # everything tracked moves to the permanent generation,
                gc.enable()
                gc.unfreeze()  # and from there to the oldest
            else:
                gc.enable()
