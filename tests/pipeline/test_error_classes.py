"""error.type from what went wrong, in milliseconds: connect errors and DNS response codes.

The values are the documented classes (docs/DOCUMENTS.md, "error.type"); the live tests in
tests/faults/ provoke each one over loopback, these pin the mapping itself.
"""

from __future__ import annotations

import errno

import dns.message
import dns.rcode
import dns.rrset
import pytest

from pipeline.probe.connect import _classify_connect_error
from pipeline.probe.dns_answer import classify_message

Q = "api.example.test"


@pytest.mark.parametrize(("exc", "error_type"), [
    (TimeoutError(), "tcp.timeout"),
    (ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"), "tcp.refused"),
    (OSError(errno.EHOSTUNREACH, "No route to host"), "tcp.unreachable"),
    (OSError(errno.ENETUNREACH, "Network is unreachable"), "tcp.unreachable"),
    (ConnectionResetError(errno.ECONNRESET, "Connection reset by peer"), "tcp.error"),
    (OSError(errno.EADDRNOTAVAIL, "Cannot assign requested address"), "tcp.error"),
    (ValueError("odd"), "tcp.error"),
])
def test_connect_errors(exc: BaseException, error_type: str) -> None:
    got, message = _classify_connect_error(exc)
    assert got == error_type
    assert message  # never an empty error.message


def test_unreachable_says_why() -> None:
    assert _classify_connect_error(OSError(errno.EHOSTUNREACH, "No route to host")) == (
        "tcp.unreachable", "No route to host")


def test_an_unnamed_error_is_named_by_its_type() -> None:
    assert _classify_connect_error(ConnectionResetError()) == ("tcp.error", "ConnectionResetError")


def _with_rcode(rcode: dns.rcode.Rcode, *addresses: str) -> dns.message.Message:
    response = dns.message.make_response(dns.message.make_query(Q, "A"))
    response.set_rcode(rcode)
    if addresses:
        response.answer.append(dns.rrset.from_text(f"{Q}.", 60, "IN", "A", *addresses))
    return response


@pytest.mark.parametrize(("rcode", "error_type"), [
    (dns.rcode.SERVFAIL, "dns.servfail"),
    (dns.rcode.NXDOMAIN, "dns.nxdomain"),
    (dns.rcode.REFUSED, "dns.refused"),
    (dns.rcode.FORMERR, "dns.formerr"),
    (dns.rcode.NOTIMP, "dns.notimp"),
    (dns.rcode.YXDOMAIN, "dns.yxdomain"),  # any other rcode: its own name, lower case
    (dns.rcode.NOTAUTH, "dns.notauth"),
])
def test_rcode_to_error_type(rcode: dns.rcode.Rcode, error_type: str) -> None:
    answer = classify_message(_with_rcode(rcode), Q, "A")
    assert answer.error_type == error_type
    assert answer.rcode == dns.rcode.to_text(rcode)
    assert answer.error_message == f"{dns.rcode.to_text(rcode)} from resolver"


def test_an_error_rcode_wins_over_addresses_in_the_answer() -> None:
    answer = classify_message(_with_rcode(dns.rcode.SERVFAIL, "127.0.0.5"), Q, "A")
    assert answer.error_type == "dns.servfail"


def test_noerror_with_addresses_is_no_error() -> None:
    answer = classify_message(_with_rcode(dns.rcode.NOERROR, "127.0.0.5"), Q, "A")
    assert (answer.error_type, answer.error_message, answer.rcode) == (None, None, "NOERROR")


def test_noerror_without_addresses_is_nodata() -> None:
    answer = classify_message(_with_rcode(dns.rcode.NOERROR), Q, "A")
    assert answer.error_type == "dns.nodata"
