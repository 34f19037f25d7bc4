"""Precision of the exposure and trap checks on the whole real rulesets of
the corpus (issue #13): every RA401/RA402/RA403/RA201/RA204/RA205 finding
is looked up in the hand classification ``docs/precision/issue-13.tsv``
(true / noisy / false, with why) and counted.

    python bench/precision_exposure.py            # the table
    python bench/precision_exposure.py --dump F   # unclassified findings as TSV rows to F

Files that are not whole rulesets — upstream test fragments, translation
lines, fuzzer bogons, ufw test transcripts and application profiles — are
left out, as the issue asks. Findings are matched on (code, file relative
to the corpus, line or JSON path, first 60 characters of the message);
a finding missing from the classification counts as unclassified.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ruleanalyzer.audit import expand_paths, run_audit  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpus"
TABLE = ROOT / "docs" / "precision" / "issue-13.tsv"
CODES = ("RA401", "RA402", "RA403", "RA201", "RA204", "RA205")
#: Sources that hold no whole ruleset (MANIFEST.md): fragments, bogons, transcripts.
NOT_RULESETS = ("iptables-upstream-extension-rules", "iptables-upstream-txlate", "nftables-upstream-bogons",
                "nftables-upstream-py-rules", "ufw-upstream-test-transcripts", "ufw-upstream-app-profiles")
FIELDS = ("code", "file", "where", "message", "verdict", "why")


def whole_rulesets() -> list[str]:
    return [p for p in expand_paths([CORPUS]) if not any(f"/{s}/" in p for s in NOT_RULESETS)]


def key(code: str, file: str, where: str, message: str) -> tuple:
    return code, file, where, message[:60]


def rows_of(findings) -> list[dict]:
    out = []
    for f in findings:
        if f.code not in CODES:
            continue
        w = f.where
        file = (w.file or "") if w else ""
        if str(CORPUS) in str(Path(file).resolve()) if file and not file.startswith("<") else False:
            file = str(Path(file).resolve().relative_to(CORPUS.resolve()))
        where = (w.path or str(w.line)) if w else ""
        out.append({"code": f.code, "file": file, "where": where, "message": f.message,
                    "severity": f.severity})
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dump", help="write unclassified findings as TSV rows here")
    args = ap.parse_args()
    files = whole_rulesets()
    cpu, wall = time.process_time(), time.perf_counter()
    result = run_audit(files, select=list(CODES))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    known = {}
    if TABLE.exists():
        with TABLE.open() as fh:
            for row in csv.DictReader(fh, delimiter="\t"):
                known[key(row["code"], row["file"], row["where"], row["message"])] = row
    counts: dict[str, Counter] = {c: Counter() for c in CODES}
    errors_false, missing = [], []
    for row in rows_of(result.findings):
        hit = known.get(key(row["code"], row["file"], row["where"], row["message"]))
        verdict = hit["verdict"] if hit else "unclassified"
        counts[row["code"]][verdict] += 1
        if verdict == "false" and row["severity"] == "error":
            errors_false.append(row)
        if hit is None:
            missing.append(row)
    print(f"{len(files)} whole-ruleset files audited in {wall:.1f} s wall, {cpu:.1f} s CPU "
          f"(machine shared with other work)\n")
    print("| code | findings | true | noisy | false | unclassified | true share |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for code in CODES:
        c = counts[code]
        n = sum(c.values())
        share = f"{c['true'] / n:.1%}" if n else "–"
        print(f"| {code} | {n} | {c['true']} | {c['noisy']} | {c['false']} | {c['unclassified']} | {share} |")
    print(f"\nfalse findings at error severity: {len(errors_false)}")
    if args.dump and missing:
        with open(args.dump, "w", newline="") as fh:
            w = csv.DictWriter(fh, FIELDS, delimiter="\t", extrasaction="ignore")
            w.writeheader()
            for row in missing:
                w.writerow({**row, "verdict": "", "why": ""})
        print(f"{len(missing)} unclassified findings written to {args.dump}")
    return 1 if missing or errors_false else 0


if __name__ == "__main__":
    sys.exit(main())
