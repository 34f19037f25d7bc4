"""Parsing speed of the nftables readers: a 50k-rule ruleset as text and JSON.

Run: ``python bench/bench_parse_nftables.py [RULES]``. Times are wall clock and
CPU (``time.process_time()``, the one to compare when other work shares the
machine). The JSON form is what
``nft -j list ruleset`` prints after loading the text into a throw-away
network namespace (root and nft needed; skipped otherwise), and ``nft -c -f``
gives the reference time for the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
import time
import uuid

from ruleanalyzer.parsers import nft_json, nftables


def generate(count: int) -> str:
    """A ruleset of ``count`` rules in the shapes real configurations use."""
    lines = ["table inet bench {",
             "\tset admins {\n\t\ttype ipv4_addr\n\t\tflags interval\n\t\telements = { 10.0.0.0/8, 192.0.2.1 }\n\t}",
             "\tchain input {", "\t\ttype filter hook input priority filter; policy drop;"]
    for i in range(count):
        kind = i % 5
        a, b = (i >> 8) & 255, i & 255
        if kind == 0:
            lines.append(f"\t\tip saddr 10.{a}.{b}.0/24 tcp dport {1 + i % 65000} accept")
        elif kind == 1:
            lines.append(f'\t\tiifname "eth{i % 8}" udp dport {{ 53, {1000 + i % 60000} }} counter packets 0 bytes 0 accept')
        elif kind == 2:
            lines.append(f"\t\tip6 saddr 2001:db8:{i:x}::/48 ct state established,related accept")
        elif kind == 3:
            lines.append(f"\t\ttcp flags syn / fin,syn,rst,ack ip daddr 172.16.{a}.{b} drop")
        else:
            lines.append(f"\t\tip saddr @admins meta mark set 0x{i:x} tcp dport {i % 65000 + 1} jump extra")
    lines += ["\t}", "\tchain extra {", "\t\treturn", "\t}", "}"]
    return "\n".join(lines) + "\n"


def nft_json_of(path: str) -> tuple[str | None, float | None]:
    """(``nft -j list ruleset`` of the file, seconds of ``nft -c -f``) via a namespace."""
    if os.geteuid() != 0 or not shutil.which("nft") or not shutil.which("ip"):
        return None, None
    ns = f"rabench{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        t0 = time.perf_counter()
        subprocess.run(["ip", "netns", "exec", ns, "nft", "-c", "-f", path], check=True, timeout=600)
        check_time = time.perf_counter() - t0
        subprocess.run(["ip", "netns", "exec", ns, "nft", "-f", path], check=True, timeout=600)
        out = subprocess.run(["ip", "netns", "exec", ns, "nft", "-j", "list", "ruleset"], check=True,
                             capture_output=True, text=True, timeout=600).stdout
        return out, check_time
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)


def main(count: int = 50_000) -> None:
    text = generate(count)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "bench.nft")
        with open(path, "w") as f:
            f.write(text)
        t0, c0 = time.perf_counter(), time.process_time()
        rs = nftables.parse(text, path)
        text_time, text_cpu = time.perf_counter() - t0, time.process_time() - c0
        assert rs.rule_count == count + 1
        print(f"text: {count} rules in {text_time:.2f} s = {count / text_time:,.0f} rules/s"
              f" (CPU {text_cpu:.2f} s = {count / text_cpu:,.0f} rules/s)")
        json_text, nft_time = nft_json_of(path)
    if nft_time is not None:
        print(f"nft -c -f: {nft_time:.2f} s (ours / nft = {text_time / nft_time:.2f})")
    if json_text is None:
        print("JSON: skipped (needs root, ip and nft)")
        json_text = json.dumps({"nftables": []})
        return
    t0, c0 = time.perf_counter(), time.process_time()
    rs = nft_json.parse(json_text, "bench.json")
    json_time, json_cpu = time.perf_counter() - t0, time.process_time() - c0
    print(f"JSON: {rs.rule_count} rules in {json_time:.2f} s = {rs.rule_count / json_time:,.0f} rules/s"
          f" (CPU {json_cpu:.2f} s = {rs.rule_count / json_cpu:,.0f} rules/s)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("rules", nargs="?", type=int, default=50_000, help="rules to generate (default 50,000)")
    main(parser.parse_args().rules)
