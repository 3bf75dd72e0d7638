"""Writes docs/catalogue.md from the catalogue files, so the reference never drifts.

`python -m aksflight.catalogue_doc > docs/catalogue.md`; a test checks the file is current.
"""

from __future__ import annotations

from rules.catalogue import BUILTIN_SETS, builtin_catalogue
from rules.clouds import SUFFIX_KEYS, cloud_profiles

_HEADER = """# Catalogue reference

Generated from `rules/catalogue/*.yaml` by `python -m aksflight.catalogue_doc`; do not edit.

Each requirement is one connectivity need with its documentation source. Host templates take
`{names}` from the config and `{suffix.*}` from the cloud (table at the end). `when` is the
condition over the config under which the requirement applies. Wildcards, service tags and
FQDN tags go into allowlists only: no probe can test them directly.

Your own catalogue files (`--catalogue FILE`) use the same format:

```yaml
set: my-team
title: Our model's dependencies
requirements:
  - id: feature-api
    host: features.contoso.com
    port: 443
    protocol: https            # https | http | tcp | udp
    phases: [serving]
    purpose: feature lookups
    source: our runbook, section 4
    when: "service.auth == 'token'"   # optional
```
"""


def _cell(text: str | None) -> str:
    return (text or "").replace("|", "\\|").replace("\n", " ")


def render() -> str:
    lines = [_HEADER]
    for name in BUILTIN_SETS:
        catalogue = builtin_catalogue(name)
        lines += [f"## `{name}` — {catalogue.title}", ""]
        lines += [
            "| id | host | port | phases | when | purpose | source |",
            "|---|---|---|---|---|---|---|",
        ]
        for t in catalogue.templates:
            s = t.spec
            host = s.host if s.host is not None else f"({s.kind}: {s.target})"
            port = f"{s.protocol.value} {s.port}" if s.port else "—"
            phases = ", ".join(p.value for p in s.phases)
            purpose = s.purpose + (f" *Note: {s.note}*" if s.note else "")
            lines.append(
                f"| `{s.id}` | `{_cell(host)}` | {port} | {phases} | {_cell(s.when) or 'always'} "
                f"| {_cell(purpose)} | {_cell(s.source)} |"
            )
        lines.append("")
    profiles = cloud_profiles()
    lines += [
        "## Cloud suffixes",
        "",
        "`not documented` marks a name the documentation does not give for that cloud; "
        "requirements that need it are reported as such, never guessed.",
        "",
    ]
    lines.append("| suffix | " + " | ".join(profiles) + " |")
    lines.append("|---|" + "---|" * len(profiles))
    for key in SUFFIX_KEYS:
        values = [
            f"`{p.suffixes[key]}`" if p.suffixes[key] else "not documented"
            for p in profiles.values()
        ]
        lines.append(f"| `{key}` | " + " | ".join(values) + " |")
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    print(render(), end="")
