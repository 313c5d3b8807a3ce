"""The stock tritonclient (HTTP and gRPC) against Osprey over TLS and mutual TLS, with a CA made
here (the `cryptography` package) and the server started with --tls-cert/--tls-key[/--tls-client-ca].
"""

import datetime
import ipaddress
import os
import signal
import ssl
import subprocess
import time
import urllib.request

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from conftest import BIN, MODELS, READY_TIMEOUT_S, OspreyServer


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(subject, issuer, key, issuer_key, *, ca=False, sans=()):
    now = datetime.datetime.now(datetime.timezone.utc)
    b = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
    return b.sign(issuer_key, hashes.SHA256())


def _write(path, *objs):
    with open(path, "wb") as f:
        for o in objs:
            if isinstance(o, x509.Certificate):
                f.write(o.public_bytes(serialization.Encoding.PEM))
            else:
                f.write(o.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()))
    return str(path)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert("osprey test CA", "osprey test CA", ca_key, ca_key, ca=True)
    srv_key = ec.generate_private_key(ec.SECP256R1())
    srv = _cert("localhost", "osprey test CA", srv_key, ca_key,
                sans=[x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    cli_key = ec.generate_private_key(ec.SECP256R1())
    cli = _cert("client", "osprey test CA", cli_key, ca_key)
    return {
        "ca": _write(d / "ca.pem", ca),
        "cert": _write(d / "server.pem", srv),
        "key": _write(d / "server.key", srv_key),
        "client_cert": _write(d / "client.pem", cli),
        "client_key": _write(d / "client.key", cli_key),
    }


def _start(extra, pki, client_cert=False):
    env = dict(os.environ, NO_COLOR="1")
    env.pop("RUST_LOG", None)
    proc = subprocess.Popen(
        [str(BIN), "serve", "--model-repository", str(MODELS), "--model", "mlp",
         "--address", "127.0.0.1", "--http-port", "0", "--grpc-port", "0", "--metrics-port", "0",
         "--tls-cert", pki["cert"], "--tls-key", pki["key"], *extra],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
    )
    srv = OspreyServer(proc)
    deadline = time.monotonic() + READY_TIMEOUT_S
    srv.wait_ports(deadline)
    ctx = ssl.create_default_context(cafile=pki["ca"])
    if client_cert:
        ctx.load_cert_chain(pki["client_cert"], pki["client_key"])
    last = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"https://{srv.http_url}/v2/health/ready", context=ctx,
                                        timeout=2) as r:
                if r.status == 200:
                    return srv
        except OSError as e:
            last = e
        time.sleep(0.1)  # bounded polling interval while the model loads
    proc.kill()
    raise TimeoutError(f"TLS server not ready: {last}\n" + srv.log_text())


def _stop(srv):
    srv.proc.send_signal(signal.SIGTERM)
    assert srv.proc.wait(timeout=30) == 0, srv.log_text()


def _infer(client, mod):
    x = np.linspace(0, 1, 64, dtype=np.float32).reshape(1, 64)
    inp = mod.InferInput("input", [1, 64], "FP32")
    inp.set_data_from_numpy(x)
    out = client.infer("mlp", [inp]).as_numpy("output")
    assert out.shape == (1, 10)


def test_stock_clients_over_tls(pki):
    srv = _start([], pki)
    try:
        h = httpclient.InferenceServerClient(srv.http_url, ssl=True,
                                             ssl_options={"ca_certs": pki["ca"]})
        assert h.is_server_ready()
        _infer(h, httpclient)
        g = grpcclient.InferenceServerClient(
            srv.grpc_url, ssl=True, root_certificates=pki["ca"],
            channel_args=[("grpc.ssl_target_name_override", "localhost")])
        assert g.is_server_live()
        _infer(g, grpcclient)
        # A client that does not trust the CA is refused by its own TLS layer.
        with pytest.raises(Exception):
            httpclient.InferenceServerClient(srv.http_url, ssl=True).is_server_ready()
    finally:
        _stop(srv)


def test_stock_clients_over_mutual_tls(pki):
    srv = _start(["--tls-client-ca", pki["ca"]], pki, client_cert=True)
    try:
        with pytest.raises(Exception):
            httpclient.InferenceServerClient(srv.http_url, ssl=True,
                                             ssl_options={"ca_certs": pki["ca"]}).is_server_ready()
        h = httpclient.InferenceServerClient(
            srv.http_url, ssl=True,
            ssl_options={"ca_certs": pki["ca"], "certfile": pki["client_cert"],
                         "keyfile": pki["client_key"]})
        _infer(h, httpclient)
        g = grpcclient.InferenceServerClient(
            srv.grpc_url, ssl=True, root_certificates=pki["ca"], private_key=pki["client_key"],
            certificate_chain=pki["client_cert"],
            channel_args=[("grpc.ssl_target_name_override", "localhost")])
        _infer(g, grpcclient)
    finally:
        _stop(srv)
