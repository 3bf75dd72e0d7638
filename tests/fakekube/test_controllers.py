"""The controller simulation: rollouts, Jobs, Endpoints and injected pod failures."""

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from .helpers import deployment, job


@pytest.fixture
def core(fakekube):
    return client.CoreV1Api(fakekube.api_client())


@pytest.fixture
def apps(fakekube):
    return client.AppsV1Api(fakekube.api_client())


def rollout_complete(d) -> bool:
    """The check `kubectl rollout status` makes."""
    status = d.status
    progressing = {c.type: c for c in status.conditions or []}.get("Progressing")
    return (
        status.observed_generation >= d.metadata.generation
        and (status.updated_replicas or 0) == d.spec.replicas
        and (status.replicas or 0) == d.spec.replicas
        and (status.available_replicas or 0) == d.spec.replicas
        and progressing is not None
        and progressing.reason == "NewReplicaSetAvailable"
    )


def test_deployment_rollout_fills_status_and_owns_pods(fakekube, apps, core):
    apps.create_namespaced_deployment("default", deployment(replicas=3))
    d = apps.read_namespaced_deployment("web", "default")
    assert rollout_complete(d)
    (rs,) = apps.list_namespaced_replica_set("default").items
    assert rs.metadata.owner_references[0].uid == d.metadata.uid
    pods = core.list_namespaced_pod("default", label_selector="app=web").items
    assert len(pods) == 3
    for pod in pods:
        assert pod.metadata.owner_references[0].name == rs.metadata.name
        assert pod.metadata.labels["pod-template-hash"] == rs.metadata.labels["pod-template-hash"]
        assert pod.status.phase == "Running"
        assert pod.status.pod_ip.startswith("10.244.")
        assert pod.spec.node_name == "node-1"


def test_new_template_rolls_out_a_new_replicaset(fakekube, apps):
    apps.create_namespaced_deployment("default", deployment(replicas=2))
    apps.patch_namespaced_deployment(
        "web",
        "default",
        {"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "nginx:1.28"}]}}}},
    )
    d = apps.read_namespaced_deployment("web", "default")
    assert d.metadata.generation == 2 and rollout_complete(d)
    sets = {
        rs.metadata.annotations["deployment.kubernetes.io/revision"]: rs
        for rs in apps.list_namespaced_replica_set("default").items
    }
    assert sets["1"].spec.replicas == 0 and sets["2"].spec.replicas == 2
    images = {p["spec"]["containers"][0]["image"] for p in fakekube.store.list("Pod", "default")}
    assert images == {"nginx:1.28"}


def test_held_rollout_is_not_complete_until_released(fakekube, apps):
    fakekube.controllers.set_pod_behaviour("pending", owner_name_prefix="web-")
    apps.create_namespaced_deployment("default", deployment(replicas=2))
    d = apps.read_namespaced_deployment("web", "default")
    assert not rollout_complete(d)
    assert d.status.unavailable_replicas == 2
    assert {c.type: c.status for c in d.status.conditions}["Available"] == "False"
    fakekube.controllers.expire_progress_deadline("default", "web")
    d = apps.read_namespaced_deployment("web", "default")
    assert {c.type: c.reason for c in d.status.conditions}[
        "Progressing"
    ] == "ProgressDeadlineExceeded"
    fakekube.controllers.clear_pod_behaviours()
    fakekube.controllers.restart_pods("default")
    assert rollout_complete(apps.read_namespaced_deployment("web", "default"))


def test_image_pull_backoff_shows_in_pod_status_and_events(fakekube, apps, core):
    fakekube.controllers.set_pod_behaviour("image-pull-backoff", labels={"app": "web"})
    apps.create_namespaced_deployment(
        "default", deployment(replicas=1, image="myacr.azurecr.io/model:1")
    )
    (pod,) = core.list_namespaced_pod("default", label_selector="app=web").items
    waiting = pod.status.container_statuses[0].state.waiting
    assert waiting.reason == "ImagePullBackOff"
    assert "myacr.azurecr.io/model:1" in waiting.message
    events = core.list_namespaced_event(
        "default", field_selector=f"involvedObject.name={pod.metadata.name},type=Warning"
    ).items
    assert any(e.reason == "Failed" and "Failed to pull image" in e.message for e in events)
    assert not rollout_complete(apps.read_namespaced_deployment("web", "default"))
    with pytest.raises(ApiException) as info:
        core.read_namespaced_pod_log(pod.metadata.name, "default")
    assert info.value.status == 400
    assert "waiting to start: ImagePullBackOff" in info.value.body


def test_crash_loop_has_restarts_and_a_log(fakekube, apps, core):
    fakekube.controllers.set_pod_behaviour(
        "crash-loop", labels={"app": "web"}, log="boot\nerror: model not found\n", exit_code=3
    )
    apps.create_namespaced_deployment("default", deployment(replicas=1))
    (pod,) = core.list_namespaced_pod("default").items
    status = pod.status.container_statuses[0]
    assert status.state.waiting.reason == "CrashLoopBackOff"
    assert status.restart_count == 3 and status.last_state.terminated.exit_code == 3
    assert (
        core.read_namespaced_pod_log(pod.metadata.name, "default", tail_lines=1)
        == "error: model not found\n"
    )
    assert any(e.reason == "BackOff" for e in core.list_namespaced_event("default").items)


def test_unschedulable_pod_and_failed_scheduling_event(fakekube, core):
    fakekube.controllers.set_pod_behaviour("unschedulable", name_prefix="big")
    core.create_namespaced_pod(
        "default",
        {"metadata": {"name": "big"}, "spec": {"containers": [{"name": "c", "image": "x:1"}]}},
    )
    pod = core.read_namespaced_pod("big", "default")
    assert pod.status.phase == "Pending" and pod.spec.node_name is None
    (scheduled,) = pod.status.conditions
    assert (scheduled.type, scheduled.status, scheduled.reason) == (
        "PodScheduled",
        "False",
        "Unschedulable",
    )
    (event,) = core.list_namespaced_event("default", field_selector="reason=FailedScheduling").items
    assert "Insufficient cpu" in event.message and event.source.component == "default-scheduler"


def test_init_container_failure(fakekube, core):
    fakekube.controllers.set_pod_behaviour("init-failure")
    core.create_namespaced_pod(
        "default",
        {
            "metadata": {"name": "p"},
            "spec": {
                "initContainers": [{"name": "fetch-model", "image": "x:1"}],
                "containers": [{"name": "c", "image": "x:1"}],
            },
        },
    )
    pod = core.read_namespaced_pod("p", "default")
    init = pod.status.init_container_statuses[0]
    assert (
        init.state.waiting.reason == "CrashLoopBackOff"
        and init.last_state.terminated.exit_code == 1
    )
    assert pod.status.container_statuses[0].state.waiting.reason == "PodInitializing"
    assert {c.type: c.status for c in pod.status.conditions}["Initialized"] == "False"


def test_job_succeeds_with_the_log_the_test_set(fakekube, core):
    fakekube.controllers.set_pod_behaviour(
        "succeeded", owner_name_prefix="probe", log="dns ok\ntcp ok\n"
    )
    batch = client.BatchV1Api(fakekube.api_client())
    batch.create_namespaced_job("default", job())
    done = batch.read_namespaced_job("probe", "default")
    assert done.status.succeeded == 1
    assert {c.type for c in done.status.conditions} >= {"Complete", "SuccessCriteriaMet"}
    (pod,) = core.list_namespaced_pod("default", label_selector="job-name=probe").items
    assert pod.status.phase == "Succeeded"
    assert core.read_namespaced_pod_log(pod.metadata.name, "default") == "dns ok\ntcp ok\n"


def test_failing_job_retries_to_its_backoff_limit(fakekube, core):
    fakekube.controllers.set_pod_behaviour(
        "failed", owner_name_prefix="probe", log="dns: NXDOMAIN\n"
    )
    batch = client.BatchV1Api(fakekube.api_client())
    batch.create_namespaced_job("default", job())
    failed = batch.read_namespaced_job("probe", "default")
    assert failed.status.failed == 2  # backoffLimit 1: the first try and one retry
    assert {c.type: c.reason for c in failed.status.conditions}["Failed"] == "BackoffLimitExceeded"
    batch.delete_namespaced_job("probe", "default", propagation_policy="Background")
    assert fakekube.store.list("Pod", "default") == []


def test_job_template_is_immutable(fakekube):
    batch = client.BatchV1Api(fakekube.api_client())
    batch.create_namespaced_job("default", job())
    with pytest.raises(ApiException) as info:
        batch.patch_namespaced_job(
            "probe",
            "default",
            {
                "spec": {
                    "template": {"spec": {"containers": [{"name": "probe", "image": "other:1"}]}}
                }
            },
        )
    assert info.value.status == 422 and "field is immutable" in info.value.body


def test_service_endpoints_follow_ready_pods(fakekube, apps, core):
    apps.create_namespaced_deployment("default", deployment(replicas=2))
    core.create_namespaced_service(
        "default",
        {
            "metadata": {"name": "web"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": "http"}]},
        },
    )
    service = core.read_namespaced_service("web", "default")
    assert service.spec.cluster_ip.startswith("10.96.")
    endpoints = core.read_namespaced_endpoints("web", "default")
    pod_ips = {p.status.pod_ip for p in core.list_namespaced_pod("default").items}
    assert {a.ip for a in endpoints.subsets[0].addresses} == pod_ips
    assert endpoints.subsets[0].ports[0].port == 8080
    discovery = client.DiscoveryV1Api(fakekube.api_client())
    (slice_,) = discovery.list_namespaced_endpoint_slice(
        "default", label_selector="kubernetes.io/service-name=web"
    ).items
    assert {e.addresses[0] for e in slice_.endpoints if e.conditions.ready} == pod_ips
    apps.patch_namespaced_deployment_scale("web", "default", {"spec": {"replicas": 1}})
    assert len(core.read_namespaced_endpoints("web", "default").subsets[0].addresses) == 1


def test_controllers_can_be_switched_off(fakekube, apps):
    fakekube.controllers.enabled = False
    apps.create_namespaced_deployment("default", deployment())
    assert fakekube.store.list("ReplicaSet", "default") == []
    assert "status" not in fakekube.store.get("Deployment", "web", "default")
    fakekube.controllers.enabled = True
    fakekube.controllers.resync()
    assert len(fakekube.store.list("Pod", "default")) == 2


@pytest.mark.fakekube(controllers=False, nodes=0)
def test_marker_configures_the_fixture(fakekube, apps):
    assert fakekube.store.list("Node") == []
    apps.create_namespaced_deployment("default", deployment())
    assert fakekube.store.list("ReplicaSet", "default") == []
