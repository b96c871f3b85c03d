"""The ``tls=`` argument (SPEC 1.1): what reaches the native layer for
``True``, a ``TLSConfig`` and an ``ssl.SSLContext``, and the settings an
``SSLContext`` holds that cannot be honoured (errors, never ignored)."""

from __future__ import annotations

import shutil
import ssl
import subprocess
import warnings
from pathlib import Path

import pytest
from zmqtt import MQTTClient, TLSConfig
from zmqtt._options import TlsOptions, tls_options


def _options(tls: object) -> TlsOptions | None:
    MQTTClient("h", tls=tls)  # type: ignore[arg-type]
    from unit_pure import fake_native

    return fake_native.clients[-1].options.tls


@pytest.fixture(scope="module")
def private_ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A self-signed CA certificate that no system store holds."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a private CA")
    directory = tmp_path_factory.mktemp("ca")
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            str(directory / "ca.key"),
            "-out",
            str(directory / "ca.pem"),
            "-days",
            "2",
            "-subj",
            "/CN=zmqtt unit test CA",
        ],
        check=True,
        capture_output=True,
    )
    return directory / "ca.pem"


def _der(pem_path: Path) -> bytes:
    return ssl.PEM_cert_to_DER_cert(pem_path.read_text())


def _pem_ders(pem: bytes | None) -> list[bytes]:
    assert pem is not None
    text = pem.decode("ascii")
    marker = "-----END CERTIFICATE-----"
    return [
        ssl.PEM_cert_to_DER_cert(part + marker + "\n")
        for part in text.split(marker)
        if part.strip()
    ]


def test_false_and_none_mean_plain_tcp() -> None:
    assert _options(False) is None
    assert _options(None) is None


def test_true_means_verified_against_the_system_roots() -> None:
    assert _options(True) == TlsOptions(use_system_roots=True)


def test_tls_config_is_carried_over_as_plain_data(tmp_path: Path) -> None:
    config = TLSConfig(
        ca_file=tmp_path / "ca.pem",
        ca_pem="-----BEGIN CERTIFICATE-----\n",
        cert_file=str(tmp_path / "client.pem"),
        key_file=tmp_path / "client.key",
        server_name="broker.internal",
        alpn=["mqtt", "x-amzn-mqtt-ca"],
        use_system_roots=True,
        min_version=ssl.TLSVersion.TLSv1_3,
    )
    assert _options(config) == TlsOptions(
        ca_file=str(tmp_path / "ca.pem"),
        ca_pem=b"-----BEGIN CERTIFICATE-----\n",
        cert_file=str(tmp_path / "client.pem"),
        key_file=str(tmp_path / "client.key"),
        server_name="broker.internal",
        alpn=(b"mqtt", b"x-amzn-mqtt-ca"),
        use_system_roots=True,
        min_version="1.3",
        verify_certificates=True,
        check_hostname=True,
    )


def test_skipping_verification_is_an_explicit_opt_in() -> None:
    assert TLSConfig().insecure_skip_verify is False
    options = _options(TLSConfig(insecure_skip_verify=True))
    assert options is not None
    assert options.verify_certificates is False
    assert options.check_hostname is False

    options = _options(TLSConfig(check_hostname=False))
    assert options is not None
    assert options.verify_certificates is True
    assert options.check_hostname is False


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"key_file": "k.pem"}, ValueError, "key_file requires cert_file"),
        ({"alpn": "mqtt"}, TypeError, "alpn must be a sequence"),
        ({"alpn": [""]}, ValueError, "1 to 255 bytes"),
        ({"server_name": ""}, ValueError, "server_name"),
        ({"min_version": ssl.TLSVersion.TLSv1_1}, ValueError, "TLS 1.2 and 1.3"),
        ({"ca_file": 42}, TypeError, "ca_file must be a path"),
    ],
)
def test_tls_config_refuses_what_cannot_work(
    kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        TLSConfig(**kwargs)  # type: ignore[arg-type]


def test_default_ssl_context_trusts_the_system_roots() -> None:
    options = _options(ssl.create_default_context())
    assert options is not None
    assert options.use_system_roots is True
    assert options.ca_pem is None
    assert options.verify_certificates is True
    assert options.check_hostname is True
    assert options.min_version == "1.2"


def test_ssl_context_with_a_private_ca_trusts_only_that_ca(private_ca: Path) -> None:
    context = ssl.create_default_context(cafile=str(private_ca))

    options = _options(context)
    assert options is not None
    assert options.use_system_roots is False
    assert _pem_ders(options.ca_pem) == [_der(private_ca)]


def test_ssl_context_with_system_roots_and_a_private_ca_keeps_both(
    private_ca: Path,
) -> None:
    context = ssl.create_default_context()
    if not context.get_ca_certs():
        pytest.skip("this platform loads its CA certificates lazily")
    context.load_verify_locations(cafile=str(private_ca))

    options = _options(context)
    assert options is not None
    assert options.use_system_roots is True
    assert _pem_ders(options.ca_pem) == [_der(private_ca)]


def test_ssl_context_verification_switches_are_carried_over() -> None:
    no_hostname = ssl.create_default_context()
    no_hostname.check_hostname = False
    options = _options(no_hostname)
    assert options is not None
    assert (options.verify_certificates, options.check_hostname) == (True, False)

    unverified = ssl.create_default_context()
    unverified.check_hostname = False
    unverified.verify_mode = ssl.CERT_NONE
    options = _options(unverified)
    assert options is not None
    assert (options.verify_certificates, options.check_hostname) == (False, False)


def test_ssl_context_minimum_version_is_carried_over() -> None:
    context = ssl.create_default_context()
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    options = _options(context)
    assert options is not None
    assert options.min_version == "1.3"


def test_ssl_context_settings_that_cannot_be_honoured_are_errors() -> None:
    capped = ssl.create_default_context()
    capped.maximum_version = ssl.TLSVersion.TLSv1_2
    with pytest.raises(ValueError, match="maximum_version TLSv1_2 cannot be honoured"):
        tls_options(capped)

    crl = ssl.create_default_context()
    crl.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
    with pytest.raises(ValueError, match="VERIFY_CRL_CHECK_LEAF"):
        tls_options(crl)

    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with pytest.raises(ValueError, match="create a client context"):
        tls_options(server)

    legacy = ssl.create_default_context()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        legacy.minimum_version = ssl.TLSVersion.TLSv1_1
    with pytest.raises(ValueError, match="minimum_version TLSv1_1 cannot be honoured"):
        tls_options(legacy)
