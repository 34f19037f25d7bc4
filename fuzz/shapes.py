"""Structure-aware generators for the hostile shapes of issue 16: inputs a
few hundred bytes long whose naive expansion is exponential or whose naive
scan is quadratic. Each generator takes a seeded ``random.Random`` and
returns ``(dialect, text)`` — or, for include trees, ``(dialect, files)``
with ``files`` a mapping of relative names to texts, ``main.nft`` the one
to load. Sizes are drawn past the budgets (docs/limits.md) as well as
under them, so a run meets both the refusal and the exact answer.

Used by ``fuzz/run.py --shapes`` (nightly size: ``--runs 2000``) and
seeded, small, by ``tests/hostile/test_shapes.py``.
"""

from __future__ import annotations

import random


def branching_jumps(rng: random.Random) -> tuple[str, str]:
    """Chains each jumping ``fan`` times to the next (2^depth naive runs),
    sometimes changing a mark between the jumps so states differ."""
    depth, fan = rng.randrange(1, 48), rng.randrange(1, 4)
    marks = rng.random() < 0.3
    if rng.random() < 0.5:
        lines = ["*filter" if not marks else "*mangle",
                 ":INPUT DROP [0:0]" if not marks else ":PREROUTING ACCEPT [0:0]"]
        lines += [f":C{i} - [0:0]" for i in range(depth + 1)]
        lines.append(f"-A {'PREROUTING' if marks else 'INPUT'} -j C0")
        for i in range(depth):
            for k in range(fan):
                if marks:
                    lines.append(f"-A C{i} -j MARK --set-xmark 0x{k + 1:x}/0x{(1 << (i % 30)):x}")
                lines.append(f"-A C{i} -j C{i + 1}" if rng.random() < 0.9 else f"-A C{i} -g C{i + 1}")
        lines += [f"-A C{depth} -p tcp --dport {rng.choice((22, 80, 443))} -j {rng.choice(('ACCEPT', 'DROP', 'RETURN'))}",
                  "COMMIT", ""]
        return "iptables", "\n".join(lines)
    chains = [f" chain c{i} {{\n" + "".join(
        (f"  meta mark set {k + 1}\n" if marks else "") + f"  {rng.choice(('jump', 'jump', 'goto'))} c{i + 1}\n"
        for k in range(fan)) + " }\n" for i in range(depth)]
    base = (" chain input { type filter hook input priority 0; policy drop; jump c0 }\n"
            f" chain c{depth} {{ tcp dport {rng.choice((22, 80))} accept }}\n")
    return "nftables", "table ip t {\n" + base + "".join(chains) + "}\n"


def define_chains(rng: random.Random) -> tuple[str, str]:
    """``define a{i} = { $a{i-1}, $a{i-1}, … }``: expansion doubling (or
    more) per line, used once or many times."""
    lines, fan = rng.randrange(1, 40), rng.randrange(1, 4)
    out = ["define a0 = { 10.0.0.1, 10.0.0.2 }"]
    for i in range(1, lines):
        out.append(f"define a{i} = {{ " + ", ".join([f"$a{i - 1}"] * fan) + " }")
    uses = rng.randrange(1, 5)
    body = "".join(f"  ip saddr $a{rng.randrange(lines)} accept\n" for _ in range(uses))
    return "nftables", "\n".join(out) + (
        "\ntable ip t {\n chain c { type filter hook input priority 0; policy drop;\n" + body + " }\n}\n")


def alias_trees(rng: random.Random) -> tuple[str, str]:
    """YAML anchors each naming the one before ``fan`` times (the alias
    count stays small, the expanded size does not), in a cloud export."""
    levels, fan = rng.randrange(1, 30), rng.randrange(2, 5)
    lines = ["Anchors:", "  a0: &a0 {CidrIp: 0.0.0.0/0}"]
    lines += [f"  a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * fan) + "]" for i in range(1, levels)]
    lines += ["SecurityGroups:", "  - GroupId: sg-1", "    IpPermissions:",
              "      - {IpProtocol: tcp, FromPort: 22, ToPort: 22, IpRanges: [*a0]}",
              f"    Tags: *a{levels - 1}"]
    return "aws-sg", "\n".join(lines) + "\n"


def include_trees(rng: random.Random) -> tuple[str, dict[str, str]]:
    """``levels`` files, each including the next ``fan`` times (fan^levels
    inclusions naive), sometimes with a large leaf."""
    levels, fan = rng.randrange(1, 16), rng.randrange(1, 4)
    files = {f"l{i}.nft": f'include "l{i + 1}.nft"\n' * fan for i in range(levels)}
    leaf = "table ip t { chain c { type filter hook input priority 0; tcp dport 22 accept } }\n"
    if rng.random() < 0.3:
        leaf += "# padding\n" * rng.randrange(1, 20_000)
    files[f"l{levels}.nft"] = leaf
    files["main.nft"] = 'include "l0.nft"\n'
    return "nftables", files


def long_quoted_tokens(rng: random.Random) -> tuple[str, str]:
    """Long quoted or parenthesised tokens, closed or not, with escapes:
    the shapes that made regular expressions rescan a line."""
    n = rng.randrange(1, 20_000)
    piece = rng.choice(['\\" ', 'a\\"', '"', 'x ', '\\\\', "(x "])
    kind = rng.randrange(4)
    if kind == 0:
        close = '"' if rng.random() < 0.5 else ""
        return "iptables", ('*filter\n:INPUT DROP [0:0]\n-A INPUT -p tcp --dport 22 -m comment --comment "'
                            + piece * n + close + " -j ACCEPT\nCOMMIT\n")
    if kind == 1:
        return "ufw", ("Status: active\n\nTo                         Action      From\n"
                       "--                         ------      ----\n22/tcp (" + piece * n
                       + (")" if rng.random() < 0.5 else "") + "  ALLOW       Anywhere\n")
    if kind == 2:
        return "ufw", "ufw allow in on eth0 to any app '" + "a " * n + "'\n"
    return "nftables", ('table ip t { chain c { type filter hook input priority 0; tcp dport 22 comment "'
                        + piece.replace('"', "") * n + '" accept } }\n')


SHAPES = {"branching-jumps": branching_jumps, "define-chains": define_chains, "alias-trees": alias_trees,
          "include-trees": include_trees, "long-quoted-tokens": long_quoted_tokens}


def check_shape(shape: str, rng: random.Random, max_bytes: int = 4 * 1024 * 1024):
    """One input of structure-aware generator ``shape`` (fuzz/shapes.py)
    through the oracle; include trees are written to a temporary directory
    and loaded from disk (budgets on files and bytes)."""
    import tempfile
    from pathlib import Path

    from ruleanalyzer import loader
    from ruleanalyzer.errors import RuleAnalyzerError
    from tests.fuzz import harness

    dialect, made = SHAPES[shape](rng)
    if isinstance(made, str):
        return harness.check(made, dialect), len(made)
    with tempfile.TemporaryDirectory() as tmp:
        for name, text in made.items():
            Path(tmp, name).write_text(text)
        main_file = str(Path(tmp, "main.nft"))
        try:
            ruleset = loader.load(main_file, max_bytes=max_bytes)
        except RuleAnalyzerError as err:
            if err.location is None or not err.location.file.startswith(tmp):
                raise harness.FuzzFailure(f"refusal without a location: {err.render()!r}") from err
            return err, sum(map(len, made.values()))
        for packet in harness.PACKETS:
            harness.Evaluator(ruleset).evaluate(packet)
        return ruleset, sum(map(len, made.values()))
