"""Our reproduction of Kibana's Vega url → search translation, held to Kibana's own behaviour.

The cases are those Kibana's unit tests of ``EsQueryParser`` pin down (time range 10 → 12 days
after the epoch, a dashboard query with array clauses and one with single-object clauses),
restated here; if our translator drifted from Kibana's, the panel queries run against
Elasticsearch in ``test_kibana_vega_queries.py`` would no longer be the ones Kibana sends.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kibana_vega import (
    DAY,
    HOUR,
    SECOND,
    KibanaContext,
    VegaQueryError,
    check_vega_lite_fields,
    date_histogram_interval,
    iso_ms,
    round_interval,
    translate_url,
)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
START, END = 10 * DAY, 12 * DAY
CTX_ARRAYS = {"bool": {"must": [{"match_all": {"c": 3}}], "must_not": [{"d": 4}],
                       "filter": [{"f": 6}]}}
CTX_OBJECTS = {"bool": {"must": {"match_all": {"a": 1}}, "must_not": {"b": 2},
                        "filter": {"e": 6}}}


def ctx(query: dict[str, Any] | None = None, start: int = START, end: int = END) -> KibanaContext:
    return KibanaContext(EPOCH + timedelta(milliseconds=start),
                         EPOCH + timedelta(milliseconds=end),
                         query if query is not None else {"bool": {}})


def query_of(body_query: Any, context: KibanaContext) -> Any:
    return translate_url({"index": "_all", "body": {"query": body_query}}, context).body["query"]


def aggs_of(aggs: Any, context: KibanaContext) -> Any:
    return translate_url({"index": "_all", "body": {"aggs": aggs}}, context).body["aggs"]


def test_round_interval_matches_kibana() -> None:
    assert round_interval(4 * SECOND) == "1s"
    assert round_interval(4 * HOUR) == "3h"
    assert round_interval(2 * DAY / 50) == "1h"
    assert round_interval(14 * DAY / 50) == "12h"


def test_interval_kind_follows_datemath() -> None:
    assert date_histogram_interval("1h") == {"calendar_interval": "1h"}
    assert date_histogram_interval("3h") == {"fixed_interval": "3h"}
    assert date_histogram_interval("30s") == {"fixed_interval": "30s"}
    assert date_histogram_interval("1w") == {"calendar_interval": "1w"}
    with pytest.raises(VegaQueryError):
        date_histogram_interval("2w")


def test_autointerval() -> None:
    aggs = {"date_histogram": {"interval": {"%autointerval%": True}}}
    assert aggs_of(aggs, ctx(CTX_OBJECTS)) == {"date_histogram": {"calendar_interval": "1h"}}
    aggs = {"date_histogram": {"interval": {"%autointerval%": 10}}}
    assert aggs_of(aggs, ctx(CTX_OBJECTS)) == {"date_histogram": {"fixed_interval": "3h"}}
    # only date_histogram intervals are rewritten
    assert aggs_of({"histogram": {"interval": 1}}, ctx()) == {"histogram": {"interval": 1}}


def test_timefilter_objects() -> None:
    assert query_of({"a": {"%timefilter%": "min"}}, ctx()) == {"a": START}
    assert query_of({"a": {"%timefilter%": "max"}}, ctx()) == {"a": END}
    assert query_of({"a": {"%timefilter%": True}}, ctx()) == {"a": {
        "format": "strict_date_optional_time", "gte": iso_ms(START), "lte": iso_ms(END)}}
    shifted = query_of({"a": {"%timefilter%": True, "shift": 5, "unit": "s"}}, ctx(start=1000,
                                                                                   end=2000))
    assert shifted == {"a": {"format": "strict_date_optional_time",
                             "gte": iso_ms(6000), "lte": iso_ms(7000)}}
    assert query_of({"a": {"%timefilter%": "min", "shift": -2, "unit": "h"}}, ctx()) == {
        "a": START - 2 * HOUR}
    with pytest.raises(VegaQueryError):
        query_of({"a": {"%timefilter%": "later"}}, ctx())


def test_iso_format_is_moments() -> None:
    assert iso_ms(START) == "1970-01-11T00:00:00.000Z"
    assert iso_ms(1234) == "1970-01-01T00:00:01.234Z"


def test_dashboard_clauses_are_spliced() -> None:
    assert query_of({"arr": ["%dashboard_context-must_clause%"]}, ctx({})) == {"arr": []}
    assert query_of({"arr": ["%dashboard_context-must_clause%"]}, ctx(CTX_ARRAYS)) == {
        "arr": [{"match_all": {"c": 3}}]}
    assert query_of({"arr": ["%dashboard_context-must_clause%"]}, ctx(CTX_OBJECTS)) == {
        "arr": [{"match_all": {"a": 1}}]}
    mixed = {"arr": [1, "%dashboard_context-must_clause%", 2,
                     "%dashboard_context-must_not_clause%", 3,
                     "%dashboard_context-filter_clause%"]}
    assert query_of(mixed, ctx(CTX_ARRAYS)) == {
        "arr": [1, {"match_all": {"c": 3}}, 2, {"d": 4}, 3, {"f": 6}]}


def test_clause_strings_outside_the_query_are_left_alone() -> None:
    # Kibana only splices inside body.query; in aggs the string would go to ES verbatim.
    aggs = {"x": {"filters": {"filters": ["%dashboard_context-must_clause%"]}}}
    assert aggs_of(aggs, ctx(CTX_ARRAYS)) == aggs


def test_context_and_timefield() -> None:
    only_context = translate_url({"index": "_all", "%context%": True}, ctx(CTX_ARRAYS))
    assert only_context.body == {"query": CTX_ARRAYS}
    both = translate_url({"index": "_all", "%context%": True, "%timefield%": "abc"},
                         ctx(CTX_ARRAYS))
    assert both.body["query"] == {"bool": {
        "must": [{"match_all": {"c": 3}}, {"range": {"abc": {
            "format": "strict_date_optional_time", "gte": iso_ms(START), "lte": iso_ms(END)}}}],
        "must_not": [{"d": 4}], "filter": [{"f": 6}]}}
    only_time = translate_url({"index": "_all", "%timefield%": "abc"}, ctx(CTX_ARRAYS))
    assert only_time.body["query"] == {"range": {"abc": {
        "format": "strict_date_optional_time", "gte": iso_ms(START), "lte": iso_ms(END)}}}
    assert translate_url({"index": "_all"}, ctx(CTX_ARRAYS)).body == {}


def test_context_with_explicit_query_is_refused() -> None:
    with pytest.raises(VegaQueryError, match="must not be used"):
        translate_url({"index": "i", "%context%": True, "body": {"query": {"match_all": {}}}},
                      ctx())


def test_translation_does_not_touch_the_spec() -> None:
    url = {"index": "i", "%context%": True, "%timefield%": "t",
           "body": {"aggs": {"h": {"date_histogram": {"interval": {"%autointerval%": True}}}}}}
    before = repr(url)
    translate_url(url, ctx(CTX_ARRAYS))
    assert repr(url) == before


def test_field_check_finds_paths_the_rows_lack() -> None:
    rows = [{"key": "quad9", "doc_count": 3, "ips": {"value": 2},
             "kinds": {"buckets": [{"key": "dns.timeout", "doc_count": 1}]}}]
    good = {"transform": [{"flatten": ["kinds.buckets"], "as": ["kind"]},
                          {"calculate": "datum.kind.doc_count * 2", "as": "twice"}],
            "encoding": {"y": {"field": "key"}, "x": {"field": "twice"},
                         "color": {"field": "kind.key"}}}
    assert check_vega_lite_fields(good, rows) == []
    bad = {"transform": [{"calculate": "datum.ip.value", "as": "n"}],
           "encoding": {"y": {"field": "key", "sort": {"field": "count"}}, "x": {"field": "n"}}}
    problems = check_vega_lite_fields(bad, rows)
    assert len(problems) == 2
    assert "'ip.value'" in problems[0] and "'count'" in problems[1]
    assert check_vega_lite_fields(good, []) != []
