"""``FakeKube``: the server, its store and controllers, started on 127.0.0.1 in a thread."""

from __future__ import annotations

import threading
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml
from kubernetes import client

from .api import Api
from .controllers import Controllers
from .errors import FakeKubeError
from .hooks import AccessPolicy, Faults, PodLogs, RequestLog
from .resources import KUBERNETES_VERSION, Registry
from .schema import schemas_for
from .server import Handler, _Server
from .store import Store

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


class FakeKube:
    """A strict fake Kubernetes API server for tests.

    ``controllers`` runs the Deployment, ReplicaSet, Job, Pod and Endpoints simulation;
    ``nodes`` is how many Ready nodes the cluster starts with."""

    def __init__(
        self,
        *,
        controllers: bool = True,
        nodes: int = 1,
        require_namespaces: bool = True,
        kubernetes_version: str = KUBERNETES_VERSION,
    ) -> None:
        self.registry = Registry()
        self.schemas = schemas_for(kubernetes_version)
        self.store = Store(self.registry)
        self.api = Api(self.store, self.registry, self.schemas)
        self.api.require_namespaces = require_namespaces
        self.requests = RequestLog()
        self.faults = Faults()
        self.access = AccessPolicy()
        self.logs = PodLogs()
        self.internal_errors: list[str] = []
        self.controllers = Controllers(self.api, self.logs, enabled=controllers)
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        self.kubeconfig_path: Path | None = None
        self.host = "127.0.0.1"
        self.port = 0
        for ns in SYSTEM_NAMESPACES:
            self.api.create(self.registry.resolve("namespaces"), {"metadata": {"name": ns}})
        for i in range(nodes):
            self.controllers.add_node(f"node-{i + 1}")

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> FakeKube:
        if self._httpd is not None:
            raise FakeKubeError("the fake API server is already running")
        self._httpd = _Server((self.host, 0), Handler)
        self._httpd.fake = self
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fakekube",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.store.close()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None

    def __enter__(self) -> FakeKube:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- clients -----------------------------------------------------------------

    def configuration(self) -> client.Configuration:
        """A client Configuration for this server (plain HTTP, no credentials)."""
        configuration = client.Configuration()
        configuration.host = self.url
        return configuration

    def api_client(self) -> client.ApiClient:
        return client.ApiClient(self.configuration())

    def kubeconfig(self) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "fakekube", "cluster": {"server": self.url}}],
            "users": [{"name": "fake-user", "user": {"token": "fake-token"}}],
            "contexts": [
                {
                    "name": "fakekube",
                    "context": {"cluster": "fakekube", "user": "fake-user", "namespace": "default"},
                }
            ],
            "current-context": "fakekube",
        }

    def write_kubeconfig(self, path: Path) -> Path:
        """Write a kubeconfig naming this server and return its path."""
        path.write_text(yaml.safe_dump(self.kubeconfig()))
        self.kubeconfig_path = path
        return path
