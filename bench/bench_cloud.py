"""Time parsing a generated security-group export with 10,000 rules.

Run: ``python bench/bench_cloud.py [RULES]``. Prints the parse time; the
target is well under 2 s for 10,000 rules.
"""

from __future__ import annotations

import json
import sys
import time

from ruleanalyzer.parsers import aws_sg


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
    rules = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    text = make_export(rules)
    start = time.perf_counter()
    ruleset = aws_sg.parse(text, "bench.json")
    elapsed = time.perf_counter() - start
    print(f"{ruleset.rule_count} model rules ({rules} SG rules, {len(text) / 1e6:.1f} MB) "
          f"parsed in {elapsed:.3f} s")


if __name__ == "__main__":
    main()
