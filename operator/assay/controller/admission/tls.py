"""TLS for the validating webhook: a self-signed certificate the operator manages, shared by every replica.

The apiserver calls the webhook through the ``assay-webhook`` Service, which balances over all replicas, so
every replica must serve the *same* certificate, and the ValidatingWebhookConfiguration must carry it as its
``caBundle``. At start-up each replica calls :func:`ensure_serving_secret`: the first one creates a Secret
holding a fresh self-signed certificate (create is atomic: a loser of the race reads the winner's), later
ones read it; a certificate that is missing names or close to expiry is replaced. :func:`inject_ca_bundle`
then writes the certificate into the webhook configuration (the only field the operator changes there,
and one the manifests leave out, so GitOps tools see no drift).

With cert-manager (manifests/overlays/cert-manager) none of this runs: the certificate comes mounted from
a cert-manager Secret and cert-manager injects the caBundle.
"""

from __future__ import annotations

import base64
import datetime
import logging
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

logger = logging.getLogger(__name__)

CERTIFICATE_VALIDITY = datetime.timedelta(days=3650)
# Replace a certificate this long before it expires (operators restart far more often than that).
RENEW_BEFORE = datetime.timedelta(days=30)


@dataclass(frozen=True)
class ServingCertificate:
    cert_pem: bytes
    key_pem: bytes

    def write_to(self, directory: Path | None = None) -> tuple[Path, Path]:
        """Write ``tls.crt``/``tls.key`` (the key readable by this user only) for kopf's WebhookServer."""
        directory = Path(tempfile.mkdtemp(prefix="assay-webhook-")) if directory is None else directory
        cert_path, key_path = directory / "tls.crt", directory / "tls.key"
        cert_path.write_bytes(self.cert_pem)
        key_path.touch(mode=0o600)
        key_path.write_bytes(self.key_pem)
        return cert_path, key_path


def service_dns_names(service: str, namespace: str) -> list[str]:
    """The names the apiserver may use for a Service: it uses ``<service>.<namespace>.svc``."""
    return [
        service,
        f"{service}.{namespace}",
        f"{service}.{namespace}.svc",
        f"{service}.{namespace}.svc.cluster.local",
    ]


def build_self_signed(dns_names: Sequence[str], now: datetime.datetime) -> ServingCertificate:
    """A certificate for ``dns_names`` that is its own CA (so it doubles as the webhook's caBundle)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns_names[0])])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))  # tolerate clocks slightly behind ours
        .not_valid_after(now + CERTIFICATE_VALIDITY)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in dns_names]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_encipherment=False,
                key_cert_sign=True,
                content_commitment=False,
                data_encipherment=False,
                key_agreement=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return ServingCertificate(cert.public_bytes(serialization.Encoding.PEM), key_pem)


def needs_replacement(cert_pem: bytes, dns_names: Sequence[str], now: datetime.datetime) -> str | None:
    """Why a stored certificate cannot serve ``dns_names`` until well after ``now``; None if it can."""
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
    except ValueError:
        return "the stored certificate is not valid PEM"
    if cert.not_valid_after_utc - RENEW_BEFORE < now:
        return f"the certificate expires at {cert.not_valid_after_utc.isoformat()}"
    try:
        names = set(
            cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
                x509.DNSName
            )
        )
    except x509.ExtensionNotFound:
        names = set()
    missing = sorted(set(dns_names) - names)
    return f"the certificate lacks the names {missing}" if missing else None


def _secret_body(
    name: str, certificate: ServingCertificate, resource_version: str | None = None
) -> client.V1Secret:
    return client.V1Secret(
        metadata=client.V1ObjectMeta(
            name=name,
            resource_version=resource_version,
            labels={"app.kubernetes.io/name": "assay", "app.kubernetes.io/component": "webhook"},
        ),
        type="kubernetes.io/tls",
        data={
            "tls.crt": base64.b64encode(certificate.cert_pem).decode(),
            "tls.key": base64.b64encode(certificate.key_pem).decode(),
        },
    )


async def ensure_serving_secret(
    core: client.CoreV1Api, *, namespace: str, name: str, dns_names: Sequence[str]
) -> ServingCertificate:
    """Read the shared serving certificate from Secret ``namespace/name``; create or renew it if needed."""
    now = datetime.datetime.now(datetime.UTC)
    for _ in range(3):  # a lost race (create or replace) is retried with what the winner wrote
        try:
            secret = await core.read_namespaced_secret(name, namespace)
        except ApiException as exc:
            if exc.status != 404:
                raise
            fresh = build_self_signed(dns_names, now)
            try:
                await core.create_namespaced_secret(namespace, _secret_body(name, fresh))
                logger.info("Created the webhook's self-signed certificate in Secret %s/%s", namespace, name)
                return fresh
            except ApiException as create_exc:
                if create_exc.status != 409:
                    raise
                continue
        data = secret.data or {}
        stored = ServingCertificate(
            base64.b64decode(data.get("tls.crt", "")), base64.b64decode(data.get("tls.key", ""))
        )
        problem = needs_replacement(stored.cert_pem, dns_names, now)
        if problem is None and stored.key_pem:
            return stored
        logger.warning("Replacing the webhook certificate in Secret %s/%s: %s", namespace, name, problem)
        fresh = build_self_signed(dns_names, now)
        try:
            await core.replace_namespaced_secret(
                name, namespace, _secret_body(name, fresh, secret.metadata.resource_version)
            )
            return fresh
        except ApiException as replace_exc:
            if replace_exc.status != 409:
                raise
    raise RuntimeError(f"could not settle the webhook certificate in Secret {namespace}/{name} after 3 tries")


async def inject_ca_bundle(
    admission: client.AdmissionregistrationV1Api, *, configuration: str, ca_pem: bytes
) -> bool:
    """Set ``caBundle`` on every webhook of a ValidatingWebhookConfiguration; True if anything changed."""
    current = await admission.read_validating_webhook_configuration(configuration)
    bundle = base64.b64encode(ca_pem).decode()
    webhooks = current.webhooks or []
    if all(w.client_config.ca_bundle == bundle for w in webhooks):
        return False
    # A JSON patch per index: a strategic merge of the list would need every webhook's full body.
    patch = [
        {
            "op": "replace" if w.client_config.ca_bundle else "add",
            "path": f"/webhooks/{i}/clientConfig/caBundle",
            "value": bundle,
        }
        for i, w in enumerate(webhooks)
    ]
    await admission.patch_validating_webhook_configuration(configuration, patch)
    logger.info("Injected the webhook certificate into ValidatingWebhookConfiguration %s", configuration)
    return True
