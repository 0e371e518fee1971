"""CNAME following in the pure answer classifier (``pipeline.probe.dns_answer``), in milliseconds.

Each case is a message built in memory and classified directly: no resolver, no socket. The
live versions of these answers (tests/faults/test_faults_dns_answers.py) prove the transport;
these pin the walk itself.
"""

from __future__ import annotations

import itertools

import dns.message
import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from pipeline.probe.dns_answer import MAX_CHAIN, classify_message, walk_chain

Q = "api.example.test"


def _response(*records: tuple[str, str, str, str], rtype: str = "A") -> dns.message.Message:
    """A NOERROR response to ``Q``/``rtype`` holding ``(owner, class, type, data)`` records."""
    response = dns.message.make_response(dns.message.make_query(Q, rtype))
    for owner, rclass, rdtype, data in records:
        response.answer.append(dns.rrset.from_text(owner, 60, rclass, rdtype, data))
    return response


def _chain(n: int) -> list[tuple[str, str, str, str]]:
    """``Q`` → c1 → … → cN, each a CNAME, then an A record at the last name."""
    names = [Q] + [f"c{i}.edge.test" for i in range(1, n + 1)]
    links = [(a + ".", "IN", "CNAME", b + ".") for a, b in itertools.pairwise(names)]
    return [*links, (names[-1] + ".", "IN", "A", "127.0.0.7")]


def test_a_direct_answer_has_a_one_name_chain() -> None:
    answer = classify_message(_response((f"{Q}.", "IN", "A", "127.0.0.5")), Q, "A")
    assert answer.error_type is None
    assert answer.cname_chain == (Q,)
    assert [a.address for a in answer.addresses] == ["127.0.0.5"]


def test_a_chain_is_followed_to_the_addresses_at_its_end() -> None:
    answer = classify_message(_response(*_chain(3)), Q, "A")
    assert answer.error_type is None
    assert answer.cname_chain == (Q, "c1.edge.test", "c2.edge.test", "c3.edge.test")
    assert [a.address for a in answer.addresses] == ["127.0.0.7"]


def test_addresses_not_at_the_end_of_the_chain_are_not_the_answer() -> None:
    """An A record at the asked name beside a CNAME (illegal) is not where the chain leads."""
    answer = classify_message(_response((f"{Q}.", "IN", "CNAME", "c1.edge.test."),
                                        (f"{Q}.", "IN", "A", "127.0.0.66"),
                                        ("c1.edge.test.", "IN", "A", "127.0.0.7")), Q, "A")
    assert [a.address for a in answer.addresses] == ["127.0.0.7"]


def test_records_out_of_order_are_still_followed() -> None:
    answer = classify_message(_response(*reversed(_chain(4))), Q, "A")
    assert answer.error_type is None and len(answer.cname_chain) == 5
    assert [a.address for a in answer.addresses] == ["127.0.0.7"]


def test_a_loop_is_reported_not_followed_forever() -> None:
    answer = classify_message(_response((f"{Q}.", "IN", "CNAME", "c1.edge.test."),
                                        ("c1.edge.test.", "IN", "CNAME", "c2.edge.test."),
                                        ("c2.edge.test.", "IN", "CNAME", f"{Q}.")), Q, "A")
    assert answer.error_type == "dns.cname_loop"
    assert answer.cname_chain == (Q, "c1.edge.test", "c2.edge.test")
    assert "c2.edge.test" in (answer.error_message or "")
    assert answer.addresses == ()


def test_a_cname_to_itself_is_a_loop() -> None:
    answer = classify_message(_response((f"{Q}.", "IN", "CNAME", f"{Q}.")), Q, "A")
    assert answer.error_type == "dns.cname_loop"


def test_the_chain_limit_is_exact() -> None:
    ok = classify_message(_response(*_chain(MAX_CHAIN)), Q, "A")
    assert ok.error_type is None and len(ok.cname_chain) == MAX_CHAIN + 1
    long = classify_message(_response(*_chain(MAX_CHAIN + 1)), Q, "A")
    assert long.error_type == "dns.cname_chain_too_long"
    assert long.addresses == ()


def test_cnames_of_other_classes_are_not_followed() -> None:
    answer = classify_message(_response((f"{Q}.", "CH", "CNAME", "c1.edge.test."),
                                        ("c1.edge.test.", "IN", "A", "127.0.0.7")), Q, "A")
    assert answer.cname_chain == (Q,)
    assert answer.addresses == ()  # the IN address sits where only a CH alias pointed
    assert answer.error_type == "dns.unexpected_class"


def test_an_answer_only_of_other_classes_says_so() -> None:
    answer = classify_message(_response((f"{Q}.", "CH", "A", "0.edge.test. 1")), Q, "A")
    assert answer.error_type == "dns.unexpected_class"
    assert "CH" in (answer.error_message or "")
    assert answer.addresses == ()


def test_owner_names_compare_case_insensitively() -> None:
    answer = classify_message(_response(("API.Example.TEST.", "IN", "CNAME", "C1.Edge.Test."),
                                        ("c1.EDGE.test.", "IN", "A", "127.0.0.7")), Q, "A")
    assert answer.error_type is None
    assert [a.address for a in answer.addresses] == ["127.0.0.7"]
    assert [n.lower() for n in answer.cname_chain] == [Q, "c1.edge.test"]


def test_the_first_of_two_targets_wins() -> None:
    """Two CNAMEs at one owner is illegal; the walk stays deterministic."""
    answer = classify_message(_response((f"{Q}.", "IN", "CNAME", "c1.edge.test."),
                                        (f"{Q}.", "IN", "CNAME", "c9.edge.test."),
                                        ("c1.edge.test.", "IN", "A", "127.0.0.7"),
                                        ("c9.edge.test.", "IN", "A", "127.0.0.9")), Q, "A")
    assert answer.cname_chain == (Q, "c1.edge.test")
    assert [a.address for a in answer.addresses] == ["127.0.0.7"]


def test_walk_chain_honours_a_smaller_limit() -> None:
    chain = walk_chain(_response(*_chain(5)).answer, dns.name.from_text(Q), max_links=2)
    assert chain.problem == "dns.cname_chain_too_long"
    assert len(chain.names) == 3
