"""The HTTP face of the fake: routing of core and grouped API paths, discovery, JSON
bodies, Status errors, chunked watches and pod logs, on the stdlib threading server."""

from __future__ import annotations

import json
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

import yaml

from . import patching, subresources
from .errors import (
    ApiError,
    BadRequest,
    Forbidden,
    Gone,
    Invalid,
    MethodNotAllowed,
    NotFound,
    error_for_code,
)
from .hooks import RequestRecord
from .resources import ResourceType, version_info
from .selectors import parse_field_selector, parse_label_selector
from .store import Obj, StoreEvent

if TYPE_CHECKING:
    from .fake import FakeKube

VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
WAITING_WITHOUT_LOGS = ("ContainerCreating", "PodInitializing", "ImagePullBackOff", "ErrImagePull")


class _Route:
    """A parsed resource path: type, namespace, name and subresource."""

    def __init__(
        self, resource: ResourceType, namespace: str | None, name: str | None, sub: str | None
    ):
        self.resource, self.namespace, self.name, self.subresource = resource, namespace, name, sub


class Handler(BaseHTTPRequestHandler):
    """One connection; the fake it serves is ``self.server.fake``."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the request log is the record tests read."""

    # --- plumbing ----------------------------------------------------------------

    @property
    def fake(self) -> FakeKube:
        return self.server.fake

    def _send(
        self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _send_json(self, status: int, obj: Any) -> None:
        self._record.status = status
        self._send(status, json.dumps(obj).encode(), "application/json")

    def _send_error(self, error: ApiError) -> None:
        self._record.status = error.code
        headers = {"Retry-After": str(error.retry_after)} if error.retry_after is not None else {}
        self._send(error.code, json.dumps(error.to_status()).encode(), "application/json", headers)

    def _read_body(self, content_type: str) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw:
            return None
        try:
            if content_type == patching.APPLY_PATCH or "yaml" in content_type:
                return yaml.safe_load(raw)
            return json.loads(raw)
        except (ValueError, yaml.YAMLError) as exc:
            raise BadRequest(f"the request body is not valid JSON or YAML: {exc}") from exc

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def _handle(self, method: str) -> None:
        url = urlsplit(self.path)
        query = dict(parse_qsl(url.query, keep_blank_values=True))
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        self._record = RequestRecord(method, url.path, query, None, content_type)
        self.fake.requests.add(self._record)
        try:
            self._record.body = self._read_body(content_type)
            fault = self.fake.faults.take(method, url.path)
            if fault is not None:
                time.sleep(fault.delay)
                message = fault.message or f"injected fault: {fault.status}"
                raise error_for_code(fault.status, message, fault.retry_after)
            self._dispatch(method, url.path, query, self._record.body, content_type)
        except ApiError as error:
            self._send_error(error)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as exc:  # a bug in the fake: answer 500 and keep it for the test
            self.fake.internal_errors.append(traceback.format_exc())
            self._send_error(error_for_code(500, f"fake API server failed: {exc!r}"))

    # --- routing -----------------------------------------------------------------

    def _dispatch(
        self, method: str, path: str, query: dict[str, str], body: Any, content_type: str
    ) -> None:
        registry = self.fake.registry
        parts = [p for p in path.split("/") if p]
        if path in ("/healthz", "/livez", "/readyz"):
            self._record.status = 200
            self._send(200, b"ok", "text/plain")
            return
        if method == "GET":
            discovery: dict[str, Any] | None = None
            if parts == ["version"]:
                discovery = dict(version_info())
            elif parts == ["api"]:
                discovery = registry.core_versions(f"{self.fake.host}:{self.fake.port}")
            elif parts == ["apis"]:
                discovery = registry.api_group_list()
            elif len(parts) == 2 and parts[0] == "apis":
                discovery = registry.api_group(parts[1])
            elif parts == ["api", "v1"]:
                discovery = registry.resource_list("", "v1")
            elif len(parts) == 3 and parts[0] == "apis":
                discovery = registry.resource_list(parts[1], parts[2])
            if discovery is not None:
                self._send_json(200, discovery)
                return
        if len(parts) >= 3 and parts[:2] == ["api", "v1"]:
            group, version, rest = "", "v1", parts[2:]
        elif len(parts) >= 4 and parts[0] == "apis":
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise NotFound("the server could not find the requested resource")
        namespace: str | None = None
        if rest[0] == "namespaces" and len(rest) >= 3 and rest[2] not in ("status", "finalize"):
            namespace, rest = rest[1], rest[2:]
        if len(rest) > 3:
            raise NotFound("the server could not find the requested resource")
        resource = registry.by_url(group, version, rest[0])
        if resource.namespaced != (namespace is not None) and not (
            resource.namespaced and len(rest) == 1
        ):
            raise NotFound("the server could not find the requested resource")
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if sub is not None and sub not in resource.subresources:
            raise NotFound("the server could not find the requested resource")
        route = _Route(resource, namespace, name, sub)
        self._authorize(method, route, query)
        if resource.kind == "SelfSubjectAccessReview":
            self._access_review(method, body)
            return
        if name is None:
            self._collection(method, route, query, body)
        elif sub == "log":
            self._pod_log(method, route, query)
        elif sub == "scale":
            self._scale(method, route, body, content_type)
        else:
            self._object(method, route, query, body, content_type)

    def _authorize(self, method: str, route: _Route, query: dict[str, str]) -> None:
        policy = self.fake.access
        if not policy.enforce:
            return
        verb = VERBS.get(method, "get")
        if method == "GET" and route.name is None:
            verb = "watch" if query.get("watch") in ("true", "1") else "list"
        elif method == "DELETE" and route.name is None:
            verb = "deletecollection"
        r = route.resource
        if not policy.decide(
            verb, r.plural, route.namespace or "", r.group, route.subresource or ""
        ):
            where = (
                f' in the namespace "{route.namespace}"'
                if route.namespace
                else " at the cluster scope"
            )
            raise Forbidden(
                f'{r.plural}{"." + r.group if r.group else ""} is forbidden: User "fake-user" '
                f'cannot {verb} resource "{r.plural}" in API group "{r.group}"{where}',
                kind=r.plural,
                name=route.name or "",
                group=r.group,
            )

    # --- handlers ----------------------------------------------------------------

    def _access_review(self, method: str, body: Any) -> None:
        if method != "POST":
            raise MethodNotAllowed(
                f"the server does not allow this method on selfsubjectaccessreviews: {method}"
            )
        if not isinstance(body, dict):
            raise BadRequest("a SelfSubjectAccessReview must be a JSON object")
        review = dict(body)
        review.setdefault("apiVersion", "authorization.k8s.io/v1")
        review.setdefault("kind", "SelfSubjectAccessReview")
        review.setdefault("metadata", {})
        causes = self.fake.schemas.errors(review)
        if causes:
            raise Invalid(
                "SelfSubjectAccessReview.authorization.k8s.io is invalid: "
                + ", ".join(f"{c['field']}: {c['message']}" for c in causes),
                kind="SelfSubjectAccessReview",
                group="authorization.k8s.io",
                causes=causes,
            )
        attrs = (review.get("spec") or {}).get("resourceAttributes")
        if attrs:
            allowed = self.fake.access.decide(
                attrs.get("verb", ""),
                attrs.get("resource", ""),
                attrs.get("namespace", ""),
                attrs.get("group", ""),
                attrs.get("subresource", ""),
            )
        else:
            allowed = self.fake.access.default
        review["status"] = {"allowed": allowed}
        if not allowed:
            review["status"]["reason"] = "denied by the fake cluster's access policy"
        self._send_json(201, review)

    def _collection(self, method: str, route: _Route, query: dict[str, str], body: Any) -> None:
        api, resource = self.fake.api, route.resource
        if method == "GET":
            if query.get("watch") in ("true", "1"):
                self._watch(route, query)
                return
            items, rv, token = api.list(
                resource,
                route.namespace,
                query.get("labelSelector", ""),
                query.get("fieldSelector", ""),
                int(query.get("limit") or 0),
                query.get("continue", ""),
            )
            meta: dict[str, Any] = {"resourceVersion": str(rv)}
            if token:
                meta["continue"] = token
            self._send_json(
                200,
                {
                    "kind": f"{resource.kind}List",
                    "apiVersion": resource.api_version,
                    "metadata": meta,
                    "items": items,
                },
            )
        elif method == "POST":
            created = api.create(
                resource, body, route.namespace, dry_run=query.get("dryRun") == "All"
            )
            self._send_json(201, created)
        elif method == "DELETE":
            options = body if isinstance(body, dict) else {}
            api.delete_collection(
                resource,
                route.namespace,
                query.get("labelSelector", ""),
                query.get("fieldSelector", ""),
                query.get("propagationPolicy") or options.get("propagationPolicy"),
            )
            self._send_json(
                200, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}
            )
        else:
            raise MethodNotAllowed(
                f"the server does not allow this method on the requested resource: {method}"
            )

    def _object(
        self, method: str, route: _Route, query: dict[str, str], body: Any, content_type: str
    ) -> None:
        api, resource, name = self.fake.api, route.resource, route.name
        assert name is not None
        dry_run = query.get("dryRun") == "All"
        if method == "GET":
            self._send_json(200, api.current(resource, name, route.namespace))
        elif method == "PUT":
            self._send_json(
                200, api.replace(resource, name, body, route.namespace, route.subresource, dry_run)
            )
        elif method == "PATCH":
            if content_type not in patching.PATCH_TYPES:
                error = error_for_code(
                    415, f"the body of the request was in an unknown format: {content_type}"
                )
                error.reason = "UnsupportedMediaType"
                raise error
            created_before = self.fake.store.find(resource, name, route.namespace) is not None
            result = api.patch(
                resource,
                name,
                content_type,
                body,
                route.namespace,
                route.subresource,
                query.get("fieldManager"),
                query.get("force") == "true",
                dry_run,
            )
            self._send_json(200 if created_before else 201, result)
        elif method == "DELETE":
            options = body if isinstance(body, dict) else {}
            deleted = api.delete(
                resource,
                name,
                route.namespace,
                query.get("propagationPolicy") or options.get("propagationPolicy"),
                options.get("preconditions"),
                dry_run,
            )
            if resource.delete_returns_object or deleted["metadata"].get("deletionTimestamp"):
                self._send_json(200, deleted)
            else:
                details = {"name": name, "kind": resource.plural, "uid": deleted["metadata"]["uid"]}
                if resource.group:
                    details["group"] = resource.group
                self._send_json(
                    200,
                    {
                        "kind": "Status",
                        "apiVersion": "v1",
                        "metadata": {},
                        "status": "Success",
                        "details": details,
                    },
                )
        else:
            raise MethodNotAllowed(
                f"the server does not allow this method on the requested resource: {method}"
            )

    def _scale(self, method: str, route: _Route, body: Any, content_type: str) -> None:
        api, resource, name = self.fake.api, route.resource, route.name
        assert name is not None
        if method == "GET":
            self._send_json(200, subresources.get_scale(api, resource, name, route.namespace))
        elif method == "PUT":
            self._send_json(
                200, subresources.update_scale(api, resource, name, body, route.namespace)
            )
        elif method == "PATCH":
            self._send_json(
                200,
                subresources.patch_scale(api, resource, name, content_type, body, route.namespace),
            )
        else:
            raise MethodNotAllowed(f"the server does not allow this method on scale: {method}")

    def _pod_log(self, method: str, route: _Route, query: dict[str, str]) -> None:
        if method != "GET":
            raise MethodNotAllowed("pod logs can only be read")
        assert route.name is not None
        pod = self.fake.api.current(route.resource, route.name, route.namespace)
        names = [c["name"] for c in pod["spec"].get("containers", [])]
        init_names = [c["name"] for c in pod["spec"].get("initContainers") or []]
        container = query.get("container")
        if container is None:
            if len(names) != 1:
                raise BadRequest(
                    f"a container name must be specified for pod {route.name}, "
                    f"choose one of: [{' '.join(names)}]"
                )
            container = names[0]
        if container not in names + init_names:
            raise BadRequest(f"container {container} is not valid for pod {route.name}")
        statuses = (pod.get("status") or {}).get("containerStatuses", []) + (
            pod.get("status") or {}
        ).get("initContainerStatuses", [])
        text = self.fake.logs.get(route.namespace or "", route.name, container)
        for status in statuses:
            waiting = (status.get("state") or {}).get("waiting") or {}
            if (
                status.get("name") == container
                and waiting.get("reason") in WAITING_WITHOUT_LOGS
                and not text
            ):
                raise BadRequest(
                    f'container "{container}" in pod "{route.name}" is waiting to start: '
                    f"{waiting['reason']}"
                )
        lines = (text or "").splitlines(keepends=True)
        tail = query.get("tailLines")
        if tail is not None:
            lines = lines[-int(tail) :] if int(tail) > 0 else []
        self._record.status = 200
        self._send(200, "".join(lines).encode(), "text/plain")

    # --- watch -------------------------------------------------------------------

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _watch(self, route: _Route, query: dict[str, str]) -> None:
        resource, store = route.resource, self.fake.store
        labels = parse_label_selector(query.get("labelSelector", ""))
        fields = parse_field_selector(
            query.get("fieldSelector", ""),
            ("metadata.name", "metadata.namespace", *resource.extra_field_selectors),
            resource.kind,
        )

        def matches(obj: Obj | None) -> bool:
            if obj is None:
                return False
            meta = obj.get("metadata", {})
            if route.namespace and meta.get("namespace") != route.namespace:
                return False
            return labels(meta.get("labels") or {}) and fields(obj)

        start = query.get("resourceVersion", "")
        initial: list[tuple[str, Obj]] = []
        if start in ("", "0"):
            cursor, snapshot = store.snapshot([resource])
            initial = [("ADDED", obj) for _, obj in snapshot if matches(obj)]
        else:
            cursor = int(start) if start.isdigit() else 0
            try:
                store.events_after(cursor)
            except Gone as gone:
                self._record.status = 200
                self._start_stream()
                self._chunk(
                    json.dumps({"type": "ERROR", "object": gone.to_status()}).encode() + b"\n"
                )
                self._chunk(b"")
                return
        self._record.status = 200
        self._start_stream()
        deadline = time.monotonic() + float(query.get("timeoutSeconds") or 1800)
        try:
            for event_type, obj in initial:
                self._chunk(json.dumps({"type": event_type, "object": obj}).encode() + b"\n")
            while not store.closed and (remaining := deadline - time.monotonic()) > 0:
                for event in store.wait_after(cursor, min(remaining, 1.0)):
                    cursor = event.resource_version
                    translated = self._translate(event, resource, matches)
                    if translated is not None:
                        self._chunk(
                            json.dumps({"type": translated, "object": event.object}).encode()
                            + b"\n"
                        )
            self._chunk(b"")
        except Gone as gone:  # the history moved past this watch while it waited
            self._chunk(json.dumps({"type": "ERROR", "object": gone.to_status()}).encode() + b"\n")
            self._chunk(b"")
        except (BrokenPipeError, ConnectionResetError, OSError):
            self.close_connection = True

    def _start_stream(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    @staticmethod
    def _translate(event: StoreEvent, resource: ResourceType, matches: Any) -> str | None:
        """The event a filtered watch shows: objects entering or leaving the filter are
        ADDED or DELETED, as the API server reports them."""
        if event.resource.resource_id != resource.resource_id:
            return None
        now_matches = matches(event.object)
        if event.type != "MODIFIED":
            return event.type if now_matches else None
        was_matching = matches(event.old)
        if was_matching and now_matches:
            return "MODIFIED"
        if now_matches:
            return "ADDED"
        return "DELETED" if was_matching else None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    fake: FakeKube
