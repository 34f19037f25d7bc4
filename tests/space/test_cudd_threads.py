"""Threads that share a BDD manager (audits in a thread pool over one
cached space, as tests/kernel/test_kernel_exposure.py runs them) must never
run CUDD at once: the functions reached through ctypes (_leq: inclusion,
support, counting) hold the GIL as dd's own calls do. With the GIL released,
``Cudd_SupportIndices`` marks nodes in place while another thread builds
sets, and the process crashed (segmentation fault in the fresh-clone suite).
Run in a child process, so a crash fails this test instead of the suite."""

import subprocess
import sys

_STRESS = r'''
import random, sys, threading
from dd import cudd
from ruleanalyzer.space._leq import leq_for, support_for

bdd = cudd.BDD()
names = [f"x{i}" for i in range(60)]
bdd.declare(*names)
support, leq = support_for(bdd), leq_for(bdd)
assert support is not None and leq is not None

def some_set(rng):
    u = bdd.false
    for _ in range(10):
        c = bdd.true
        for n in rng.sample(names, 8):
            c &= bdd.var(n) if rng.random() < 0.5 else ~bdd.var(n)
        u |= c
    return u

stop = False

def reader(seed):
    rng = random.Random(seed)
    while not stop:
        f = some_set(rng)
        for _ in range(50):
            assert set(support(f)) == bdd.support(f)
            assert leq(f, f | bdd.var("x1"))

def writer(seed):
    rng = random.Random(seed)
    for _ in range(40):
        some_set(rng)

sys.setswitchinterval(1e-5)  # switch threads often
readers = [threading.Thread(target=reader, args=(i,)) for i in range(2)]
writers = [threading.Thread(target=writer, args=(10 + i,)) for i in range(2)]
for t in readers + writers:
    t.start()
for t in writers:
    t.join()
stop = True
for t in readers:
    t.join()
print("ok")
'''


def test_cudd_calls_through_ctypes_are_safe_beside_other_threads():
    # fails on a CDLL binding (GIL released): segmentation fault, 3 runs of 3
    done = subprocess.run([sys.executable, "-c", _STRESS], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "ok"
