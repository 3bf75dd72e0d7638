"""The Kubernetes API probes through the official client against the strict fake API
server (`fakekube`), plus a server that refuses every credential."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.aio import client as k8s

from preflight.errors import OptionsError
from preflight.kube import DISCOVERY_ACCESS, NO_CREDENTIALS, load_client, probe_kube
from preflight.options import ProbeOptions
from rules.model import Check, CheckKind, Observation, Phase, ProbeStatus
from tests.preflight.conftest import probe_once, run
from tests.preflight.kubeapi import refusing_api_server
from tests.preflight.servers import closed_port

VERSION = Check("k8s:version", CheckKind.KUBERNETES, Phase.ROUTER_STARTUP, "version")
RBAC = Check("k8s:discovery-rbac", CheckKind.KUBERNETES, Phase.ROUTER_RUNNING, "discovery-rbac")
ALL_ALLOWED = {f"{verb} {resource}": True for verb, resource, _ in DISCOVERY_ACCESS}


def kubeconfig_for(server: str, path: Path) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": server}}],
                "users": [{"name": "u", "user": {"token": "some-token"}}],
                "contexts": [{"name": "ctx", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "ctx",
            }
        )
    )
    return path


def probe(target: Check, options: ProbeOptions) -> Observation:
    return run(probe_once(probe_kube, target, options))


def test_version(fakekube: Any) -> None:
    obs = probe(VERSION, ProbeOptions(kubeconfig=fakekube.kubeconfig_path))
    assert obs.check_id == "k8s:version"
    assert obs.status is ProbeStatus.OK, obs.detail
    assert obs.evidence["server"] == fakekube.url
    assert obs.evidence["git_version"].startswith("v1.")


def test_discovery_permissions_all_allowed(fakekube: Any) -> None:
    obs = probe(RBAC, ProbeOptions(kubeconfig=fakekube.kubeconfig_path))
    assert obs.check_id == "k8s:discovery-rbac"
    assert obs.status is ProbeStatus.OK, obs.detail
    assert obs.evidence["allowed"] == ALL_ALLOWED
    assert obs.evidence["namespace"] == "azureml"


def test_one_denied_permission_is_forbidden(fakekube: Any) -> None:
    fakekube.access.deny(verb="watch", resource="endpointslices", group="discovery.k8s.io")
    obs = probe(RBAC, ProbeOptions(kubeconfig=fakekube.kubeconfig_path))
    assert obs.status is ProbeStatus.FORBIDDEN
    assert obs.evidence["allowed"] == {**ALL_ALLOWED, "watch endpointslices": False}
    assert obs.detail == "not allowed: watch endpointslices"


def test_reviews_ask_about_the_router_namespace(fakekube: Any) -> None:
    fakekube.access.deny(namespace="models")
    in_azureml = probe(RBAC, ProbeOptions(kubeconfig=fakekube.kubeconfig_path))
    in_models = probe(RBAC, ProbeOptions(kubeconfig=fakekube.kubeconfig_path, namespace="models"))
    assert in_azureml.status is ProbeStatus.OK
    assert in_models.status is ProbeStatus.FORBIDDEN
    assert not any(in_models.evidence["allowed"].values())


def test_reviews_themselves_forbidden(fakekube: Any) -> None:
    fakekube.access.enforce = True
    fakekube.access.deny(verb="create", resource="selfsubjectaccessreviews")
    obs = probe(RBAC, ProbeOptions(kubeconfig=fakekube.kubeconfig_path))
    assert obs.status is ProbeStatus.FORBIDDEN
    assert obs.evidence["http_status"] == 403


def test_unauthorized(tmp_path: Path) -> None:
    with refusing_api_server() as url:
        options = ProbeOptions(kubeconfig=kubeconfig_for(url, tmp_path / "kubeconfig"))
        version, rbac = probe(VERSION, options), probe(RBAC, options)
    assert version.status is ProbeStatus.UNAUTHORIZED
    assert rbac.status is ProbeStatus.UNAUTHORIZED
    assert version.evidence["http_status"] == 401


def test_api_server_refusing_connections(tmp_path: Path) -> None:
    with closed_port() as port:
        path = kubeconfig_for(f"http://127.0.0.1:{port}", tmp_path / "kubeconfig")
        obs = probe(VERSION, ProbeOptions(kubeconfig=path, timeout=2))
    assert obs.status is ProbeStatus.REFUSED


def test_no_credentials_is_skipped_with_the_reason(tmp_path: Path) -> None:
    options = ProbeOptions(environ={"HOME": str(tmp_path)})
    obs = probe(VERSION, options)
    assert obs.status is ProbeStatus.SKIPPED
    assert obs.detail == NO_CREDENTIALS


def test_kubeconfig_from_the_environment(fakekube: Any, tmp_path: Path) -> None:
    environ = {"HOME": str(tmp_path), "KUBECONFIG": str(fakekube.kubeconfig_path)}
    obs = probe(VERSION, ProbeOptions(environ=environ))
    assert obs.status is ProbeStatus.OK


def test_default_kubeconfig_in_home(fakekube: Any, tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / ".kube").mkdir(parents=True)
    (home / ".kube" / "config").write_text(Path(fakekube.kubeconfig_path).read_text())
    obs = probe(VERSION, ProbeOptions(environ={"HOME": str(home)}))
    assert obs.status is ProbeStatus.OK


def test_unknown_context_in_an_explicit_kubeconfig_is_bad_input(fakekube: Any) -> None:
    options = ProbeOptions(kubeconfig=fakekube.kubeconfig_path, context="nope")
    with pytest.raises(OptionsError) as caught:
        run(load_client(options))
    assert str(caught.value).startswith("kubeconfig: ")
    assert "\n" not in str(caught.value)


def test_broken_implicit_kubeconfig_skips(tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.write_text("clusters: [")
    obs = probe(VERSION, ProbeOptions(environ={"HOME": str(tmp_path), "KUBECONFIG": str(broken)}))
    assert obs.status is ProbeStatus.SKIPPED
    assert obs.detail.startswith(f"the kubeconfig {broken} cannot be used")


def test_client_factory_seam(fakekube: Any) -> None:
    async def factory() -> k8s.ApiClient:
        configuration = k8s.Configuration()
        configuration.host = fakekube.url
        return k8s.ApiClient(configuration)

    async def none() -> None:
        return None

    assert probe(VERSION, ProbeOptions(kube_client_factory=factory)).status is ProbeStatus.OK
    skipped = probe(VERSION, ProbeOptions(kube_client_factory=none))
    assert skipped.status is ProbeStatus.SKIPPED
