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
def gc_paused():
    """No cyclic garbage collection inside the block (reference counting still
    frees what it can); the collector's previous state is restored after."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
