"""The Kubernetes target against the strict fake API server, through the official client:
the exact objects, no writes on an unchanged re-deploy, the HPA refusal, retries."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import kubernetes_validate
import pytest
from fakekube import FakeKube

from deployer.errors import DeployConfigError, HpaConflict, KubeApiError, ServiceNotFound
from deployer.kube.manifests import HASH_ANNOTATION
from deployer.states import ServiceState
from tests.deployer.kube_support import Sleeps, objects, request, router_services, target_on

ROUTER_OBJECTS = {
    ("ServiceAccount", "azureml", "aksflight-router"),
    ("Role", "azureml", "aksflight-router-peers"),
    ("RoleBinding", "azureml", "aksflight-router-peers"),
    ("Role", "default", "aksflight-router-discovery"),
    ("RoleBinding", "default", "aksflight-router-discovery"),
    ("Role", "azureml", "aksflight-router-self-scaling"),
    ("RoleBinding", "azureml", "aksflight-router-self-scaling"),
    ("Secret", "azureml", "aksflight-router-config"),
    ("Deployment", "azureml", "aksflight-router"),
    ("Service", "azureml", "aksflight-router"),
}


def service_objects(name: str, namespace: str = "default") -> set[tuple[str, str, str]]:
    return {
        ("Secret", namespace, f"{name}-keys"),
        ("ConfigMap", namespace, f"{name}-app"),
        ("ConfigMap", namespace, f"{name}-models"),
        ("Deployment", namespace, name),
        ("Service", namespace, name),
    }


def test_dry_run_renders_every_manifest_valid_in_strict_mode(tmp_path: Path) -> None:
    target = target_on(FakeKube())  # never started: a dry run needs no cluster
    import yaml

    documents = list(yaml.safe_load_all(target.render(request(tmp_path), "yaml")))
    kinds = [(d["kind"], d["metadata"]["name"]) for d in documents]
    assert kinds == [
        ("Namespace", "azureml"),
        ("Namespace", "default"),
        ("ServiceAccount", "aksflight-router"),
        ("Role", "aksflight-router-peers"),
        ("RoleBinding", "aksflight-router-peers"),
        ("Role", "aksflight-router-discovery"),
        ("RoleBinding", "aksflight-router-discovery"),
        ("Role", "aksflight-router-self-scaling"),
        ("RoleBinding", "aksflight-router-self-scaling"),
        ("ClusterRole", "aksflight-router-room"),
        ("ClusterRoleBinding", "aksflight-router-room"),
        ("Deployment", "aksflight-router"),
        ("Service", "aksflight-router"),
        ("Secret", "aksflight-router-config"),
        ("Secret", "iris-keys"),
        ("ConfigMap", "iris-app"),
        ("ConfigMap", "iris-models"),
        ("Deployment", "iris"),
        ("Service", "iris"),
    ]
    for document in documents:
        kubernetes_validate.validate(document, "1.33.0", strict=True)
        if document["kind"] != "Namespace":
            labels = document["metadata"]["labels"]
            assert labels["app.kubernetes.io/managed-by"] == "aksflight"
            assert labels["app.kubernetes.io/part-of"] == "aksflight"
            assert {"app.kubernetes.io/name", "app.kubernetes.io/instance"} <= set(labels)


def test_deploy_creates_exactly_the_router_and_the_service(
    fakekube: FakeKube, tmp_path: Path
) -> None:
    target = target_on(fakekube)
    before = objects(fakekube)
    info = target.deploy(
        request(tmp_path, num_replicas=2, cpu_cores=0.5, memory_gb=1, cpu_cores_limit=1)
    )
    assert info.state is ServiceState.HEALTHY
    assert objects(fakekube) - before == ROUTER_OBJECTS | service_objects("iris")
    deployment = fakekube.store.get("Deployment", "iris", "default")
    spec = deployment["spec"]["template"]["spec"]
    (server,) = spec["containers"]
    assert deployment["spec"]["replicas"] == 2
    assert server["image"] == "labacr01.azurecr.io/models/iris:1"
    assert server["resources"] == {
        "requests": {"cpu": "500m", "memory": "1024Mi"},
        "limits": {"cpu": "1000m"},
    }
    assert server["livenessProbe"] == {
        "httpGet": {"path": "/", "port": "http", "scheme": "HTTP"},
        "periodSeconds": 10,
        "initialDelaySeconds": 310,
        "timeoutSeconds": 2,
        "successThreshold": 1,
        "failureThreshold": 3,
    }
    env = {e["name"]: e["value"] for e in server["env"]}
    assert env["AZUREML_MODEL_DIR"] == "/var/azureml-app/azureml-models/iris/1"
    assert env["AZUREML_ENTRY_SCRIPT"] == "score.py"
    assert [c["name"] for c in spec["initContainers"]] == ["fetch-model"]
    app = fakekube.store.get("ConfigMap", "iris-app", "default")
    assert sorted(app["data"].values()) == sorted(
        ["VALUE = 1\n", (tmp_path / "src" / "score.py").read_text()]
    )
    models = fakekube.store.get("ConfigMap", "iris-models", "default")
    assert list(models["binaryData"].values()) == [base64.b64encode(b"\x80\x04weights").decode()]
    keys = target.keys("iris")
    secret = fakekube.store.get("Secret", "iris-keys", "default")
    assert base64.b64decode(secret["data"]["primary_key"]).decode() == keys[0]
    entry = router_services(fakekube)["iris"]
    assert entry["auth"] == {"mode": "key", "primary_key": keys[0], "secondary_key": keys[1]}
    assert entry["kubernetes"] == {"namespace": "default", "deployment": "iris"}
    assert entry["autoscale"]["enabled"] is False
    router = fakekube.store.get("Deployment", "aksflight-router", "azureml")
    assert router["spec"]["replicas"] == 3
    discovery = fakekube.store.get("Role", "aksflight-router-discovery", "default")
    assert discovery["rules"] == [
        {
            "apiGroups": ["discovery.k8s.io"],
            "resources": ["endpointslices"],
            "verbs": ["list", "watch"],
        },
        {
            "apiGroups": ["apps"],
            "resources": ["deployments/scale"],
            "verbs": ["get", "patch", "update"],
        },
    ]
    slices = fakekube.store.list("EndpointSlice", "default", "kubernetes.io/service-name=iris")
    assert len(slices) == 1 and len(slices[0]["endpoints"]) == 2  # what the router discovers


def test_unchanged_redeploy_issues_no_writes(fakekube: FakeKube, tmp_path: Path) -> None:
    target = target_on(fakekube)
    target.deploy(request(tmp_path))
    keys = target.keys("iris")
    fakekube.requests.clear()
    info = target.deploy(request(tmp_path))
    assert info.state is ServiceState.HEALTHY
    assert fakekube.requests.writes() == []
    assert target.keys("iris") == keys


def test_autoscaled_replicas_are_kept_on_redeploy(fakekube: FakeKube, tmp_path: Path) -> None:
    target = target_on(fakekube)
    target.deploy(request(tmp_path, autoscale_max_replicas=4))
    from kubernetes import client

    client.AppsV1Api(fakekube.api_client()).patch_namespaced_deployment_scale(
        "iris", "default", {"spec": {"replicas": 3}}
    )  # what the router's autoscaler does
    fakekube.requests.clear()
    target.deploy(request(tmp_path, autoscale_max_replicas=4))
    assert fakekube.requests.writes() == []
    target.deploy(request(tmp_path, autoscale_max_replicas=4, scoring_timeout_ms=1000))
    assert fakekube.store.get("Deployment", "iris", "default")["spec"]["replicas"] == 3


def test_update_rolls_out_only_what_changed(fakekube: FakeKube, tmp_path: Path) -> None:
    target = target_on(fakekube)
    target.deploy(request(tmp_path))
    generation = fakekube.store.get("Deployment", "iris", "default")["metadata"]["generation"]
    (tmp_path / "src").mkdir(exist_ok=True)
    fakekube.requests.clear()
    updated = request(tmp_path)
    (tmp_path / "src" / "score.py").write_text(
        "def init():\n    pass\n\n\ndef run(d):\n    return 2\n"
    )
    target.deploy(updated)
    written = {(r.method, r.path) for r in fakekube.requests.writes()}
    assert written == {
        ("PATCH", "/api/v1/namespaces/default/configmaps/iris-app"),
        ("PATCH", "/apis/apps/v1/namespaces/default/deployments/iris"),
    }
    deployment = fakekube.store.get("Deployment", "iris", "default")
    assert deployment["metadata"]["generation"] == generation + 1
    assert deployment["spec"]["strategy"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1}
    assert target.info("iris").state is ServiceState.HEALTHY


def test_hpa_on_the_model_deployment_is_refused_before_any_write(
    fakekube: FakeKube, tmp_path: Path
) -> None:
    from kubernetes import client

    client.AutoscalingV2Api(fakekube.api_client()).create_namespaced_horizontal_pod_autoscaler(
        "default",
        {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "iris-hpa"},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "iris"},
                "minReplicas": 1,
                "maxReplicas": 5,
            },
        },
    )
    fakekube.requests.clear()
    with pytest.raises(HpaConflict, match="HorizontalPodAutoscaler default/iris-hpa targets"):
        target_on(fakekube).deploy(request(tmp_path))
    assert fakekube.requests.writes() == []


def test_transient_errors_are_retried_with_backoff(fakekube: FakeKube, tmp_path: Path) -> None:
    sleeps = Sleeps()
    target = target_on(fakekube, sleeps)
    fakekube.faults.add("PATCH", "/apis/apps/v1/namespaces/default/deployments/iris", 500, times=2)
    fakekube.faults.add("PATCH", "/api/v1/namespaces/default/services/iris", 429, retry_after=1)
    fakekube.faults.add("PATCH", "/api/v1/namespaces/default/configmaps/iris-app", 409)
    info = target.deploy(request(tmp_path))
    assert info.state is ServiceState.HEALTHY
    assert sleeps == [0.2, 0.2, 0.4, 1.0]  # 409, then 500 twice (0.2, 0.4), then Retry-After
    patches = fakekube.requests.matching(
        "PATCH", "/apis/apps/v1/namespaces/default/deployments/iris"
    )
    assert [r.status for r in patches] == [500, 500, 201]


def test_validation_errors_are_not_retried(fakekube: FakeKube, tmp_path: Path) -> None:
    sleeps = Sleeps()
    target = target_on(fakekube, sleeps)
    fakekube.faults.add(
        "PATCH", "/api/v1/namespaces/default/configmaps/iris-app", 422, message="bad"
    )
    with pytest.raises(KubeApiError) as caught:
        target.deploy(request(tmp_path))
    assert caught.value.status == 422 and caught.value.temporary is False
    assert len(fakekube.requests.matching("PATCH", "*/configmaps/iris-app")) == 1
    assert sleeps == []


def test_retries_give_up_after_the_last_attempt(fakekube: FakeKube, tmp_path: Path) -> None:
    sleeps = Sleeps()
    target = target_on(fakekube, sleeps)
    fakekube.faults.add("PATCH", "*/secrets/iris-keys", 503, times=10)
    with pytest.raises(KubeApiError, match="503"):
        target.deploy(request(tmp_path))
    assert sleeps == [0.2, 0.4, 0.8, 1.6, 3.2]
    assert len(fakekube.requests.matching("PATCH", "*/secrets/iris-keys")) == 6


def test_interrupted_deploy_converges(fakekube: FakeKube, tmp_path: Path) -> None:
    target = target_on(fakekube)
    fakekube.faults.add("PATCH", "/apis/apps/v1/namespaces/default/deployments/iris", 403)
    with pytest.raises(KubeApiError, match="403"):
        target.deploy(request(tmp_path))  # stopped after the Secret and the ConfigMaps
    assert ("Deployment", "default", "iris") not in objects(fakekube)
    info = target.deploy(request(tmp_path))
    assert info.state is ServiceState.HEALTHY
    assert objects(fakekube) >= ROUTER_OBJECTS | service_objects("iris")
    fakekube.requests.clear()
    target.deploy(request(tmp_path))
    assert fakekube.requests.writes() == []


def test_delete_removes_what_it_created_and_nothing_else(
    fakekube: FakeKube, tmp_path: Path
) -> None:
    from kubernetes import client

    core = client.CoreV1Api(fakekube.api_client())
    core.create_namespaced_config_map(
        "default", {"metadata": {"name": "unrelated"}, "data": {"a": "b"}}
    )
    target = target_on(fakekube)
    target.deploy(request(tmp_path / "a", name="iris"))
    with_one = objects(fakekube)
    router_with_one = router_services(fakekube)
    target.deploy(request(tmp_path / "b", name="other", token_auth_enabled=True))
    assert objects(fakekube) == with_one | service_objects("other")
    assert set(router_services(fakekube)) == {"iris", "other"}
    target.delete("other")
    assert objects(fakekube) == with_one
    assert router_services(fakekube) == router_with_one
    assert fakekube.store.list("Pod", "default", "app.kubernetes.io/instance=other") == []
    with pytest.raises(ServiceNotFound):
        target.delete("other")


def test_service_operations(fakekube: FakeKube, tmp_path: Path) -> None:
    target = target_on(fakekube)
    target.deploy(request(tmp_path / "k", name="iris"))
    target.deploy(request(tmp_path / "t", name="tokens", token_auth_enabled=True))
    assert [(s.name, s.state, s.auth) for s in target.list()] == [
        ("iris", ServiceState.HEALTHY, "key"),
        ("tokens", ServiceState.HEALTHY, "token"),
    ]
    info = target.info("iris")
    router_ip = fakekube.store.get("Service", "aksflight-router", "azureml")["spec"]["clusterIP"]
    assert info.scoring_uri == f"http://{router_ip}/api/v1/service/iris/score"
    primary, secondary = target.keys("iris")
    new_primary, kept = target.regen_key("iris", "Primary")
    assert kept == secondary and new_primary != primary
    assert router_services(fakekube)["iris"]["auth"]["primary_key"] == new_primary
    assert target.regen_key("iris", "secondary", "set-by-hand-0123456789") == (
        new_primary,
        "set-by-hand-0123456789",
    )
    token, refresh_by = target.token("tokens")
    import jwt

    public = router_services(fakekube)["tokens"]["auth"]["public_keys"][0]
    claims = jwt.decode(token, public, algorithms=["ES256"], audience="tokens", issuer="aksflight")
    assert claims["exp"] > refresh_by.timestamp()
    pod = fakekube.store.list("Pod", "default", "app.kubernetes.io/instance=iris")[0]
    fakekube.logs.set("default", pod["metadata"]["name"], "model server ready\n", "model")
    fakekube.logs.set(
        "default", pod["metadata"]["name"], "copied the embedded models\n", "fetch-model"
    )
    assert "model server ready" in target.logs("iris")
    assert "copied the embedded models" in target.logs("iris", init=True)
    fakekube.requests.clear()
    target.deploy(request(tmp_path / "k", name="iris"))  # the regenerated keys stay
    assert target.keys("iris") == (new_primary, "set-by-hand-0123456789")


def test_update_from_the_cluster_keeps_models_and_code(fakekube: FakeKube, tmp_path: Path) -> None:
    target = target_on(fakekube)
    target.deploy(request(tmp_path, num_replicas=1))
    current = target.last_request("iris")
    assert [m.name for m in current.models] == ["iris"]
    assert (
        current.models[0].path is not None
        and current.models[0].path.read_bytes() == b"\x80\x04weights"
    )
    from deployer.config import merge_deployment_config
    from deployer.request import DeployRequest

    changed = DeployRequest(
        "iris",
        current.models,
        current.inference,
        merge_deployment_config(current.config, num_replicas=3),
    )
    fakekube.requests.clear()
    target.deploy(changed)
    written = {r.path for r in fakekube.requests.writes()}
    assert written == {
        "/apis/apps/v1/namespaces/default/deployments/iris",
    }
    assert fakekube.store.get("Deployment", "iris", "default")["spec"]["replicas"] == 3


def test_one_router_discovers_one_namespace(fakekube: FakeKube, tmp_path: Path) -> None:
    target = target_on(fakekube)
    target.deploy(request(tmp_path / "a", namespace="models"))
    with pytest.raises(DeployConfigError, match="discovers services in 'models' only"):
        target.deploy(request(tmp_path / "b", name="other", namespace="elsewhere"))
    assert (
        json.loads(json.dumps(router_services(fakekube)))["iris"]["kubernetes"]["namespace"]
        == "models"
    )
    assert (
        HASH_ANNOTATION
        in fakekube.store.get("Deployment", "iris", "models")["metadata"]["annotations"]
    )


@pytest.mark.slow
def test_the_real_router_with_the_rendered_configuration_discovers_the_replicas(
    fakekube: FakeKube, tmp_path: Path
) -> None:
    """The router's configuration the deployer wrote, run by the real router against the
    same API server (kubeconfig instead of in-cluster credentials, no peers): it finds the
    service's ready pods through their EndpointSlice."""
    import asyncio

    from router.config import parse_config
    from router.server import RouterServer

    target_on(fakekube).deploy(request(tmp_path, num_replicas=2))
    secret = fakekube.store.get("Secret", "aksflight-router-config", "azureml")
    data = json.loads(base64.b64decode(secret["data"]["router.json"]))
    data["listen"] = {"host": "127.0.0.1", "port": 0}
    data["discovery"]["kubernetes"].update(
        in_cluster=False, kubeconfig=str(fakekube.write_kubeconfig(tmp_path / "kubeconfig"))
    )
    data["peers"] = {"kind": "none"}
    data["scaler"] = {"kind": "none"}

    async def replicas() -> list[str]:
        server = RouterServer(parse_config(data))
        await server.start()
        try:
            return sorted(r.url for r in server.router.services["iris"].pool.replicas)
        finally:
            await server.stop()

    pods = fakekube.store.list("Pod", "default", "app.kubernetes.io/instance=iris")
    expected = sorted(f"http://{p['status']['podIP']}:5001" for p in pods)
    assert len(expected) == 2
    assert asyncio.run(replicas()) == expected


def test_the_router_may_scale_itself_and_drains_within_its_grace(tmp_path: Path) -> None:
    import yaml

    target = target_on(FakeKube())
    documents = list(yaml.safe_load_all(target.render(request(tmp_path), "yaml")))
    role = next(
        d
        for d in documents
        if d["metadata"]["name"] == "aksflight-router-self-scaling" and d["kind"] == "Role"
    )
    granted = {(r["resources"][0], tuple(r["verbs"])) for r in role["rules"]}
    assert granted == {
        ("deployments", ("get", "patch")),
        ("deployments/scale", ("patch",)),
        ("pods/resize", ("patch",)),
        ("poddisruptionbudgets", ("get", "create", "patch")),
    }
    router = next(
        d
        for d in documents
        if d["kind"] == "Deployment" and d["metadata"]["name"] == "aksflight-router"
    )
    pod = router["spec"]["template"]["spec"]
    resources = pod["containers"][0]["resources"]
    assert resources["requests"] == resources["limits"] == {"cpu": "500m", "memory": "512Mi"}
    assert pod["terminationGracePeriodSeconds"] > 60  # drain delay + the 60 s scoring timeout
