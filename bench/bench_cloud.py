"""10,000 security-group rules: load them and answer a ``connect``.

Run: ``python bench/bench_cloud.py [RULES]``. Issue 5's target: load and
answer a connect in under 2 s in all (CPU seconds of this process, so a
busy machine does not distort them). The instance is given all the groups
(their union), so the connect crosses every rule.
"""

from __future__ import annotations

import argparse
import json
import time

from ruleanalyzer.engine.connect import connect
from ruleanalyzer.parsers import aws_sg
from ruleanalyzer.targets import select_target


def make_export(rules: int, per_group: int = 100) -> str:
    """A describe-security-groups document with ``rules`` CIDR rules."""
    groups = []
    for g in range(rules // per_group):
        perms = [{"IpProtocol": "tcp", "FromPort": 1000 + i, "ToPort": 1000 + i,
                  "IpRanges": [{"CidrIp": f"10.{g % 256}.{i}.0/24", "Description": f"rule {i}"}],
                  "Ipv6Ranges": [], "PrefixListIds": [], "UserIdGroupPairs": []}
                 for i in range(per_group)]
        groups.append({"GroupId": f"sg-{g:08x}", "GroupName": f"g{g}", "VpcId": "vpc-1",
                       "IpPermissions": perms, "IpPermissionsEgress": []})
    return json.dumps({"SecurityGroups": groups})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("rules", nargs="?", type=int, default=10_000, help="security-group rules (default 10,000)")
    rules = parser.parse_args().rules
    text = make_export(rules)
    start = time.process_time()
    ruleset = aws_sg.parse(text, "bench.json")
    elapsed = time.process_time() - start
    print(f"{ruleset.rule_count} model rules ({rules} SG rules, {len(text) / 1e6:.1f} MB) "
          f"parsed in {elapsed:.3f} s")
    groups = ",".join(t.name for t in ruleset.tables)
    start = time.process_time()
    instance = select_target(ruleset, groups)
    # The last group's last rule: the port only the end of the union opens.
    report = connect(instance, "10.%d.99.7" % ((rules // 100 - 1) % 256), "10.200.0.1", 1099, ecn="both")
    answered = time.process_time() - start
    print(f"connect through the union of {len(ruleset.tables)} groups: passes={report.passes} "
          f"in {answered:.3f} s; load + connect {elapsed + answered:.3f} s (target < 2 s)")


if __name__ == "__main__":
    main()
