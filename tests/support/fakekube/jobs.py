"""The Job controller: runs pods until completions succeed or the backoff limit fails the
Job, with the conditions and Events a real one writes."""

from __future__ import annotations

from .api import Api
from .events import record_event
from .objects import clone, now, random_suffix
from .ownership import create_pod, owned
from .store import Obj


class JobController:
    """Reconciles one Job at a time; pods' own events bring it back here."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self._job_type = api.registry.resolve("Job")
        self._pod_type = api.registry.resolve("Pod")

    def reconcile(self, ns: str, name: str) -> None:
        job_type = self._job_type
        job = self.api.store.find(job_type, name, ns)
        if job is None or job["metadata"].get("deletionTimestamp"):
            return
        status = clone(job.get("status") or {})
        if any(
            c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
            for c in status.get("conditions") or []
        ):
            return
        spec = job["spec"]
        if spec.get("suspend"):
            return
        pods = owned(self.api, self._pod_type, job)
        phases = [(p.get("status") or {}).get("phase") for p in pods]
        succeeded, failed = phases.count("Succeeded"), phases.count("Failed")
        active = len(pods) - succeeded - failed
        completions, parallelism = int(spec.get("completions", 1)), int(spec.get("parallelism", 1))
        backoff_limit = int(spec.get("backoffLimit", 6))
        stamp = now()
        conditions: list[Obj] = []
        if succeeded >= completions:
            conditions = [
                {
                    "type": "SuccessCriteriaMet",
                    "status": "True",
                    "reason": "CompletionsReached",
                    "message": "Reached expected number of succeeded pods",
                    "lastProbeTime": stamp,
                    "lastTransitionTime": stamp,
                },
                {
                    "type": "Complete",
                    "status": "True",
                    "reason": "CompletionsReached",
                    "message": "Reached expected number of succeeded pods",
                    "lastProbeTime": stamp,
                    "lastTransitionTime": stamp,
                },
            ]
            status["completionTime"] = stamp
            record_event(
                self.api, job, "Completed", "Job completed", "Normal", component="job-controller"
            )
        elif failed > backoff_limit:
            conditions = [
                {
                    "type": "FailureTarget",
                    "status": "True",
                    "reason": "BackoffLimitExceeded",
                    "message": "Job has reached the specified backoff limit",
                    "lastProbeTime": stamp,
                    "lastTransitionTime": stamp,
                },
                {
                    "type": "Failed",
                    "status": "True",
                    "reason": "BackoffLimitExceeded",
                    "message": "Job has reached the specified backoff limit",
                    "lastProbeTime": stamp,
                    "lastTransitionTime": stamp,
                },
            ]
            record_event(
                self.api,
                job,
                "BackoffLimitExceeded",
                "Job has reached the specified backoff limit",
                component="job-controller",
            )
        else:
            for _ in range(min(parallelism, completions - succeeded) - active):
                pod = create_pod(self.api, self._pod_type, job, f"{name}-{random_suffix()}")
                record_event(
                    self.api,
                    job,
                    "SuccessfulCreate",
                    f"Created pod: {pod['metadata']['name']}",
                    "Normal",
                    component="job-controller",
                )
            return  # the new pods' own events bring the Job back here
        status.update(
            {
                "active": 0,
                "succeeded": succeeded,
                "failed": failed,
                "ready": 0,
                "terminating": 0,
                "startTime": status.get("startTime") or job["metadata"]["creationTimestamp"],
                "conditions": conditions,
                "uncountedTerminatedPods": {},
            }
        )
        job["status"] = {k: v for k, v in status.items() if v != 0 or k in ("ready", "terminating")}
        self.api.update_status(job_type, job)
