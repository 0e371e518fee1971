"""Regenerate ``ecs-9.2.0-fields.json`` from ECS's own flat field list.

The ECS test (tests/pipeline/test_ecs.py) must judge the documents against Elastic's definitions,
not against a copy typed by hand, so the extract is produced by this script from
``generated/ecs/ecs_flat.yml`` of the elastic/ecs repository at a release tag:

    git -C <ecs clone> show v9.2.0:generated/ecs/ecs_flat.yml > /tmp/ecs_flat.yml
    python tests/data/ecs_extract.py /tmp/ecs_flat.yml v9.2.0 > tests/data/ecs-9.2.0-fields.json

Per field only what the test needs is kept: the type, ``normalize`` (e.g. ``array``) and the
allowed values where ECS lists them. Needs PyYAML (not a project dependency; only to regenerate).
"""

from __future__ import annotations

import json
import sys


def extract(flat: dict, tag: str) -> dict:
    fields = {}
    for name, spec in sorted(flat.items()):
        entry: dict = {"type": spec["type"]}
        if spec.get("normalize"):
            entry["normalize"] = list(spec["normalize"])
        if spec.get("allowed_values"):
            entry["allowed_values"] = [v["name"] for v in spec["allowed_values"]]
        fields[name] = entry
    return {
        "_source": {
            "project": "Elastic Common Schema (ECS)",
            "repository": "https://github.com/elastic/ecs",
            "tag": tag,
            "file": "generated/ecs/ecs_flat.yml",
            "license": "Apache-2.0 (elastic/ecs LICENSE.txt); this is an extract of it",
            "regenerate": "python tests/data/ecs_extract.py ecs_flat.yml " + tag,
        },
        "version": tag.lstrip("v"),
        "fields": fields,
    }


def main() -> None:
    import yaml  # only needed to regenerate the pinned extract

    path, tag = sys.argv[1], sys.argv[2]
    with open(path, encoding="utf-8") as fh:
        flat = yaml.safe_load(fh)
    sys.stdout.write(dumps(extract(flat, tag)))


def dumps(data: dict) -> str:
    """One field per line: small diffs when ECS is bumped, still plain JSON."""
    head = {k: v for k, v in data.items() if k != "fields"}
    lines = [json.dumps(head)[:-1] + ', "fields": {']
    items = list(data["fields"].items())
    for i, (name, entry) in enumerate(items):
        comma = "," if i < len(items) - 1 else ""
        lines.append(f"{json.dumps(name)}: {json.dumps(entry)}{comma}")
    lines.append("}}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
