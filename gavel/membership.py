"""Who is in which group, including the implicit members of the default groups.

A stack (account) that is in no non-default group of its entity type belongs to
its org's default group; an explicit row in the default group counts as well. The
``WITH`` clause below is shared by every query that lists or counts members; ``$1``
is the org id.
"""

from __future__ import annotations

_MEMBERS = """
{kind}_members AS (
    SELECT m.{kind}_id, m.group_id
    FROM policy_group_{kind}s m JOIN policy_groups g ON g.id = m.group_id
    WHERE g.org_id = $1
    UNION
    SELECT e.id, d.id
    FROM {table} e
    JOIN policy_groups d
      ON d.org_id = e.org_id AND d.is_org_default AND d.entity_type = '{kind}s'
    WHERE e.org_id = $1 AND NOT EXISTS (
        SELECT 1 FROM policy_group_{kind}s m JOIN policy_groups g ON g.id = m.group_id
        WHERE m.{kind}_id = e.id AND NOT g.is_org_default)
)"""

STACK_MEMBERS = _MEMBERS.format(kind="stack", table="stacks")
ACCOUNT_MEMBERS = _MEMBERS.format(kind="account", table="accounts")
# ``stack_members(stack_id, group_id)`` and ``account_members(account_id, group_id)``
WITH_MEMBERS = f"WITH {STACK_MEMBERS},{ACCOUNT_MEMBERS}"
