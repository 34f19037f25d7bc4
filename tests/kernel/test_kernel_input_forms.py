"""Proof against the kernel for the inputs admins have (issue #17).

Random rulesets (the generators of the other kernel tests) are built in a
private network namespace by the real tools from a command script
(``iptables``/``ip6tables`` commands, ``nft`` commands and here-documents)
and from an abbreviated hand-written restore file, then dumped with
``iptables-save`` / ``nft list ruleset``. On the rulesets' random packets
the analyzer's answer (verdict, table, chain, rule) from each input form
must equal its answer from the dump; and for a few of them the dump is
loaded into the firewall namespace of the kernel harness and the kernel's
own answers must equal the analyzer's from the script.

    RA_FORMS_SEEDS=3,7 pytest tests/kernel/test_kernel_input_forms.py -s
"""

from __future__ import annotations

import os
import random
import re
import shutil
import subprocess
import tempfile

import pytest

from ruleanalyzer import loads
from ruleanalyzer.engine import evaluate

from . import gen_iptables, gen_nftables, input_forms
from .compare import analyzer_answer, compare
from .netns import missing_prerequisites

pytestmark = pytest.mark.kernel

SEEDS = ([int(s) for s in os.environ["RA_FORMS_SEEDS"].split(",")] if os.environ.get("RA_FORMS_SEEDS")
         else list(range(1, 9)))
#: Seeds whose dumps also go through the kernel harness's packets.
KERNEL_SEEDS = SEEDS[:2]
PACKETS = 60
#: What nft list prints for an expression it has no name for.
RAW_PAYLOAD = re.compile(r"@(?:ll|nh|th|ih),\d+,\d+")


def _skip_reason(tools) -> str | None:
    reason = missing_prerequisites(("ip", "unshare", *tools))
    if reason is None and shutil.which("sh") is None:
        reason = "needs sh to run the command scripts"
    return reason


def _in_private_namespace(script: str, dump: str) -> str:
    """Run ``script`` (a shell script) in a fresh network namespace of its own
    and return the output of ``dump`` there; the namespace dies with it."""
    with tempfile.NamedTemporaryFile("w", suffix=".sh", delete=False) as handle:
        handle.write(script)
        path = handle.name
    try:
        done = subprocess.run(["unshare", "--net", "sh", "-c", f'sh "$0" >/dev/null && {dump}', path],
                              capture_output=True, text=True, timeout=30)
    finally:
        os.unlink(path)
    if done.returncode != 0:
        raise AssertionError(f"the tools refused the generated input ({done.stderr.strip()}):\n{script}")
    return done.stdout


def _answers(ruleset, probes) -> list:
    out = []
    for p in probes:
        result = evaluate(ruleset, p.model_packet())
        out.append((analyzer_answer(result), bool(result.depends_on)))
    return out


def _same_answers(label: str, form, dump, probes, text: str) -> list[str]:
    """Packets whose answer differs between the input form and its dump.
    Where the answer from the dump depends on something the analyzer cannot
    read there — a dynamic set's runtime state (``expires …``) — the
    packet is not compared; at most a quarter may be left out."""
    got, want = _answers(form, probes), _answers(dump, probes)
    open_ = [p for p, (_, depends) in zip(probes, want) if depends]
    assert len(open_) <= len(probes) // 4, f"{label}: {len(open_)} packets undecided from the dump"
    return [f"{label}: {p.describe()}: from the {label} {a}, from the dump {b}\n{text}"
            for p, (a, _), (b, depends) in zip(probes, got, want) if a != b and not depends][:3]


def test_iptables_scripts_and_abbreviated_files_build_what_their_dumps_hold():
    reason = _skip_reason(("iptables", "ip6tables", "iptables-save", "iptables-restore"))
    if reason:
        pytest.skip(reason)
    problems = []
    kernel_cases = []
    for seed in SEEDS:
        case = gen_iptables.generate(seed, PACKETS)
        rnd = random.Random(seed)
        save = "iptables-save" if case.family == 4 else "ip6tables-save"
        restore = "iptables-restore" if case.family == 4 else "ip6tables-restore"
        script = input_forms.iptables_script(case.text, case.family, rnd)
        short = input_forms.abbreviated(case.text, rnd)
        dump = _in_private_namespace(script, save)
        short_dump = _in_private_namespace(f"{restore} <<'EOF'\n{short}EOF\n", save)
        from_script = loads(script, name=f"seed{seed}.sh")
        assert from_script.meta["dialect"] == "iptables"
        problems += _same_answers("script", from_script, loads(dump, dialect="iptables"), case.probes, script)
        problems += _same_answers("abbreviated file", loads(short, dialect="iptables"),
                                  loads(short_dump, dialect="iptables"), case.probes, short)
        if seed in KERNEL_SEEDS:
            kernel_cases.append((gen_iptables.Case(seed, case.family, dump, case.probes), from_script, script))
    assert not problems, "\n".join(problems)
    _against_the_kernel(kernel_cases, "iptables")


def test_nft_scripts_build_what_their_dumps_hold():
    reason = _skip_reason(("nft",))
    if reason:
        pytest.skip(reason)
    problems, kernel_cases, raw_dumps = [], [], []
    for seed in SEEDS:
        case = gen_nftables.generate(seed, PACKETS)
        script = input_forms.nft_script(case.text, random.Random(seed))
        dump = _in_private_namespace(script, "nft list ruleset")
        from_script = loads(script, name=f"seed{seed}.sh")
        # (nft lists a masked dscp as raw payload, "(@nh,0,16 & 0xfc0) >> 6":
        # the reader reads that back, so the dump itself is the reference)
        reference = loads(dump, dialect="nftables")
        if RAW_PAYLOAD.search(dump):
            raw_dumps.append(seed)
        problems += _same_answers("nft script", from_script, reference, case.probes, script)
        if seed in KERNEL_SEEDS:
            kernel_cases.append((gen_iptables.Case(seed, case.family, dump, case.probes), from_script, script))
    print(f"\nnft dumps with raw payload expressions: {raw_dumps}")
    assert not problems, "\n".join(problems)
    _against_the_kernel(kernel_cases, "nftables")


def _against_the_kernel(cases, dialect: str) -> None:
    """The kernel's answers on the dumps equal the analyzer's from the scripts."""
    if missing_prerequisites():
        return
    from .runner import observe_cases

    disagreements, compared = [], 0
    by_seed = {c.seed: (ruleset, script) for c, ruleset, script in cases}
    for case, observations in observe_cases([c for c, _, _ in cases], dialect):
        ruleset, script = by_seed[case.seed]
        usable = [o for o in observations if not o.problem]
        compared += len(usable)
        disagreements += compare(f"seed {case.seed}", script, ruleset, usable, evaluate)
    print(f"\n{dialect}: {compared} packets on {len(cases)} dumps compared with the kernel")
    assert compared >= len(cases) * PACKETS * 9 // 10, "the harness could not read the kernel"
    assert not disagreements, "\n".join(d.report() for d in disagreements[:6])
