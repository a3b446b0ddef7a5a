"""Policy protection counters of an org (``GET /policygroups/metadata``).

A stack or account counts as protected when it is a member (explicit, or implicit
in a default group) of a group that applies at least one policy pack: a group
without packs enforces nothing. A stack in both a preventative and an audit group
counts in both breakdowns and once in ``ProtectedStacks``.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from gavel.membership import WITH_MEMBERS

_METADATA = WITH_MEMBERS + """,
enforcing AS (
    SELECT g.id, g.mode FROM policy_groups g
    WHERE g.org_id = $1 AND EXISTS (SELECT 1 FROM policy_group_packs gp
                                    WHERE gp.group_id = g.id)
),
protected_stacks AS (
    SELECT sm.stack_id,
           bool_or(e.mode = 'preventative') AS preventative,
           bool_or(e.mode = 'audit') AS audit
    FROM stack_members sm JOIN enforcing e ON e.id = sm.group_id
    GROUP BY sm.stack_id
),
protected_accounts AS (
    SELECT DISTINCT am.account_id FROM account_members am
    JOIN enforcing e ON e.id = am.group_id
)
SELECT
  (SELECT count(*) FROM protected_stacks) AS protected_stacks,
  (SELECT coalesce(sum(s.resource_count), 0) FROM protected_stacks p
     JOIN stacks s ON s.id = p.stack_id) AS protected_stack_resources,
  (SELECT count(*) FROM protected_stacks WHERE preventative) AS preventative_stacks,
  (SELECT coalesce(sum(s.resource_count), 0) FROM protected_stacks p
     JOIN stacks s ON s.id = p.stack_id WHERE p.preventative) AS preventative_stack_resources,
  (SELECT count(*) FROM protected_stacks WHERE audit) AS audit_stacks,
  (SELECT coalesce(sum(s.resource_count), 0) FROM protected_stacks p
     JOIN stacks s ON s.id = p.stack_id WHERE p.audit) AS audit_stack_resources,
  (SELECT count(*) FROM stacks WHERE org_id = $1) AS total_stacks,
  (SELECT coalesce(sum(resource_count), 0) FROM stacks WHERE org_id = $1)
     AS total_stack_resources,
  (SELECT count(*) FROM protected_accounts) AS protected_accounts,
  (SELECT coalesce(sum(a.resource_count), 0) FROM protected_accounts p
     JOIN accounts a ON a.id = p.account_id) AS protected_account_resources,
  (SELECT count(*) FROM accounts WHERE org_id = $1) AS total_accounts,
  (SELECT coalesce(sum(resource_count), 0) FROM accounts WHERE org_id = $1)
     AS total_account_resources
"""

_FIELDS = {
    "ProtectedStacks": "protected_stacks",
    "ProtectedStackResources": "protected_stack_resources",
    "PreventativeStacks": "preventative_stacks",
    "PreventativeStackResources": "preventative_stack_resources",
    "AuditStacks": "audit_stacks",
    "AuditStackResources": "audit_stack_resources",
    "TotalStacks": "total_stacks",
    "TotalStackResources": "total_stack_resources",
    "ProtectedAccounts": "protected_accounts",
    "ProtectedAccountResources": "protected_account_resources",
    "TotalAccounts": "total_accounts",
    "TotalAccountResources": "total_account_resources",
}


async def policy_group_metadata(conn: asyncpg.Pool | asyncpg.Connection,
                                org_id: int) -> dict[str, Any]:
    row = await conn.fetchrow(_METADATA, org_id)
    return {field: int(row[column]) for field, column in _FIELDS.items()}
