"""``ruleanalyzer collect``: take a snapshot of this host (docs/collect.md).

Runs the host's own read-only tools — ``iptables-save`` per backend,
``nft list ruleset``, ``ipset save``, ``ip -j addr/route/rule`` — reads the
sysctls that change what passes, copies the ufw and firewalld configuration
directories, and writes them with a manifest into a directory or a tar
archive. It changes nothing on the host: a tool whose first use would load
a kernel module (``iptables-legacy-save`` without ``ip_tables`` loaded,
``nft`` without ``nf_tables``, ``ipset`` without ``ip_set``) is not run,
and the manifest says why — there is nothing for it to show. What cannot
be read (a tool missing, no root) is skipped with a note; the snapshot is
written anyway.

No input is passed through a shell; every command has a timeout.
"""

from __future__ import annotations

import io
import os
import platform
import shutil
import socket
import subprocess
import tarfile
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from . import __version__
from .errors import RuleAnalyzerError
from .snapshot import ARCHIVE_SUFFIXES, CONFIG_DIRS, FILES, FORMAT_LINE, MANIFEST, SYSCTLS, VERSIONS

#: Seconds one tool may take.
COMMAND_TIMEOUT = 60
#: Largest configuration file copied (a ufw or firewalld file is small).
MAX_CONFIG_FILE = 16 * 1024 * 1024

#: Sysctls (as /proc/sys paths, globs allowed) that change what passes.
SYSCTL_GLOBS = (
    "net/ipv4/ip_forward",
    "net/ipv4/conf/*/forwarding",
    "net/ipv4/conf/*/rp_filter",
    "net/ipv4/conf/*/accept_local",
    "net/ipv4/conf/*/src_valid_mark",
    "net/ipv6/conf/*/forwarding",
    "net/ipv4/tcp_ecn",
    "net/ipv4/tcp_ecn_fallback",
    "net/netfilter/nf_conntrack_tcp_loose",
    "net/netfilter/nf_conntrack_tcp_be_liberal",
    "net/bridge/bridge-nf-call-iptables",
    "net/bridge/bridge-nf-call-ip6tables",
)

#: The kernel module a tool's first use would load, and the file that is
#: there once it is in use in this network namespace (None: the module
#: being present is enough).
_NEEDS = {
    "iptables-legacy-save.txt": ("ip_tables", "/proc/net/ip_tables_names"),
    "ip6tables-legacy-save.txt": ("ip6_tables", "/proc/net/ip6_tables_names"),
    "iptables-nft-save.txt": ("nf_tables", None),
    "ip6tables-nft-save.txt": ("nf_tables", None),
    "nft-ruleset.json": ("nf_tables", None),
    "nft-ruleset.txt": ("nf_tables", None),
    "ipset-save.txt": ("ip_set", None),
}
VERSION_COMMANDS = {
    "iptables": ("iptables", "--version"), "nft": ("nft", "--version"), "ipset": ("ipset", "--version"),
    "ip": ("ip", "-V"), "ufw": ("ufw", "--version"), "firewalld": ("firewall-offline-cmd", "--version"),
}


@dataclass
class Collected:
    """What one collection gathered: file name → bytes, and the notes."""

    files: dict[str, bytes] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    hostname: str = ""
    time: str = ""
    seconds: float = 0.0
    #: The host's group in a fleet audit (``--role``), when given.
    role: str | None = None

    def manifest(self) -> str:
        lines = [FORMAT_LINE, f"hostname: {self.hostname}", f"time: {self.time}",
                 f"collector: ruleanalyzer {__version__}", f"kernel: {platform.release()}",
                 f"uid: {os.geteuid() if hasattr(os, 'geteuid') else '?'}"]
        if self.role:
            lines.append(f"role: {self.role}")
        lines += [f"file: {name} <- {src}" for name, src in sorted(self.sources.items())]
        lines += [f"missing: {m}" for m in self.missing]
        return "\n".join(lines) + "\n"


#: Kernel configuration options of the modules, to recognise them built in.
_CONFIG = {"nf_tables": "CONFIG_NF_TABLES", "ip_set": "CONFIG_IP_SET", "ip_tables": "CONFIG_IP_NF_IPTABLES",
           "ip6_tables": "CONFIG_IP6_NF_IPTABLES"}


def _module_loaded(module: str) -> bool:
    """Is ``module`` in the kernel now (loaded, or built in)? A built-in
    module without parameters has no /sys/module entry: the kernel's
    modules.builtin list or its configuration says so."""
    if os.path.isdir(f"/sys/module/{module}"):
        return True
    release = platform.release()
    try:
        if f"/{module}.ko" in Path(f"/lib/modules/{release}/modules.builtin").read_text():
            return True
    except OSError:
        pass
    option = _CONFIG.get(module)
    if option is None:
        return False
    for config in ("/proc/config.gz", f"/boot/config-{release}"):
        try:
            data = Path(config).read_bytes()
            if config.endswith(".gz"):
                import gzip

                data = gzip.decompress(data)
        except (OSError, EOFError):
            continue
        return f"\n{option}=y\n".encode() in b"\n" + data
    return False


def _run(argv: tuple[str, ...]) -> tuple[bytes | None, str]:
    """Output of a command, or None and why not."""
    exe = shutil.which(argv[0])
    if exe is None:
        return None, f"{argv[0]} is not installed"
    try:
        done = subprocess.run([exe, *argv[1:]], capture_output=True, timeout=COMMAND_TIMEOUT,
                              stdin=subprocess.DEVNULL, env={**os.environ, "LC_ALL": "C"})
    except subprocess.TimeoutExpired:
        return None, f"{' '.join(argv)} took longer than {COMMAND_TIMEOUT} s"
    except OSError as exc:
        return None, f"{' '.join(argv)} could not run: {exc.strerror or exc}"
    if done.returncode != 0:
        why = done.stderr.decode("utf-8", "replace").strip().splitlines()
        return None, f"{' '.join(argv)} failed (exit {done.returncode})" + (f": {why[-1][:200]}" if why else "")
    return done.stdout, ""


def _command_for(name: str) -> tuple[str, ...] | None:
    """The command that fills ``name``: the backend-named iptables tools
    where installed, else plain ``iptables-save`` when it is that backend."""
    argv = FILES[name]
    if shutil.which(argv[0]) or "tables-" not in name:
        return argv
    plain = "ip6tables-save" if name.startswith("ip6") else "iptables-save"
    if shutil.which(plain):
        version, _ = _run((plain.replace("-save", ""), "--version"))
        backend = "legacy" if version and b"legacy" in version else "nft" if version and b"nf_tables" in version else None
        if version and backend is None:
            backend = "legacy"  # iptables before 1.8 has only the legacy backend
        if backend and f"-{backend}-" in name:
            return (plain,)
    return argv


def collect(etc: str | os.PathLike = "/etc", proc_sys: str | os.PathLike = "/proc/sys") -> Collected:
    """Gather a snapshot of this host in memory."""
    start = time.perf_counter()
    out = Collected(hostname=socket.gethostname(),
                    time=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    jobs: dict[str, tuple[str, ...]] = {}
    for name in FILES:
        need = _NEEDS.get(name)
        if need is not None:
            module, marker = need
            if marker is not None and not os.path.exists(marker):
                out.missing.append(f"{name}: not used on this host ({marker} absent: reading it would "
                                   f"load {module})")
                continue
            if marker is None and not _module_loaded(module):
                out.missing.append(f"{name}: not used on this host ({module} not loaded: reading it "
                                   "would load it)")
                continue
        argv = _command_for(name)
        if argv is not None:
            jobs[name] = argv
    versions = {tool: argv for tool, argv in VERSION_COMMANDS.items() if shutil.which(argv[0])}
    firewalld = _firewalld_version()
    if firewalld:
        versions.pop("firewalld", None)  # read from its package: no interpreter started
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = {name: pool.submit(_run, argv) for name, argv in jobs.items()}
        version_results = {tool: pool.submit(_run, argv) for tool, argv in versions.items()}
        for name, future in results.items():
            data, why = future.result()
            if data is None:
                out.missing.append(f"{name}: {why}")
            else:
                out.files[name] = data
                out.sources[name] = " ".join(jobs[name])
        lines = []
        for tool, future in version_results.items():
            data, why = future.result()
            text = (data or b"").decode("utf-8", "replace").strip().splitlines()
            lines.append(f"{tool}: {text[0] if text else 'unknown (' + why + ')'}")
    if firewalld:
        lines.append(f"firewalld: {firewalld}")
    for tool in VERSION_COMMANDS:
        if tool not in versions and not (tool == "firewalld" and firewalld):
            lines.append(f"{tool}: not installed")
    out.files[VERSIONS] = ("\n".join(lines) + "\n").encode()
    out.files[SYSCTLS] = _sysctls(Path(proc_sys), out.missing)
    for tool, rel in CONFIG_DIRS.items():
        _copy_config(Path(etc) / tool, rel, out)
    out.seconds = time.perf_counter() - start
    return out


def _firewalld_version() -> str | None:
    """firewalld's version from its Python package (``firewall/config``),
    where it is installed: running ``firewall-offline-cmd --version`` costs
    an interpreter start, the slowest part of a snapshot on a busy host."""
    import glob
    import re

    for path in glob.glob("/usr/lib/python3*/*-packages/firewall/config/__init__.py"):
        try:
            m = re.search(r"^VERSION\s*=\s*['\"]([^'\"]+)['\"]", Path(path).read_text(), re.M)
        except OSError:
            continue
        if m:
            return m.group(1)
    return None


def _sysctls(root: Path, missing: list[str]) -> bytes:
    lines = []
    for pattern in SYSCTL_GLOBS:
        try:
            paths = sorted(root.glob(pattern))
        except OSError as exc:
            missing.append(f"{SYSCTLS}: {pattern.replace('/', '.')} unreadable: {exc.strerror or exc}")
            continue
        if not paths:
            missing.append(f"{SYSCTLS}: {pattern.replace('/', '.')} absent (module not loaded, or not "
                           "this kernel's)")
        for path in paths:
            key = ".".join(path.relative_to(root).parts)
            try:
                lines.append(f"{key} = {path.read_text().strip()}")
            except OSError as exc:
                missing.append(f"{SYSCTLS}: {key} unreadable: {exc.strerror or exc}")
    return ("\n".join(lines) + "\n").encode()


def _copy_config(directory: Path, rel: str, out: Collected) -> None:
    try:
        present = directory.is_dir()
    except OSError as exc:
        out.missing.append(f"{rel}: {directory} unreadable: {exc.strerror or exc}")
        return
    if not present:
        out.missing.append(f"{rel}: {directory} absent (tool not configured here)")
        return
    for dirpath, dirnames, filenames in os.walk(directory, followlinks=False):
        dirnames.sort()
        for fname in sorted(filenames):
            path = Path(dirpath, fname)
            member = f"{rel}/{path.relative_to(directory).as_posix()}"
            if path.is_symlink() or not path.is_file():
                continue
            try:
                if path.stat().st_size > MAX_CONFIG_FILE:
                    out.missing.append(f"{member}: larger than {MAX_CONFIG_FILE} bytes, not copied")
                    continue
                out.files[member] = path.read_bytes()
            except OSError as exc:
                out.missing.append(f"{member}: unreadable: {exc.strerror or exc}")


def write_snapshot(collected: Collected, path: str | os.PathLike) -> str:
    """Write ``collected`` as a directory, or as an archive when ``path``
    ends in ``.tar``/``.tar.gz``/``.tgz``… Nothing is left half-written:
    the result is built beside ``path`` and moved into place."""
    target = Path(path)
    if target.exists():
        raise RuleAnalyzerError(f"{target} already exists", hint="name a new directory or archive with -o")
    parent = target.parent if str(target.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RuleAnalyzerError(f"cannot create {parent}: {exc.strerror or exc}") from None
    files = dict(collected.files)
    files[MANIFEST] = collected.manifest().encode()
    if str(target).lower().endswith(ARCHIVE_SUFFIXES):
        mode = {".gz": "w:gz", ".tgz": "w:gz", ".xz": "w:xz", ".txz": "w:xz", ".bz2": "w:bz2",
                ".tbz2": "w:bz2"}.get(target.suffix.lower(), "w")
        fd, tmp = tempfile.mkstemp(prefix=".ruleanalyzer-", dir=parent)
        try:
            with os.fdopen(fd, "wb") as handle, tarfile.open(fileobj=handle, mode=mode) as tar:
                for name in sorted(files):
                    info = tarfile.TarInfo(name)
                    info.size = len(files[name])
                    info.mtime = int(time.time())
                    info.mode = 0o644
                    tar.addfile(info, io.BytesIO(files[name]))
            os.replace(tmp, target)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        return str(target)
    tmp = tempfile.mkdtemp(prefix=".ruleanalyzer-", dir=parent)
    try:
        for name, data in files.items():
            dest = Path(tmp, name)
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(data)
        os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return str(target)
