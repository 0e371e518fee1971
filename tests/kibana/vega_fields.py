"""What a Vega-Lite panel reads from the rows its query returns: a check without Vega.

Split from kibana_vega.py (which reproduces Kibana's side: the query) so that each stays one
job; ``kibana_vega`` re-exports ``check_vega_lite_fields`` for the tests that import it there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_DATUM_PATH = re.compile(r"datum\.([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)")
_PICKED_ARRAY = re.compile(r".+ \? datum\.([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*) : \[.*\]")


def has_path(row: Any, path: str) -> bool:
    node = row
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def get_path(row: Any, path: str) -> Any:
    node = row
    for part in path.split("."):
        node = node[part]
    return node


def check_vega_lite_fields(spec: dict[str, Any], rows: list[dict[str, Any]]) -> list[str]:
    """Problems with the fields a Vega-Lite spec reads from ``rows`` (the format.property list).

    Not a Vega-Lite implementation: ``flatten`` is applied (it changes the row shape), every
    other transform only declares its ``as`` names (``aggregate`` also keeps its groupby
    fields). Every ``datum.a.b`` in an expression and every ``field`` of a transform or an
    encoding must then be a declared name or a path that exists in every row — which catches the
    typical broken panel: a path that does not match the shape of the aggregation reply. A layer
    goes on from the top level's transforms with its own, and the top level's encoding (which
    the layers inherit) must hold in each. Needs at least one row to say anything.
    """
    if not rows:
        return ["no rows to check the spec's fields against"]
    problems: list[str] = []
    top = _FieldState(problems, [dict(r) for r in rows], set())
    if not top.apply(spec.get("transform", []), "transform"):
        return problems
    layers = spec.get("layer", [])
    if not layers:
        top.check_encoding(spec.get("encoding", {}), "encoding")
    for j, layer in enumerate(layers):
        state = _FieldState(problems, list(top.rows), set(top.declared))
        if state.apply(layer.get("transform", []), f"layer[{j}].transform"):
            state.check_encoding(spec.get("encoding", {}), f"layer[{j}] inherited encoding")
            state.check_encoding(layer.get("encoding", {}), f"layer[{j}].encoding")
    return problems


@dataclass
class _FieldState:
    """The rows as far as the transforms so far shaped them, and the names they declared."""

    problems: list[str]
    rows: list[dict[str, Any]]
    declared: set[str]

    def check_path(self, path: str, where: str) -> None:
        head = path.split(".")[0]
        if path in self.declared or head in self.declared:
            return
        missing = [i for i, r in enumerate(self.rows) if not has_path(r, path)]
        if missing:
            self.problems.append(f"{where}: {path!r} is missing in {len(missing)} of "
                                 f"{len(self.rows)} rows")

    def check_expr(self, expr: str, where: str) -> None:
        for path in _DATUM_PATH.findall(expr):
            self.check_path(path, where)

    def flatten(self, step: dict[str, Any], where: str) -> bool:
        fields = step["flatten"]
        names = step.get("as", fields)
        for f in fields:
            self.check_path(f, where)
        flat = []
        for row in self.rows:
            arrays = [get_path(row, f) if has_path(row, f) else [] for f in fields]
            for k in range(max((len(a) for a in arrays), default=0)):
                new = dict(row)
                for name, arr in zip(names, arrays, strict=True):
                    new[name] = arr[k] if k < len(arr) else None
                flat.append(new)
        self.rows = flat
        if not self.rows:
            self.problems.append(f"{where}: flatten left no rows")
        return bool(self.rows)

    def pick_array(self, step: dict[str, Any]) -> None:
        """``cond ? datum.a.b : [stand-in]`` (a gap row for an empty bucket list) is taken as
        ``datum.a.b``, so that a ``flatten`` of its name sees the reply's real arrays."""
        picked = _PICKED_ARRAY.fullmatch(step["calculate"])
        if picked is None:
            return
        for row in self.rows:
            if has_path(row, picked.group(1)):
                row[step["as"]] = get_path(row, picked.group(1))

    def apply(self, transforms: list[dict[str, Any]], prefix: str) -> bool:
        """Go through the transforms; False when a flatten left nothing to check."""
        for i, step in enumerate(transforms):
            where = f"{prefix}[{i}]"
            if "flatten" in step:
                if not self.flatten(step, where):
                    return False
            elif "calculate" in step:
                self.check_expr(step["calculate"], where)
                self.declared.add(step["as"])
                self.pick_array(step)
            elif "filter" in step:
                if isinstance(step["filter"], str):
                    self.check_expr(step["filter"], where)
            elif "fold" in step:
                for f in step["fold"]:
                    self.check_path(f, where)
                self.declared.update(step.get("as", ["key", "value"]))
            elif "window" in step or "joinaggregate" in step or "aggregate" in step:
                ops = step.get("window") or step.get("joinaggregate") or step["aggregate"]
                for f in [s["field"] for s in step.get("sort", [])] + step.get("groupby", []) \
                        + [o["field"] for o in ops if "field" in o]:
                    self.check_path(f, where)
                if "aggregate" in step:  # the rows are now the groups: only these names remain
                    groupby = step.get("groupby", [])
                    self.rows = [{g: get_path(r, g) for g in groupby if has_path(r, g)}
                                 for r in self.rows]
                    self.declared = set()
                self.declared.update(o["as"] for o in ops)
            elif "impute" in step:
                for f in [step["impute"], step["key"], *step.get("groupby", [])]:
                    self.check_path(f, where)
            else:
                self.problems.append(f"{where}: transform {sorted(step)} not understood by "
                                     "this check")
        return True

    def check_encoding(self, enc: dict[str, Any], where: str) -> None:
        for channel, defn in enc.items():
            for d in defn if isinstance(defn, list) else [defn]:
                if isinstance(d, dict) and isinstance(d.get("field"), str):
                    self.check_path(d["field"], f"{where}.{channel}")
                sort = d.get("sort") if isinstance(d, dict) else None
                if isinstance(sort, dict) and isinstance(sort.get("field"), str):
                    self.check_path(sort["field"], f"{where}.{channel}.sort")
