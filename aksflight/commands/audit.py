"""`aksflight audit`: does an existing Azure Firewall policy allow what the deployment needs?

Reads the policy from a JSON file (a rule collection group, a list of them, an ARM template
export or a classic Azure Firewall) or, with `--live`, from Azure Resource Manager through
azure-identity's DefaultAzureCredential. Exit 1 when a required host is not allowed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from aksflight.commands.allowlist import write_output
from aksflight.commands.common import add_config_flags, load_requirements, parse_phases
from aksflight.config_file import MAX_FILE_BYTES
from aksflight.errors import UsageError
from reports.allowlist import AllowlistError, build_allowlist
from reports.audit import AUDIT_FORMATS, AuditError, audit_policy, load_policy, render_audit
from rules.names import check_cidr

_CLOUDS = {
    "public": "AZURE_PUBLIC_CLOUD",
    "china": "AZURE_CHINA_CLOUD",
    "usgov": "AZURE_US_GOVERNMENT",
}
_AUTHORITIES = {"public": "AZURE_PUBLIC_CLOUD", "china": "AZURE_CHINA", "usgov": "AZURE_GOVERNMENT"}


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "audit",
        help="check an existing Azure Firewall policy against the requirements",
        description="Evaluate an Azure Firewall policy the way the firewall does and report, "
        "for each requirement, which rule allows or denies it. Exit 1 when a required host "
        "is not allowed.",
    )
    add_config_flags(parser)
    parser.add_argument(
        "--policy",
        metavar="FILE.json",
        help="the policy as JSON (rule collection group(s), ARM export, or "
        "a classic Azure Firewall)",
    )
    parser.add_argument("-o", "--output", choices=tuple(AUDIT_FORMATS), default="table")
    parser.add_argument(
        "--out",
        dest="out_file",
        metavar="FILE",
        help="write the report to this file (default: standard output)",
    )
    parser.add_argument(
        "--source-cidr",
        action="append",
        default=[],
        metavar="CIDR",
        help="a node subnet (repeatable; default: network.source_cidrs)",
    )
    live = parser.add_argument_group("live (read the policy from Azure)")
    live.add_argument("--live", action="store_true", help="read the policy from Azure")
    live.add_argument("--subscription", metavar="S")
    live.add_argument("--resource-group", metavar="G")
    live.add_argument("--policy-name", metavar="P")
    live.add_argument(
        "--arm-endpoint", metavar="URL", help="Resource Manager URL (default: the config's cloud)"
    )
    parser.set_defaults(handler=run)


def _read_policy_file(path: str) -> Any:
    file = Path(path)
    try:
        if file.stat().st_size > MAX_FILE_BYTES:
            raise UsageError(f"{path}: the policy is larger than {MAX_FILE_BYTES} bytes")
        text = file.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise UsageError(f"{path}: policy file not found") from None
    except UnicodeDecodeError:
        raise UsageError(f"{path}: the policy is not UTF-8 text") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the policy ({exc.strerror})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path}: not valid JSON at line {exc.lineno}: {exc.msg}") from None
    except RecursionError:
        raise UsageError(f"{path}: the policy is nested too deeply") from None


def fetch_live_policy(
    subscription: str,
    resource_group: str,
    policy_name: str,
    *,
    cloud: str = "public",
    credential: Any = None,
    base_url: str | None = None,
    **client_options: Any,
) -> dict[str, Any]:
    """The policy's rule collection groups from Resource Manager, as `{"value": [...]}`.

    `credential` defaults to DefaultAzureCredential for the config's cloud; `base_url` and
    `client_options` (such as `connection_verify`) are passed to the SDK client.
    """
    from azure.core import AzureClouds
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ResourceNotFoundError,
        ServiceRequestError,
    )
    from azure.identity import AzureAuthorityHosts, DefaultAzureCredential
    from azure.mgmt.network import NetworkManagementClient

    if credential is None:
        authority = getattr(AzureAuthorityHosts, _AUTHORITIES[cloud])
        credential = DefaultAzureCredential(authority=authority)
    client = NetworkManagementClient(
        credential,
        subscription,
        base_url=base_url,
        cloud_setting=AzureClouds[_CLOUDS[cloud]],
        **client_options,
    )
    where = f"firewall policy {policy_name} in resource group {resource_group}"
    try:
        policy = client.firewall_policies.get(resource_group, policy_name)
        groups = [
            group.as_dict()
            for group in client.firewall_policy_rule_collection_groups.list(
                resource_group, policy_name
            )
        ]
    except ResourceNotFoundError:
        raise UsageError(f"{where}: not found") from None
    except ClientAuthenticationError as exc:
        raise UsageError(f"cannot sign in to Azure: {_first_line(exc)}") from None
    except HttpResponseError as exc:
        raise UsageError(f"{where}: Azure answered {exc.status_code}: {_first_line(exc)}") from None
    except ServiceRequestError as exc:
        raise UsageError(f"cannot reach Azure Resource Manager: {_first_line(exc)}") from None
    finally:
        client.close()
    document: dict[str, Any] = {"value": groups}
    if policy.properties is not None and policy.properties.base_policy is not None:
        document["basePolicy"] = policy.properties.base_policy.id
    return document


def _first_line(exc: Exception) -> str:
    message = getattr(exc, "message", None) or str(exc)
    return str(message).strip().splitlines()[0] if str(message).strip() else type(exc).__name__


def _policy_document(args: argparse.Namespace, cloud: str, **live_options: Any) -> Any:
    if args.live:
        if args.policy:
            raise UsageError("--policy and --live: give one of them")
        missing = [
            f for f in ("subscription", "resource_group", "policy_name") if not getattr(args, f)
        ]
        if missing:
            flags = ", ".join("--" + f.replace("_", "-") for f in missing)
            raise UsageError(f"--live needs {flags}")
        return fetch_live_policy(
            args.subscription,
            args.resource_group,
            args.policy_name,
            cloud=cloud,
            base_url=args.arm_endpoint,
            **live_options,
        )
    if not args.policy:
        raise UsageError("give --policy FILE.json, or --live with the policy's coordinates")
    return _read_policy_file(args.policy)


def run(args: argparse.Namespace, **live_options: Any) -> int:
    """`live_options` (credential, connection_verify) are for tests of `--live`."""
    config, requirements = load_requirements(args)
    phases = parse_phases(args.phase)
    for value in args.source_cidr:
        problem = check_cidr(value)
        if problem:
            raise UsageError(f"--source-cidr: invalid CIDR {value!r}: {problem}")
    sources = list(args.source_cidr or config.network.source_cidrs)
    if not sources:
        raise UsageError(
            "no source CIDRs: set network.source_cidrs in the config or pass --source-cidr"
        )
    document = _policy_document(args, config.cloud, **live_options)
    try:
        allowlist = build_allowlist(
            requirements, sources, phases=phases, dns_servers=config.network.nameservers
        )
        policy = load_policy(document)
        result = audit_policy(policy, allowlist)
        text = render_audit(args.output, result)
    except (AllowlistError, AuditError) as exc:
        where = args.policy or "the policy"
        raise UsageError(f"{where}: {exc}" if isinstance(exc, AuditError) else str(exc)) from None
    write_output(text, Path(args.out_file) if args.out_file else None)
    if isinstance(document, dict) and document.get("basePolicy"):
        print(
            "aksflight: warning: the policy inherits from a base policy whose rules (which take "
            "precedence) were not read",
            file=sys.stderr,
        )
    return 1 if result.failed else 0
