"""The part of the CiliumNetworkPolicy (cilium.io/v2) schema the generator uses, strict.

Field names, patterns and enums follow the CRD's openAPIV3Schema (FQDNSelector.matchName /
matchPattern patterns, PortProtocol.port and protocol); unknown keys are errors here, so a
typo in the generator fails the test instead of being dropped by the API server.
"""

from __future__ import annotations

from typing import Any

_FQDN_SELECTOR = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "matchName": {"type": "string", "pattern": r"^([-a-zA-Z0-9_]+[.]?)+$", "maxLength": 255},
        "matchPattern": {
            "type": "string",
            "pattern": r"^([-a-zA-Z0-9_*]+[.]?)+$",
            "maxLength": 255,
        },
    },
    "minProperties": 1,
    "maxProperties": 1,
}
_PORT_RULE = {
    "type": "object",
    "additionalProperties": False,
    "required": ["ports"],
    "properties": {
        "ports": {
            "type": "array",
            "maxItems": 40,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["port"],
                "properties": {
                    "port": {
                        "type": "string",
                        "pattern": r"^(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}"
                        r"|[1-5][0-9]{4}|[0-9]{1,4})$",
                    },
                    "protocol": {"enum": ["TCP", "UDP", "SCTP", "ANY"]},
                },
            },
        },
        "rules": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"dns": {"type": "array", "items": _FQDN_SELECTOR}},
        },
    },
}
_EGRESS = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "toFQDNs": {"type": "array", "items": _FQDN_SELECTOR, "minItems": 1},
        "toCIDR": {"type": "array", "items": {"type": "string"}, "minItems": 1},
        "toEndpoints": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "matchLabels": {"type": "object", "additionalProperties": {"type": "string"}}
                },
            },
        },
        "toPorts": {"type": "array", "items": _PORT_RULE},
    },
    # ToEndpoints, ToCIDR, ToFQDNs... are mutually exclusive within one rule.
    "oneOf": [{"required": ["toFQDNs"]}, {"required": ["toCIDR"]}, {"required": ["toEndpoints"]}],
}
_RULE = {
    "type": "object",
    "additionalProperties": False,
    "required": ["endpointSelector", "egress"],
    "properties": {
        "description": {"type": "string"},
        "endpointSelector": {"type": "object"},
        "egress": {"type": "array", "items": _EGRESS, "minItems": 1},
    },
}
SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["apiVersion", "kind", "metadata", "specs"],
    "properties": {
        "apiVersion": {"const": "cilium.io/v2"},
        "kind": {"const": "CiliumNetworkPolicy"},
        "metadata": {
            "type": "object",
            "required": ["name", "namespace"],
            "properties": {
                "name": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
                "namespace": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        },
        "specs": {"type": "array", "items": _RULE, "minItems": 1},
    },
}
