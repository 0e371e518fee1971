"""docker-compose.yml cannot be run here (no Docker engine), so it is checked instead: against the
Compose Specification's JSON schema (pinned in tests/data/compose-spec, see its SOURCE.md), for
the properties it promises (security and TLS on, ports on 127.0.0.1 only, health checks, pinned
images, the cluster and probes profiles, every ${VAR} explained in .env.example), and for its
wiring: services and dependencies exist, every command names real subcommands and flags of our
CLIs, and the pipeline image installs the built wheel (tests/test_wheel.py shows that wheel
works), nothing editable. The setup script's certificate step runs here with the devstack
distribution's own elasticsearch-certutil; its privileges are exercised against a secured node
by tests/devstack/test_secured.py."""

from __future__ import annotations

import ast
import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import jsonschema
import pytest
import yaml

from devstack.node import ES_VERSION
from pipeline.config import load_config

ROOT = Path(__file__).resolve().parents[1]
RAW = (ROOT / "docker-compose.yml").read_text()
COMPOSE = yaml.safe_load(RAW)
SCHEMA = json.loads((ROOT / "tests/data/compose-spec/compose-spec.json").read_text())
SETUP_SCRIPT = ROOT / "scripts/compose-setup.sh"
USER_CONFIG = "./config/edgewatch.toml"
_VAR = re.compile(r"(?<!\$)\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::?-(?P<default>[^}]*))?\}")


def _env_example() -> dict[str, tuple[str, list[str]]]:
    """.env.example as name -> (value, the comment lines right above it)."""
    out: dict[str, tuple[str, list[str]]] = {}
    comments: list[str] = []
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line.startswith("#"):
            comments.append(line)
        elif "=" in line:
            name, _, value = line.partition("=")
            if value[:1] == value[-1:] == "'":
                value = value[1:-1]
            out[name] = (value, comments)
            comments = [c for c in comments if c.startswith("# ---")]
        else:
            comments = []
    return out


ENV = {name: value for name, (value, _) in _env_example().items()}


def _interpolate(node: object, env: dict[str, str]) -> object:
    """What docker compose does with the file before it validates it: ${VAR}, ${VAR:-default},
    $$ for a literal $."""
    if isinstance(node, str):
        return _VAR.sub(lambda m: env.get(m["name"]) or m["default"] or "", node) \
            .replace("$$", "$")
    if isinstance(node, list):
        return [_interpolate(v, env) for v in node]
    if isinstance(node, dict):
        return {k: _interpolate(v, env) for k, v in node.items()}
    return node


RESOLVED = _interpolate(COMPOSE, ENV)
SERVICES = RESOLVED["services"]
ES_NODES = [n for n, s in SERVICES.items()
            if str(s.get("image", "")).startswith("docker.elastic.co/elasticsearch/")
            and n != "setup"]
PROBES = [n for n, s in SERVICES.items() if "probes" in s.get("profiles", [])]


def _help(module: str, *words: str) -> str:
    proc = subprocess.run([sys.executable, "-m", module, *words, "--help"],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


# --- the Compose Specification ---------------------------------------------------------------

def test_the_file_is_valid_compose_as_written_and_once_interpolated() -> None:
    validator = jsonschema.Draft7Validator(SCHEMA)
    for doc in (COMPOSE, RESOLVED):
        errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.path))
        assert not errors, [f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors[:5]]


def test_the_schema_check_would_catch_a_mistake() -> None:
    broken = {**RESOLVED, "services": {**SERVICES, "kibana": {**SERVICES["kibana"],
                                                              "healthcheck": {"intervall": "1s"}}}}
    assert list(jsonschema.Draft7Validator(SCHEMA).iter_errors(broken))


# --- the promised properties -----------------------------------------------------------------

def test_every_variable_is_explained_in_env_example() -> None:
    used = {m["name"] for m in _VAR.finditer(RAW)}
    explained = _env_example()
    assert used - explained.keys() == set(), "used in docker-compose.yml, not in .env.example"
    assert explained.keys() - used == set(), "in .env.example, used nowhere"
    for name, (_value, comments) in explained.items():
        assert [c for c in comments if not c.startswith("# ---")], f"{name} has no explanation"


def test_security_and_tls_are_on_everywhere() -> None:
    assert len(ES_NODES) == 3
    for name in ES_NODES:
        env = SERVICES[name]["environment"]
        for key in ("xpack.security.enabled", "xpack.security.http.ssl.enabled",
                    "xpack.security.transport.ssl.enabled"):
            assert env[key] == "true", (name, key)
        assert env["xpack.security.http.ssl.certificate"] == f"certs/{name}/{name}.crt"
    assert "ELASTIC_PASSWORD" in SERVICES["es01"]["environment"]  # the bootstrap password
    kibana = SERVICES["kibana"]["environment"]
    assert kibana["SERVER_SSL_ENABLED"] == "true"
    assert kibana["ELASTICSEARCH_USERNAME"] == "kibana_system"
    for name, svc in SERVICES.items():  # every service speaks TLS to Elasticsearch and Kibana
        env = svc.get("environment", {})
        for key in ("ES_URL", "ELASTICSEARCH_HOSTS", "KIBANA_URL"):
            if key in env:
                assert env[key].startswith("https://"), (name, key)
        if "ES_URL" in env and "build" in svc:  # edgewatch pins the setup's CA
            assert env.get("ES_CA_FILE"), name
    assert "false" not in {v for s in SERVICES.values()
                           for k, v in s.get("environment", {}).items() if "security" in k}


def test_ports_are_published_on_loopback_only() -> None:
    published = [(n, p) for n, s in SERVICES.items() for p in s.get("ports", [])]
    assert published
    for name, port in published:
        assert isinstance(port, str) and port.startswith("127.0.0.1:"), (name, port)


def test_health_checks_where_anything_waits_on_health() -> None:
    waited = {dep for s in SERVICES.values()
              for dep, cond in s.get("depends_on", {}).items()
              if cond.get("condition") == "service_healthy"}
    for name in waited | set(ES_NODES) | {"kibana", "setup", "lab"}:
        check = SERVICES[name].get("healthcheck", {})
        assert check.get("test") and check.get("retries"), name


def test_images_are_pinned() -> None:
    for name, svc in SERVICES.items():
        image = svc.get("image")
        assert image, f"{name}: no image (a build gets a local tag too)"
        repo, _, tag = image.rpartition(":")
        assert repo and tag and tag != "latest" and "/" not in tag, (name, image)
        if image.startswith("docker.elastic.co/"):
            assert tag == ES_VERSION, (name, image)


def test_the_cluster_profile_has_three_nodes_that_find_each_other() -> None:
    cluster = {n for n, s in SERVICES.items() if "cluster" in s.get("profiles", [])}
    assert cluster == set(ES_NODES) - {"es01"} and len(cluster) == 2
    es01 = dict(line.split("=", 1) for line in (ROOT / "compose/es01-cluster.env")
                .read_text().splitlines() if line and not line.startswith("#"))
    everyone = set(ES_NODES)
    assert set(es01["cluster.initial_master_nodes"].split(",")) == everyone
    assert set(es01["discovery.seed_hosts"].split(",")) == everyone - {"es01"}
    for name in cluster:
        env = SERVICES[name]["environment"]
        assert set(env["cluster.initial_master_nodes"].split(",")) == everyone
        assert set(env["discovery.seed_hosts"].split(",")) == everyone - {name}
        assert env["cluster.name"] == SERVICES["es01"]["environment"]["cluster.name"]
    single = (ROOT / "compose/es01-single.env").read_text()
    assert "discovery.type=single-node" in single
    assert SERVICES["es01"]["env_file"] == [f"compose/es01-{ENV['ES_TOPOLOGY']}.env"]


def test_probes_are_separate_observers_with_least_privilege() -> None:
    assert len(PROBES) >= 3
    names, volumes, keys = set(), set(), set()
    for name in PROBES:
        svc = SERVICES[name]
        env = svc["environment"]
        assert not {k for k in env if "PASSWORD" in k}, f"{name} must write with its key only"
        assert "ELASTIC_PASSWORD" not in json.dumps(COMPOSE["services"][name])
        names.add(env["EDGEWATCH_OBSERVER__NAME"])
        keys.add(env["EDGEWATCH_ELASTICSEARCH__API_KEY_FILE"])
        volumes.update(v for v in svc["volumes"] if v.endswith(":/var/lib/edgewatch"))
        assert svc["depends_on"] == {"edgewatch-setup":
                                     {"condition": "service_completed_successfully"}}
    assert len(names) == len(volumes) == len(keys) == len(PROBES)  # own spool, own key
    granted = SERVICES["edgewatch-setup"]["environment"]["EDGEWATCH_PROBES"].split()
    assert {f"/keys/{p}.key" for p in granted} >= keys


def test_each_probes_environment_gives_the_config_its_observer(tmp_path: Path) -> None:
    key, ca = tmp_path / "writer.key", tmp_path / "ca.crt"
    key.write_text("id:secret\n")
    ca.write_text(subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "/dev/null",
         "-subj", "/CN=t", "-days", "1"], capture_output=True, text=True, check=True).stdout)
    for name in PROBES:
        env = {**SERVICES[name]["environment"], "ES_CA_FILE": str(ca),
               "EDGEWATCH_ELASTICSEARCH__API_KEY_FILE": str(key),
               "EDGEWATCH_STATE__DIR": str(tmp_path / name)}
        saved = dict(os.environ)
        try:
            os.environ.update(env)
            cfg = load_config(ROOT / "config/edgewatch.example.toml")
        finally:
            os.environ.clear()
            os.environ.update(saved)
        assert cfg.observer_name == env["EDGEWATCH_OBSERVER__NAME"]
        assert cfg.observer_geo == tomllib.loads(f"v = {env['EDGEWATCH_OBSERVER__GEO']}")["v"]
        assert cfg.elasticsearch.api_key.reveal() == "id:secret"
        assert cfg.elasticsearch.namespace == ENV["EDGEWATCH_NAMESPACE"]


# --- wiring ----------------------------------------------------------------------------------

def test_services_and_dependencies() -> None:
    assert {"setup", "es01", "kibana", "edgewatch-setup", "lab", "pipeline"} <= set(SERVICES)
    for name, svc in SERVICES.items():
        for dep in svc.get("depends_on", {}):
            assert dep in SERVICES, (name, dep)
        mode = svc.get("network_mode", "")
        if mode.startswith("service:"):
            assert mode.split(":", 1)[1] in SERVICES
        if "build" in svc:
            build = svc["build"]
            dockerfile = build.get("dockerfile", "Dockerfile") if isinstance(build, dict) \
                else "Dockerfile"
            assert (ROOT / dockerfile).is_file(), dockerfile
        for volume in svc.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source == USER_CONFIG:  # the probes' own config, made by `edgewatch init`
                assert f"edgewatch init {USER_CONFIG[2:]}" in RAW
            elif source.startswith("./"):
                assert (ROOT / source).exists(), (name, source)
            else:
                assert source in RESOLVED["volumes"], (name, source)
        for env_file in svc.get("env_file", []):
            assert (ROOT / env_file).is_file(), (name, env_file)


def _edgewatch_lines(text: str) -> list[list[str]]:
    """Every `edgewatch …` command of a shell text, as words (continuations joined)."""
    text = re.sub(r"\\\n\s*", " ", text)
    out = []
    for line in text.splitlines():
        for part in re.split(r"&&|;", line):
            part = part.strip().removeprefix("exec ").strip()
            if part.startswith("edgewatch "):
                out.append(shlex.split(part, comments=True))
    return out


def _check_cli_words(words: list[str]) -> None:
    sub = []
    for w in words[1:]:  # the subcommand path, then the first option ends it
        if w.startswith("-") or w.startswith("$") or w.startswith("/"):
            break
        sub.append(w)
    text = _help("pipeline", *sub[:1])
    for w in sub[1:]:
        assert w in text, (words, w)
    for flag in [w for w in words if w.startswith("--")]:
        assert flag in text, (words, flag)


def test_commands_name_real_subcommands_and_flags() -> None:
    lab_help = _help("lab", "up")
    assert SERVICES["lab"]["command"][0] == "up"
    for flag in [w for w in SERVICES["lab"]["command"] if w.startswith("--")]:
        assert flag in lab_help, flag
    text = _help("pipeline", SERVICES["pipeline"]["command"][0])
    for flag in [w for w in SERVICES["pipeline"]["command"] if w.startswith("--")]:
        assert flag in text, flag
    probe_lines = [w for name in PROBES for w in _edgewatch_lines(
        " ".join(SERVICES[name]["command"]))]
    assert [w[:3] for w in probe_lines][:2] == [["edgewatch", "privileges", "check"],
                                                ["edgewatch", "run", "--config"]]
    script = _edgewatch_lines(SETUP_SCRIPT.read_text())
    assert {tuple(w[:2]) for w in script} == {("edgewatch", "setup"),
                                              ("edgewatch", "privileges"),
                                              ("edgewatch", "kibana")}
    for words in probe_lines + script:
        _check_cli_words(words)
    steps = {SERVICES["setup"]["command"][-1], *SERVICES["edgewatch-setup"]["command"]}
    used = set(re.findall(r"compose-setup\.sh (\S+)", " ".join(steps))) | \
        set(SERVICES["edgewatch-setup"]["command"])
    cases = set(re.findall(r"^\s+([a-z-]+)\)", SETUP_SCRIPT.read_text(), flags=re.M))
    assert used == cases == {"certs", "kibana-password", "edgewatch"}


@pytest.mark.integration  # runs the distribution's elasticsearch-certutil (a JVM), no daemon
def test_the_setup_scripts_certificates_chain_to_its_ca(tmp_path: Path) -> None:
    from devstack.node import find_java_home, prepare_home

    java_home = find_java_home()
    env = {"PATH": os.environ["PATH"], "ES_HOME": str(prepare_home(java_home)),
           "ES_JAVA_HOME": str(java_home), "ES_PATH_CONF": str(tmp_path / "conf"),
           "CERTS_DIR": str(tmp_path / "certs"), "CERTS_OWNER": f"{os.getuid()}:{os.getgid()}",
           "CERT_DAYS": "2"}
    (tmp_path / "conf").mkdir()
    proc = subprocess.run(["sh", str(SETUP_SCRIPT), "certs"], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    certs, ca = tmp_path / "certs", str(tmp_path / "certs/ca/ca.crt")
    instances = set(ES_NODES) | {"kibana"}
    assert {p.name for p in certs.iterdir() if p.is_dir()} == instances | {"ca"}
    for name in instances:  # each service's certificate, for its compose name and localhost
        crt = str(certs / name / f"{name}.crt")
        verify = subprocess.run(["openssl", "verify", "-CAfile", ca, crt],
                                capture_output=True, text=True)
        assert verify.returncode == 0, verify.stdout + verify.stderr
        sans = subprocess.run(["openssl", "x509", "-in", crt, "-noout", "-ext",
                               "subjectAltName"], capture_output=True, text=True).stdout
        assert f"DNS:{name}" in sans and "DNS:localhost" in sans and "127.0.0.1" in sans
        assert oct((certs / name / f"{name}.key").stat().st_mode & 0o777) == "0o640"
        assert (certs / name).stat().st_mode & 0o007 == 0  # keys: owner and group only
    assert (certs / "ca/ca.crt").stat().st_mode & 0o777 == 0o644  # the probes run as nobody
    assert (certs / "ca/ca.key").stat().st_mode & 0o777 == 0o640
    again = subprocess.run(["sh", str(SETUP_SCRIPT), "certs"], env=env, capture_output=True,
                           text=True, timeout=300)  # a restart of the stack keeps its CA
    assert again.returncode == 0 and "creating" not in again.stdout


# --- the pipeline image ----------------------------------------------------------------------

def _dockerfile_stages(path: Path) -> list[list[tuple[str, str]]]:
    """The Dockerfile as stages of (INSTRUCTION, arguments), continuation lines joined."""
    text = re.sub(r"\\\n", " ", path.read_text())
    stages: list[list[tuple[str, str]]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        if word.upper() == "FROM":
            stages.append([])
        stages[-1].append((word.upper(), rest.strip()))
    return stages


def _shipped_sources() -> list[str]:
    """setup.py's SHIPPED: the repository files the build copies into pipeline/_data."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "SHIPPED":
            return [source for source, _ in ast.literal_eval(node.value)]
    raise AssertionError("setup.py has no SHIPPED")


def test_pipeline_image_installs_the_built_wheel_and_nothing_editable() -> None:
    stages = _dockerfile_stages(ROOT / "Dockerfile")
    assert len(stages) >= 2, "a build stage makes the wheel, the last stage installs it"
    *builders, final = stages
    every = [args for stage in stages for word, args in stage if word == "RUN"]
    assert not [r for r in every if re.search(r"pip install[^&;]*(\s-e\s|--editable)", r)]
    built = [args for stage in builders for word, args in stage
             if word == "RUN" and ("pip wheel" in args or "-m build" in args)]
    assert built, "no stage builds a wheel"
    copied_in = " ".join(args for stage in builders for word, args in stage if word == "COPY")
    for needed in ("pyproject.toml", "setup.py", "pipeline", *_shipped_sources()):
        assert needed in copied_in, f"the build stage does not COPY {needed}"
    installs = [args for word, args in final if word == "RUN" and "pip install" in args]
    assert installs and all(".whl" in args for args in installs), installs
    for word, args in final:
        if word == "COPY":  # the product comes from the wheel: no source tree in the image
            assert args.startswith("--from=") or args.split()[0] == "config", args
    assert ("ENTRYPOINT", '["edgewatch"]') in final
