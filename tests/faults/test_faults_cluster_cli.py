"""The commands that talk to Elasticsearch or Kibana fail in ONE line on stderr, non-zero.

Real where possible (a closed loopback port; real parsing of a bad URL and a bad CA file). The
HTTP 500 cases use a loopback stub (tests/es/stub.py and a raw HTML server here): a real node
never answers ``GET /`` with a 500, but a proxy in front of one does.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from es.stub import serve, stub_server, write_config

from devstack.node import free_port
from pipeline.commands.setup import EXIT_CONFIG, EXIT_UNREACHABLE
from pipeline.config import ElasticsearchSettings
from pipeline.es.client import ClientSettingsError, make_async_client, make_client

ROOT = Path(__file__).resolve().parents[2]




def edgewatch(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("ES_", "KIBANA_", "EDGEWATCH_"))}
    clean.update(env or {})
    return subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=ROOT, env=clean,
                          capture_output=True, text=True, timeout=120)


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def test_setup_against_a_closed_port_is_one_line(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = edgewatch("setup", "--config", str(write_config(tmp_path / "c.toml", url)))
    line = one_line(result)
    assert result.returncode == EXIT_UNREACHABLE
    assert line.startswith("edgewatch setup: refused: cannot reach Elasticsearch at " + url)
    assert "Connection refused" in line
    # With -v the transport's own account of each attempt is there again.
    verbose = edgewatch("-v", "setup", "--config", str(write_config(tmp_path / "c.toml", url)))
    assert verbose.returncode == EXIT_UNREACHABLE
    assert "elastic_transport" in verbose.stderr and len(verbose.stderr.splitlines()) > 1


@contextmanager
def html_500() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # what a proxy's error page looks like
            data = b"<html>\n<body>\n<h1>500 Internal Server Error</h1>\n</body>\n</html>\n"
            self.send_response(500)
            self.send_header("content-type", "text/html")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    with serve(Handler) as url:
        yield url


def _json_500(method: str, path: str, body: bytes) -> tuple[int, object]:
    return 500, {"error": {"type": "exception", "reason": "scripted server fault"},
                 "status": 500}


@pytest.mark.parametrize("kind", ["json", "html"])
def test_setup_against_a_server_answering_500_is_one_line(tmp_path: Path, kind: str) -> None:
    server = stub_server(_json_500) if kind == "json" else html_500()
    with server as url:
        result = edgewatch("setup", "--config", str(write_config(tmp_path / "c.toml", url)))
    line = one_line(result)
    assert result.returncode == EXIT_UNREACHABLE
    assert f"{url} answered HTTP 500 while reading GET /" in line
    assert ("scripted server fault" if kind == "json" else "500 Internal Server Error") in line


def test_es_url_with_a_bad_port_is_one_line_and_a_config_error(tmp_path: Path) -> None:
    bad = "http://127.0.0.1:99999"
    result = edgewatch("setup", "--config", str(write_config(tmp_path / "c.toml", "http://x:1")),
                       env={"ES_URL": bad})
    line = one_line(result)
    assert result.returncode == EXIT_CONFIG
    assert "ES_URL" in line and "99999" in line
    # The client factory itself, as the sink and the report use it: one clear ValueError.
    for factory in (make_client, make_async_client):
        with pytest.raises(ClientSettingsError) as caught:
            factory(ElasticsearchSettings(url="http://user:secret@127.0.0.1:99999"))
        assert isinstance(caught.value, ValueError)
        assert "\n" not in str(caught.value) and "secret" not in str(caught.value)
        assert caught.value.key.startswith("elasticsearch.url")


@pytest.mark.parametrize("ca", ["missing", "not-a-certificate"])
def test_an_unusable_es_ca_file_is_one_line(tmp_path: Path, ca: str) -> None:
    path = tmp_path / "ca.pem"
    if ca == "not-a-certificate":
        path.write_text("hello\n")
    result = edgewatch("setup", "--config", str(write_config(tmp_path / "c.toml", "https://x:1")),
                       env={"ES_CA_FILE": str(path)})
    line = one_line(result)
    assert result.returncode == EXIT_CONFIG
    assert "ES_CA_FILE" in line and str(path) in line


@pytest.mark.parametrize("ca", ["missing", "not-a-certificate"])
def test_kibana_import_with_an_unusable_ca_file_is_one_line(tmp_path: Path, ca: str) -> None:
    path = tmp_path / "missing.pem"
    if ca == "not-a-certificate":
        path.write_text("hello\n")
    url = f"https://127.0.0.1:{free_port()}"
    result = edgewatch("kibana", "import", "--kibana-url", url, "--ca-file", str(path))
    line = one_line(result)
    assert result.returncode == 2
    assert str(path) in line and "--ca-file" in line


@pytest.mark.parametrize(("url", "why"), [("http://127.0.0.1:99999", "Port out of range"),
                                          ("http://[::1", "Invalid IPv6 URL"),
                                          ("http://127.0.0.1:0", "port 0")])
def test_kibana_import_with_a_bad_url_is_one_line(url: str, why: str) -> None:
    # 99999 used to be wrapped modulo 65536 by urllib and tried as port 34463.
    result = edgewatch("kibana", "import", "--kibana-url", url)
    line = one_line(result)
    assert result.returncode == 2
    assert url in line and why in line


def test_kibana_answering_500_is_one_line() -> None:
    # Stub: stands in for Kibana, which the test machine does not run.
    def respond(method: str, path: str, body: bytes) -> tuple[int, object]:
        return 500, {"statusCode": 500, "error": "Internal Server Error",
                     "message": "scripted failure"}

    with stub_server(respond) as url:
        result = edgewatch("kibana", "import", "--kibana-url", url)
    line = one_line(result)
    assert result.returncode == 5
    assert "answered HTTP 500: scripted failure" in line


async def test_the_sink_with_a_bad_url_refuses_at_open_and_releases_its_spool(
    tmp_path: Path,
) -> None:
    from pipeline.sinks.elasticsearch import ElasticsearchSink
    from pipeline.sinks.spool import opened

    settings = ElasticsearchSettings(url="http://127.0.0.1:99999", spool_dir=tmp_path / "spool",
                                     dead_letter_dir=tmp_path / "dead")
    sink = ElasticsearchSink(settings)
    with pytest.raises(ClientSettingsError, match="ES_URL"):
        await sink.open()
    with opened(tmp_path / "spool") as spool:  # not left locked
        assert spool.is_empty()
