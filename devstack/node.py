"""A real single-node Elasticsearch for development, tests and CI, without Docker.

The node is the integration-test distribution of Elasticsearch from Maven Central (a real
distribution without a bundled JDK) started with a Java 21+ runtime. That distribution lacks the
module answering ``GET /``, so a tiny plugin of ours (``devstack/root-plugin``) is compiled against
it and installed; everything else is stock Elasticsearch.

Elasticsearch refuses to run as root, so when we are root the node runs as a system user created
for it. Its home is unpacked once into a shared cache; each node gets a fresh run folder (data,
logs, temp) so every test session starts from an empty cluster.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

ES_VERSION = "9.2.4"
HERE = Path(__file__).resolve().parent
NODE_USER = "esnode"
START_TIMEOUT_S = 180.0


class DevstackError(RuntimeError):
    """The node could not be prepared or started; the message says what to fix."""


def _cache_root() -> Path:
    explicit = os.environ.get("EDGEWATCH_DEVSTACK_CACHE")
    if explicit:
        return Path(explicit)
    # The node user must be able to read the unpacked home, and root's home folder is closed to it.
    if os.geteuid() == 0:
        return Path("/var/tmp/edgewatch-devstack")
    return Path.home() / ".cache" / "edgewatch-devstack"


def find_java_home() -> Path:
    """Elasticsearch 9 needs Java 21+; the machine's default Java may be older."""
    candidates = [os.environ.get("ES_JAVA_HOME"), os.environ.get("EDGEWATCH_JAVA_HOME")]
    candidates += sorted(str(p) for p in Path("/usr/lib/jvm").glob("temurin-2[1-9]*"))
    candidates += sorted(str(p) for p in Path("/usr/lib/jvm").glob("java-2[1-9]*"))
    for c in candidates:
        if c and (Path(c) / "bin" / "java").exists() and (Path(c) / "bin" / "javac").exists():
            return Path(c)
    raise DevstackError(
        "no Java 21+ JDK found (looked at ES_JAVA_HOME and /usr/lib/jvm/temurin-2*); "
        "install one or set ES_JAVA_HOME"
    )


def _fetch_distribution(dist_dir: Path) -> Path:
    zip_path = dist_dir / f"elasticsearch-{ES_VERSION}.zip"
    if zip_path.exists():
        return zip_path
    dist_dir.mkdir(parents=True, exist_ok=True)
    cmd = [
        "mvn", "-q", "-B", "-f", str(HERE / "pom.xml"),
        "dependency:copy-dependencies",
        f"-Ddevstack.dist.dir={dist_dir}",
        f"-Delasticsearch.version={ES_VERSION}",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0 or not zip_path.exists():
        raise DevstackError(
            f"Maven could not fetch the Elasticsearch {ES_VERSION} distribution:\n"
            f"{proc.stdout[-2000:]}{proc.stderr[-2000:]}"
        )
    return zip_path


def _build_root_plugin(es_home: Path, java_home: Path) -> None:
    plugin_dir = es_home / "plugins" / "devstack-root"
    if (plugin_dir / "devstack-root.jar").exists():
        return
    src = HERE / "root-plugin" / "src"
    with tempfile.TemporaryDirectory() as build:
        sources = [str(p) for p in src.rglob("*.java")]
        javac = [
            str(java_home / "bin" / "javac"), "--release", "21", "-proc:none", "-nowarn",
            "-cp", f"{es_home / 'lib'}/*", "-d", build, *sources,
        ]
        proc = subprocess.run(javac, capture_output=True, text=True)
        if proc.returncode != 0:
            raise DevstackError(f"compiling the devstack root plugin failed:\n{proc.stderr}")
        plugin_dir.mkdir(parents=True, exist_ok=True)
        jar = [str(java_home / "bin" / "jar"), "cf", str(plugin_dir / "devstack-root.jar"),
               "-C", build, "."]
        subprocess.run(jar, check=True)
    (plugin_dir / "plugin-descriptor.properties").write_text(
        "description=Answers GET / on the edgewatch devstack node\n"
        f"version={ES_VERSION}\n"
        "name=devstack-root\n"
        "classname=dev.edgewatch.devstack.RootInfoPlugin\n"
        "java.version=21\n"
        f"elasticsearch.version={ES_VERSION}\n"
    )


def prepare_home(java_home: Path | None = None) -> Path:
    """Fetch (Maven, cached), unpack (cached) and complete the distribution; return its home."""
    java_home = java_home or find_java_home()
    root = _cache_root()
    es_home = root / f"elasticsearch-{ES_VERSION}"
    marker = es_home / ".devstack-ready"
    if not marker.exists():
        zip_path = _fetch_distribution(root / "dist")
        staging = Path(tempfile.mkdtemp(dir=root, prefix="unpack-"))
        with zipfile.ZipFile(zip_path) as zf:
            zf.extractall(staging)
        unpacked = staging / f"elasticsearch-{ES_VERSION}"
        for entry in (unpacked / "bin").iterdir():
            entry.chmod(0o755)
        for entry in (unpacked / "lib").rglob("*"):
            if entry.is_file() and entry.parent.name == "bin":
                entry.chmod(0o755)
        if es_home.exists():
            shutil.rmtree(es_home)
        unpacked.rename(es_home)
        shutil.rmtree(staging, ignore_errors=True)
        _build_root_plugin(es_home, java_home)
        _make_world_readable(root)
        marker.write_text(ES_VERSION)
    return es_home


def _make_world_readable(root: Path) -> None:
    for dirpath, _dirnames, filenames in os.walk(root):
        os.chmod(dirpath, 0o755)
        for name in filenames:
            p = Path(dirpath) / name
            p.chmod(p.stat().st_mode | 0o444)


def _node_user() -> pwd.struct_passwd | None:
    """Elasticsearch refuses root; as root we run it as a dedicated system user."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(NODE_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", NODE_USER],
            check=True,
        )
        return pwd.getpwnam(NODE_USER)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@dataclass
class Node:
    url: str
    pid: int
    run_dir: Path
    started_in_s: float

    def rss_bytes(self) -> int:
        """Resident memory of the node's JVM (the launcher forks it as a child)."""
        total = 0
        for pid in _process_tree(self.pid):
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
            except OSError:
                continue
        return total

    def stop(self, timeout: float = 30.0) -> None:
        stop_node(self.run_dir, timeout=timeout)


def _process_tree(pid: int) -> list[int]:
    pids = [pid]
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue
    i = 0
    while i < len(pids):
        pids.extend(children.get(pids[i], []))
        i += 1
    return pids


def _get_root(url: str) -> dict | None:
    try:
        with urllib.request.urlopen(url + "/", timeout=2) as resp:
            if resp.headers.get("X-Elastic-Product") != "Elasticsearch":
                return None
            return json.loads(resp.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None


def start_node(
    run_dir: Path | None = None,
    port: int | None = None,
    heap: str = "1g",
    timeout: float = START_TIMEOUT_S,
    die_with_parent: bool = False,
    settings: Mapping[str, str | None] | None = None,
    ready: Callable[[str], bool] | None = None,
) -> Node:
    """Start a fresh node and return once ``GET /`` answers; raise DevstackError otherwise.

    ``settings`` override the single-node defaults below (a cluster member sets its own
    ``node.name``, transport port and discovery; a secured node turns security on); a value of
    None removes the default (a cluster member has no ``discovery.type``).
    ``ready(url)`` replaces the ``GET /`` readiness check where that needs credentials or a
    formed cluster.

    ``die_with_parent`` (tests) has the kernel stop the node when the starting process dies,
    however it dies, so a killed test run cannot leave a node behind. The Elasticsearch server
    exits when its launcher does.
    """
    java_home = find_java_home()
    es_home = prepare_home(java_home)
    run_dir = Path(run_dir or tempfile.mkdtemp(prefix="edgewatch-es-"))
    for sub in ("data", "logs", "tmp"):
        (run_dir / sub).mkdir(parents=True, exist_ok=True)
    # The node writes its keystore into its config folder, so each run gets its own copy.
    if not (run_dir / "config").exists():
        shutil.copytree(es_home / "config", run_dir / "config")
    port = port or free_port()
    user = _node_user()
    if user is not None:
        closed = [p for p in run_dir.resolve().parents if not os.stat(p).st_mode & 0o001]
        if closed:
            raise DevstackError(f"the node runs as {NODE_USER!r}, which cannot reach {run_dir}: "
                                f"{closed[0]} is closed to other users; use a run folder "
                                "under a world-traversable parent (e.g. tempfile.mkdtemp())")
        for dirpath, _dirs, files in os.walk(run_dir):
            os.chown(dirpath, user.pw_uid, user.pw_gid)
            for f in files:
                os.chown(Path(dirpath) / f, user.pw_uid, user.pw_gid)
        run_dir.chmod(0o755)
    url = f"http://127.0.0.1:{port}"
    overrides = settings
    defaults = {
        "cluster.name": "edgewatch-devstack",
        "node.name": "devstack",
        "discovery.type": "single-node",
        "network.host": "127.0.0.1",
        "http.port": str(port),
        "transport.port": "0",
        "path.data": str(run_dir / "data"),
        "path.logs": str(run_dir / "logs"),
        "xpack.security.enabled": "false",
        "cluster.routing.allocation.disk.threshold_enabled": "false",
        "action.destructive_requires_name": "false",
    }
    merged = {**defaults, **(overrides or {})}
    settings = {key: value for key, value in merged.items() if value is not None}
    argv = [str(es_home / "bin" / "elasticsearch"), "-p", str(run_dir / "node.pid")]
    for key, value in settings.items():
        argv += ["-E", f"{key}={value}"]
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "ES_JAVA_HOME": str(java_home),
        "ES_TMPDIR": str(run_dir / "tmp"),
        "ES_PATH_CONF": str(run_dir / "config"),
        "ES_JAVA_OPTS": f"-Xms{heap} -Xmx{heap} -XX:-HeapDumpOnOutOfMemoryError",
        # The launcher's own JVM: its probe of the node's JVM flags runs in a "final-flags*"
        # folder of its temp folder and leaves it there (with that probe's gc.log) on every
        # start; in the run folder it goes with the node instead of piling up in /tmp.
        "CLI_JAVA_OPTS": f"-Djava.io.tmpdir={run_dir / 'tmp'}",
        "HOME": str(run_dir),
        "LANG": "C.UTF-8",
    }

    def demote() -> None:
        os.setsid()
        if user is not None:
            os.setgid(user.pw_gid)
            os.setgroups([])
            os.setuid(user.pw_uid)
        if die_with_parent:  # after setuid: a change of credentials clears the setting
            _die_with_parent()

    log = open(run_dir / "console.log", "wb")  # noqa: SIM115 - lives as long as the node
    t0 = time.monotonic()
    proc = subprocess.Popen(
        argv, cwd=es_home, env=env, stdout=log, stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL, preexec_fn=demote,
    )
    (run_dir / "launcher.pid").write_text(str(proc.pid))
    (run_dir / "url").write_text(url)
    deadline = t0 + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = (run_dir / "console.log").read_text(errors="replace")[-4000:]
            raise DevstackError(f"Elasticsearch exited with code {proc.returncode}:\n{tail}")
        if (ready(url) if ready is not None else _get_root(url) is not None):
            return Node(url=url, pid=proc.pid, run_dir=run_dir, started_in_s=time.monotonic() - t0)
        time.sleep(0.25)
    stop_node(run_dir)
    tail = (run_dir / "console.log").read_text(errors="replace")[-4000:]
    raise DevstackError(f"Elasticsearch did not answer GET / within {timeout:.0f}s:\n{tail}")


def _die_with_parent() -> None:
    """prctl(PR_SET_PDEATHSIG, SIGTERM): Linux only; elsewhere the fixture's finally must do."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def stop_node(run_dir: Path, timeout: float = 30.0) -> bool:
    """Stop the node whose run folder this is; True if something was running."""
    pid_file = Path(run_dir) / "launcher.pid"
    if not pid_file.exists():
        return False
    pid = int(pid_file.read_text())
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        pid_file.unlink(missing_ok=True)
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            break
        _reap(pid)
        time.sleep(0.2)
    else:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        time.sleep(0.5)
        _reap(pid)
    pid_file.unlink(missing_ok=True)
    return True


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


if __name__ == "__main__":  # the command line lives in devstack/cli.py
    from devstack.cli import main

    sys.exit(main())
