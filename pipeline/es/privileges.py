"""The least privileges edgewatch's two jobs need, as Elasticsearch role descriptors, spelled once.

Two roles, one namespace each (data streams and the runs index are per namespace, so a probe's
key cannot touch another namespace's documents):

* ``writer`` — what ``edgewatch run`` uses on every probe host. It creates check, event and
  afterlife documents with an explicit ``_id`` into data streams (``create_doc``; ``auto_configure``
  lets the first document create the data stream from the template ``setup`` installed), indexes
  run summaries by ``_id`` with an external version (``index``: a summary is replaced as the run
  grows), and checks at start that ``setup`` made the runs index (``view_index_metadata`` for
  ``HEAD edgewatch-runs-<ns>``). Cluster ``monitor`` answers ``GET /`` (the version check) and
  ``GET _cluster/health`` (asked once per cycle, reported when yellow/red). No read, no delete,
  no template or mapping change: a stolen probe key can add documents and nothing else.
* ``setup`` — what ``edgewatch setup`` uses once per upgrade: templates and the lifecycle policy
  (``manage_index_templates``, ``manage_ilm``; ``monitor`` for ``GET /`` and ``_capabilities``)
  and ``manage`` on the namespace's indices (create the runs index, compare and extend mappings,
  read effective settings, switch a data stream's failure store off).

``ROLES`` is the single source: ``edgewatch privileges show`` prints it for ``PUT
_security/role`` or a ``roles.yml``, ``create-writer`` sends it, ``check`` asks
``_security/user/_has_privileges`` for exactly these, and docs/MANY_PROBES.md explains each.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pipeline.es import names


def _data_streams(namespace: str) -> list[str]:
    return [names.KINDS[kind].target(namespace) for kind in names.DATA_STREAM_KINDS]


def writer_role(namespace: str) -> dict[str, Any]:
    """The role every probe's API key (or user) gets."""
    return {
        "cluster": ["monitor"],
        "indices": [
            {"names": _data_streams(namespace), "privileges": ["create_doc", "auto_configure"]},
            {"names": [names.runs_index(namespace)],
             "privileges": ["index", "view_index_metadata"]},
        ],
    }


def setup_role(namespace: str) -> dict[str, Any]:
    """The role ``edgewatch setup`` needs (the compose setup container uses ``elastic``)."""
    return {
        "cluster": ["monitor", "manage_index_templates", "manage_ilm"],
        "indices": [
            {"names": [*_data_streams(namespace), names.runs_index(namespace)],
             "privileges": ["manage"]},
        ],
    }


ROLES: dict[str, Callable[[str], dict[str, Any]]] = {"writer": writer_role, "setup": setup_role}
ROLE_NAMES = {"writer": "edgewatch_writer", "setup": "edgewatch_setup"}


def without(role: dict[str, Any], privilege: str) -> dict[str, Any]:
    """``role`` minus one privilege wherever it appears (tests: a writer missing one)."""
    indices = [{**entry, "privileges": [p for p in entry["privileges"] if p != privilege]}
               for entry in role["indices"]]
    return {"cluster": [p for p in role["cluster"] if p != privilege],
            "indices": [e for e in indices if e["privileges"]]}


def has_privileges_body(role: dict[str, Any]) -> dict[str, Any]:
    """The ``_has_privileges`` request asking for every privilege of ``role``."""
    return {"cluster": list(role["cluster"]),
            "index": [{"names": e["names"], "privileges": e["privileges"]}
                      for e in role["indices"]]}


def missing(answer: dict[str, Any]) -> list[str]:
    """The privileges a ``_has_privileges`` answer says are not held, as ``privilege on name``
    (cluster privileges as ``cluster:<privilege>``), in a stable order."""
    out = [f"cluster:{p}" for p, held in sorted(answer.get("cluster", {}).items()) if not held]
    for index, privs in sorted(answer.get("index", {}).items()):
        out += [f"{p} on {index}" for p, held in sorted(privs.items()) if not held]
    return out


def roles_yml(roles: dict[str, dict[str, Any]]) -> str:
    """``roles.yml`` text (the file realm's roles) for role name → descriptor; YAML by hand so
    that the pipeline needs no YAML library: lists are written in flow style, names quoted."""
    lines: list[str] = []
    for name, role in roles.items():
        lines.append(f"{name}:")
        lines.append(f"  cluster: [{', '.join(_q(p) for p in role['cluster'])}]")
        lines.append("  indices:")
        for entry in role["indices"]:
            lines.append(f"    - names: [{', '.join(_q(n) for n in entry['names'])}]")
            lines.append(f"      privileges: [{', '.join(_q(p) for p in entry['privileges'])}]")
    return "\n".join(lines) + "\n"


def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
