"""The webhook's self-signed certificate: serves the Service's names, is its own CA, is renewed in time."""

from __future__ import annotations

import datetime
import ssl
from pathlib import Path

from cryptography import x509

from assay.controller.admission.tls import (
    CERTIFICATE_VALIDITY,
    RENEW_BEFORE,
    build_self_signed,
    needs_replacement,
    service_dns_names,
)

NOW = datetime.datetime(2026, 11, 26, tzinfo=datetime.UTC)
NAMES = service_dns_names("assay-webhook", "assay-system")


def test_the_service_name_the_apiserver_uses_is_covered() -> None:
    assert "assay-webhook.assay-system.svc" in NAMES


def test_a_fresh_certificate_serves_every_name_and_is_its_own_ca() -> None:
    certificate = build_self_signed(NAMES, NOW)
    cert = x509.load_pem_x509_certificate(certificate.cert_pem)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(sans.get_values_for_type(x509.DNSName)) == set(NAMES)
    assert cert.issuer == cert.subject
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert needs_replacement(certificate.cert_pem, NAMES, NOW) is None


def test_the_pair_loads_into_a_tls_server_context(tmp_path: Path) -> None:
    """What kopf's WebhookServer does with the files; a mismatched key would raise here."""
    cert_path, key_path = build_self_signed(NAMES, NOW).write_to(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    assert key_path.stat().st_mode & 0o077 == 0


def test_a_certificate_close_to_expiry_is_replaced() -> None:
    certificate = build_self_signed(NAMES, NOW)
    later = NOW + CERTIFICATE_VALIDITY - RENEW_BEFORE + datetime.timedelta(days=1)
    assert "expires" in (needs_replacement(certificate.cert_pem, NAMES, later) or "")


def test_a_certificate_for_another_service_is_replaced() -> None:
    certificate = build_self_signed(service_dns_names("old-name", "assay-system"), NOW)
    assert "lacks the names" in (needs_replacement(certificate.cert_pem, NAMES, NOW) or "")


def test_garbage_is_replaced() -> None:
    assert needs_replacement(b"not a certificate", NAMES, NOW) == "the stored certificate is not valid PEM"


def test_the_apiserver_would_trust_the_webhook(tmp_path: Path) -> None:
    """A TLS client that trusts only the caBundle (the certificate itself) and checks the Service's name,
    as the apiserver does, completes a handshake with a server using the pair."""
    import socket
    import threading

    certificate = build_self_signed(NAMES, NOW)
    cert_path, key_path = certificate.write_to(tmp_path)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert_path, key_path)
    client_context = ssl.create_default_context(cadata=certificate.cert_pem.decode())

    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]

        def serve_one() -> None:
            connection, _ = listener.accept()
            with server_context.wrap_socket(connection, server_side=True) as tls:
                tls.sendall(b"ok")

        thread = threading.Thread(target=serve_one, daemon=True)
        thread.start()
        with (
            socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
            client_context.wrap_socket(raw, server_hostname="assay-webhook.assay-system.svc") as tls,
        ):
            assert tls.recv(2) == b"ok"
        thread.join(timeout=5)
