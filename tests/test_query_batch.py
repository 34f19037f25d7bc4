"""Batch questions end to end (issue #21): ``query --packets`` streams every
answer; without ``--trace`` an answer is today's answer less its trace, with
``--trace`` exactly today's; the batch packet reader gives the packets and
the located errors of ``make_packet``."""

import json
import random
from pathlib import Path

import pytest

from ruleanalyzer import load
from ruleanalyzer.cli import main
from ruleanalyzer.engine.evaluate import Evaluator
from ruleanalyzer.errors import RuleAnalyzerError
from ruleanalyzer.packets import PacketReader, make_packet
from ruleanalyzer.report.serialize import result_data

ROOT = Path(__file__).resolve().parents[1]
RULESETS = ROOT / "fixtures" / "rulesets"
FIXTURES = ["webserver.rules", "docker-host.rules", "router.rules", "crowdsec-host.nft", "ecn-trap.nft"]


def _packets(seed: int, n: int) -> list[dict]:
    """Packets that repeat their shapes (so the reader's cache is used)
    with varied addresses, ports given as numbers and as text, ids."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        v6 = rng.random() < 0.15
        host = (lambda: f"2001:db8::{rng.randrange(1, 99):x}") if v6 else (
            lambda: rng.choice(["198.51.100.7", "192.0.2.10", "10.0.0.5", "172.17.0.2", "203.0.113.9",
                                f"192.0.2.{rng.randrange(1, 255)}", " 10.1.2.3 "]))
        p = {"src": host(), "dst": host(), "proto": rng.choice(["tcp", "udp", "icmp", 6, None]),
             "hook": rng.choice(["input", "forward", "output"]),
             "state": rng.choice(["new", "established", "auto"])}
        if p["proto"] in ("tcp", "udp", 6, None):
            p["dport"] = rng.choice([22, 80, 443, 53, "8080", 25])
            if rng.random() < 0.5:
                p["sport"] = rng.choice([1024, 40000, "53"])
        if rng.random() < 0.3:
            p["iif"] = rng.choice(["eth0", "docker0", "lo"])
        if rng.random() < 0.2:
            p["flags"] = rng.choice(["ACK", "SYN,ECE,CWR", "RST"])
        if rng.random() < 0.5:
            p["id"] = rng.choice([i, f"p{i}"])
        out.append({k: v for k, v in p.items() if v is not None})
    return out


def _today(ruleset_path: Path, packets: list[dict]) -> list[dict]:
    """What query --packets wrote before: the one-packet engine on make_packet."""
    evaluator = Evaluator(load(str(ruleset_path)))
    answers = []
    for fields in packets:
        packet = make_packet(**{"hook": "input", **fields})
        answers.append(result_data(evaluator.evaluate(packet), packet))
    return answers


@pytest.mark.parametrize("name", FIXTURES)
def test_batch_answers_are_todays_less_the_trace(name, tmp_path, capsys):
    packets = _packets(len(name), 400)
    batch = tmp_path / "p.jsonl"
    batch.write_text("".join(json.dumps(p) + "\n" for p in packets))
    today = _today(RULESETS / name, packets)
    main(["query", str(RULESETS / name), "--packets", str(batch), "--format", "jsonl", "--trace"])
    assert capsys.readouterr().out == "".join(json.dumps(a) + "\n" for a in today)
    main(["query", str(RULESETS / name), "--packets", str(batch), "--format", "jsonl"])
    out = capsys.readouterr().out
    for answer in today:
        del answer["trace"]
    assert out == "".join(json.dumps(a) + "\n" for a in today)
    plain = [json.loads(line) for line in out.splitlines()]
    assert any(a["decided_by"] and a["decided_by"].get("line") for a in plain)


def test_batch_json_is_the_indented_list(tmp_path, capsys):
    packets = _packets(7, 200)  # past the first packets: the decision tree's answers too
    batch = tmp_path / "p.jsonl"
    batch.write_text("".join(json.dumps(p) + "\n" for p in packets))
    web = RULESETS / "webserver.rules"
    main(["query", str(web), "--packets", str(batch), "--format", "json", "--trace"])
    assert capsys.readouterr().out == json.dumps(_today(web, packets), indent=2) + "\n"
    empty = tmp_path / "empty.jsonl"
    empty.write_text("# nothing\n")
    main(["query", str(web), "--packets", str(empty), "--format", "json"])
    assert capsys.readouterr().out == "[]\n"


def test_single_query_keeps_its_trace(capsys):
    main(["query", str(RULESETS / "webserver.rules"), "--src", "198.51.100.7", "--dst", "192.0.2.10",
          "--dport", "22", "--format", "json"])
    assert json.loads(capsys.readouterr().out)["trace"]


def _outcome(make, fields):
    try:
        return make(fields)
    except RuleAnalyzerError as exc:
        return ("error", exc.message, exc.hint)


def test_reader_gives_make_packets_packets_and_errors():
    good = _packets(3, 300)
    bad = [{"src": "198.51.100.7", "dst": "2001:db8::1", "dport": 22},
           {"src": "198.51.100.7", "dst": "192.0.2.10", "dport": 70000},
           {"src": "198.51.100.7", "dst": "192.0.2.10", "dport": "x"},
           {"src": "198.51.100.7", "dst": "192.0.2.10", "sport": -1, "dport": 22},
           {"src": "198.51.100.7", "dst": "192.0.2.10"},
           {"src": "198.51.100.999", "dst": "192.0.2.10", "dport": 22},
           {"src": 5, "dst": "192.0.2.10", "dport": 22},
           {"dst": "192.0.2.10", "dport": 22},
           {"src": "198.51.100.7", "dst": "192.0.2.10", "dport": 22, "colour": "red"},
           {"src": "198.51.100.7", "dst": "192.0.2.10", "dport": 22, "iif": ["eth0"]},
           {"src": "198.51.100.7", "dst": "192.0.2.10", "dport": 22, "iif": True},
           {"src": "198.51.100.7", "dst": "192.0.2.10", "dport": 22, "iif": 1},
           {"src": "198.51.100.7", "dst": "192.0.2.10", "dport": True},
           {"src": "198.51.100.7", "dst": "192.0.2.10", "proto": "udp", "frag": "middle"},
           # addresses as the reader does not read them itself
           {"src": "010.0.0.5", "dst": "192.0.2.10", "dport": 22},
           {"src": "10.0.5", "dst": "192.0.2.10", "dport": 22},
           {"src": "1.2.3.4\x00", "dst": "192.0.2.10", "dport": 22},
           {"src": "1.2.3.\u0664", "dst": "192.0.2.10", "dport": 22},
           {"src": "::ffff:1.2.3.4", "dst": "192.0.2.10", "dport": 22}]
    good += [{"src": "0.0.0.0", "dst": "255.255.255.255", "proto": "udp", "dport": 67},
             {"src": "\t198.51.100.7", "dst": "2001:DB8::0:1", "dport": 22},
             {"src": "::ffff:1.2.3.4", "dst": "2001:db8::1", "dport": 22},
             {"src": "127.0.0.1", "dst": "224.0.0.251", "proto": "udp", "dport": 5353},
             {"src": "198.51.100.7", "dst": "192.0.2.10", "dport": 22, "iif": "", "oif": "eth\"1"}]
    reader = PacketReader()
    # twice: the second round is answered from the reader's caches
    for fields in (good + bad) * 2:
        fields = {"hook": "input", **fields}
        assert _outcome(reader.make, fields) == _outcome(lambda f: make_packet(**f), fields), fields
    assert reader._templates


def test_item_per_key_sequence_is_the_reader_s_own_item():
    """``item`` (a function per sequence of keys) gives what ``_item``
    gives: the same packet or error, and one template exactly where
    ``_item`` gives one (True, 1 and 1.0 are alike to a dict, not to it)."""
    rng = random.Random(11)
    choices = {"src": ["198.51.100.7", "10.0.0.1", "2001:db8::1", "010.0.0.5", "", 5, None, ["x"]],
               "dst": ["192.0.2.10", "10.0.0.2", "2001:db8::2", "bad", True],
               "sport": [80, None, 0, 65535, 65536, -1, "80", "0x50", "08", " 9 ", True, 1.0],
               "dport": [22, 443, 70000, "22", "65536", "1_0", False, 22.0, None, [1]],
               "id": ["a", None, 7, True, ""], "iif": ["eth0", "", None, 3, "lo"], "oif": ["eth1", "", None],
               "proto": ["tcp", "udp", "icmp", 6, True, 1.0], "state": ["new", "established", None, 1],
               "mf": [True, 1, "yes", 1.0, 0], "ttl": [64, True, "64", 64.0], "hook": ["input", "forward"],
               "mark": [1, True, 1.0, "1", {"a": 1}]}
    varying = ("src", "dst", "sport", "dport", "id", "iif", "oif")
    shapes = []  # (keys in order, the others' values): lines alike but for the varying fields
    for _ in range(40):
        keys = rng.sample(sorted(choices), rng.randrange(2, 9))
        keys = keys if rng.random() < 0.5 else ["src", "dst", *[k for k in keys if k not in ("src", "dst")]]
        others = {key: rng.choice(choices[key]) for key in keys if key not in varying}
        shapes.append((keys, others))
        # the same but for a value's class (a dict takes True for 1 and 1.0)
        twin = {key: 1 if v is True else True if v.__class__ is int and v == 1 else v for key, v in others.items()}
        shapes.append((keys, twin))
    new, old = PacketReader(), PacketReader()
    pairs: dict = {}
    for _ in range(20000):
        keys, others = rng.choice(shapes)
        fields = {key: others[key] if key in others else rng.choice(choices[key][:2] if rng.random() < 0.8
                                                                     else choices[key]) for key in keys}
        a, b = _outcome(new.item, dict(fields)), _outcome(old._item, dict(fields))
        if b.__class__ is tuple and b[0] != "error":
            assert a.__class__ is tuple and a[1:] == b[1:], fields
            assert pairs.setdefault(id(a[0]), b[0]) is b[0] and a[0].packet == b[0].packet, fields
        else:
            assert a == b, fields
    assert len(pairs) > 20 and new._items


def test_bad_line_stops_the_batch_before_any_answer(tmp_path, capsys):
    lines = [json.dumps(p) for p in _packets(5, 50)]
    lines.insert(40, '{"src": "198.51.100.7", "dst": "192.0.2.10", "dport": 99999}')
    batch = tmp_path / "p.jsonl"
    batch.write_text("\n".join(lines) + "\n")
    report = tmp_path / "out.jsonl"
    code = main(["query", str(RULESETS / "webserver.rules"), "--packets", str(batch), "--format", "jsonl",
                 "--output", str(report)])
    out, err = capsys.readouterr()
    assert code == 2 and f"{batch}:41:1" in err and "dport 99999 is out of range" in err
    assert out == "" and not report.exists()
    code = main(["query", str(RULESETS / "webserver.rules"), "--packets", str(batch), "--format", "jsonl"])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""


def test_batch_output_holds_the_query_schema(tmp_path, capsys):
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((ROOT / "docs" / "schemas" / "query.schema.json").read_text())
    batch = tmp_path / "p.jsonl"
    batch.write_text("".join(json.dumps(p) + "\n" for p in _packets(11, 20)))
    main(["query", str(RULESETS / "docker-host.rules"), "--packets", str(batch), "--format", "json"])
    document = json.loads(capsys.readouterr().out)
    assert document and all("trace" not in a for a in document)
    jsonschema.validate(document, schema)


def test_odd_lines_read_as_json_loads_reads_them(tmp_path):
    """Lines the reader's fast way does not take (white space around, extra
    data, bad JSON) give json.loads's packet or error."""
    from ruleanalyzer.packets import read_packets

    fine = '{"src": "198.51.100.7", "dst": "192.0.2.10", "dport": 22}'
    for line in (fine, "  " + fine, fine + "  ", fine + "\r", fine + " x", fine + "}",
                 '{"src": "198.51.100.7", "dst": "192.0.2.10", "dport": 22,}', "{", "{}", "{\"src\": [1]}",
                 '{"src": "198.51.100.7", "dst": "192.0.2.10", "dport": 22} {"a": 1}'):
        try:
            expected = [make_packet(**{"hook": "input", **json.loads(line.rstrip("\r"))})]
        except (ValueError, TypeError, RuleAnalyzerError) as exc:
            expected = type(exc)
        try:
            got = list(read_packets(line + "\n", "p.jsonl"))
        except RuleAnalyzerError as exc:
            assert exc.location.line == 1 and exc.message.startswith("bad packet: "), line
            got = exc.message
        if isinstance(expected, list):
            assert got == expected, line
        else:
            assert isinstance(got, str), line
            try:
                json.loads(line.rstrip("\r"))
            except ValueError as exc:
                assert got == f"bad packet: {exc}", line


def _flow_lines(seed: int, n: int) -> tuple[str, str]:
    """``conntrack -L`` entries and VPC flow log records of varied packets."""
    rng = random.Random(seed)
    conntrack, vpc = [], ["version account-id interface-id srcaddr dstaddr srcport dstport protocol "
                          "packets bytes start end action log-status"]
    for _ in range(n):
        src, dst = (rng.choice(["198.51.100.7", "192.0.2.10", "10.0.0.5", "172.17.0.2",
                                f"203.0.113.{rng.randrange(1, 255)}"]) for _ in range(2))
        proto = rng.choice(["tcp", "tcp", "udp", "icmp"])
        number = {"tcp": 6, "udp": 17, "icmp": 1}[proto]
        sport, dport = rng.choice([40000, 51234, 22, 443]), rng.choice([22, 80, 443, 53, 8080])
        ports = f"sport={sport} dport={dport}" if proto != "icmp" else "type=8 code=0 id=7"
        back = f"sport={dport} dport={sport}" if proto != "icmp" else "type=0 code=0 id=7"
        conntrack.append(f"{proto:8} {number} 117 src={src} dst={dst} {ports} packets=3 bytes=180 "
                         f"src={dst} dst={src} {back} [ASSURED] mark={rng.choice([0, 1])} use=1")
        if proto == "icmp":
            sport = dport = 0
        vpc.append(f"2 123456789010 eni-1 {src} {dst} {sport} {dport} {number} 3 180 1418530010 "
                   f"1418530070 ACCEPT OK")
    return "\n".join(conntrack) + "\n", "\n".join(vpc) + "\n"


@pytest.mark.parametrize("name", ["router.rules", "docker-host.rules"])
def test_flow_batches_are_the_engines_answers(name, tmp_path, capsys):
    from ruleanalyzer.flows import read_flows, to_packets

    evaluator = Evaluator(load(str(RULESETS / name)))
    for kind, text in zip(("conntrack", "vpc"), _flow_lines(len(name), 300)):
        flows = tmp_path / f"{kind}.txt"
        flows.write_text(text)
        for fmt in ("jsonl", "json"):
            main(["query", str(RULESETS / name), "--packets", str(flows), "--format", fmt])
            out = capsys.readouterr().out
            today = [result_data(evaluator.evaluate(p), p, trace=False)
                     for p in to_packets(read_flows(text, "f"), "input")]
            assert len(today) == 300
            assert out == ("".join(json.dumps(a) + "\n" for a in today) if fmt == "jsonl"
                           else json.dumps(today, indent=2) + "\n"), (kind, fmt)


def test_answers_stay_the_engines_when_the_tree_is_turned_off_midway():
    """The batch turns its tree off after 4,000 packets that seldom share a
    leaf; answers written from the tree before and from the engine after
    are each the engine's own."""
    import io

    from ruleanalyzer.engine.batch import BatchEvaluator, Decisions
    from ruleanalyzer.packets import read_packets
    from ruleanalyzer.report.answers import _write_lines

    packets = _packets(13, 300)
    ruleset = load(str(RULESETS / "docker-host.rules"))
    batch = BatchEvaluator(ruleset)
    batch.decisions = Decisions(ruleset)
    batch._asked, batch._hits = 3900, 0  # as after 3,900 packets with no leaf shared
    read = read_packets("".join(json.dumps(p) + "\n" for p in packets), "p.jsonl")
    out = io.StringIO()
    _write_lines(batch, read.items, read.reader.packet, out, False, False, set())
    assert not batch.memoize and batch._hits > 0  # some answers came from the tree, then none
    evaluator = Evaluator(ruleset)
    expected = [result_data(evaluator.evaluate(p), p, trace=False) for p in read]
    assert out.getvalue() == "".join(json.dumps(a) + "\n" for a in expected)


def test_indented_is_json_dumps_with_an_indent():
    from ruleanalyzer.report.answers import indented

    for value in ({"a": [1, {"b": None, "c": [True, False, "é\n\"x"]}, [], {}], "d": (2, "")},
                  [], {}, "x", 3, [1.5, float("nan")], {1: "a"}):
        for newline in ("\n", "\n  "):
            assert indented(value, newline) == json.dumps(value, indent=2).replace("\n", newline)


def test_lines_read_at_once_are_the_lines_read_one_by_one():
    """The JSON lines of a file read as one array where that is sure to
    give each line's object: comments and blank lines around, braces in
    strings (then line by line), a bad line (its own located error)."""
    from ruleanalyzer.packets import _read_at_once, read_packets

    lines = [json.dumps(p) for p in _packets(3, 30)]
    text = "# packets\n\n" + "\n".join(lines) + "\n  \n"
    assert list(read_packets(text, "p.jsonl")) == \
        [make_packet(**{"hook": "input", **json.loads(line)}) for line in lines]
    odd = [lines[0][:-1] + ', "id": "{"}', lines[1]]  # a second brace: read one by one
    assert _read_at_once(odd, "input", lambda fields: fields) is None
    assert [p.id for p in read_packets("\n".join(odd), "p.jsonl")] == ["{", None]
    # a string across two lines would make fewer values than lines
    assert _read_at_once(['{"id": "}', '{"}'], "input", lambda fields: fields) is None
    with pytest.raises(RuleAnalyzerError) as info:
        read_packets("\n".join(lines[:5] + ['{"src": "198.51.100.7", "dst": "192.0.2.10", "dport": -1}']),
                     "p.jsonl")
    assert info.value.location.line == 6 and "dport -1 is out of range" in info.value.message
