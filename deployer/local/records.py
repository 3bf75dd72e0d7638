"""A local service's record (its release, keys, environment), and the router configuration
the deployer writes from all records."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deployer._files import read_json, write_json_atomic
from deployer.config import DeploymentConfiguration, parse_deployment_config
from deployer.credentials import TOKEN_ISSUER, SigningKey
from deployer.local.layout import Layout

if TYPE_CHECKING:
    from router.config import KeyAuth, NoAuth, RouterConfig, ServiceConfig, TokenAuth

# The router's schema is imported where it is used: a cold deploy starts the router first
# and imports the schema while the router process starts (they overlap).

ROUTER_HOST = "127.0.0.1"
RELOAD_SECONDS = 0.2
# The replica writes its pid (for the supervisor's sweep) and sends its output to a log.
REPLICA_WRAPPER = 'echo $$ > "$1"; log="$2"; shift 2; exec "$@" >>"$log" 2>&1'


@dataclass
class ServiceRecord:
    """Everything the local target knows about one service; written atomically, 0600."""

    name: str
    digest: str
    release: str
    entry_script: str
    model_dir: str
    python: str
    env_hash: str
    auth: str
    deploy_config: dict[str, Any]
    models: list[dict[str, Any]]
    requirements: list[str]
    image: str | None = None
    keys: list[str] | None = None
    signing_key: dict[str, str] | None = None
    created: float = 0.0
    updated: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def config(self) -> DeploymentConfiguration:
        return parse_deployment_config(self.deploy_config, f"record of {self.name}")

    @property
    def key_pair(self) -> tuple[str, str] | None:
        return (self.keys[0], self.keys[1]) if self.keys else None

    @property
    def signer(self) -> SigningKey | None:
        if not self.signing_key:
            return None
        return SigningKey(self.signing_key["private_pem"], self.signing_key["public_pem"])

    def save(self, layout: Layout) -> None:
        write_json_atomic(layout.record(self.name), asdict(self), mode=0o600)

    @classmethod
    def load(cls, layout: Layout, name: str) -> ServiceRecord | None:
        data = read_json(layout.record(name))
        if not isinstance(data, dict):
            return None
        try:
            return cls(**data)
        except TypeError:
            return None


def all_records(layout: Layout) -> list[ServiceRecord]:
    if not layout.services.is_dir():
        return []
    found = (ServiceRecord.load(layout, path.name) for path in sorted(layout.services.iterdir()))
    return [record for record in found if record is not None]


def _auth(record: ServiceRecord) -> KeyAuth | TokenAuth | NoAuth:
    from router.config import KeyAuth, NoAuth, TokenAuth

    if record.auth == "key" and record.key_pair:
        primary, secondary = record.key_pair
        return KeyAuth(primary_key=primary, secondary_key=secondary)
    signer = record.signer
    if record.auth == "token" and signer is not None:
        return TokenAuth(issuer=TOKEN_ISSUER, public_keys=[signer.public_pem])
    return NoAuth()


def service_config(layout: Layout, record: ServiceRecord) -> ServiceConfig:
    from router.config import (
        AutoscaleConfig,
        DataCollectionConfig,
        LocalProcessScaling,
        ServiceConfig,
    )

    config = record.config
    home = layout.service(record.name)
    release = Path(record.release)
    app_root = release / "app"
    python = Path(record.python)
    command = [
        "/bin/sh",
        "-c",
        REPLICA_WRAPPER,
        "replica",
        str(home / "run" / "replica-{port}.pid"),
        str(home / "logs" / "replica-{port}.log"),
        str(python),
        "-m",
        "azureml_inference_server_http",
        "--entry_script",
        record.entry_script,
        "--port",
        "{port}",
    ]
    env = {
        "AZUREML_MODEL_DIR": record.model_dir,
        "AZUREML_ENTRY_SCRIPT": record.entry_script,
        "AZUREML_SOURCE_DIRECTORY": str(app_root),
        "AML_APP_ROOT": str(app_root),
        "SCORING_TIMEOUT_MS": str(config.scoring_timeout_ms),
        "WORKER_COUNT": "1",
        "HOME": str(home / "home"),
        "PYTHONPATH": "",
        "VIRTUAL_ENV": str(python.parent.parent),
        "PATH": f"{python.parent}{os.pathsep}{os.defpath}",
    }
    autoscale = AutoscaleConfig(
        enabled=config.autoscale,
        min_replicas=config.min_replicas,
        max_replicas=config.max_replicas,
        refresh_seconds=float(config.refresh_seconds),
        target_utilization=config.target_utilization,
    )
    collection = DataCollectionConfig(
        enabled=config.collect_model_data,
        directory=home / "collected" if config.collect_model_data else None,
    )
    return ServiceConfig(
        name=record.name,
        auth=_auth(record),
        num_replicas=None if config.autoscale else config.initial_replicas,
        replica_max_concurrent_requests=config.replica_max_concurrent_requests,
        max_request_wait_time=config.max_request_wait_time,
        scoring_timeout_ms=config.scoring_timeout_ms,
        autoscale=autoscale,
        data_collection=collection,
        local_process=LocalProcessScaling(
            command=command,
            env=env,
            cwd=app_root,
            host=ROUTER_HOST,
            ready_path="/",
            ready_timeout_seconds=float(config.initial_delay_seconds),
        ),
    )


def bootstrap_config(layout: Layout, port: int) -> dict[str, Any]:
    """A router configuration with no service, written without the router's schema (so the
    router can be started before the schema is imported); `router_config` replaces it."""
    return {
        "listen": {"host": ROUTER_HOST, "port": port},
        "reload_seconds": RELOAD_SECONDS,
        "access_log": {"enabled": True, "path": str(layout.access_log)},
        "scaler": {"kind": "local"},
        "services": [],
    }


def router_config(layout: Layout, port: int, records: list[ServiceRecord]) -> RouterConfig:
    from router.config import AccessLogConfig, ListenConfig, RouterConfig, ScalerConfig

    return RouterConfig(
        listen=ListenConfig(host=ROUTER_HOST, port=port),
        reload_seconds=RELOAD_SECONDS,
        access_log=AccessLogConfig(enabled=True, path=layout.access_log),
        scaler=ScalerConfig(kind="local"),
        services=[service_config(layout, record) for record in records],
    )


def router_port(layout: Layout) -> int | None:
    """The port in the current router configuration (kept across restarts)."""
    data = read_json(layout.router_config)
    if isinstance(data, dict):
        port = (data.get("listen") or {}).get("port")
        if isinstance(port, int) and port > 0:
            return port
    return None
