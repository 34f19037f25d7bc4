"""Run Debian's real firewalld, isolated, and read the ruleset it builds.

Each run happens inside ``unshare --mount --net --pid --fork``: a private
tmpfs on ``/run`` with its own system D-Bus (own config, allow-all policy,
no service activation), a private copy of the configuration bind-mounted
over ``/etc/firewalld`` and a private ``/var/log``, veth interfaces for the
zone bindings, then ``firewalld --nofork``; once ``firewall-cmd --state``
says ``running`` the ruleset is dumped (text and JSON). The namespace's PID
1 is the script: when it ends, the kernel kills firewalld and D-Bus and the
network namespace with its ruleset disappears. Nothing touches the host's
``/etc/firewalld``, D-Bus or ruleset (``host_fingerprint`` lets tests prove
it). See /work/shared/firewalld-notes.md for the facts this relies on.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

DBUS_CONF = """<busconfig>
  <type>system</type>
  <listen>unix:path=/run/dbus/system_bus_socket</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_type="method_call"/>
    <allow send_destination="*"/>
    <allow receive_type="*"/>
  </policy>
</busconfig>
"""

SCRIPT = r"""
set -e
T="$1"
mount --make-rprivate /
mount -t tmpfs tmpfs /run
mkdir -p /run/dbus
mount --bind "$T/etc" /etc/firewalld
mount --bind "$T/log" /var/log
ip link set lo up
for pair in $(cat "$T/interfaces"); do
  ip link add "${pair%%,*}" type veth peer name "${pair##*,}"
done
dbus-daemon --config-file="$T/dbus.conf" --nofork --nopidfile >/dev/null 2>&1 &
for i in $(seq 100); do [ -S /run/dbus/system_bus_socket ] && break; sleep 0.05; done
firewalld --nofork --nopid --log-target file --log-file "$T/log/firewalld.log" --debug=1 >/dev/null 2>&1 &
state=unknown
for i in $(seq 300); do
  state=$(firewall-cmd --state 2>&1 || true)
  [ "$state" = running ] || [ "$state" = failed ] && break
  sleep 0.1
done
echo "$state" > "$T/state"
if [ "$state" = running ]; then
  while read -r zone what; do
    [ -n "$zone" ] || continue
    case "$what" in
      */*|*.*|*:*) firewall-cmd -q --zone="$zone" --add-source="$what" ;;
      *) firewall-cmd -q --zone="$zone" --add-interface="$what" ;;
    esac
  done < "$T/bindings"
fi
nft list ruleset > "$T/ruleset.nft"
nft -j list ruleset > "$T/ruleset.json"
"""

#: Files and folders of the host a test must leave exactly as they were.
HOST_PATHS = ("/etc/firewalld",)


@dataclass
class Dump:
    """What the real firewalld did with a configuration."""

    state: str
    nft: str
    json: dict
    log: str


def missing() -> str | None:
    """Why the real firewalld cannot run here, or None."""
    if os.geteuid() != 0:
        return "the firewalld oracle needs root (namespaces, mounts, nftables)"
    for tool in ("firewalld", "firewall-cmd", "dbus-daemon", "nft", "unshare", "ip"):
        if shutil.which(tool) is None:
            return f"the firewalld oracle needs {tool!r} (scripts/setup.sh installs firewalld)"
    return None


def host_fingerprint() -> dict[str, str]:
    """Hashes of the host's firewalld files and its nft ruleset."""
    out = {}
    for root in HOST_PATHS:
        for p in sorted(Path(root).rglob("*")) if Path(root).is_dir() else []:
            if p.is_file():
                out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
    done = subprocess.run(["nft", "list", "ruleset"], capture_output=True, text=True, timeout=30)
    out["<host nft ruleset>"] = hashlib.sha256(done.stdout.encode()).hexdigest()
    return out


def run_firewalld(config_dir: str | os.PathLike, interfaces: list[str] = (),
                  bindings: list[tuple[str, str]] = (), timeout: float = 60) -> Dump:
    """Start firewalld on a private copy of ``config_dir``; ``interfaces``
    are created (veth pairs) before it starts, ``bindings`` ``(zone,
    interface-or-source)`` are added at runtime before the dump."""
    with tempfile.TemporaryDirectory(prefix="ra-firewalld-") as tmp:
        t = Path(tmp)
        shutil.copytree(config_dir, t / "etc", symlinks=False)
        (t / "log").mkdir()
        (t / "dbus.conf").write_text(DBUS_CONF)
        pairs = []
        names = list(dict.fromkeys(interfaces))
        for i, name in enumerate(names):
            pairs.append(f"{name},rapeer{i}")
        (t / "interfaces").write_text("\n".join(pairs) + "\n")
        (t / "bindings").write_text("".join(f"{z} {w}\n" for z, w in bindings))
        (t / "run.sh").write_text(SCRIPT)
        subprocess.run(["unshare", "--mount", "--net", "--pid", "--fork", "--mount-proc",
                        "sh", str(t / "run.sh"), str(t)],
                       capture_output=True, text=True, timeout=timeout, check=False)
        state = (t / "state").read_text().strip() if (t / "state").exists() else "no state"
        nft = (t / "ruleset.nft").read_text() if (t / "ruleset.nft").exists() else ""
        raw = (t / "ruleset.json").read_text() if (t / "ruleset.json").exists() else "{}"
        log = (t / "log" / "firewalld.log").read_text() if (t / "log" / "firewalld.log").exists() else ""
        return Dump(state, nft, json.loads(raw or "{}"), log)


def chains_of(nft_text: str) -> dict[str, list[str]]:
    """``nft list ruleset`` text of ``table inet firewalld`` → chain → rule lines."""
    out: dict[str, list[str]] = {}
    chain = None
    in_table = False
    depth = 0
    for raw in nft_text.splitlines():
        line = raw.strip()
        if line.startswith("table inet firewalld"):
            in_table, depth = True, 1
            continue
        if not in_table:
            continue
        if line.startswith("chain ") and line.endswith("{"):
            chain = line.split()[1]
            out[chain] = []
            depth += 1
            continue
        if line.endswith("{"):
            depth += 1
            chain = None
            continue
        if line == "}":
            depth -= 1
            chain = None if depth <= 1 else chain
            if depth == 0:
                in_table = False
            continue
        if chain and line and not line.startswith(("type ", "policy ")):
            out[chain].append(line)
    return out


def comparable(chains: dict[str, list[str]]) -> dict[str, list[str]]:
    """Chains as ``nft list`` would print them, for comparing two listings.

    nft's listing drops a ``meta nfproto`` match wherever a later match or
    the reject type implies the family (the bytecode still has it), so
    that word is left out on both sides; dispatch rules into the same
    policy chain are in an order firewalld takes from a Python set, so
    those chains compare as sorted lists."""
    import re

    out = {}
    for name, lines in chains.items():
        lines = [re.sub(r"meta nfproto ipv[46] ", "", line) for line in lines]
        out[name] = sorted(lines) if "_POLICIES_" in name else lines
    return out
