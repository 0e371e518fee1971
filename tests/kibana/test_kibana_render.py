"""Every Vega panel draws with real Vega 5 / Vega-Lite 5 at the size Kibana gives it.

The query tests prove what Elasticsearch answers; this proves that Vega can draw the answer: a
spec that no longer compiles, reads a field the rows lack in a way Vega rejects, or draws NaN,
fails here. The panels come from kibana/edgewatch.ndjson (every visualization of type vega, none
listed by hand), the rows from the hand-made test documents on the test node, the drawing from
kibana/render_check.py under Node.js (/usr/bin/node) at each panel's container size.

Vega is not a Python package: the test installs ``vega@5 vega-lite@5`` with npm into a cache
folder once (``EDGEWATCH_VEGA_DIR``, default ``~/.cache/edgewatch-vega``) and reuses it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from dump_panels import data_sources_with_paths, dump_objects
from elasticsearch import Elasticsearch
from kibana_vega import vega_specs
from panel_documents import WINDOW, Indices, installed_indices, load_documents

ROOT = Path(__file__).resolve().parents[2]
VEGA_DIR = Path(os.environ.get("EDGEWATCH_VEGA_DIR", Path.home() / ".cache" / "edgewatch-vega"))


def load_script(name: str) -> ModuleType:
    path = ROOT / "kibana" / f"{name}.py"
    sys.path.insert(0, str(path.parent))
    spec = importlib.util.spec_from_file_location(f"edgewatch_kibana_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def node_modules() -> Path:
    """vega and vega-lite 5 for Node.js, installed from the npm registry once."""
    modules = VEGA_DIR / "node_modules"
    if not ((modules / "vega").is_dir() and (modules / "vega-lite").is_dir()):
        assert shutil.which("npm"), "npm is needed once, to install vega@5 and vega-lite@5"
        VEGA_DIR.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run(["npm", "install", "--prefix", str(VEGA_DIR), "--no-audit",
                               "--no-fund", "vega@5", "vega-lite@5"],
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-2000:]
    for name, major in (("vega", "5."), ("vega-lite", "5.")):
        version = json.loads((modules / name / "package.json").read_text())["version"]
        assert version.startswith(major), (name, version)  # what Kibana 9 bundles
    return modules


@pytest.fixture(scope="module")
def dumped(es: Elasticsearch, es_url: str, objects: list[dict[str, Any]]) -> Iterator[Any]:
    with installed_indices(es, es_url, prefix="rnd") as made:
        load_documents(es, made)
        yield dump_objects(es, objects, Indices(made.checks, made.runs), WINDOW)


@pytest.fixture(scope="module")
def render_check() -> ModuleType:
    return load_script("render_check")


def test_every_vega_panel_draws(render_check: ModuleType, node_modules: Path, dumped: Any,
                                objects: list[dict[str, Any]], tmp_path: Path) -> None:
    status, drawn = render_check.render(node_modules, dumped, tmp_path, objects)
    assert status == 0
    assert {p["id"] for p in drawn} == set(vega_specs(objects))
    for p in drawn:
        svg = (tmp_path / f"{p['id']}.svg").read_text()
        assert f'width="{p["width"]}"' in svg and f'height="{p["height"]}"' in svg, p["id"]
        assert p["marks"] > 20, p  # axes, labels and the data's marks, not an empty frame


def test_panels_are_drawn_at_kibanas_container_size(render_check: ModuleType,
                                                    objects: list[dict[str, Any]]) -> None:
    """A 24 × 15 panel is ≈ 790 × 370 px in Kibana; bar panels leave ≥ 14 px a bar."""
    sizes = {p["id"]: p for p in render_check.dashboard_panels(objects)}
    assert render_check.container_size(24, 15) == (790, 370)
    for vis_id, spec in vega_specs(objects).items():
        y = spec.get("encoding", {}).get("y", {})
        if spec.get("mark", {}).get("type") == "bar" and y.get("type") == "nominal":
            (_, source), = data_sources_with_paths(spec)
            terms = next(iter(source["url"]["body"]["aggs"].values()))["terms"]
            assert sizes[vis_id]["height"] >= 14 * terms["size"], vis_id


def test_a_broken_spec_fails(render_check: ModuleType, node_modules: Path, dumped: Any,
                             objects: list[dict[str, Any]], tmp_path: Path) -> None:
    """The check can fail: a spec whose expression Vega cannot parse is reported."""
    vis_id = "edgewatch-unique-ips-over-time"
    broken = json.loads(json.dumps(dumped))
    broken[vis_id]["spec"]["transform"] = [{"calculate": "datum.doc_count >", "as": "ips"}]
    status, drawn = render_check.render(node_modules, broken, tmp_path, objects)
    assert status == 1
    assert vis_id not in {p["id"] for p in drawn}


def test_a_new_panel_module_is_picked_up_unchanged(build: ModuleType, render_check: ModuleType,
                                                   tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A ``kibana/panels_<name>.py`` with VEGA_PANELS lands on the board after the core panels
    and is among what render_check draws, without editing build.py or the renderer."""
    (tmp_path / "panels_core.py").symlink_to(ROOT / "kibana" / "panels_core.py")
    (tmp_path / "panels_extra.py").write_text(
        "from vega_common import VegaPanel, FULL_WIDTH\n"
        "SPEC = {'$schema': 'https://vega.github.io/schema/vega-lite/v5.json',\n"
        "        'data': {'values': []}, 'mark': 'bar'}\n"
        "VEGA_PANELS = [lambda: VegaPanel('edgewatch-extra', 'extra', 'why', SPEC,\n"
        "                                 (FULL_WIDTH, 15))]\n")
    monkeypatch.setattr(build, "HERE", tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "panels_extra", raising=False)
    names = [make().id for make in build.panel_factories()]
    assert names[-1] == "edgewatch-extra" and len(names) == 10
    objects = json.loads("[" + ",".join(build.render().splitlines()) + "]")
    drawn = {p["id"]: p for p in render_check.dashboard_panels(objects)}
    assert drawn["edgewatch-extra"]["width"] == render_check.container_size(48, 15)[0]
