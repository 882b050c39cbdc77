"""Two-person approval for dangerous operations; see docs/approval.md.

Public API for other modules::

    from drkit.approval import require_approval, restore_production_plan, keys_plan
    grant = require_approval("restore-production", params, plan, config=config, clock=clock)
"""

from drkit.approval.gate import (
    ApprovalContext,
    Evaluation,
    Grant,
    current_registry,
    evaluate,
    execute,
    list_requests,
    record_result,
    require_approval,
)
from drkit.approval.operations import (
    OPERATIONS,
    keys_plan,
    production_sources_at,
    require_restore_approval,
    restore_production_plan,
)

__all__ = [
    "OPERATIONS",
    "ApprovalContext",
    "Evaluation",
    "Grant",
    "current_registry",
    "evaluate",
    "execute",
    "keys_plan",
    "list_requests",
    "production_sources_at",
    "record_result",
    "require_approval",
    "require_restore_approval",
    "restore_production_plan",
]
