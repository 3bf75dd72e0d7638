"""Watches, injected faults and the request log."""

import threading
import time

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from .helpers import deployment


def test_watch_replays_from_resource_version_and_sees_live_events(fakekube):
    core = client.CoreV1Api(fakekube.api_client())
    start = core.list_namespaced_config_map("default").metadata.resource_version
    core.create_namespaced_config_map("default", {"metadata": {"name": "early"}})

    def later():
        time.sleep(0.3)
        writer = client.CoreV1Api(fakekube.api_client())
        writer.patch_namespaced_config_map("early", "default", {"data": {"k": "v"}})
        writer.delete_namespaced_config_map("early", "default")

    threading.Thread(target=later, daemon=True).start()
    seen = []
    w = watch.Watch()
    for event in w.stream(
        core.list_namespaced_config_map, "default", resource_version=start, timeout_seconds=5
    ):
        seen.append((event["type"], event["object"].metadata.name))
        if event["type"] == "DELETED":
            w.stop()
    assert seen == [("ADDED", "early"), ("MODIFIED", "early"), ("DELETED", "early")]


def test_watch_without_resource_version_lists_first_and_times_out(fakekube):
    core = client.CoreV1Api(fakekube.api_client())
    core.create_namespaced_config_map("default", {"metadata": {"name": "a", "labels": {"x": "1"}}})
    core.create_namespaced_config_map("default", {"metadata": {"name": "b"}})
    began = time.monotonic()
    events = list(
        watch.Watch().stream(
            core.list_namespaced_config_map, "default", label_selector="x=1", timeout_seconds=1
        )
    )
    assert [(e["type"], e["object"].metadata.name) for e in events] == [("ADDED", "a")]
    assert 0.9 < time.monotonic() - began < 3


def test_watch_from_a_compacted_version_is_gone(fakekube):
    fakekube.store._history.clear()  # as after compaction
    core = client.CoreV1Api(fakekube.api_client())
    core.create_namespaced_config_map("default", {"metadata": {"name": "a"}})
    core.create_namespaced_config_map("default", {"metadata": {"name": "b"}})
    with pytest.raises(ApiException) as info:
        list(
            watch.Watch().stream(
                core.list_namespaced_config_map, "default", resource_version="1", timeout_seconds=1
            )
        )
    assert info.value.status == 410


def test_injected_429_then_success(fakekube):
    apps = client.AppsV1Api(fakekube.api_client())
    fault = fakekube.faults.add("POST", "*/deployments", 429, times=1, retry_after=2)
    with pytest.raises(ApiException) as info:
        apps.create_namespaced_deployment("default", deployment())
    assert info.value.status == 429
    assert info.value.headers["Retry-After"] == "2"
    assert '"reason": "TooManyRequests"' in info.value.body
    apps.create_namespaced_deployment("default", deployment())
    assert fault.hits == 1
    assert fakekube.store.get("Deployment", "web", "default")


def test_injected_500_on_reads_only(fakekube):
    core = client.CoreV1Api(fakekube.api_client())
    fakekube.faults.add("GET", "/api/v1/namespaces/default/pods", 500, times=2)
    for _ in range(2):
        with pytest.raises(ApiException) as info:
            core.list_namespaced_pod("default")
        assert info.value.status == 500
        assert '"reason": "InternalError"' in info.value.body
    assert core.list_namespaced_pod("default").items == []
    core.list_namespace()


def test_request_log_records_method_path_and_body(fakekube):
    core = client.CoreV1Api(fakekube.api_client())
    core.create_namespaced_config_map("default", {"metadata": {"name": "a"}, "data": {"k": "v"}})
    core.read_namespaced_config_map("a", "default")
    first, second = fakekube.requests.records[-2:]
    assert (first.method, first.path, first.status) == (
        "POST",
        "/api/v1/namespaces/default/configmaps",
        201,
    )
    assert first.body["data"] == {"k": "v"}
    assert (second.method, second.status) == ("GET", 200)
    assert [r.method for r in fakekube.requests.writes()] == ["POST"]
