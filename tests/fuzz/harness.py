"""The fuzz oracle shared by the bounded suites (``tests/fuzz``) and the long
drivers (``fuzz/``): what may happen when a reader is handed anything.

Allowed outcomes of :func:`check`: a parsed ruleset (which the engine then
evaluates a few packets on, without raising), or a located
:class:`RuleAnalyzerError` whose rendering is one clear message. Anything
else is a bug, raised as :class:`FuzzFailure` with the input attached.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

from ruleanalyzer import parsers
from ruleanalyzer.engine import Evaluator
from ruleanalyzer.errors import RuleAnalyzerError
from ruleanalyzer.packets import make_packet

REPO = Path(__file__).resolve().parents[2]
#: Real rule files; tests skip when absent (never copied into the repo).
CORPUS = REPO.parent / "shared" / "corpus"
#: Corpus folder → dialect.
CORPUS_DIALECTS = {"iptables": "iptables", "nftables": "nftables", "nftables-json": "nft-json",
                   "ufw": "ufw", "aws-sg": "aws-sg", "aws-nacl": "aws-nacl", "gcp-firewall": "gcp",
                   "azure-nsg": "azure", "firewalld": "firewalld",
                   "terraform/hcl": "terraform", "terraform/plan-json": "terraform-plan",
                   "terraform/cloudformation": "cloudformation"}
READERS = parsers.DIALECTS
#: The name fuzz inputs are parsed under: a string name, so nftables
#: ``include`` is refused rather than reading files from the machine.
NAME = "<fuzz>"

PACKETS = [make_packet(**f) for f in (
    dict(src="192.0.2.1", dst="198.51.100.7", proto="tcp", dport=22, flags="SYN"),
    dict(src="10.0.0.5", dst="10.0.0.1", proto="udp", sport=53, dport=53, hook="forward"),
    dict(src="203.0.113.9", dst="192.0.2.1", proto="tcp", dport=443, flags="SYN,ECE,CWR", hook="output"),
    dict(src="2001:db8::1", dst="2001:db8::2", proto="tcp", dport=80, flags="SYN,ACK", state="established"),
    dict(src="192.0.2.1", dst="198.51.100.7", proto="icmp", icmp_type="echo-request"),
)]


class FuzzFailure(AssertionError):
    """A reader (or the engine) did something other than parse or refuse."""


def check(text: str, dialect: str | None, name: str = NAME, evaluate: bool = True):
    """Parse ``text`` as ``dialect`` (sniffed when None) and evaluate packets.

    Returns the ruleset, or the RuleAnalyzerError it was refused with."""
    try:
        ruleset = parsers.parse(text, name, dialect)
    except RuleAnalyzerError as err:
        loc = err.location
        if loc is None or loc.file != name or not (loc.line or loc.path or dialect is None):
            raise FuzzFailure(f"{dialect}: refusal without a location: {err.render()!r}\n"
                              f"input: {text[:2000]!r}") from err
        rendered = err.render()
        if not rendered.startswith(name) or len(rendered) > 4000:
            raise FuzzFailure(f"{dialect}: unclear rendering {rendered[:300]!r}")
        return err
    except Exception as exc:  # noqa: BLE001 - the point of the oracle
        raise FuzzFailure(f"{dialect}: {type(exc).__name__}: {exc}\ninput: {text[:2000]!r}") from exc
    if evaluate:
        try:
            evaluator = Evaluator(ruleset)
            for packet in PACKETS:
                evaluator.evaluate(packet)
        except RuleAnalyzerError:
            pass  # the engine may refuse clearly too (a named limit)
        except Exception as exc:  # noqa: BLE001
            raise FuzzFailure(f"{dialect}: engine {type(exc).__name__}: {exc}\n"
                              f"input: {text[:2000]!r}") from exc
    return ruleset


def decode_like_loader(data: bytes) -> str | None:
    """The text :func:`ruleanalyzer.loader.read_text` would hand the parser,
    or None where it refuses the bytes (NUL, not UTF-8)."""
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None


# -- the corpus ------------------------------------------------------------------

def corpus_files(dialect: str, max_size: int = 64 * 1024) -> list[Path]:
    """Corpus files of ``dialect`` no larger than ``max_size``, sorted."""
    out = []
    for folder, d in CORPUS_DIALECTS.items():
        if d != dialect or not (CORPUS / folder).is_dir():
            continue
        for root, _dirs, files in os.walk(CORPUS / folder):
            for f in files:
                p = Path(root) / f
                if p.stat().st_size <= max_size:
                    out.append(p)
    return sorted(out)


def corpus_texts(dialect: str, limit: int | None = None, max_size: int = 64 * 1024) -> list[str]:
    out = []
    for p in corpus_files(dialect, max_size):
        text = decode_like_loader(p.read_bytes())
        if text is not None:
            out.append(text)
    if limit is not None and len(out) > limit:
        step = len(out) / limit
        out = [out[int(i * step)] for i in range(limit)]
    return out


# -- mutations (used by hypothesis via a seed, and by the long drivers) ----------------

_NASTY = ["", "-", "--", "{", "}", "[", "]", "\"", "'", "\\", "$x", "@s", "0", "-1", "65536",
          "4294967296", "99999999999999999999", "0x", "1e309", "NaN", "null", "true", "[]", "{}",
          "0.0.0.0/0", "::/0", "1.2.3.4/33", "ffff::/129", "1-", ":", "a:b:c", "*", "…", "\u202e",
          "é", "\t", "\r", "\x0b", "\x1f", "#", ";", "/*", "*/", "&", "|", "!", "1:0", "65535:1",
          "-j", "-m", "--dport", "jump", "goto", "accept", "drop", "table", "chain", "include",
          "define", "counter", "elements", "=", "{ 1, 2 }", '"x"', "ALLOW", "DENY", "in", "out"]


def mutate(text: str, rng: random.Random, rounds: int | None = None) -> str:
    """``text`` with a few random structural edits: lines and tokens deleted,
    duplicated, swapped; truncation; byte flips; line-ending and encoding
    changes; nasty tokens inserted."""
    for _ in range(rounds or (1 if rng.random() < 0.5 else rng.randint(2, 4))):
        lines = text.splitlines(keepends=True) or [""]
        op = rng.randrange(14)
        i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
        if op == 0:
            del lines[i]
        elif op == 1:
            lines.insert(i, lines[j])
        elif op == 2:
            lines[i], lines[j] = lines[j], lines[i]
        elif op == 3:
            text = text[:rng.randrange(len(text) + 1)]
            continue
        elif op == 4 and text:
            k = rng.randrange(len(text))
            b = bytearray(text.encode("utf-8", "surrogatepass"))
            k = rng.randrange(len(b))
            b[k] ^= 1 << rng.randrange(8)
            text = b.decode("utf-8", "replace")
            continue
        elif op == 5:
            text = text.replace("\n", rng.choice(["\r\n", "\r", "\n\n", " \\\n"]))
            continue
        elif op == 6:
            # re-encoded in another charset and read back as UTF-8 (what a
            # Windows paste or an editor's "save as" does)
            enc = rng.choice(["latin-1", "cp1252", "utf-16-le", "utf-7"])
            text = text.encode(enc, "replace").decode("utf-8", "replace")
            continue
        else:
            words = lines[i].split(" ")
            k = rng.randrange(len(words))
            if op == 7:
                del words[k]
            elif op == 8:
                words.insert(k, words[rng.randrange(len(words))])
            elif op == 9:
                m = rng.randrange(len(words))
                words[k], words[m] = words[m], words[k]
            elif op == 10:
                words.insert(k, rng.choice(_NASTY))
            elif op == 11:
                words[k] = rng.choice(_NASTY)
            elif op == 12:
                other = lines[j].split(" ")
                words.insert(k, other[rng.randrange(len(other))])
            else:
                words[k] = words[k] * rng.randint(2, 50)
            lines[i] = " ".join(words)
        text = "".join(lines)
    return text.replace("\0", "")
