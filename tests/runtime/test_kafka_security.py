"""TLS and SASL reach every Kafka client spanwatch opens (checked at the configuration level:
the development broker does not speak TLS, see ../shared/KAFKA-NOTES.md)."""

from __future__ import annotations

import datetime
import re
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from faust.auth import SASLCredentials, SSLCredentials
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

from spanwatch.pipeline.common.errors import ConfigError
from spanwatch.pipeline.config import KafkaSettings, Settings
from spanwatch.runtime.kafka import confluent_config, settings_config
from spanwatch.transport.app import create_app
from tests.support.paths import ROOT


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A throw-away CA and a client certificate it signed, as PEM files."""
    d = tmp_path_factory.mktemp("pki")
    now = datetime.datetime.now(datetime.UTC)

    def cert(
        subject: str,
        key: ec.EllipticCurvePrivateKey,
        issuer: str,
        signer: ec.EllipticCurvePrivateKey,
        ca: bool,
    ) -> x509.Certificate:
        return (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .sign(signer, hashes.SHA256())
        )

    ca_key, client_key = (
        ec.generate_private_key(ec.SECP256R1()),
        ec.generate_private_key(ec.SECP256R1()),
    )
    files = {"ca": d / "ca.pem", "cert": d / "client.pem", "key": d / "client.key"}
    files["ca"].write_bytes(
        cert("test-ca", ca_key, "test-ca", ca_key, True).public_bytes(serialization.Encoding.PEM)
    )
    files["cert"].write_bytes(
        cert("spanwatch", client_key, "test-ca", ca_key, False).public_bytes(
            serialization.Encoding.PEM
        )
    )
    files["key"].write_bytes(
        client_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"key-pass"),
        )
    )
    return files


def _settings(tmp_path: Path, **kafka: object) -> Settings:
    return Settings(
        kafka=KafkaSettings(bootstrap_servers="kafka-1:9093", **kafka),
        worker={"data_dir": tmp_path},
    )


def test_mutual_tls_reaches_librdkafka_and_faust(pki: dict[str, Path], tmp_path: Path) -> None:
    s = _settings(
        tmp_path,
        security_protocol="SSL",
        ssl_cafile=pki["ca"],
        ssl_certfile=pki["cert"],
        ssl_keyfile=pki["key"],
        ssl_key_password="key-pass",
    )
    for conf in (
        confluent_config(s.kafka),
        settings_config(s, "producer"),
        settings_config(s, "consumer"),
    ):
        assert conf["security.protocol"] == "SSL"
        assert conf["ssl.ca.location"] == str(pki["ca"])
        assert conf["ssl.certificate.location"] == str(pki["cert"])
        assert conf["ssl.key.location"] == str(pki["key"])
        assert conf["ssl.key.password"] == "key-pass"
        assert conf["ssl.endpoint.identification.algorithm"] == "https"
    app = create_app(s)
    creds = app.conf.broker_credentials
    assert isinstance(creds, SSLCredentials)
    auth = credentials_to_aiokafka_auth(creds, app.conf.ssl_context)  # what faust's
    assert auth["security_protocol"] == "SSL"  # consumers, producer and topic creation get
    ctx = auth["ssl_context"]
    assert isinstance(ctx, ssl.SSLContext) and ctx.check_hostname
    assert [c["subject"] for c in ctx.get_ca_certs()] == [((("commonName", "test-ca"),),)]


def test_sasl_over_tls_reaches_librdkafka_and_faust(pki: dict[str, Path], tmp_path: Path) -> None:
    s = _settings(
        tmp_path,
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="spanwatch",
        sasl_password="s3cret",
        ssl_cafile=pki["ca"],
        ssl_check_hostname=False,
    )
    conf = confluent_config(s.kafka)
    assert (
        conf["security.protocol"],
        conf["sasl.mechanism"],
        conf["sasl.username"],
        conf["sasl.password"],
    ) == ("SASL_SSL", "SCRAM-SHA-512", "spanwatch", "s3cret")
    assert conf["ssl.endpoint.identification.algorithm"] == "none"
    creds = create_app(s).conf.broker_credentials
    assert isinstance(creds, SASLCredentials)
    auth = credentials_to_aiokafka_auth(creds)
    assert auth["security_protocol"] == "SASL_SSL" and auth["sasl_mechanism"] == "SCRAM-SHA-512"
    assert auth["sasl_plain_password"] == "s3cret" and not auth["ssl_context"].check_hostname
    assert "s3cret" not in repr(s) and "s3cret" not in str(s.kafka)  # never in logs or repr


def test_plaintext_stays_plaintext(tmp_path: Path) -> None:
    s = _settings(tmp_path)
    assert create_app(s).conf.broker_credentials is None
    assert not any(k.startswith(("ssl.", "sasl.")) for k in confluent_config(s.kafka))


@pytest.mark.parametrize(
    ("kafka", "message"),
    [
        ({"security_protocol": "SASL_SSL"}, "needs sasl_mechanism"),
        ({"sasl_mechanism": "PLAIN"}, "needs security_protocol SASL_PLAINTEXT or SASL_SSL"),
        ({"ssl_cafile": "ca.pem"}, "use SSL or SASL_SSL"),
        ({"security_protocol": "SSL", "ssl_cafile": "/nonexistent/ca.pem"}, "no such file"),
    ],
)
def test_inconsistent_security_settings_are_refused(
    tmp_path: Path, kafka: dict[str, str], message: str
) -> None:
    from spanwatch.pipeline.config import load_settings

    cfg = tmp_path / "sw.yaml"
    cfg.write_text("kafka:\n" + "".join(f"  {k}: {v}\n" for k, v in kafka.items()))
    with pytest.raises(ConfigError, match=message):
        load_settings(cfg)


def test_every_kafka_client_is_built_from_the_deployment_settings() -> None:
    """A confluent-kafka client built anywhere but through spanwatch.runtime.kafka (or for the
    embedded development broker, which only listens on loopback) would miss TLS and SASL."""
    dev_broker_only = {
        "spanwatch/devtools/broker.py",
        "spanwatch/devtools/cluster.py",
        "spanwatch/devtools/demo.py",
        "spanwatch/devtools/bench.py",
        "spanwatch/devtools/bench_alerts.py",
        "spanwatch/devtools/bench_read.py",
    }
    ctor = re.compile(r"\b(Producer|Consumer|AdminClient)\((?!\))")
    offenders = []
    for path in sorted(
        [*ROOT.glob("spanwatch/**/*.py"), *ROOT.glob("agents/*.py"), *ROOT.glob("pipeline/**/*.py")]
    ):
        rel = path.relative_to(ROOT).as_posix()
        if rel in dev_broker_only or rel == "spanwatch/runtime/kafka.py":
            continue
        lines = path.read_text().splitlines()
        for n, line in enumerate(lines, 1):
            built_from = "\n".join(lines[max(0, n - 6) : n + 3])  # the statement and its setup
            if (
                ctor.search(line)
                and "class " not in line
                and "settings_config(" not in built_from
                and "confluent_config(" not in built_from
            ):
                offenders.append(f"{rel}:{n}: {line.strip()}")
    assert not offenders, offenders
