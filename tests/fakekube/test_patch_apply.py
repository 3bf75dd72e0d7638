"""Patch types, server-side apply and the scale and status subresources."""

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from .helpers import deployment

APPLY = "application/apply-patch+yaml"


@pytest.fixture
def apps(fakekube):
    return client.AppsV1Api(fakekube.api_client())


def containers(fakekube, name="web"):
    return fakekube.store.get("Deployment", name, "default")["spec"]["template"]["spec"][
        "containers"
    ]


def test_strategic_merge_merges_containers_and_env_by_name(fakekube, apps):
    apps.create_namespaced_deployment("default", deployment())
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {"name": "main", "env": [{"name": "EXTRA", "value": "1"}]},
                        {"name": "sidecar", "image": "envoy:1.30"},
                    ]
                }
            }
        }
    }
    apps.patch_namespaced_deployment("web", "default", patch)
    main, sidecar = containers(fakekube)
    assert main["image"] == "nginx:1.27"
    assert [e["name"] for e in main["env"]] == ["MODE", "EXTRA"]
    assert sidecar["name"] == "sidecar"
    delete = {
        "spec": {"template": {"spec": {"containers": [{"name": "sidecar", "$patch": "delete"}]}}}
    }
    apps.patch_namespaced_deployment("web", "default", delete)
    assert [c["name"] for c in containers(fakekube)] == ["main"]


def test_merge_patch_replaces_lists(fakekube, apps):
    apps.create_namespaced_deployment("default", deployment())
    patch = {
        "spec": {"template": {"spec": {"containers": [{"name": "only", "image": "busybox:1"}]}}}
    }
    apps.patch_namespaced_deployment(
        "web", "default", patch, _content_type="application/merge-patch+json"
    )
    assert [c["name"] for c in containers(fakekube)] == ["only"]


def test_json_patch_and_failed_test_operation(fakekube, apps):
    apps.create_namespaced_deployment("default", deployment())
    ops = [
        {"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "nginx:1.28"}
    ]
    apps.patch_namespaced_deployment("web", "default", ops)
    assert containers(fakekube)[0]["image"] == "nginx:1.28"
    with pytest.raises(ApiException) as info:
        apps.patch_namespaced_deployment(
            "web", "default", [{"op": "test", "path": "/spec/replicas", "value": 99}]
        )
    assert info.value.status == 422


def test_apply_creates_then_is_idempotent(fakekube, apps):
    created = apps.patch_namespaced_deployment(
        "web", "default", deployment(), field_manager="deployer", _content_type=APPLY
    )
    assert created.metadata.managed_fields[0].manager == "deployer"
    settled = apps.read_namespaced_deployment("web", "default")  # the controller wrote status
    fakekube.requests.clear()
    fakekube.store.clear_writes()
    again = apps.patch_namespaced_deployment(
        "web", "default", deployment(), field_manager="deployer", _content_type=APPLY
    )
    assert again.metadata.resource_version == settled.metadata.resource_version
    assert fakekube.store.writes == []
    assert [r.method for r in fakekube.requests.writes()] == ["PATCH"]


def test_apply_removes_fields_it_no_longer_sets(fakekube, apps):
    apps.patch_namespaced_deployment(
        "web", "default", deployment(), field_manager="deployer", _content_type=APPLY
    )
    smaller = deployment()
    smaller["spec"]["template"]["spec"]["containers"][0]["env"] = [{"name": "OTHER", "value": "2"}]
    apps.patch_namespaced_deployment(
        "web", "default", smaller, field_manager="deployer", _content_type=APPLY
    )
    assert containers(fakekube)[0]["env"] == [{"name": "OTHER", "value": "2"}]
    assert fakekube.store.get("Deployment", "web", "default")["metadata"]["generation"] == 2


def test_apply_needs_a_field_manager(apps):
    with pytest.raises(ApiException) as info:
        apps.patch_namespaced_deployment("web", "default", deployment(), _content_type=APPLY)
    assert info.value.status == 400


def test_unchanged_put_writes_nothing(fakekube, apps):
    apps.create_namespaced_deployment("default", deployment())
    current = apps.read_namespaced_deployment("web", "default")
    fakekube.store.clear_writes()
    same = apps.replace_namespaced_deployment("web", "default", current)
    assert same.metadata.resource_version == current.metadata.resource_version
    assert fakekube.store.writes == []


def test_scale_subresource(fakekube, apps):
    apps.create_namespaced_deployment("default", deployment(replicas=1))
    scale = apps.read_namespaced_deployment_scale("web", "default")
    assert scale.spec.replicas == 1
    assert scale.status.selector == "app=web"
    apps.patch_namespaced_deployment_scale("web", "default", {"spec": {"replicas": 3}})
    assert fakekube.store.get("Deployment", "web", "default")["spec"]["replicas"] == 3
    assert len(fakekube.store.list("Pod", "default", {"app": "web"})) == 3
    scale = apps.read_namespaced_deployment_scale("web", "default")
    scale.spec.replicas = 0
    assert apps.replace_namespaced_deployment_scale("web", "default", scale).spec.replicas == 0
    assert fakekube.store.list("Pod", "default", {"app": "web"}) == []


def test_status_is_only_written_through_the_status_subresource(fakekube, apps):
    apps.create_namespaced_deployment("default", deployment(replicas=1))
    apps.patch_namespaced_deployment("web", "default", {"status": {"replicas": 42}})
    assert fakekube.store.get("Deployment", "web", "default")["status"]["replicas"] == 1
    fakekube.controllers.enabled = False
    apps.patch_namespaced_deployment_status("web", "default", {"status": {"replicas": 42}})
    stored = fakekube.store.get("Deployment", "web", "default")
    assert stored["status"]["replicas"] == 42
    assert stored["metadata"]["generation"] == 1


def test_pod_resize_changes_only_resources(fakekube):
    core = client.CoreV1Api(fakekube.api_client())
    core.create_namespaced_pod(
        "default",
        {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "busybox:1"}]}},
    )
    resources = {"requests": {"cpu": "250m"}, "limits": {"cpu": "500m"}}
    path = "/api/v1/namespaces/default/pods/p/resize"
    import httpx

    answer = httpx.patch(
        fakekube.url + path,
        json={"spec": {"containers": [{"name": "c", "resources": resources}]}},
        headers={"Content-Type": "application/strategic-merge-patch+json"},
    )
    assert answer.status_code == 200, answer.text
    pod = fakekube.store.get("Pod", "p", "default")
    assert pod["spec"]["containers"][0]["resources"] == resources
    assert pod["status"]["containerStatuses"][0]["resources"] == resources
    refused = httpx.patch(
        fakekube.url + path,
        json={"spec": {"containers": [{"name": "c", "image": "busybox:2"}]}},
        headers={"Content-Type": "application/strategic-merge-patch+json"},
    )
    assert refused.status_code == 422
