"""CRUD, conflicts and validation through the official client."""

import base64

import httpx
import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from .helpers import deployment


@pytest.fixture
def core(fakekube):
    return client.CoreV1Api(fakekube.api_client())


@pytest.fixture
def apps(fakekube):
    return client.AppsV1Api(fakekube.api_client())


def test_discovery_and_version(fakekube):
    api = fakekube.api_client()
    assert client.VersionApi(api).get_code().git_version == "v1.33.0"
    groups = {g.name for g in client.ApisApi(api).get_api_versions().groups}
    assert {"apps", "batch", "rbac.authorization.k8s.io", "coordination.k8s.io"} <= groups
    resources = client.AppsV1Api(api).get_api_resources().resources
    assert {"deployments", "deployments/scale", "deployments/status"} <= {r.name for r in resources}


def test_configmap_and_secret_round_trip(fakekube, core):
    created = core.create_namespaced_config_map(
        "default", {"metadata": {"name": "settings"}, "data": {"a": "1"}}
    )
    assert created.metadata.uid and created.metadata.resource_version
    assert created.metadata.creation_timestamp is not None
    assert core.read_namespaced_config_map("settings", "default").data == {"a": "1"}

    core.create_namespaced_secret(
        "default", {"metadata": {"name": "token"}, "stringData": {"t": "x"}}
    )
    stored = fakekube.store.get("Secret", "token", "default")
    assert stored["type"] == "Opaque"
    assert base64.b64decode(stored["data"]["t"]) == b"x"

    core.delete_namespaced_config_map("settings", "default")
    with pytest.raises(ApiException) as info:
        core.read_namespaced_config_map("settings", "default")
    assert info.value.status == 404
    assert '"reason":"NotFound"' in info.value.body.replace(" ", "")


def test_cluster_scoped_rbac_and_lease(fakekube):
    api = fakekube.api_client()
    rbac = client.RbacAuthorizationV1Api(api)
    rbac.create_cluster_role(
        {
            "metadata": {"name": "reader"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}],
        }
    )
    assert [r.metadata.name for r in rbac.list_cluster_role().items] == ["reader"]
    assert fakekube.store.get("ClusterRole", "reader")["metadata"].get("namespace") is None
    coordination = client.CoordinationV1Api(api)
    lease = coordination.create_namespaced_lease(
        "default", {"metadata": {"name": "leader"}, "spec": {"holderIdentity": "a"}}
    )
    lease.spec.holder_identity = "b"
    assert (
        coordination.replace_namespaced_lease("leader", "default", lease).spec.holder_identity
        == "b"
    )


def test_create_twice_is_already_exists(apps):
    apps.create_namespaced_deployment("default", deployment())
    with pytest.raises(ApiException) as info:
        apps.create_namespaced_deployment("default", deployment())
    assert info.value.status == 409
    assert "AlreadyExists" in info.value.body


def test_stale_put_is_conflict(apps):
    first = apps.create_namespaced_deployment("default", deployment(replicas=1))
    current = apps.read_namespaced_deployment("web", "default")
    current.spec.replicas = 3
    updated = apps.replace_namespaced_deployment("web", "default", current)
    assert updated.metadata.generation == 2
    first.spec.replicas = 5  # still carries the creation's resourceVersion
    with pytest.raises(ApiException) as info:
        apps.replace_namespaced_deployment("web", "default", first)
    assert info.value.status == 409
    assert '"reason": "Conflict"' in info.value.body


def test_unknown_field_is_invalid(fakekube, apps):
    body = deployment()
    body["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    # create_* validates typed models in the client; a server-side apply sends the dict as is
    with pytest.raises(ApiException) as info:
        apps.patch_namespaced_deployment(
            "web",
            "default",
            body,
            field_manager="test",
            _content_type="application/apply-patch+yaml",
        )
    assert info.value.status == 422
    assert '"reason": "Invalid"' in info.value.body
    assert (
        'unknown field \\"spec.template.spec.containers[0].imagePullPolicyy\\"' in info.value.body
    )
    raw = httpx.post(f"{fakekube.url}/apis/apps/v1/namespaces/default/deployments", json=body)
    assert raw.status_code == 422
    cause = raw.json()["details"]["causes"][0]
    assert cause["field"] == "spec.template.spec.containers[0].imagePullPolicyy"
    assert fakekube.store.list("Deployment") == []


def test_missing_selector_is_invalid(fakekube, apps):
    body = deployment()
    del body["spec"]["selector"]
    with pytest.raises(ApiException) as info:
        apps.patch_namespaced_deployment(
            "web",
            "default",
            body,
            field_manager="test",
            _content_type="application/apply-patch+yaml",
        )
    assert info.value.status == 422
    assert "spec.selector: Required value" in info.value.body
    assert fakekube.store.list("Deployment") == []


def test_selector_must_match_template_labels(apps):
    body = deployment()
    body["spec"]["selector"] = {"matchLabels": {"app": "other"}}
    with pytest.raises(ApiException) as info:
        apps.create_namespaced_deployment("default", body)
    assert info.value.status == 422
    assert "does not match template" in info.value.body


def test_names_and_namespaces_are_checked(core):
    with pytest.raises(ApiException) as info:
        core.create_namespaced_config_map("default", {"metadata": {"name": "Bad_Name"}})
    assert info.value.status == 422
    with pytest.raises(ApiException) as info:
        core.create_namespaced_config_map("missing", {"metadata": {"name": "ok"}})
    assert info.value.status == 404
    assert 'namespaces \\"missing\\" not found' in info.value.body or "missing" in info.value.body


def test_list_selectors_and_resource_version(fakekube, core):
    for name, tier in (("a", "web"), ("b", "db"), ("c", "web")):
        core.create_namespaced_config_map(
            "default", {"metadata": {"name": name, "labels": {"tier": tier}}}
        )
    listed = core.list_namespaced_config_map("default", label_selector="tier=web")
    assert [c.metadata.name for c in listed.items] == ["a", "c"]
    assert int(listed.metadata.resource_version) == fakekube.store.resource_version
    by_name = core.list_namespaced_config_map("default", field_selector="metadata.name=b")
    assert [c.metadata.name for c in by_name.items] == ["b"]
    not_in = core.list_namespaced_config_map("default", label_selector="tier notin (web),tier")
    assert [c.metadata.name for c in not_in.items] == ["b"]
    with pytest.raises(ApiException) as info:
        core.list_namespaced_config_map("default", field_selector="data.x=1")
    assert info.value.status == 400
    page = core.list_namespaced_config_map("default", limit=2, label_selector="tier")
    assert len(page.items) == 2 and page.metadata._continue
    rest = core.list_namespaced_config_map(
        "default", limit=2, label_selector="tier", _continue=page.metadata._continue
    )
    assert [c.metadata.name for c in rest.items] == ["c"]


def test_pod_field_selectors(fakekube, core):
    core.create_namespaced_pod(
        "default",
        {
            "metadata": {"name": "solo"},
            "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]},
        },
    )
    running = core.list_namespaced_pod(
        "default", field_selector="status.phase=Running,spec.nodeName=node-1"
    )
    assert [p.metadata.name for p in running.items] == ["solo"]
    assert core.list_namespaced_pod("default", field_selector="status.phase!=Running").items == []


def test_delete_deployment_removes_its_pods(fakekube, apps):
    apps.create_namespaced_deployment("default", deployment(replicas=2))
    assert len(fakekube.store.list("Pod", "default")) == 2
    apps.delete_namespaced_deployment("web", "default")
    assert fakekube.store.list("ReplicaSet", "default") == []
    assert fakekube.store.list("Pod", "default") == []


def test_finalizers_hold_deletion_back(fakekube, core):
    core.create_namespaced_config_map(
        "default", {"metadata": {"name": "held", "finalizers": ["x/y"]}}
    )
    core.delete_namespaced_config_map("held", "default")
    held = fakekube.store.get("ConfigMap", "held", "default")
    assert held["metadata"]["deletionTimestamp"]
    core.patch_namespaced_config_map("held", "default", {"metadata": {"finalizers": None}})
    assert fakekube.store.find("ConfigMap", "held", "default") is None


def test_deleting_a_namespace_deletes_its_objects(fakekube, core):
    core.create_namespace({"metadata": {"name": "team"}})
    assert fakekube.store.get("ServiceAccount", "default", "team")
    core.create_namespaced_config_map("team", {"metadata": {"name": "x"}})
    core.delete_namespace("team")
    assert fakekube.store.list("ConfigMap", "team") == []


def test_access_review_policy(fakekube):
    authz = client.AuthorizationV1Api(fakekube.api_client())
    fakekube.access.deny(verb="create", resource="pods", namespace="locked")

    def allowed(namespace):
        review = {
            "spec": {
                "resourceAttributes": {"verb": "create", "resource": "pods", "namespace": namespace}
            }
        }
        return authz.create_self_subject_access_review(review).status.allowed

    assert allowed("default") is True
    assert allowed("locked") is False


def test_enforced_policy_refuses_requests(fakekube, core):
    fakekube.access.enforce = True
    fakekube.access.deny(verb="list", resource="secrets")
    with pytest.raises(ApiException) as info:
        core.list_namespaced_secret("default")
    assert info.value.status == 403
    assert core.list_namespaced_config_map("default").items is not None


def test_kubeconfig_file_works_with_the_client_loader(fakekube):
    from kubernetes import config

    api = config.new_client_from_config(config_file=str(fakekube.kubeconfig_path))
    assert [n.metadata.name for n in client.CoreV1Api(api).list_node().items] == ["node-1"]


def test_generate_name_and_dry_run(fakekube, core):
    made = core.create_namespaced_config_map("default", {"metadata": {"generateName": "run-"}})
    assert made.metadata.name.startswith("run-") and len(made.metadata.name) == 9
    before = fakekube.store.resource_version
    core.create_namespaced_config_map("default", {"metadata": {"name": "dry"}}, dry_run="All")
    assert fakekube.store.find("ConfigMap", "dry", "default") is None
    assert fakekube.store.resource_version == before


def test_dynamic_client_discovers_and_applies(fakekube):
    from kubernetes import dynamic

    resources = dynamic.DynamicClient(fakekube.api_client()).resources
    deployments = resources.get(api_version="apps/v1", kind="Deployment")
    deployments.server_side_apply(
        body=deployment(replicas=3), name="web", namespace="default", field_manager="deployer"
    )
    assert fakekube.store.get("Deployment", "web", "default")["spec"]["replicas"] == 3


def test_pod_spec_is_immutable_except_images(fakekube, core):
    core.create_namespaced_pod(
        "default",
        {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "busybox:1"}]}},
    )
    core.patch_namespaced_pod(
        "p", "default", {"spec": {"containers": [{"name": "c", "image": "busybox:2"}]}}
    )
    assert (
        fakekube.store.get("Pod", "p", "default")["spec"]["containers"][0]["image"] == "busybox:2"
    )
    with pytest.raises(ApiException) as info:
        core.patch_namespaced_pod(
            "p", "default", {"spec": {"containers": [{"name": "c", "args": ["x"]}]}}
        )
    assert info.value.status == 422 and "pod updates may not change" in info.value.body
