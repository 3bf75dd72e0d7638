"""Real registries for the image tests: Debian's docker-registry on 127.0.0.1, optionally
behind a token-auth challenge served by `TokenServer` (a small docker-token/OAuth2 endpoint
that also does ACR's Entra exchange), and a base image pushed with plain HTTP calls."""

from __future__ import annotations

import base64
import datetime
import gzip
import hashlib
import http.client
import io
import json
import shutil
import socket
import subprocess
import tarfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import jwt
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

SERVICE = "aksflight-test-registry"
ISSUER = "aksflight-test-issuer"
ENTRA_TOKEN = "entra-access-token-for-tests"
REGISTRY_BINARY = shutil.which("docker-registry")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class TokenServer:
    """Issues registry tokens (ES256, x5c) for users; records what it was asked."""

    users: dict[str, str] = field(default_factory=lambda: {"alice": "wonderland"})
    refresh_tokens: dict[str, str] = field(default_factory=dict)
    requests: list[tuple[str, str, dict[str, list[str]]]] = field(default_factory=list)
    port: int = 0

    def __post_init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "aksflight test token issuer")])
        now = datetime.datetime.now(datetime.UTC)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        self._server: ThreadingHTTPServer | None = None

    @property
    def realm(self) -> str:
        return f"http://127.0.0.1:{self.port}/oauth2/token"

    def write_bundle(self, path: Path) -> Path:
        path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        return path

    def issue(self, subject: str, scopes: list[str]) -> str:
        access = []
        for scope in scopes:
            for part in scope.split():
                kind, _, rest = part.partition(":")
                repo, _, actions = rest.rpartition(":")
                access.append({"type": kind, "name": repo, "actions": actions.split(",")})
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "sub": subject,
            "aud": SERVICE,
            "exp": now + 300,
            "nbf": now - 10,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": access,
        }
        der = self.cert.public_bytes(serialization.Encoding.DER)
        headers = {"x5c": [base64.b64encode(der).decode()]}
        return jwt.encode(claims, self.key, algorithm="ES256", headers=headers)

    def start(self) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _basic_user(self) -> str | None:
                header = self.headers.get("Authorization", "")
                if not header.startswith("Basic "):
                    return ""
                user, _, password = base64.b64decode(header[6:]).decode().partition(":")
                return user if owner.users.get(user) == password else None

            def do_GET(self) -> None:
                url = urlparse(self.path)
                query = parse_qs(url.query)
                owner.requests.append(("GET", url.path, query))
                user = self._basic_user()
                if user is None or not user:
                    self._answer(401, {"details": "bad or no credentials"})
                    return
                self._answer(200, {"token": owner.issue(user, query.get("scope", []))})

            def do_POST(self) -> None:
                url = urlparse(self.path)
                length = int(self.headers.get("Content-Length", "0"))
                form = parse_qs(self.rfile.read(length).decode())
                owner.requests.append(("POST", url.path, form))
                grant = form.get("grant_type", [""])[0]
                if url.path == "/oauth2/exchange":
                    if grant != "access_token" or form.get("access_token") != [ENTRA_TOKEN]:
                        self._answer(401, {"error": "bad entra token"})
                        return
                    refresh = uuid.uuid4().hex
                    owner.refresh_tokens[refresh] = "entra-user"
                    self._answer(200, {"refresh_token": refresh})
                    return
                if grant == "refresh_token":
                    subject = owner.refresh_tokens.get(form.get("refresh_token", [""])[0])
                    if subject is None:
                        self._answer(401, {"error": "unknown refresh token"})
                        return
                    scopes = form.get("scope", [""])[0].split()
                    self._answer(200, {"access_token": owner.issue(subject, scopes)})
                    return
                self._answer(400, {"error": "unsupported grant"})

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


@dataclass
class RegistryProcess:
    host: str
    root: Path
    process: subprocess.Popen[bytes]

    def url(self, path: str) -> str:
        return f"http://{self.host}{path}"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_registry(folder: Path, token: TokenServer | None = None) -> RegistryProcess:
    """A docker-registry on a free 127.0.0.1 port with filesystem storage in `folder`."""
    assert REGISTRY_BINARY is not None
    folder.mkdir(parents=True, exist_ok=True)
    for _ in range(5):
        port = free_port()
        config: dict[str, Any] = {
            "version": 0.1,
            "log": {"level": "error", "accesslog": {"disabled": True}},
            "storage": {
                "filesystem": {"rootdirectory": str(folder / "data")},
                "delete": {"enabled": True},
            },
            "http": {"addr": f"127.0.0.1:{port}", "secret": "test-upload-state-secret"},
        }
        if token is not None:
            config["auth"] = {
                "token": {
                    "realm": token.realm,
                    "service": SERVICE,
                    "issuer": ISSUER,
                    "rootcertbundle": str(token.write_bundle(folder / "token-cert.pem")),
                }
            }
        (folder / "config.yml").write_text(yaml.safe_dump(config))
        log = (folder / "registry.log").open("wb")
        process = subprocess.Popen(
            [REGISTRY_BINARY, "serve", str(folder / "config.yml")],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        handle = RegistryProcess(f"127.0.0.1:{port}", folder, process)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and process.poll() is None:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            try:
                connection.request("GET", "/v2/")
                if connection.getresponse().status in (200, 401):
                    return handle
            except OSError:
                time.sleep(0.005)
            finally:
                connection.close()
        handle.stop()
    raise RuntimeError(f"docker-registry did not start: {(folder / 'registry.log').read_text()}")


# --- a base image made here: a tiny root filesystem -------------------------------------


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def rootfs_layer(files: dict[str, bytes]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755 if name.startswith("bin/") else 0o644
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


@dataclass(frozen=True)
class BaseImageBlobs:
    manifest: bytes
    config: bytes
    layer: bytes
    media_type: str


def make_base_image(
    architecture: str = "amd64", python_version: str | None = "3.11.9", marker: str = "base"
) -> BaseImageBlobs:
    layer = rootfs_layer(
        {
            "etc/os-release": f'NAME="tiny {marker}"\n'.encode(),
            "bin/hello": b"#!/bin/sh\necho hello\n",
        }
    )
    uncompressed = gzip.decompress(layer)
    env = ["PATH=/usr/local/bin:/usr/bin:/bin"]
    if python_version:
        env.append(f"PYTHON_VERSION={python_version}")
    config = json.dumps(
        {
            "architecture": architecture,
            "os": "linux",
            "config": {"Env": env, "Cmd": ["python3"], "Labels": {"base.marker": marker}},
            "rootfs": {"type": "layers", "diff_ids": [_sha(uncompressed)]},
            "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "test base"}],
        }
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": _sha(config),
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": _sha(layer),
                    "size": len(layer),
                }
            ],
        }
    ).encode()
    return BaseImageBlobs(manifest, config, layer, "application/vnd.oci.image.manifest.v1+json")


def push_raw(
    client: httpx.Client,
    base_url: str,
    repository: str,
    reference: str,
    blobs: list[bytes],
    manifest: bytes,
    media_type: str,
) -> str:
    """Monolithic uploads and a manifest PUT with plain httpx (independent of the code
    under test)."""
    for blob in blobs:
        started = client.post(f"{base_url}/v2/{repository}/blobs/uploads/")
        assert started.status_code == 202, started.text
        location = httpx.URL(base_url).join(started.headers["location"])
        sep = "&" if "?" in str(location) else "?"
        done = client.put(
            f"{location}{sep}digest={_sha(blob)}",
            content=blob,
            headers={"Content-Type": "application/octet-stream"},
        )
        assert done.status_code == 201, done.text
    put = client.put(
        f"{base_url}/v2/{repository}/manifests/{reference}",
        content=manifest,
        headers={"Content-Type": media_type},
    )
    assert put.status_code == 201, put.text
    return _sha(manifest)


def push_base(
    client: httpx.Client, base_url: str, repository: str, tag: str, image: BaseImageBlobs
) -> str:
    return push_raw(
        client,
        base_url,
        repository,
        tag,
        [image.config, image.layer],
        image.manifest,
        image.media_type,
    )


def push_index(
    client: httpx.Client,
    base_url: str,
    repository: str,
    tag: str,
    images: dict[str, BaseImageBlobs],
) -> str:
    """Each platform's image by digest, then an OCI index over them under `tag`."""
    entries = []
    for platform, image in images.items():
        digest = push_raw(
            client,
            base_url,
            repository,
            _sha(image.manifest),
            [image.config, image.layer],
            image.manifest,
            image.media_type,
        )
        os_name, arch = platform.split("/")
        entries.append(
            {
                "mediaType": image.media_type,
                "digest": digest,
                "size": len(image.manifest),
                "platform": {"os": os_name, "architecture": arch},
            }
        )
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": entries,
        }
    ).encode()
    return push_raw(
        client, base_url, repository, tag, [], index, "application/vnd.oci.image.index.v1+json"
    )


def unpack_layers(layers: Iterator[bytes] | list[bytes], into: Path) -> None:
    """Apply gzip'd tar layers in order (later files replace earlier ones)."""
    for blob in layers:
        with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tar:
            tar.extractall(into, filter="tar")
