"""Terraform plans: load + audit a plan with 5,000 rules in 500 groups, and
``diff plan.json`` of a 500-resource plan.

Run: ``python bench/bench_iac.py [GROUPS] [--all-create]``. Issue 19's
targets: load and audit ≤ 5 s; diff of a 500-resource plan ≤ 2 s (a plan
against existing groups, five of them changed). ``--all-create`` also
diffs a plan that creates every group (each one is diffed in full against
the empty group). Prints CPU seconds (``time.process_time``) and wall
seconds (the machine may be shared).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from ruleanalyzer.audit import run_audit
from ruleanalyzer.loader import load
from ruleanalyzer.plan_diff import diff_plan


def _block(port: int, cidr: str) -> dict:
    return {"cidr_blocks": [cidr], "description": "", "from_port": port, "ipv6_cidr_blocks": [],
            "prefix_list_ids": [], "protocol": "tcp", "security_groups": [], "self": False,
            "to_port": port}


def make_plan(groups: int, per_group: int = 10, changed: int = 0) -> dict:
    """A plan creating ``groups`` security groups of ``per_group`` ingress
    rules (one of them SSH from the world in every tenth group); the first
    ``changed`` groups are updates that open 3389 to the world (then the
    others are no-op changes of existing groups)."""
    changes = []
    for g in range(groups):
        ingress = [_block(1000 + i, f"10.{g % 256}.{i}.0/24") for i in range(per_group - 1)]
        ingress.append(_block(22, "0.0.0.0/0" if g % 10 == 0 else f"192.0.2.{g % 250}/32"))
        after = {"name": f"g{g}", "vpc_id": "vpc-1", "ingress": ingress,
                 "egress": [dict(_block(0, "0.0.0.0/0"), protocol="-1")]}
        before = None
        actions = ["create"]
        if changed:  # a plan against existing groups: no-op except the first ``changed``
            before = json.loads(json.dumps(after))
            actions = ["no-op"]
        if g < changed:
            after["ingress"] = ingress[:-1] + [_block(3389, "0.0.0.0/0")]
            actions = ["update"]
        changes.append({"address": f"aws_security_group.g{g}", "mode": "managed",
                        "type": "aws_security_group", "name": f"g{g}",
                        "change": {"actions": actions, "before": before, "after": after,
                                   "after_unknown": {"id": True, "arn": True}}})
    return {"format_version": "1.2", "terraform_version": "1.9.5", "resource_changes": changes}


def timed(fn):
    cpu, wall = time.process_time(), time.perf_counter()
    out = fn()
    return out, time.process_time() - cpu, time.perf_counter() - wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("groups", nargs="?", type=int, default=500, help="security groups in the plan (default 500)")
    parser.add_argument("--all-create", action="store_true", help="also diff a plan that creates every group")
    args = parser.parse_args()
    groups = args.groups
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "plan.json"
        path.write_text(json.dumps(make_plan(groups)))
        ruleset, cpu_l, wall_l = timed(lambda: load(path))
        result, cpu_a, wall_a = timed(lambda: run_audit([ruleset], select=None))
        written = sum(1 for r in ruleset.rules() if not r.implicit)
        print(f"plan: {groups} groups, {written} rules ({path.stat().st_size / 1e6:.1f} MB)")
        print(f"  load  {cpu_l:.2f} s CPU, {wall_l:.2f} s wall")
        print(f"  audit {cpu_a:.2f} s CPU, {wall_a:.2f} s wall ({len(result.findings)} findings, "
              f"{sum(f.code == 'RA401' for f in result.findings)} RA401)")
        print(f"  load + audit {cpu_l + cpu_a:.2f} s CPU, {wall_l + wall_a:.2f} s wall (target ≤ 5 s)")

        path.write_text(json.dumps(make_plan(groups, changed=5)))
        reports, cpu_d, wall_d = timed(lambda: diff_plan(path))
        print(f"diff plan.json: {groups} resources, {len(reports)} changed, "
              f"{sum(len(r.opened) for r in reports)} regions opened")
        print(f"  {cpu_d:.2f} s CPU, {wall_d:.2f} s wall (target ≤ 2 s)")

        if args.all_create:  # every group created: each one diffed in full
            path.write_text(json.dumps(make_plan(groups)))
            reports, cpu_c, wall_c = timed(lambda: diff_plan(path))
            print(f"diff plan.json, all {groups} groups created: {len(reports)} reports, "
                  f"{sum(len(r.regions) for r in reports)} regions")
            print(f"  {cpu_c:.2f} s CPU, {wall_c:.2f} s wall")


if __name__ == "__main__":
    main()
