"""`aksflight deploy NAME`: deploy a v1-style model service, after the preflight gate.

    aksflight deploy iris --model model.joblib --entry-script score.py \\
        [--source-directory DIR] [--requirements FILE] [--image IMAGE] [--deploy-config FILE]
        [--target local|kubernetes] [--context CTX] [--dry-run] [-o table|json|yaml]
        [-c ENV.yaml [--skip-preflight]]

Exit codes: 0 Healthy (or manifests printed); 1 the gate or the deployment failed (the
findings or the diagnosis are printed); 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from aksflight.commands.image import ImageFailed, environment_image, registry_flags
from aksflight.errors import UsageError

OUTPUTS = ("table", "json", "yaml")
TARGETS = ("local", "kubernetes")


def add_target_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--target", choices=TARGETS, default="local", help="default: local")
    parser.add_argument(
        "--namespace",
        metavar="NS",
        help="kubernetes: the services' namespace (default: the deploy config's, else default)",
    )
    parser.add_argument(
        "--router-image", metavar="IMAGE", help="kubernetes: the router's container image"
    )


def add_deploy_flags(parser: argparse.ArgumentParser, *, update: bool = False) -> None:
    """The deploy contract (kept stable for scripts); `update` makes the inputs optional."""
    parser.add_argument("name", metavar="NAME", help="the service name (3-32 characters)")
    parser.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="PATH",
        help="a model file or directory, NAME[:VERSION]=PATH, or an http(s) URI (repeatable)",
    )
    parser.add_argument(
        "--entry-script", required=not update, metavar="FILE", help="the v1 score.py"
    )
    parser.add_argument("--source-directory", type=Path, metavar="DIR")
    parser.add_argument("--requirements", type=Path, metavar="FILE", help="pip requirements")
    parser.add_argument("--image", metavar="IMAGE", help="the model server's container image")
    parser.add_argument(
        "--environment",
        type=Path,
        metavar="FILE",
        help="kubernetes: an environment file; its image is looked up in --registry, then "
        "--shared-registry, and built without a daemon only when neither has it",
    )
    parser.add_argument("--registry", metavar="HOST/REPO", help="the workspace registry")
    parser.add_argument("--shared-registry", metavar="HOST/REPO", help="a shared registry")
    registry_flags(parser)
    parser.add_argument(
        "--deploy-config", type=Path, metavar="FILE", help="YAML with v1's parameter names"
    )
    add_target_flags(parser)
    parser.add_argument(
        "--dry-run", action="store_true", help="kubernetes: print the manifests, apply nothing"
    )
    parser.add_argument("-o", "--output", choices=OUTPUTS, default="table")
    parser.add_argument(
        "-c", "--config", type=Path, metavar="FILE", help="environment config for the gate"
    )
    parser.add_argument("--catalogue", action="append", default=[], type=Path, metavar="FILE")
    parser.add_argument(
        "--skip-preflight", action="store_true", help="deploy even if the gate would stop it"
    )
    parser.add_argument(
        "--wait-timeout", type=float, default=600.0, metavar="S", help="default 600"
    )
    parser.add_argument("--no-wait", action="store_true", help="return without waiting")
    parser.add_argument("--no-progress", action="store_true", help="no live progress display")
    from aksflight.commands.check import add_probe_flags

    add_probe_flags(parser)


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "deploy",
        help="deploy a model service (local processes or Kubernetes), gated by preflight",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_deploy_flags(parser)
    parser.set_defaults(handler=run)


# --- turning flags into the deployer's inputs ------------------------------------------------


def translate(exc: Exception) -> Exception:
    """The deployer's bad-input errors become UsageError (exit 2)."""
    return UsageError(str(exc))


def make_target(args: argparse.Namespace) -> Any:
    from deployer.webservice import get_target

    if args.target == "kubernetes":
        options: dict[str, Any] = {
            "context": args.context,
            "kubeconfig": getattr(args, "kubeconfig", None),
        }
        if getattr(args, "namespace", None):
            options["namespace"] = args.namespace
        if getattr(args, "router_image", None):
            options["router_image"] = args.router_image
        return get_target("kubernetes", **options)
    return get_target("local")


def build_gate(args: argparse.Namespace) -> Any:
    from aksflight.commands.check import probe_options
    from aksflight.config_file import load_catalogue, load_config
    from deployer.gate import Gate

    if args.config is None:
        return Gate(skip=args.skip_preflight)
    config = load_config(args.config)
    extra = [load_catalogue(path) for path in args.catalogue]
    options = probe_options(args, list(config.network.nameservers))
    return Gate(config=config, options=options, skip=args.skip_preflight, extra_catalogues=extra)


def build_inputs(args: argparse.Namespace, current: Any = None) -> Any:
    """A DeployRequest from the flags; with `current` (update), what is not given is kept."""
    from deployer.config import (
        DeploymentConfiguration,
        load_deployment_config,
        merge_deployment_config,
    )
    from deployer.inference import Environment, InferenceConfig, model_from_argument
    from deployer.inference import read_requirements as read_reqs
    from deployer.request import DeployRequest

    models = tuple(model_from_argument(text) for text in args.model)
    if current is None and not models:
        raise UsageError("deploy: give at least one --model")
    config: DeploymentConfiguration
    if args.deploy_config is not None:
        loaded = load_deployment_config(args.deploy_config)
        config = merge_deployment_config(current.config, **loaded.given()) if current else loaded
    else:
        config = current.config if current else DeploymentConfiguration()
    inference = current.inference if current else None
    changes_code = args.entry_script or args.source_directory or args.requirements or args.image
    if inference is None or changes_code:
        base_env = inference.environment if inference else Environment()
        environment = Environment(
            image=args.image or base_env.image,
            pip_requirements=read_reqs(args.requirements)
            if args.requirements
            else base_env.pip_requirements,
        )
        if args.entry_script:
            inference = InferenceConfig(args.entry_script, args.source_directory, environment)
        else:
            assert inference is not None
            inference = InferenceConfig(
                inference.entry_script, inference.source_directory, environment
            )
    return DeployRequest(args.name, models or current.models, inference, config)


# --- output ----------------------------------------------------------------------------------


def emit(data: Any, output: str) -> None:
    if output == "json":
        print(json.dumps(data, indent=2))
    elif output == "yaml":
        print(yaml.safe_dump(data, sort_keys=False), end="")


def print_service(info: Any, target: Any, output: str) -> None:
    data = info.to_dict()
    if output != "table":
        emit(data, output)
        return
    print(f"Service {info.name}: {info.state.value}" + (f" ({info.detail})" if info.detail else ""))
    print(f"Scoring URI: {info.scoring_uri}")
    print(f"Swagger URI: {info.swagger_uri}")
    print(f"Auth: {info.auth}")
    if info.auth == "key":
        primary, _ = target.keys(info.name)
        print(f"Primary key: {primary}")
        print(
            f"  curl -H 'Authorization: Bearer {primary}' -H 'Content-Type: application/json' "
            f"-d @sample-request.json {info.scoring_uri}"
        )
    elif info.auth == "token":
        print(f"Token: aksflight service token {info.name}")


def report_failure(exc: Exception) -> int:
    """Gate or deployment failure: findings/diagnosis on stdout, one line on stderr, exit 1."""
    from deployer.errors import DeploymentFailed, GateFailed

    if isinstance(exc, GateFailed):
        sys.stdout.write(exc.report if exc.report.endswith("\n") else exc.report + "\n")
    elif isinstance(exc, DeploymentFailed) and exc.diagnosis is not None:
        print("\n".join(exc.diagnosis.lines()))
    print(f"aksflight: {exc}", file=sys.stderr)
    return 1


def deploy_or_update(args: argparse.Namespace, *, update: bool) -> int:
    from deployer.errors import (
        DeployConfigError,
        DeployerError,
        ServiceNotFound,
    )
    from deployer.webservice import deploy_request

    try:
        if getattr(args, "environment", None) is not None:
            if args.target != "kubernetes":
                raise UsageError(
                    "--environment: only for --target kubernetes (local uses --requirements)"
                )
            if args.image:
                raise UsageError("--environment and --image: give one of them")
            try:
                args.image = environment_image(args)
            except ImageFailed as exc:
                print(f"aksflight: {exc}", file=sys.stderr)
                return 1
        target = make_target(args)
        if args.dry_run:
            if args.target != "kubernetes":
                raise UsageError("--dry-run: only for --target kubernetes (prints manifests)")
            request = build_inputs(args, target.last_request(args.name) if update else None)
            print(target.render(request, output=args.output), end="")
            return 0
        gate = build_gate(args)
        if gate.config is not None and args.target == "kubernetes":
            # DevTest clusters disable the router's own autoscaling, as in v1.
            purpose = gate.config.cluster.purpose
            target.cluster_purpose = "DevTest" if purpose == "DevTest" else "FastProd"
        request = build_inputs(args, target.last_request(args.name) if update else None)
        info = deploy_request(
            target,
            request,
            gate,
            wait=not args.no_wait,
            show_output=args.output == "table" and not args.no_progress,
            timeout=args.wait_timeout,
        )
    except (DeployConfigError, ServiceNotFound) as exc:
        raise translate(exc) from None
    except DeployerError as exc:
        return report_failure(exc)
    print_service(info, target, args.output)
    return 0


def run(args: argparse.Namespace) -> int:
    return deploy_or_update(args, update=False)
