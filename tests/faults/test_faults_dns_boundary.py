"""The probes' boundaries: whatever escapes their parts is still a classified result.

The parts are replaced by ones that raise what no peer should be able to provoke (a bug, a
library surprise); the probe must still return its result type with the exception's type named.
"""

from __future__ import annotations

import asyncio

import dns.name
import pytest
from faults_dns_peers import addresses_reply, dns_peer

import pipeline.probe.dns as dns_probe
import pipeline.probe.dns_answer as dns_answer
import pipeline.probe.rdns as rdns_probe
from pipeline.config import Resolver
from pipeline.probe.dns import probe_dns
from pipeline.probe.rdns import probe_rdns, ptr_result


def _boom(*args: object, **kwargs: object) -> None:
    raise RuntimeError("boom")


def test_probe_dns_turns_an_escaping_exception_into_dns_unexpected(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dns_probe, "exchange_wire", _boom)
    res = asyncio.run(probe_dns(Resolver("r", "127.0.0.1", 53), "api.faults.test", "A", 0.5))
    assert (res.error_type, res.error_message) == ("dns.unexpected", "RuntimeError: boom")
    assert res.addresses == () and not res.ok


def test_a_classifier_failure_is_dns_unexpected_not_a_crash(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dns_answer, "_classify", _boom)
    with dns_peer(addresses_reply("192.0.2.1")) as peer:
        res = asyncio.run(probe_dns(Resolver("r", "127.0.0.1", peer.port), "api.faults.test",
                                    "A", 0.5))
    assert res.error_type == "dns.unexpected" and "RuntimeError" in (res.error_message or "")


def test_probe_rdns_turns_an_escaping_exception_into_dns_unexpected(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rdns_probe, "exchange", _boom)
    res = asyncio.run(probe_rdns("192.0.2.1", ("127.0.0.1", 53), 0.5))
    assert (res.hostname, res.error_type) == (None, "dns.unexpected")
    assert res.error_message == "RuntimeError: boom"


def test_ptr_result_of_a_message_it_cannot_read_is_dns_unexpected() -> None:
    res = ptr_result("192.0.2.1", None, dns.name.root)  # type: ignore[arg-type]
    assert res.error_type == "dns.unexpected"
    answer = dns_answer.classify_message(None, "a.test", "A")  # type: ignore[arg-type]
    assert answer.error_type == "dns.unexpected"


def test_cancellation_is_not_swallowed() -> None:
    """The catch-all covers Exception only: a cycle being shut down can still cancel a probe."""
    async def cancel_soon() -> None:
        with dns_peer() as peer:  # silent
            task = asyncio.ensure_future(probe_dns(Resolver("r", "127.0.0.1", peer.port),
                                                   "api.faults.test", "A", 5.0))
            await asyncio.sleep(0.05)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
    asyncio.run(cancel_soon())
