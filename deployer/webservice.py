"""The Python API, with names a v1 user recognises.

    from deployer import deploy, deploy_configuration, InferenceConfig, Model, Webservice

    service = deploy("iris", [Model(path=Path("model.joblib"))],
                     InferenceConfig("score.py", Path("src")),
                     deploy_configuration(num_replicas=2), target="local")
    service.wait_for_deployment(show_output=True)
    service.state, service.scoring_uri, service.get_keys(), service.get_logs()
    service.regen_key("Primary"); service.get_access_token(); service.update(...)
    service.delete()

`deploy` runs the preflight gate first (when given a `Gate` with an environment config)
and returns at once, the service `Transitioning`, as `Model.deploy` did; waiting is
`wait_for_deployment`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Protocol

from deployer.config import DeploymentConfiguration, merge_deployment_config
from deployer.errors import DeployConfigError
from deployer.gate import Gate, Step, run_gate
from deployer.inference import InferenceConfig, Model
from deployer.progress import Progress
from deployer.request import DeployRequest
from deployer.states import ServiceInfo, ServiceState

Say = Callable[[str], None]
DEFAULT_TIMEOUT = 600.0


def _to_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class Target(Protocol):
    """What a deployment target does; `LocalTarget` and `KubernetesTarget` implement it."""

    name: str

    def deploy(
        self,
        request: DeployRequest,
        *,
        wait: bool = ...,
        timeout: float = ...,
        say: Say = ...,
        plan: Any = ...,
    ) -> ServiceInfo: ...

    def wait(self, name: str, timeout: float, *args: Any, **kwargs: Any) -> None: ...

    def info(self, name: str) -> ServiceInfo: ...

    def list(self) -> list[ServiceInfo]: ...

    def keys(self, name: str) -> tuple[str, str]: ...

    def token(self, name: str) -> tuple[str, datetime]: ...

    def regen_key(self, name: str, which: str, value: str | None = None) -> tuple[str, str]: ...

    def logs(self, name: str, tail: int = ..., init: bool = ...) -> str: ...

    def delete(self, name: str) -> None: ...

    def needs_router_install(self) -> bool: ...

    def last_request(self, name: str) -> DeployRequest: ...


def get_target(kind: str = "local", **options: Any) -> Target:
    """`local` (this machine) or `kubernetes` (`context=`, `kubeconfig=`, ... )."""
    if kind == "local":
        from deployer.local.target import LocalTarget

        return LocalTarget(**options)
    if kind == "kubernetes":
        from deployer.kube.target import KubernetesTarget

        return KubernetesTarget(**options)
    raise DeployConfigError("target", f"{kind!r}: choose local or kubernetes")


class Webservice:
    """A deployed service on a target, as v1's `Webservice`/`AksWebservice`."""

    def __init__(self, target: Target, name: str, gate: Gate | None = None) -> None:
        self.target = target
        self.name = name
        self.gate = gate or Gate()

    def __repr__(self) -> str:
        return f"Webservice(name={self.name!r}, target={self.target.name!r})"

    # --- what v1 exposed as attributes -------------------------------------------------------

    def info(self) -> ServiceInfo:
        return self.target.info(self.name)

    @property
    def state(self) -> str:
        return self.info().state.value

    @property
    def scoring_uri(self) -> str:
        return self.info().scoring_uri

    @property
    def swagger_uri(self) -> str:
        return self.info().swagger_uri

    # --- operations ----------------------------------------------------------------------------

    def wait_for_deployment(
        self, show_output: bool = False, timeout_sec: float = DEFAULT_TIMEOUT
    ) -> ServiceState:
        """Until Healthy; raises DeploymentFailed (with the diagnosis) otherwise."""
        with Progress(show_output) as say:
            self.target.wait(self.name, timeout_sec, say=say, plan=self.gate.full_plan())
        return self.info().state

    def get_keys(self) -> tuple[str, str]:
        return self.target.keys(self.name)

    def regen_key(self, key: str, set_key: str | None = None) -> tuple[str, str]:
        """`key` is "Primary" or "Secondary"; `set_key` gives the new value (else random)."""
        return self.target.regen_key(self.name, key, set_key)

    def get_access_token(self) -> tuple[str, datetime]:
        """`(token, refresh_by)`: fetch a new token after `refresh_by`."""
        return self.target.token(self.name)

    get_token = get_access_token  # the deprecated v1 name

    def get_logs(self, num_lines: int = 5000, init: bool = False) -> str:
        return self.target.logs(self.name, num_lines, init)

    def update(
        self,
        models: Sequence[Model] | None = None,
        inference_config: InferenceConfig | None = None,
        *,
        wait: bool = True,
        show_output: bool = False,
        timeout_sec: float = DEFAULT_TIMEOUT,
        **deploy_parameters: Any,
    ) -> ServiceInfo:
        """Change what is given; keep the rest (models, code, configuration) as deployed."""
        current = self.target.last_request(self.name)
        config = merge_deployment_config(current.config, **deploy_parameters)
        request = DeployRequest(
            self.name,
            tuple(models) if models is not None else current.models,
            inference_config or current.inference,
            config,
        )
        return deploy_request(
            self.target,
            request,
            self.gate,
            wait=wait,
            show_output=show_output,
            timeout=timeout_sec,
        )

    def delete(self) -> None:
        self.target.delete(self.name)

    @staticmethod
    def list(target: Target) -> list[ServiceInfo]:
        return target.list()


def deploy_request(
    target: Target,
    request: DeployRequest,
    gate: Gate,
    *,
    wait: bool,
    show_output: bool,
    timeout: float,
) -> ServiceInfo:
    """Gate (router-install first when the target has no router yet), then deploy."""
    with Progress(show_output) as say:
        notice = say if show_output else _to_stderr  # what the gate says is never hidden
        if target.needs_router_install():
            run_gate(gate, Step.ROUTER, notice)
        result = run_gate(gate, Step.SERVICE, notice)
        plan = result.plan or gate.full_plan()
        return target.deploy(request, wait=wait, timeout=timeout, say=say, plan=plan)


def deploy(
    name: str,
    models: Sequence[Model],
    inference_config: InferenceConfig,
    deployment_config: DeploymentConfiguration | None = None,
    target: Target | str = "local",
    *,
    gate: Gate | None = None,
    wait: bool = False,
    show_output: bool = False,
    timeout_sec: float = DEFAULT_TIMEOUT,
) -> Webservice:
    """v1's `Model.deploy`: gate, then deploy; `wait=True` also waits for Healthy."""
    chosen = get_target(target) if isinstance(target, str) else target
    request = DeployRequest(
        name, tuple(models), inference_config, deployment_config or DeploymentConfiguration()
    )
    gate = gate or Gate()
    deploy_request(chosen, request, gate, wait=wait, show_output=show_output, timeout=timeout_sec)
    return Webservice(chosen, name, gate)
