"""The deployer: v1-style model web services on this machine or on Kubernetes, behind the
router, after the preflight says the network allows it.

    from deployer import (deploy, deploy_configuration, InferenceConfig, Environment,
                          Model, Webservice, Gate)
    service = deploy("iris", [Model(path=Path("model.joblib"))],
                     InferenceConfig("score.py", Path("src"), Environment(...)),
                     deploy_configuration(num_replicas=2), target="local")
    service.wait_for_deployment(show_output=True)

Targets: `local` (`deployer.local.LocalTarget`) and `kubernetes`
(`deployer.kube.KubernetesTarget`); `get_target(kind, ...)` makes one. Errors are drawn in
`deployer.errors`.

The names load on first use, so a process that needs only one module (the local
supervisor) does not import them all.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from deployer.config import (
        DeploymentConfiguration,
        deploy_configuration,
        load_deployment_config,
    )
    from deployer.errors import (
        DeployConfigError,
        DeployerError,
        DeploymentFailed,
        EnvironmentBuildError,
        GateFailed,
        HpaConflict,
        KubeApiError,
        ServiceNotFound,
        TargetError,
    )
    from deployer.gate import (
        Gate,
        Step,
    )
    from deployer.inference import (
        Environment,
        InferenceConfig,
        Model,
        load_inference_config,
    )
    from deployer.request import (
        DeployRequest,
    )
    from deployer.states import (
        ServiceInfo,
        ServiceState,
    )
    from deployer.webservice import (
        Webservice,
        deploy,
        deploy_request,
        get_target,
    )

_EXPORTS = {
    "DeploymentConfiguration": "deployer.config",
    "deploy_configuration": "deployer.config",
    "load_deployment_config": "deployer.config",
    "DeployConfigError": "deployer.errors",
    "DeployerError": "deployer.errors",
    "DeploymentFailed": "deployer.errors",
    "EnvironmentBuildError": "deployer.errors",
    "GateFailed": "deployer.errors",
    "HpaConflict": "deployer.errors",
    "KubeApiError": "deployer.errors",
    "ServiceNotFound": "deployer.errors",
    "TargetError": "deployer.errors",
    "Gate": "deployer.gate",
    "Step": "deployer.gate",
    "Environment": "deployer.inference",
    "InferenceConfig": "deployer.inference",
    "Model": "deployer.inference",
    "load_inference_config": "deployer.inference",
    "DeployRequest": "deployer.request",
    "ServiceInfo": "deployer.states",
    "ServiceState": "deployer.states",
    "Webservice": "deployer.webservice",
    "deploy": "deployer.webservice",
    "deploy_request": "deployer.webservice",
    "get_target": "deployer.webservice",
}

__all__ = [
    "DeployConfigError",
    "DeployRequest",
    "DeployerError",
    "DeploymentConfiguration",
    "DeploymentFailed",
    "Environment",
    "EnvironmentBuildError",
    "Gate",
    "GateFailed",
    "HpaConflict",
    "InferenceConfig",
    "KubeApiError",
    "Model",
    "ServiceInfo",
    "ServiceNotFound",
    "ServiceState",
    "Step",
    "TargetError",
    "Webservice",
    "deploy",
    "deploy_configuration",
    "deploy_request",
    "get_target",
    "load_deployment_config",
    "load_inference_config",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'deployer' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value
