"""The client factory: credentials and TLS settings reach the client, and nowhere else."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from pipeline.config import ElasticsearchSettings, Secret
from pipeline.es.client import client_kwargs, make_async_client, make_client, redact_url


def test_api_key_in_id_colon_key_form_is_split_and_encoded_form_kept() -> None:
    split = client_kwargs(ElasticsearchSettings(url="https://es:9200",
                                                api_key=Secret("abc:s3cret")))
    assert split["api_key"] == ("abc", "s3cret") and "basic_auth" not in split
    encoded = client_kwargs(ElasticsearchSettings(url="https://es:9200",
                                                  api_key=Secret("YWJjOnMzY3JldA==")))
    assert encoded["api_key"] == "YWJjOnMzY3JldA=="


def test_basic_auth_ca_and_verification(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    ca = tmp_path / "ca.pem"
    kwargs = client_kwargs(ElasticsearchSettings(
        url="https://es:9200", username="edgewatch", password=Secret("pw"), ca_file=ca))
    assert kwargs["basic_auth"] == ("edgewatch", "pw")
    assert kwargs["ca_certs"] == str(ca) and kwargs["verify_certs"] is True
    with caplog.at_level(logging.WARNING):
        off = client_kwargs(ElasticsearchSettings(url="https://es:9200", verify_certs=False))
    assert off["verify_certs"] is False
    assert "verification to Elasticsearch is OFF" in caplog.text


def test_clients_do_not_show_secrets() -> None:
    settings = ElasticsearchSettings(url="http://127.0.0.1:9", api_key=Secret("id:topsecret"))
    assert "topsecret" not in repr(settings)
    client = make_client(settings)
    try:
        assert "topsecret" not in repr(client)
    finally:
        client.close()
    # Immediate transport retries: one for setup, none for the sink (it backs off itself).
    sync_client = make_client(settings)
    assert (sync_client._max_retries, make_async_client(settings)._max_retries) == (1, 0)
    sync_client.close()


def test_urls_lose_their_user_info_in_messages() -> None:
    assert redact_url("https://user:pw@es.example:9200/x") == "https://***@es.example:9200/x"
    assert redact_url("http://127.0.0.1:9200") == "http://127.0.0.1:9200"
