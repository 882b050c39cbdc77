"""Separation of duties: no one principal may destroy production and every backup copy.

One rule for both clouds, because the property is about a person or role across all of
their identities: AWS and Tencent Cloud CAM policies are evaluated together.
"""

from __future__ import annotations

from collections.abc import Iterator

from drkit.lint.findings import Hit
from drkit.lint.principals import PrincipalModel, analyse

ID = "separation_of_duties"
CATEGORY = "separation-of-duties"
SEVERITY = "critical"
CLOUDS = ("aws", "tencent")
SCOPE = "principals"
TITLE = "One principal can destroy production and backups (or two or more backup copies)"
REMEDIATION = (
    "Split the permissions: production operators get no delete/unprotect rights on backup "
    "buckets, each backup region has its own writer and replicator, and destructive actions "
    "go through drkit's two-person approval. Add an explicit Deny where a broad grant is "
    "unavoidable, and remove policy-attach/PassRole paths that lead around it."
)


def check(model: PrincipalModel) -> Iterator[Hit]:
    for v in analyse(model):
        if v.severity == "critical":
            what = (f"can destroy production ({', '.join(v.production)}) and every backup "
                    f"tier ({', '.join(v.backups)})")
        else:
            what = (f"can destroy or unprotect {len(v.backups)} of {v.all_backups} backup "
                    f"tiers ({', '.join(v.backups)})")
        by_tier: dict[str, list[str]] = {}
        for tier, ev in v.evidence:
            via = f" via {' -> '.join(ev.via)}" if ev.via else ""
            by_tier.setdefault(tier, []).append(
                f"{ev.action} on {ev.resource} [{ev.file}#{ev.statement}{via}]")
        detail = "; ".join(f"{tier}: {', '.join(items[:3])}"
                           + (f" (+{len(items) - 3} more)" if len(items) > 3 else "")
                           for tier, items in by_tier.items())
        clouds = sorted({p.cloud for p in v.principal.policies})
        yield Hit(
            f"{v.principal.type} {v.principal.name} {what}. {detail}",
            actions=tuple(sorted({ev.action for _, ev in v.evidence})),
            principal=v.principal.name, severity=v.severity, file=model.file,
            line=v.principal.line,
            cloud="+".join(clouds) if clouds else None,
            evidence=tuple({"tier": tier, **ev.to_dict()} for tier, ev in v.evidence))
