"""`aksflight audit --live` against a local HTTPS server that plays Azure Resource Manager."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from azure.core.credentials import AccessToken

from aksflight.cli import build_parser
from aksflight.commands import audit as command
from aksflight.errors import UsageError
from tests.audit.arm_server import TOKEN, ArmState, arm_server
from tests.audit.support import CONFIG, FIXTURES

SUBSCRIPTION = "00000000-0000-0000-0000-000000000001"


class StaticCredential:
    """A TokenCredential (what DefaultAzureCredential is) that hands out one fixed token."""

    def __init__(self, token: str = TOKEN) -> None:
        self.token = token
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken(self.token, int(time.time()) + 3600)


def _state(**fields: Any) -> ArmState:
    groups = json.loads((FIXTURES / "deny-earlier.json").read_text())["value"]
    for group in groups:
        group["id"] = f"/subscriptions/{SUBSCRIPTION}/.../ruleCollectionGroups/{group['name']}"
    return ArmState(SUBSCRIPTION, "rg-net", "fw-weu", groups, **fields)


def _args(*extra: str) -> Any:
    argv = [
        "audit",
        "-c",
        str(CONFIG),
        "--live",
        "--subscription",
        SUBSCRIPTION,
        "--resource-group",
        "rg-net",
        "--policy-name",
        "fw-weu",
        "-o",
        "json",
        *extra,
    ]
    return build_parser(argv).parse_args(argv)


def test_live_audit_reads_every_page_with_the_bearer_token(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = _state()
    credential = StaticCredential()
    with arm_server(state, tmp_path) as (base_url, ca):
        code = command.run(
            _args("--arm-endpoint", base_url), credential=credential, connection_verify=ca
        )
    report = json.loads(capsys.readouterr().out)
    assert code == 1  # the fixture denies the registry
    verdicts = {r["id"]: r["verdict"] for r in report["requirements"]}
    assert verdicts["azureml-aks/acr"] == "denied"
    assert verdicts["azureml-aks/mcr"] == "allowed"
    assert report["policy"]["groups"] == ["Allow", "Deny", "Mixed"]
    paths = [r["path"] for r in state.requests]
    assert paths[0].endswith("/firewallPolicies/fw-weu")
    assert paths.count(paths[0] + "/ruleCollectionGroups") == 3  # three pages via nextLink
    assert {r["auth"] for r in state.requests} == {f"Bearer {TOKEN}"}
    assert all(r["api-version"] for r in state.requests)
    assert credential.scopes and credential.scopes[0] == ("https://management.azure.com/.default",)


def test_live_audit_warns_when_a_base_policy_was_not_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = _state(
        base_policy=f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg/providers/Microsoft.Network/firewallPolicies/parent"
    )
    with arm_server(state, tmp_path) as (base_url, ca):
        command.run(
            _args("--arm-endpoint", base_url), credential=StaticCredential(), connection_verify=ca
        )
    assert "inherits from a base policy" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("policy", "token", "message"),
    [
        ("fw-other", TOKEN, "firewall policy fw-other in resource group rg-net: not found"),
        ("fw-weu", "wrong-token", "cannot sign in to Azure: (AuthenticationFailed) bad token"),
    ],
)
def test_live_errors_are_one_line_usage_errors(
    tmp_path: Path, policy: str, token: str, message: str
) -> None:
    with arm_server(_state(), tmp_path) as (base_url, ca), pytest.raises(UsageError) as error:
        command.fetch_live_policy(
            SUBSCRIPTION,
            "rg-net",
            policy,
            credential=StaticCredential(token),
            base_url=base_url,
            connection_verify=ca,
        )
    assert message in str(error.value) and "\n" not in str(error.value)


def test_live_refuses_a_server_it_does_not_trust(tmp_path: Path) -> None:
    with arm_server(_state(), tmp_path) as (base_url, _ca), pytest.raises(UsageError) as error:
        command.fetch_live_policy(
            SUBSCRIPTION,
            "rg-net",
            "fw-weu",
            credential=StaticCredential(),
            base_url=base_url,
            retry_total=0,
        )
    assert "cannot reach Azure Resource Manager" in str(error.value)
