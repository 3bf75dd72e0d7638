"""What a deploy asks for: a name, models, an inference and a deployment configuration."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from deployer.config import DeploymentConfiguration
from deployer.errors import DeployConfigError
from deployer.inference import InferenceConfig, Model, check_models

# v1 web service names: 3 to 32 characters, lowercase letters, digits and dashes, starting
# with a letter; they become DNS labels and Kubernetes object names.
_SERVICE_NAME = re.compile(r"^[a-z][a-z0-9-]{1,30}[a-z0-9]$")


def check_service_name(name: str) -> str:
    if not _SERVICE_NAME.fullmatch(name):
        raise DeployConfigError(
            "name",
            f"{name!r}: 3 to 32 lowercase letters, digits and dashes, starting with a letter "
            "and not ending with a dash",
        )
    return name


@dataclass(frozen=True)
class DeployRequest:
    name: str
    models: tuple[Model, ...]
    inference: InferenceConfig
    config: DeploymentConfiguration = field(default_factory=DeploymentConfiguration)

    def __post_init__(self) -> None:
        check_service_name(self.name)
        object.__setattr__(self, "models", check_models(self.models))

    def fingerprint(self) -> str:
        """The settings (not the files) that make a release different, for the digest."""
        settings = {
            "config": self.config.to_dict(),
            "environment": {
                "image": self.inference.environment.image,
                "requirements": list(self.inference.environment.local_requirements()),
            },
        }
        return json.dumps(settings, sort_keys=True)
