"""``edgewatch kibana import`` against a stand-in for Kibana's saved-objects import API.

There is no Kibana here (and none may be installed), so these tests start a small HTTP server on
127.0.0.1 that checks a request the way Kibana 9's ``POST /api/saved_objects/_import`` route does
— ``kbn-xsrf`` header present, a ``multipart/form-data`` body with a ``file`` field whose name
ends in ``.ndjson``, ndjson objects with ``id`` and ``type``, references that resolve within the
file (or to objects already there), credentials when configured — and answers in Kibana's shape
(``success``, ``successCount``, ``successResults``, ``errors``). It keeps objects per space the
way Kibana 8+ does for dashboards, visualizations, data views and searches — an id is unique
across all spaces, so importing an id that lives in another space stores the object under a new
random id and answers it as ``destinationId`` — which is what the second-space tests need. It
is a stand-in, not Kibana: it cannot tell whether Kibana would accept the attributes of each
object (see docs/KIBANA.md).
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from pipeline import cli
from pipeline.kibana import (
    Credentials,
    ImportOptions,
    KibanaRefused,
    KibanaUnauthorized,
    import_objects,
    import_url,
    multipart,
    objects_for_space,
    space_object_id,
)

SECRET = "s3cr3t-do-not-print"


@dataclass
class Received:
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    filename: str | None = None
    content: bytes = b""


@dataclass
class StandIn:
    """State and checks of the fake Kibana: what it received and how it should answer."""

    authorization: str | None = None  # expected Authorization header, None = no auth
    existing: set[tuple[str, str]] = field(default_factory=set)
    # (type, id) → the spaces holding it; an id lives in one space only (Kibana 8+)
    spaces: dict[tuple[str, str], str] = field(default_factory=dict)
    unavailable: int = 0  # answer 503 to this many requests first (Kibana starting up)
    requests: list[Received] = field(default_factory=list)
    url: str = ""

    def answer(self, method: str, raw_path: str, headers: dict[str, str],
               body: bytes) -> tuple[int, dict[str, Any]]:
        parsed = urllib.parse.urlsplit(raw_path)
        got = Received(parsed.path, urllib.parse.parse_qs(parsed.query), headers)
        self.requests.append(got)
        if self.unavailable > 0:
            self.unavailable -= 1
            return 503, _kbn_error(503, "Service Unavailable", "Kibana server is not ready yet")
        path, space = parsed.path, "default"
        if path.startswith("/s/"):
            space, _, rest = path[3:].partition("/")
            if not space:
                return 404, _kbn_error(404, "Not Found", "Not Found")
            path = "/" + rest
        if path != "/api/saved_objects/_import":
            return 404, _kbn_error(404, "Not Found", "Not Found")
        if method != "POST":
            return 404, _kbn_error(404, "Not Found", "Not Found")
        if self.authorization is not None and headers.get("authorization") != self.authorization:
            return 401, _kbn_error(401, "Unauthorized", "Unauthorized")
        if "kbn-xsrf" not in headers:
            return 400, _kbn_error(400, "Bad Request", "Request must contain a kbn-xsrf header.")
        ctype = headers.get("content-type", "")
        if not ctype.startswith("multipart/form-data") or "boundary=" not in ctype:
            return 415, _kbn_error(415, "Unsupported Media Type", "Unsupported Media Type")
        message = BytesParser(policy=HTTP).parsebytes(
            f"Content-Type: {ctype}\r\n\r\n".encode() + body)
        parts = {p.get_param("name", header="content-disposition"): p
                 for p in message.iter_parts()}
        if "file" not in parts:
            return 400, _kbn_error(400, "Bad Request",
                                   "[request body.file]: expected value of type [Stream]")
        part = parts["file"]
        got.filename = part.get_filename()
        got.content = part.get_payload(decode=True) or b""
        if not (got.filename or "").endswith(".ndjson"):
            ext = Path(got.filename or "").suffix
            return 400, _kbn_error(400, "Bad Request", f"Invalid file extension {ext}")
        overwrite = got.query.get("overwrite") == ["true"]
        new_copies = got.query.get("createNewCopies") == ["true"]
        if overwrite and new_copies:
            return 400, _kbn_error(400, "Bad Request",
                                   "cannot use [overwrite] with [createNewCopies]")
        return 200, self.import_result(got.content, overwrite, space, new_copies)

    def place(self, obj: dict[str, Any], space: str, new_copies: bool) -> str | None:
        """Store one object in ``space``; the new id Kibana would give it, if any."""
        key = (obj["type"], obj["id"])
        holder = self.spaces.get(key)
        if new_copies or (holder is not None and holder != space):
            new_id = str(uuid.uuid4())
            self.spaces[(obj["type"], new_id)] = space
            return new_id
        self.spaces[key] = space
        return None

    def import_result(self, content: bytes, overwrite: bool, space: str = "default",
                      new_copies: bool = False) -> dict[str, Any]:
        objects = []
        for line in content.decode("utf-8").splitlines():
            if line.strip():
                objects.append(json.loads(line))
        present = {(o["type"], o["id"]) for o in objects} | self.existing
        errors, results = [], []
        for obj in objects:
            title = obj.get("attributes", {}).get("title", "")
            missing = [{"type": r["type"], "id": r["id"]} for r in obj.get("references", [])
                       if (r["type"], r["id"]) not in present]
            if missing:
                errors.append({"id": obj["id"], "type": obj["type"], "title": title,
                               "meta": {"title": title},
                               "error": {"type": "missing_references", "references": missing}})
            elif (((obj["type"], obj["id"]) in self.existing
                   or self.spaces.get((obj["type"], obj["id"])) == space) and not overwrite):
                errors.append({"id": obj["id"], "type": obj["type"], "title": title,
                               "meta": {"title": title}, "error": {"type": "conflict"}})
            else:
                result = {"id": obj["id"], "type": obj["type"], "meta": {"title": title}}
                new_id = self.place(obj, space, new_copies)
                if new_id:
                    result["destinationId"] = new_id
                results.append(result)
        for r in results:
            self.existing.add((r["type"], r["id"]))
        answer: dict[str, Any] = {"successCount": len(results), "success": not errors,
                                  "warnings": [], "successResults": results}
        if errors:
            answer["errors"] = errors
        return answer


def _kbn_error(status: int, error: str, message: str) -> dict[str, Any]:
    return {"statusCode": status, "error": error, "message": message}


@pytest.fixture
def kibana() -> Iterator[StandIn]:
    state = StandIn()

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, answer = state.answer(self.command, self.path, headers, body)
            raw = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        do_POST = _handle
        do_GET = _handle

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(autouse=True)
def no_kibana_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("KIBANA_URL", "KIBANA_SPACE", "KIBANA_API_KEY", "KIBANA_USERNAME",
                 "KIBANA_PASSWORD", "KIBANA_CA_FILE", "EDGEWATCH_KIBANA_FILE"):
        monkeypatch.delenv(name, raising=False)


def shipped_objects(ndjson_text: str) -> int:
    return len([line for line in ndjson_text.splitlines() if line.strip()])


def test_stand_in_refuses_what_kibana_refuses(kibana: StandIn) -> None:
    """The checks are real: a request without kbn-xsrf, or not multipart, is turned away."""
    status, answer = kibana.answer("POST", "/api/saved_objects/_import", {
        "content-type": "multipart/form-data; boundary=x"}, b"")
    assert status == 400 and "kbn-xsrf" in answer["message"]
    status, _ = kibana.answer("POST", "/api/saved_objects/_import", {
        "kbn-xsrf": "true", "content-type": "application/json"}, b"{}")
    assert status == 415
    body, ctype = multipart("file", "objects.json", b"{}\n")
    status, answer = kibana.answer("POST", "/api/saved_objects/_import", {
        "kbn-xsrf": "true", "content-type": ctype}, body)
    assert status == 400 and "extension" in answer["message"]


def test_import_of_the_shipped_file(kibana: StandIn, ndjson_text: str) -> None:
    content = ndjson_text.encode()
    result = import_objects(kibana.url, content)
    assert result.success and result.errors == []
    assert result.success_count == shipped_objects(ndjson_text)
    (req,) = kibana.requests
    assert req.path == "/api/saved_objects/_import"
    assert req.query == {"overwrite": ["true"], "createNewCopies": ["false"]}
    assert req.headers["kbn-xsrf"] == "true"
    assert "authorization" not in req.headers
    assert req.filename == "edgewatch.ndjson"
    assert req.content == content  # byte for byte, nothing re-encoded


def test_cli_import_into_a_space(kibana: StandIn, capsys: pytest.CaptureFixture[str],
                                 ndjson_text: str) -> None:
    rc = cli.main(["kibana", "import", "--kibana-url", kibana.url + "/", "--space", "ops"])
    out = capsys.readouterr()
    assert rc == 0, out.err
    count = shipped_objects(ndjson_text)
    assert f"imported {count} of {count} objects" in out.out
    assert kibana.requests[0].path == "/s/ops/api/saved_objects/_import"
    board = space_object_id("ops", "dashboard", "edgewatch-overview")
    assert f"dashboard: {kibana.url}/s/ops/app/dashboards#/view/{board}" in out.out
    assert "warning" not in out.out


def ids_in(kibana: StandIn, space: str) -> set[tuple[str, str]]:
    return {key for key, where in kibana.spaces.items() if where == space}


def test_the_stand_in_renames_ids_that_live_in_another_space(kibana: StandIn,
                                                             ndjson_text: str) -> None:
    """The problem, as Kibana has it: the plain ids sent to a second space get random new ids,
    different on each import, so a re-import there adds copies instead of replacing them."""
    body, ctype = multipart("file", "edgewatch.ndjson", ndjson_text.encode())
    headers = {"kbn-xsrf": "true", "content-type": ctype}
    kibana.answer("POST", "/api/saved_objects/_import?overwrite=true", headers, body)
    new_ids = []
    for _ in range(2):
        status, answer = kibana.answer("POST", "/s/ops/api/saved_objects/_import?overwrite=true",
                                       headers, body)
        assert status == 200 and answer["success"]
        assert all("destinationId" in r for r in answer["successResults"])
        new_ids.append({r["destinationId"] for r in answer["successResults"]})
    assert not new_ids[0] & new_ids[1]
    assert len(ids_in(kibana, "ops")) == 2 * shipped_objects(ndjson_text)


def test_ids_stay_stable_in_a_second_space(kibana: StandIn, ndjson_text: str) -> None:
    """Default space first, then 'ops' twice: 'ops' holds one copy under its derived ids,
    Kibana renames nothing, and the default space keeps the readable ids."""
    count = shipped_objects(ndjson_text)
    plain = {(o["type"], o["id"]) for o in map(json.loads, ndjson_text.splitlines())}
    assert import_objects(kibana.url, ndjson_text.encode()).renamed() == []
    for _ in range(2):
        result = import_objects(kibana.url, ndjson_text.encode(), ImportOptions(space="ops"))
        assert result.success and result.success_count == count
        assert result.renamed() == []
    derived = {(t, space_object_id("ops", t, i)) for t, i in plain}
    assert ids_in(kibana, "ops") == derived
    assert ids_in(kibana, "default") == plain
    sent = [json.loads(line) for line in kibana.requests[-1].content.decode().splitlines()]
    assert {(o["type"], o["id"]) for o in sent} == derived


def test_space_ids_keep_every_reference(ndjson_text: str) -> None:
    """Every reference inside the file follows its object to the derived id; the default space
    and a space's ids are Kibana's getConvertedObjectId (uuid v5 of space:type:id)."""
    assert objects_for_space(ndjson_text.encode(), "default") == ndjson_text.encode()
    moved = [json.loads(line) for line in objects_for_space(ndjson_text.encode(), "team-a")
             .decode().splitlines()]
    ids = {(o["type"], o["id"]) for o in moved}
    assert not any(i.startswith("edgewatch-") for _, i in ids)
    refs = [(r["type"], r["id"]) for o in moved for r in o["references"]]
    assert refs and set(refs) <= ids
    assert space_object_id("team-a", "dashboard", "edgewatch-overview") == str(
        uuid.uuid5(uuid.NAMESPACE_DNS, "team-a:dashboard:edgewatch-overview"))
    assert space_object_id("team-a", "dashboard", "x") != space_object_id("team-b", "dashboard",
                                                                           "x")


def test_a_second_import_overwrites(kibana: StandIn, ndjson_text: str) -> None:
    first = import_objects(kibana.url, ndjson_text.encode())
    second = import_objects(kibana.url, ndjson_text.encode())
    assert first.success and second.success
    assert second.success_count == first.success_count


def test_rejected_objects_are_listed_and_fail_the_command(
        kibana: StandIn, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "broken.ndjson"
    broken.write_text(json.dumps({
        "id": "d1", "type": "dashboard", "attributes": {"title": "orphan"},
        "references": [{"name": "panel_0", "type": "visualization", "id": "gone"}]}) + "\n")
    rc = cli.main(["kibana", "import", "--kibana-url", kibana.url, "--file", str(broken)])
    out = capsys.readouterr()
    assert rc == 1
    assert "imported 0 of 1 objects" in out.out
    assert "dashboard d1 (orphan): missing_references visualization/gone" in out.err


@pytest.mark.parametrize(("env", "expected"), [
    ({"KIBANA_API_KEY": SECRET}, f"ApiKey {SECRET}"),
    ({"KIBANA_API_KEY": f"key-id:{SECRET}"},
     "ApiKey " + base64.b64encode(f"key-id:{SECRET}".encode()).decode()),
    ({"KIBANA_USERNAME": "elastic", "KIBANA_PASSWORD": SECRET},
     "Basic " + base64.b64encode(f"elastic:{SECRET}".encode()).decode()),
])
def test_credentials_from_the_environment(
        kibana: StandIn, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture, env: dict[str, str], expected: str) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    kibana.authorization = expected
    with caplog.at_level(logging.DEBUG):
        rc = cli.main(["-vv", "kibana", "import", "--kibana-url", kibana.url])
    out = capsys.readouterr()
    assert rc == 0, out.err
    assert kibana.requests[0].headers["authorization"] == expected
    printed = out.out + out.err + caplog.text
    assert SECRET not in printed and expected.split()[1] not in printed
    assert SECRET not in repr(Credentials.from_env())


def test_wrong_credentials(kibana: StandIn, monkeypatch: pytest.MonkeyPatch,
                           capsys: pytest.CaptureFixture[str]) -> None:
    kibana.authorization = "ApiKey the-right-one"
    monkeypatch.setenv("KIBANA_USERNAME", "elastic")
    monkeypatch.setenv("KIBANA_PASSWORD", SECRET)
    rc = cli.main(["kibana", "import", "--kibana-url", kibana.url])
    out = capsys.readouterr()
    assert rc == 4
    assert "HTTP 401" in out.err and "user elastic" in out.err
    assert SECRET not in out.out + out.err
    with pytest.raises(KibanaUnauthorized):
        import_objects(kibana.url, b"{}\n", ImportOptions(credentials=Credentials.from_env()))


def test_half_a_login_is_refused(monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("KIBANA_USERNAME", "elastic")
    rc = cli.main(["kibana", "import", "--kibana-url", "http://127.0.0.1:1"])
    assert rc == 2
    assert "KIBANA_PASSWORD" in capsys.readouterr().err


def test_waits_for_kibana_to_start(kibana: StandIn, ndjson_text: str) -> None:
    kibana.unavailable = 2
    result = import_objects(kibana.url, ndjson_text.encode(), ImportOptions(wait=30))
    assert result.success
    assert len(kibana.requests) == 3
    kibana.unavailable = 1
    with pytest.raises(KibanaRefused, match="HTTP 503"):
        import_objects(kibana.url, ndjson_text.encode())  # no --wait: fail at once


def test_unreachable_kibana(capsys: pytest.CaptureFixture[str]) -> None:
    import socket
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    rc = cli.main(["kibana", "import", "--kibana-url", f"http://user:{SECRET}@127.0.0.1:{port}"])
    err = capsys.readouterr().err
    assert rc == 3
    assert "cannot reach Kibana" in err and SECRET not in err and "***@" in err


def test_bad_arguments(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert cli.main(["kibana", "import"]) == 2
    assert "--kibana-url" in capsys.readouterr().err
    assert cli.main(["kibana", "import", "--kibana-url", "ftp://x"]) == 2
    assert cli.main(["kibana", "import", "--kibana-url", "http://127.0.0.1:1",
                     "--file", str(tmp_path / "missing.ndjson")]) == 2
    assert cli.main(["kibana", "import", "--kibana-url", "http://127.0.0.1:1",
                     "--space", "Not A Space"]) == 2


def test_import_url() -> None:
    q = "overwrite=true&createNewCopies=false"
    assert import_url("http://k:5601") == f"http://k:5601/api/saved_objects/_import?{q}"
    assert import_url("https://h/kibana/", "default") == (
        f"https://h/kibana/api/saved_objects/_import?{q}")
    assert import_url("https://h/kibana", "team-a") == (
        f"https://h/kibana/s/team-a/api/saved_objects/_import?{q}")


def test_export_path(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                     tmp_path: Path) -> None:
    assert cli.main(["kibana", "export-path"]) == 0
    path = Path(capsys.readouterr().out.strip())
    assert path.name == "edgewatch.ndjson" and path.is_file()
    assert path.read_text(encoding="utf-8").startswith('{"id":"edgewatch-checks"')
    monkeypatch.setenv("EDGEWATCH_KIBANA_FILE", str(tmp_path / "elsewhere.ndjson"))
    assert cli.main(["kibana", "export-path"]) == 2  # named, but not there
