"""An audit or diff from the command line starts again with glibc's malloc
asking for transparent huge pages (cli.huge_page_environment): the same
answers, standard input and exit code, only faster on big rulesets."""

import json
import os
import subprocess
import sys

import pytest

from ruleanalyzer.cli import MALLOC_TUNABLES, huge_page_environment

RULES = ("*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n"
         "-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n"
         "-A INPUT -p tcp --dport 22 -j ACCEPT\n-A INPUT -p tcp --dport 22 -j ACCEPT\nCOMMIT\n")


def _madvise_glibc() -> bool:
    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled", encoding="ascii") as f:
            thp = f.read()
        return os.confstr("CS_GNU_LIBC_VERSION").startswith("glibc ") and "[madvise]" in thp
    except (OSError, ValueError, AttributeError):
        return False


def test_only_big_space_commands_and_only_where_the_user_set_nothing():
    env = {"PATH": "/usr/bin"}
    assert huge_page_environment(["query", "x.rules", "--dport", "22"], env) is None
    assert huge_page_environment(["audit", "x.rules"], {**env, "GLIBC_TUNABLES": "glibc.malloc.arena_max=1"}) is None
    chosen = huge_page_environment(["--color", "never", "audit", "x.rules"], env)
    if _madvise_glibc():
        assert chosen == {**env, "GLIBC_TUNABLES": MALLOC_TUNABLES}
        assert huge_page_environment(["diff", "a", "b"], env)["GLIBC_TUNABLES"] == MALLOC_TUNABLES
    else:
        assert chosen is None  # nothing to gain: THP always/never, or not glibc


@pytest.mark.skipif(not _madvise_glibc(), reason="needs glibc and transparent huge pages in 'madvise' mode")
def test_the_command_started_again_reads_stdin_and_answers_as_without(tmp_path):
    probe = tmp_path / "probe.py"
    # The child reports the tunable it ran with, then runs the real entry point.
    probe.write_text("import os, sys\nsys.stderr.write('TUNABLES=%s\\n' % os.environ.get('GLIBC_TUNABLES'))\n"
                     "from ruleanalyzer.cli import run\nrun()\n")
    args = ["audit", "-", "--dialect", "iptables", "--format", "json"]
    env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    tuned = subprocess.run([sys.executable, str(probe), *args], input=RULES, capture_output=True, text=True,
                           env=env, timeout=120)
    plain = subprocess.run([sys.executable, str(probe), *args], input=RULES, capture_output=True, text=True,
                           env={**env, "GLIBC_TUNABLES": ""}, timeout=120)
    assert tuned.stderr.splitlines()[-1] == f"TUNABLES={MALLOC_TUNABLES}"  # the last start ran tuned
    assert tuned.stderr.count("TUNABLES=") == 2 and plain.stderr.count("TUNABLES=") == 1
    assert tuned.returncode == plain.returncode == 1
    found, expected = json.loads(tuned.stdout), json.loads(plain.stdout)
    assert [f["code"] for f in found["findings"]] == [f["code"] for f in expected["findings"]]
    assert "RA505" in {f["code"] for f in found["findings"]}  # the duplicate ssh rule, read from stdin
