"""The built wheel, installed into a fresh virtualenv outside the tree, does the whole job.

What a user gets from ``pip install edgewatch`` is the wheel, not this checkout: it must carry
the templates, the Kibana objects and the example config (``pipeline/_data``, put there by
setup.py), find them wherever site-packages is, and add no generic top-level names (``lab``,
``devstack``, ``mappings``, ``kibana``) to the user's site-packages.

How the fresh venv gets the dependencies, and why that does not let the checkout leak in: the
wheel is installed with ``--no-deps``, and one ``.pth`` line appends the site-packages of the
venv running these tests (which has every dependency) to the fresh venv's ``sys.path``. Python
processes ``.pth`` files only in site directories, not in directories a ``.pth`` line adds, so
the editable-install hook that maps ``pipeline`` to this checkout stays inactive there: the only
``pipeline`` is the wheel's (asserted below, as is that ``lab`` and ``devstack`` cannot be
imported). This keeps the test offline beyond the build requirement and a few seconds long, where
downloading scipy and numpy into each fresh venv takes half a minute.

The wheel is built from a copy of exactly the files the build needs (the list the Dockerfile's
build stage copies too), in a temporary folder, with a stale ``build/lib`` planted in it: files an
earlier build left there must not reach the wheel.
"""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from lab.stack import LabStack
from lab.testing import lab_fixture
from pipeline.es import names

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]
# What building the wheel needs, relative to the repository (also COPYed by the Dockerfile).
BUILD_INPUTS = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "pipeline", "mappings",
                "kibana/edgewatch.ndjson", "config/edgewatch.example.toml",
                "config/edgewatch.alerts.yml")
GENERIC_NAMES = ("lab", "devstack", "mappings", "kibana", "tests", "bench", "config")

lab = lab_fixture("quick", speed=900.0, scope="module")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = tmp_path_factory.mktemp("wheel-src")
    for name in BUILD_INPUTS:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(ROOT / name, src / name)
    # what an earlier build of a checkout leaves behind (when lab/ was still distributed, or a
    # module since deleted): setup.py empties build/lib first, or the wheel would ship it again
    stale = src / "build" / "lib"
    for leftover in ("lab/__init__.py", "pipeline/removed_long_ago.py"):
        (stale / leftover).parent.mkdir(parents=True, exist_ok=True)
        (stale / leftover).write_text("STALE = True\n")
    out = tmp_path_factory.mktemp("wheel-dist")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
                           "--disable-pip-version-check", "-w", str(out), str(src)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    (built,) = out.glob("edgewatch-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the wheel (and only the wheel) providing edgewatch."""
    home = tmp_path_factory.mktemp("fresh-venv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(home)], check=True,
                   timeout=120)
    python = home / "bin" / "python"
    proc = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install",
                           "-q", "--no-deps", "--disable-pip-version-check", str(wheel)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    purelib = subprocess.run([str(python), "-c", "import sysconfig; "
                              "print(sysconfig.get_path('purelib'))"],
                             capture_output=True, text=True, check=True).stdout.strip()
    deps = [p for p in site.getsitepackages() if Path(p).is_dir()]
    (Path(purelib) / "_dependencies_from_test_venv.pth").write_text("\n".join(deps) + "\n")
    return home


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A working folder outside the checkout (pytest's tmp_path is never under it)."""
    assert ROOT not in tmp_path.resolve().parents
    return tmp_path


def _env(venv: Path) -> dict[str, str]:
    """The environment of a person with that venv on PATH and no edgewatch settings."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ES_", "EDGEWATCH_", "KIBANA_", "PYTHON", "VIRTUAL_ENV"))}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return env


def _run(venv: Path, cwd: Path, *argv: str, timeout: float = 300) -> subprocess.CompletedProcess:
    program = str(venv / "bin" / argv[0])
    return subprocess.run([program, *argv[1:]], cwd=cwd, env=_env(venv), capture_output=True,
                          text=True, timeout=timeout)


def _ok(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc.stdout


# -- what the wheel holds -------------------------------------------------------------------


def test_wheel_has_one_top_level_package_and_all_its_data(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/", 1)[0] for n in names}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"pipeline"}
    info = next(n for n in names if n.endswith(".dist-info/top_level.txt"))
    assert zipfile.ZipFile(wheel).read(info).decode().split() == ["pipeline"]
    # every module of the product, every mapping file, the saved objects and the example
    sources = {p.relative_to(ROOT).as_posix() for p in (ROOT / "pipeline").rglob("*.py")
               if "__pycache__" not in p.parts}
    assert sources <= set(names), sources - set(names)
    assert "pipeline/removed_long_ago.py" not in names
    data = {f"pipeline/_data/{p.relative_to(ROOT).as_posix()}"
            for p in (ROOT / "mappings").rglob("*.json")}
    data |= {"pipeline/_data/kibana/edgewatch.ndjson", "pipeline/_data/edgewatch.example.toml",
             "pipeline/_data/edgewatch.alerts.yml"}
    assert data <= set(names), data - set(names)
    with zipfile.ZipFile(wheel) as zf:
        assert zf.read("pipeline/_data/kibana/edgewatch.ndjson") == \
            (ROOT / "kibana" / "edgewatch.ndjson").read_bytes()
        assert not [n for n in names if n.startswith("pipeline/_data/") and n.endswith(".py")]
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    scripts = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "edgewatch = pipeline.cli:main" in scripts
    assert "edgewatch-lab" not in scripts and "edgewatch-devstack" not in scripts


def test_only_the_wheel_provides_edgewatch_in_the_fresh_venv(venv: Path, outside: Path) -> None:
    probe = ("import importlib.util, json, pipeline; print(json.dumps({'pipeline': "
             "pipeline.__file__, 'found': {n: importlib.util.find_spec(n) is not None "
             "for n in NAMES}}))").replace("NAMES", repr(GENERIC_NAMES))
    found = json.loads(_ok(_run(venv, outside, "python", "-c", probe)))
    assert Path(found["pipeline"]).is_relative_to(venv)
    assert found["found"] == dict.fromkeys(GENERIC_NAMES, False)


# -- what a new user does first -------------------------------------------------------------


def test_kibana_export_path_is_inside_the_installed_package(venv: Path, outside: Path) -> None:
    path = Path(_ok(_run(venv, outside, "edgewatch", "kibana", "export-path")).strip())
    assert path.is_relative_to(venv) and path.is_file()
    objects = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    assert objects and all("type" in o and "id" in o for o in objects)


def test_first_steps_in_an_empty_folder(venv: Path, outside: Path) -> None:
    help_text = _ok(_run(venv, outside, "edgewatch", "--help"))
    assert "init" in help_text
    # no config anywhere: one line that names the way out
    for command in (("run", "--once"), ("setup",)):
        proc = _run(venv, outside, "edgewatch", *command)
        assert proc.returncode == 2 and proc.stdout == ""
        assert len(proc.stderr.strip().splitlines()) == 1 and "edgewatch init" in proc.stderr
    proc = _run(venv, outside, "edgewatch", "report")
    assert proc.returncode == 1 and len(proc.stderr.strip().splitlines()) == 1
    assert "no ndjson store" in proc.stderr and "edgewatch run" in proc.stderr
    # init writes the shipped example with its folders beside it, and never overwrites
    _ok(_run(venv, outside, "edgewatch", "init"))
    assert (outside / "edgewatch.toml").is_file()
    proc = _run(venv, outside, "edgewatch", "init")
    assert proc.returncode == 2 and "already exists" in proc.stderr
    loaded = _ok(_run(venv, outside, "python", "-c", (
        "from pipeline.config import load_config; c = load_config('edgewatch.toml'); "
        "print(c.state_dir.resolve()); print(c.store_dir.resolve()); print(len(c.resolvers))")))
    state, store, resolvers = loaded.split()
    assert Path(state) == (outside / "var" / "state").resolve()
    assert Path(store) == (outside / "var" / "data").resolve()
    assert int(resolvers) >= 1
    # the Prometheus alert rules come from the wheel too, on request
    _ok(_run(venv, outside, "edgewatch", "init", "elsewhere.toml", "--alert-rules"))
    assert (outside / "edgewatch.alerts.yml").read_bytes() == (
        ROOT / "config" / "edgewatch.alerts.yml").read_bytes()


# -- the whole job from the installed wheel -------------------------------------------------


def test_setup_run_once_and_report_from_the_wheel(venv: Path, outside: Path, lab: LabStack,
                                                  es_url: str, es: Elasticsearch) -> None:
    namespace = f"wheel{os.getpid()}"
    config = outside / "edgewatch.toml"
    config.write_text(lab.config_path.read_text() + f"""
[store]
dir = "{outside / 'data'}"

[state]
dir = "{outside / 'state'}"

[elasticsearch]
url = "{es_url}"
namespace = "{namespace}"
spool_dir = "{outside / 'spool'}"
dead_letter_dir = "{outside / 'dead-letter'}"
flush_interval = "200ms"

[sinks]
enabled = ["elasticsearch", "ndjson"]
""")
    _ok(_run(venv, outside, "edgewatch", "setup", "--config", str(config)))
    # the templates setup installed are the checkout's mappings/, read from the wheel's copy
    source = json.loads((ROOT / "mappings" / "index_templates"
                         / "logs-edgewatch.check.json").read_text())
    installed = es.indices.get_index_template(name="logs-edgewatch.check")["index_templates"]
    assert installed[0]["index_template"]["composed_of"] == source["composed_of"]

    _ok(_run(venv, outside, "edgewatch", "run", "--once", "--config", str(config), "--quiet"))
    stream = names.check_data_stream(namespace)
    # near real time: what `run --once` indexed is searchable after a refresh (the runs index
    # too, else a report may read no run summaries yet and disagree with the next one)
    es.indices.refresh(index=f"{stream},{names.runs_index(namespace)}")
    indexed = es.count(index=stream)["count"]
    stored = sum(1 for f in (outside / "data").glob("checks-*.ndjson")
                 for line in f.read_text().splitlines() if line.strip())
    assert indexed > 0 and indexed == stored

    # --namespace: the session's node holds other tests' namespaces too
    report = json.loads(_ok(_run(venv, outside, "edgewatch", "report", "--config", str(config),
                                 "--namespace", namespace, "--format", "json",
                                 "--no-progress")))
    assert report["overall"]["documents"] == indexed
    assert {r["name"] for r in report["resolvers"]} == set(lab.resolvers)

    # the same report where the `report` extra is not installed: since the Wilson interval is
    # a closed formula, the report computes with the standard library alone, figure for figure
    no_scipy = ("import sys; sys.modules['scipy'] = sys.modules['numpy'] = None; "
                "from pipeline.cli import main; "
                f"sys.exit(main(['report', '--config', {str(config)!r}, '--namespace', "
                f"{namespace!r}, '--format', 'json', '--no-progress']))")
    bare = json.loads(_ok(_run(venv, outside, "python", "-c", no_scipy)))
    for doc in (bare, report, *bare["targets"], *report["targets"]):
        doc.pop("generated_at")
    assert bare == report
    # a real cluster can drop the data stream; the devstack node has no data stream API (400)
    es.options(ignore_status=(400, 404)).indices.delete_data_stream(name=stream)
    es.options(ignore_status=404).indices.delete(index=names.runs_index(namespace))
