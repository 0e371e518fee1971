"""What Kibana does with a Vega spec's ``data.url`` before it searches, reproduced for tests.

Kibana's Vega plugin (``EsQueryParser`` in ``vis_types/vega/public/data_model``) turns a
``data.url`` object into an Elasticsearch search in the browser:

* ``%context%: true`` / ``%timefield%: F`` (only when ``body.query`` is absent): the query
  becomes the dashboard's bool query (query bar + filter bar, as ``buildEsQuery`` builds it) with
  a ``range`` on F for the time picker appended to ``bool.must``; either alone is allowed.
* with an explicit ``body.query``: inside any array in it the strings
  ``%dashboard_context-must_clause%`` / ``-filter_clause%`` / ``-must_not_clause%`` are replaced
  by the dashboard's clauses of that kind (spliced in; removed when there are none), and an
  object ``{"%timefilter%": true}`` becomes ``{gte, lte, format}`` (``"min"``/``"max"`` become
  epoch milliseconds), optionally moved by ``shift``/``unit``.
* in ``body.aggs``: the same ``%timefilter%`` objects, and ``date_histogram.interval`` (a string
  or ``{"%autointerval%": true|N}``) becomes ``fixed_interval`` or ``calendar_interval``.

Then it posts ``body`` to ``<index>/_search`` and hands Vega the reply; ``format.property``
picks the rows. This module does the same so a test can run a panel's query on a real node.
It is our reading of Kibana's code, checked against the cases in Kibana's own unit tests
(``test_kibana_vega_translation.py``), not Kibana itself.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from vega_fields import check_vega_lite_fields  # noqa: F401  (re-exported for the tests)

TIMEFILTER = "%timefilter%"
AUTOINTERVAL = "%autointerval%"
CONTEXT = "%context%"
TIMEFIELD = "%timefield%"
LEGACY_CONTEXT = "%context_query%"
CLAUSES = {
    "%dashboard_context-must_clause%": "must",
    "%dashboard_context-filter_clause%": "filter",
    "%dashboard_context-must_not_clause%": "must_not",
}

SECOND = 1000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR
_SHIFT_UNITS = {"w": 7 * DAY, "week": 7 * DAY, "d": DAY, "day": DAY, "h": HOUR, "hour": HOUR,
                "m": MINUTE, "minute": MINUTE, "s": SECOND, "second": SECOND}
# @kbn/datemath unit kinds: ms/s always fixed; m/h/d calendar when 1, else fixed; w/M/y calendar.
_UNIT_KIND = {"ms": "fixed", "s": "fixed", "m": "mixed", "h": "mixed", "d": "mixed",
              "w": "calendar", "M": "calendar", "y": "calendar"}
_INTERVAL = re.compile(r"^([1-9][0-9]*)\s*(y|M|w|d|h|m|s|ms)$")


class VegaQueryError(ValueError):
    """Kibana would refuse this data.url (it shows the message in the panel instead of a chart)."""


def empty_dashboard_query() -> dict[str, Any]:
    """The bool query Kibana builds for an empty query bar and no filters."""
    return {"bool": {"must": [], "filter": [{"match_all": {}}], "should": [], "must_not": []}}


def dashboard_query(filters: list[dict[str, Any]] | None = None,
                    negated: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The dashboard's bool query with pinned/added filters (negated ones go to must_not)."""
    query = empty_dashboard_query()
    query["bool"]["filter"].extend(filters or [])
    query["bool"]["must_not"].extend(negated or [])
    return query


@dataclass(frozen=True)
class KibanaContext:
    """What a dashboard hands a Vega panel: the time picker's bounds and the bool query."""

    time_min: datetime
    time_max: datetime
    query: dict[str, Any] = field(default_factory=empty_dashboard_query)

    @property
    def min_ms(self) -> int:
        return int(self.time_min.timestamp() * 1000)

    @property
    def max_ms(self) -> int:
        return int(self.time_max.timestamp() * 1000)


def iso_ms(epoch_ms: int) -> str:
    """moment(x).toISOString(): UTC with milliseconds and a Z."""
    dt = datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def round_interval(interval_ms: float) -> str:
    """Kibana's ``_roundInterval``: a bucket span in ms to a 'nice' interval string."""
    steps = [(500, "100ms"), (5000, "1s"), (7500, "5s"), (15000, "10s"), (45000, "30s"),
             (180000, "1m"), (450000, "5m"), (1200000, "10m"), (2700000, "30m"),
             (7200000, "1h"), (21600000, "3h"), (86400000, "12h"), (604800000, "24h"),
             (1814400000, "1w")]
    for limit, name in steps:
        if interval_ms <= limit:
            return name
    return "30d" if interval_ms < 3628800000 else "1y"


def date_histogram_interval(interval: str) -> dict[str, str]:
    """``dateHistogramInterval``: which of fixed_interval / calendar_interval ES should get."""
    match = _INTERVAL.match(str(interval).strip())
    if not match:
        raise VegaQueryError(f"Invalid interval format: {interval}")
    value, unit = int(match.group(1)), match.group(2)
    kind = _UNIT_KIND[unit]
    if kind == "calendar" and value != 1:
        raise VegaQueryError(f"Invalid calendar interval: {interval}, value must be 1")
    calendar = kind == "calendar" or (kind == "mixed" and value == 1)
    return {"calendar_interval": interval} if calendar else {"fixed_interval": interval}


def _js_falsy(value: Any) -> bool:
    """JavaScript's falsiness: unlike Python, an empty object or array is *not* falsy."""
    if value is None or value is False or value == "":
        return True
    return isinstance(value, int | float) and not isinstance(value, bool) and value == 0


class _Translator:
    def __init__(self, ctx: KibanaContext) -> None:
        self.ctx = ctx

    def time_bound(self, opts: dict[str, Any], which: str) -> int:
        result = self.ctx.min_ms if which == "min" else self.ctx.max_ms
        shift = opts.get("shift")
        if shift:
            if not isinstance(shift, int | float) or isinstance(shift, bool):
                raise VegaQueryError('"shift" must be a numeric value')
            unit = opts.get("unit") or "d"
            if unit not in _SHIFT_UNITS:
                raise VegaQueryError(f'Unknown "unit" value {unit!r}')
            result += int(shift * _SHIFT_UNITS[unit])
        return result

    def range_filter(self, obj: dict[str, Any]) -> dict[str, Any]:
        obj["gte"] = iso_ms(self.time_bound(obj, "min"))
        obj["lte"] = iso_ms(self.time_bound(obj, "max"))
        obj["format"] = "strict_date_optional_time"
        for key in (TIMEFILTER, "shift", "unit"):
            obj.pop(key, None)
        return obj

    def inject(self, obj: Any, is_query: bool, key: str | None = None) -> None:
        if isinstance(obj, list):
            pos = 0
            while pos < len(obj):
                item = obj[pos]
                if is_query and isinstance(item, str) and item in CLAUSES:
                    clause = self.ctx.query.get("bool", {}).get(CLAUSES[item])
                    if clause:
                        spliced = copy.deepcopy(clause if isinstance(clause, list) else [clause])
                        obj[pos:pos + 1] = spliced
                        pos += len(spliced)
                    else:
                        del obj[pos]
                else:
                    self.inject(item, is_query)
                    pos += 1
            return
        if not isinstance(obj, dict):
            return
        for prop in list(obj.keys()):
            sub = obj[prop]
            if _js_falsy(sub):
                continue  # as Kibana: `if (!subObj) continue`
            if prop == "interval" and key == "date_histogram":
                if isinstance(sub, str):
                    interval = sub
                elif isinstance(sub, dict) and sub.get(AUTOINTERVAL):
                    size = sub[AUTOINTERVAL]
                    if size is True:
                        size = 50
                    elif not isinstance(size, int | float) or isinstance(size, bool):
                        raise VegaQueryError('"%autointerval%" must be either true or a number')
                    interval = round_interval((self.ctx.max_ms - self.ctx.min_ms) / size)
                else:
                    raise VegaQueryError(f"Invalid interval format: {sub!r}")
                obj.update(date_histogram_interval(interval))
                del obj["interval"]
                continue
            marker = sub.get(TIMEFILTER) if isinstance(sub, dict) else None
            if marker in ("min", "max"):
                obj[prop] = self.time_bound(sub, marker)
            elif marker is True:
                self.range_filter(sub)
            elif marker is None:
                self.inject(sub, is_query, prop)
            else:
                raise VegaQueryError('"%timefilter%" property must be set to true, "min", or '
                                     '"max"')


@dataclass(frozen=True)
class Search:
    """The search Kibana would send for one data.url: ``POST /<index>/_search`` with ``body``."""

    index: str
    body: dict[str, Any]


def translate_url(url: dict[str, Any], ctx: KibanaContext) -> Search:
    """``EsQueryParser.parseUrl`` for an Elasticsearch ``data.url`` object."""
    url = copy.deepcopy(url)
    tr = _Translator(ctx)
    if LEGACY_CONTEXT in url:
        raise VegaQueryError("legacy %context_query% is deprecated; use %context%/%timefield%")
    context = url.pop(CONTEXT, None)
    timefield = url.pop(TIMEFIELD, None)
    uses_context = context is not None or timefield is not None
    body = url.setdefault("body", {})
    if not isinstance(body, dict):
        raise VegaQueryError("url.body must be an object")
    if "query" in body:
        if uses_context:
            raise VegaQueryError("url.%context% and url.%timefield% must not be used when "
                                 "url.body.query is set")
        tr.inject(body["query"], True)
    elif uses_context:
        if timefield:
            body["query"] = {"range": {timefield: tr.range_filter({TIMEFILTER: True})}}
        if context:
            query = copy.deepcopy(ctx.query)
            if timefield:
                query["bool"]["must"].append(body["query"])
            body["query"] = query
    tr.inject(body.get("aggs"), False)
    if "index" not in url:
        raise VegaQueryError("data.url has no index")
    return Search(index=str(url["index"]), body=body)


def leftover_placeholders(value: Any) -> list[str]:
    """Any ``%...%`` still in a translated body would reach Elasticsearch verbatim."""
    text = json.dumps(value)
    return sorted(set(re.findall(r"%[a-z_-]+%", text)))


def resolve_property(reply: dict[str, Any], prop: str) -> Any:
    """Vega's ``format.property``: a dotted path into the JSON reply (KeyError when absent)."""
    node: Any = reply
    for part in prop.split("."):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(f"{prop!r}: no {part!r} in the reply")
        node = node[part]
    return node


# -----------------------------------------------------------------------------------------
# Saved objects
# -----------------------------------------------------------------------------------------

def vega_specs(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``{visualization id: parsed Vega spec}`` for every Vega visualization."""
    out = {}
    for obj in objects:
        if obj["type"] != "visualization":
            continue
        state = json.loads(obj["attributes"]["visState"])
        if state.get("type") == "vega":
            out[obj["id"]] = json.loads(state["params"]["spec"])
    return out


def data_sources(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The Elasticsearch data sources of a Vega or Vega-Lite spec (``data`` with a url object)."""
    data = spec.get("data")
    items = data if isinstance(data, list) else [data] if isinstance(data, dict) else []
    return [d for d in items if isinstance(d.get("url"), dict)]


_QUERY_FIELD_KEYS = ("range", "term", "terms", "match", "match_phrase", "prefix", "wildcard")


def fields_used(url: dict[str, Any]) -> list[tuple[str, str]]:
    """(how, field) for every field a data.url names: ``%timefield%``, aggregations' ``field``,
    and the field keys of range/term/match… queries and ``exists``."""
    found: list[tuple[str, str]] = []
    if isinstance(url.get(TIMEFIELD), str):
        found.append(("timefield", url[TIMEFIELD]))

    def walk(node: Any, parent: str | None) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item, parent)
            return
        if not isinstance(node, dict):
            return
        if parent is not None and isinstance(node.get("field"), str):
            found.append((parent, node["field"]))
        elif parent in _QUERY_FIELD_KEYS:
            found.extend((f"{parent} query", k) for k in node if not k.startswith("%"))
        for key, value in node.items():
            walk(value, key)

    walk(url.get("body", {}), None)
    return found
