"""``--webhook-client-ca``: the webhook server answers only callers whose client certificate that CA signed.

A real TLS server on 127.0.0.1 (kopf's, as the operator builds it) and a real client: no Kubernetes involved.
"""

from __future__ import annotations

import contextlib
import datetime
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from assay.controller.admission.server import _free_port, webhook_server
from assay.controller.admission.tls import build_self_signed
from assay.controller.main import parse_args

NOW = datetime.datetime.now(datetime.UTC)
REVIEW = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"uid": "u-1"}}


def _pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def client_ca_and_certificate(directory: Path) -> tuple[Path, Path, Path]:
    """A CA (ca.crt) and a client certificate it signed (client.crt, client.key): hack/kwok-cluster.sh's."""
    directory.mkdir()
    ca_key, client_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test-client-ca")])
    validity = {
        "not_valid_before": NOW - datetime.timedelta(minutes=5),
        "not_valid_after": NOW + datetime.timedelta(days=1),
    }
    ca = (
        x509.CertificateBuilder(issuer_name=ca_name, subject_name=ca_name, serial_number=1, **validity)
        .public_key(ca_key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    client = (
        x509.CertificateBuilder(
            issuer_name=ca_name,
            subject_name=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]),
            serial_number=2,
            **validity,
        )
        .public_key(client_key.public_key())
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = directory / "ca.crt", directory / "client.crt", directory / "client.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(client.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(_pem(client_key))
    return paths


async def allow(request: Any, **_: Any) -> dict[str, Any]:
    return {**REVIEW, "response": {"uid": request["request"]["uid"], "allowed": True}}


@contextlib.asynccontextmanager
async def serving(directory: Path, client_ca: Path | None) -> AsyncIterator[tuple[str, Path]]:
    """The operator's webhook server on 127.0.0.1: (its URL, its own certificate)."""
    serving_cert, serving_key = build_self_signed(["localhost"], NOW).write_to(directory)
    port = _free_port()
    configs = webhook_server(port, serving_cert, serving_key, client_ca=client_ca, addr="127.0.0.1")(allow)
    await anext(configs)  # listening
    try:
        yield f"https://localhost:{port}/assay-check", serving_cert
    finally:
        await configs.aclose()


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[str, Path, Path]]:
    """A server requiring certificates of one CA: (its URL, its own certificate, the client's directory)."""
    ca, _, _ = client_ca_and_certificate(tmp_path / "client")
    async with serving(tmp_path, ca) as (url, server_cert):
        yield url, server_cert, tmp_path / "client"


async def post(url: str, server_cert: Path, client: tuple[Path, Path] | None) -> dict[str, Any]:
    context = ssl.create_default_context(cafile=str(server_cert))
    if client is not None:
        context.load_cert_chain(*map(str, client))
    async with aiohttp.ClientSession() as session, session.post(url, json=REVIEW, ssl=context) as response:
        assert response.status == 200
        answer: dict[str, Any] = await response.json()
        return answer


async def test_a_caller_with_a_certificate_the_ca_signed_gets_the_answer(
    served: tuple[str, Path, Path],
) -> None:
    url, server_cert, client = served
    answer = await post(url, server_cert, (client / "client.crt", client / "client.key"))
    assert answer["response"] == {"uid": "u-1", "allowed": True}


async def test_a_caller_without_a_client_certificate_is_refused(served: tuple[str, Path, Path]) -> None:
    url, server_cert, _ = served
    with pytest.raises(aiohttp.ClientError):
        await post(url, server_cert, None)


async def test_a_caller_with_a_certificate_of_another_ca_is_refused(
    served: tuple[str, Path, Path], tmp_path: Path
) -> None:
    url, server_cert, _ = served
    _, other_cert, other_key = client_ca_and_certificate(tmp_path / "other")
    with pytest.raises(aiohttp.ClientError):
        await post(url, server_cert, (other_cert, other_key))


async def test_without_a_client_ca_any_caller_gets_the_answer(tmp_path: Path) -> None:
    """The default (a managed cluster's apiserver has no certificate to give): the NetworkPolicy's job."""
    async with serving(tmp_path, None) as (url, server_cert):
        answer = await post(url, server_cert, None)
    assert answer["response"]["allowed"] is True


def test_a_client_ca_is_refused_where_no_in_cluster_webhook_serves(tmp_path: Path) -> None:
    ca = tmp_path / "ca.crt"
    ca.write_text("PEM")
    for mode in ("none", "local"):
        with pytest.raises(SystemExit):
            parse_args(["--webhook", mode, "--webhook-client-ca", str(ca)])
    assert parse_args(["--webhook", "self-signed", "--webhook-client-ca", str(ca)]).webhook_client_ca == str(
        ca
    )


def test_a_missing_client_ca_file_is_refused_at_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        parse_args(["--webhook", "files", "--webhook-client-ca", str(tmp_path / "absent.crt")])
    assert "no such file" in capsys.readouterr().err
