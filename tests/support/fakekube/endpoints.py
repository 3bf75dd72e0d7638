"""The Endpoints and EndpointSlice controllers: a Service's selector picks pods with an
IP; ready ones are addresses, the others notReadyAddresses (or ready: false)."""

from __future__ import annotations

from .api import Api
from .kubelet import is_ready
from .objects import clone
from .ownership import owner_ref, template_hash
from .resources import ResourceType
from .selectors import label_selector_matcher
from .store import Obj


class EndpointsController:
    """Keeps each selector Service's Endpoints and EndpointSlice in step with its pods."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self._types = {
            k: api.registry.resolve(k) for k in ("Service", "Pod", "Endpoints", "EndpointSlice")
        }

    def reconcile_namespace(self, ns: str) -> None:
        for service in self.api.store.list(self._types["Service"], ns):
            self.reconcile(ns, service["metadata"]["name"])

    def reconcile(self, ns: str, name: str) -> None:
        service = self.api.store.find(self._types["Service"], name, ns)
        if service is None or not service["spec"].get("selector"):
            return
        match = label_selector_matcher({"matchLabels": service["spec"]["selector"]})
        pods = [
            p
            for p in self.api.store.list(
                self._types["Pod"], ns, predicate=lambda o: match(o["metadata"].get("labels") or {})
            )
            if (p.get("status") or {}).get("podIP")
            and (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
        ]
        ports = service["spec"].get("ports") or []

        def target(port: Obj, pod: Obj | None) -> int:
            wanted = port.get("targetPort", port.get("port"))
            if isinstance(wanted, int):
                return wanted
            for container in (pod or {}).get("spec", {}).get("containers", []):
                for cp in container.get("ports") or []:
                    if cp.get("name") == wanted:
                        return int(cp["containerPort"])
            return int(port.get("port", 0))

        def ref(pod: Obj) -> Obj:
            return {
                "kind": "Pod",
                "name": pod["metadata"]["name"],
                "namespace": ns,
                "uid": pod["metadata"]["uid"],
            }

        sample = pods[0] if pods else None
        port_list = [
            {
                k: v
                for k, v in {
                    "name": p.get("name"),
                    "port": target(p, sample),
                    "protocol": p.get("protocol", "TCP"),
                }.items()
                if v is not None
            }
            for p in ports
        ]
        ready = [
            {"ip": p["status"]["podIP"], "nodeName": p["spec"].get("nodeName"), "targetRef": ref(p)}
            for p in pods
            if is_ready(p)
        ]
        not_ready = [
            {"ip": p["status"]["podIP"], "nodeName": p["spec"].get("nodeName"), "targetRef": ref(p)}
            for p in pods
            if not is_ready(p)
        ]
        subset: Obj = {"ports": port_list}
        if ready:
            subset["addresses"] = ready
        if not_ready:
            subset["notReadyAddresses"] = not_ready
        endpoints: Obj = {
            "metadata": {
                "name": name,
                "labels": clone(service["metadata"].get("labels") or {}),
            }
        }
        if pods:
            endpoints["subsets"] = [subset]
        self._put(self._types["Endpoints"], ns, name, endpoints)
        slice_name = f"{name}-{template_hash({'uid': service['metadata']['uid']})[:5]}"
        endpoint_slice: Obj = {
            "metadata": {
                "name": slice_name,
                "labels": {
                    "kubernetes.io/service-name": name,
                    "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
                },
                "ownerReferences": [owner_ref(service)],
            },
            "addressType": "IPv4",
            "endpoints": [
                {
                    "addresses": [p["status"]["podIP"]],
                    "conditions": {
                        "ready": is_ready(p),
                        "serving": is_ready(p),
                        "terminating": False,
                    },
                    "nodeName": p["spec"].get("nodeName"),
                    "targetRef": ref(p),
                }
                for p in pods
            ],
            "ports": port_list,
        }
        self._put(self._types["EndpointSlice"], ns, slice_name, endpoint_slice)

    def _put(self, resource: ResourceType, ns: str, name: str, body: Obj) -> None:
        """Create or replace a controller-owned object; a no-op when nothing changed."""
        existing = self.api.store.find(resource, name, ns)
        if existing is None:
            self.api.create(resource, body, ns)
        else:
            body["metadata"]["resourceVersion"] = existing["metadata"]["resourceVersion"]
            self.api.replace(resource, name, body, ns)
