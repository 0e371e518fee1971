"""The afterlife section from grouped rows: each check's state, each entry's verdict, the
per-target figures and sentences (docs/REPORT.md "Retired addresses")."""

from __future__ import annotations

from pipeline.report.afterlife import (
    OTHER_CERTIFICATE,
    REFUSING,
    SERVING,
    afterlife_section,
    state,
)
from pipeline.report.rows import AfterlifeRow

H = 3600


def rows(target: str, ip: str, states: list[tuple[int, bool | None, bool | None]],
         run: str = "r1") -> list[AfterlifeRow]:
    return [AfterlifeRow(target, ip, run, age, tls, ok, 1) for age, tls, ok in states]


def test_a_check_serves_only_with_a_completed_handshake_that_verifies() -> None:
    assert state(True, True) == SERVING  # an HTTP error on top does not matter here
    assert state(True, False) == OTHER_CERTIFICATE  # wrong name, expired, unknown issuer
    assert state(False, None) == REFUSING  # TCP up, handshake failed (tls_abort)
    assert state(None, None) == REFUSING  # no TCP: refused or timed out


def test_entries_get_their_verdict_and_first_ages() -> None:
    data = (rows("api", "192.0.2.1", [(900, True, True), (1800, True, True)])
            + rows("api", "192.0.2.2", [(900, True, True), (1800, None, None),
                                        (2700, True, True), (3600, None, None)])
            + rows("api", "192.0.2.3", [(900, True, True), (1800, True, True),
                                        (2700, True, False), (3600, None, None)])
            + rows("other", "192.0.2.9", [(H, None, None)]))
    api, other = afterlife_section(data)
    assert (api.target, api.entries, api.checks) == ("api", 3, 10)
    assert (api.harmless, api.dead, api.risk) == (1, 1, 1)
    risk, dead, harmless = api.addresses  # the risky first, then the dead
    assert (risk.ip, risk.verdict, risk.served_until_s, risk.first_other_certificate_s,
            risk.first_refusing_s) == ("192.0.2.3", "risk", 1800, 2700, 3600)
    # served again after a refusal: "served valid until" stops at the first other state
    assert (dead.ip, dead.verdict, dead.served_until_s, dead.first_refusing_s,
            dead.serving, dead.refusing) == ("192.0.2.2", "dead", 900, 1800, 2, 2)
    assert (harmless.verdict, harmless.last_age_s, harmless.first_refusing_s) == (
        "harmless", 1800, None)
    assert api.first_other_certificate_min_s == 2700 and api.first_refusing_median_s == 1800
    assert api.verdict.startswith("risk: 1 of 3 retired address(es) presented another "
                                  "certificate, the first 0.75 h after retirement")
    assert (other.dead, other.addresses[0].served_until_s) == (1, None)
    assert other.verdict.startswith("harmless: no retired address presented another")


def test_every_address_serving_reads_harmless_with_the_longest_age() -> None:
    (a,) = afterlife_section(rows("api", "192.0.2.1", [(900, True, True), (2 * H, True, True)])
                             + rows("api", "192.0.2.1", [(H, True, True)], run="r2"))
    assert (a.entries, a.harmless, a.longest_checked_s) == (2, 2, 2 * H)
    assert a.verdict == ("harmless: every retired address kept serving the name with a valid "
                         "certificate for up to 2.00 h after retirement")


def test_no_rows_no_section() -> None:
    assert afterlife_section([]) == []
