"""Resolution of applicable packs from the in-memory group index."""

from __future__ import annotations

from typing import Any

from worker.index import GroupIndex, GroupRef


def pack(version_id: int, name: str = "baseline", config: dict | None = None) -> dict[str, Any]:
    return {"name": name, "displayName": "", "version": version_id, "versionTag": f"v{version_id}",
            "versionId": version_id, "config": config or {}, "environments": []}


def group(gid: int, name: str, *, stacks: list[str] = (), packs: list[dict] = (),
          mode: str = "preventative", default: bool = False,
          entity_type: str = "stacks", accounts: list[str] = ()) -> dict[str, Any]:
    return {"id": gid, "org": "acme", "name": name, "entityType": entity_type, "mode": mode,
            "agentPoolId": "", "isOrgDefault": default,
            "stacks": [{"routingProject": s.split("/")[0], "name": s.split("/")[1]}
                       for s in stacks],
            "accounts": list(accounts), "appliedPolicyPacks": list(packs)}


def build(*groups: dict[str, Any], revision: int = 1) -> GroupIndex:
    index = GroupIndex()
    index.load_org("acme", revision, list(groups))
    return index


def test_stack_in_no_group_gets_the_default_group() -> None:
    index = build(group(1, "default-policy-group", default=True, packs=[pack(10)]),
                  group(2, "prod", stacks=["web/prod"], packs=[pack(20)]))
    [only] = index.resolve("acme", "stacks", "web/dev")
    assert only.version_id == 10
    assert only.groups == (GroupRef("default-policy-group", "preventative"),)


def test_stack_in_two_groups_gets_the_union_and_not_the_default() -> None:
    index = build(group(1, "default-policy-group", default=True, packs=[pack(10)]),
                  group(2, "prod", stacks=["web/prod"], packs=[pack(20)]),
                  group(3, "audit", stacks=["web/prod"], packs=[pack(30)], mode="audit"))
    found = index.resolve("acme", "stacks", "web/prod")
    assert sorted(a.version_id for a in found) == [20, 30]


def test_identical_pack_and_config_is_evaluated_once_under_every_group() -> None:
    same = {"all": {"enforcementLevel": "mandatory"}}
    index = build(group(2, "prod", stacks=["web/prod"], packs=[pack(20, config=same)]),
                  group(3, "audit", stacks=["web/prod"], packs=[pack(20, config=dict(same))],
                        mode="audit"))
    [one] = index.resolve("acme", "stacks", "web/prod")
    assert {g.name for g in one.groups} == {"prod", "audit"}


def test_the_union_keeps_the_order_packs_were_applied_in() -> None:
    index = build(group(2, "prod", stacks=["web/prod"], packs=[pack(20), pack(21)]),
                  group(3, "audit", stacks=["web/prod"], packs=[pack(21), pack(22)],
                        mode="audit"))
    found = index.resolve("acme", "stacks", "web/prod")
    assert [a.version_id for a in found] == [20, 21, 22]
    assert [[g.name for g in a.groups] for a in found] == [["prod"], ["prod", "audit"],
                                                           ["audit"]]
    # a stack in one of them gets that group's packs alone
    index.apply_change({"org": "acme", "revision": 2, "groupId": 3,
                        "group": group(3, "audit", stacks=["web/dev"],
                                       packs=[pack(21), pack(22)], mode="audit")})
    assert [(a.version_id, a.groups) for a in index.resolve("acme", "stacks", "web/dev")] == [
        (21, (GroupRef("audit", "audit"),)), (22, (GroupRef("audit", "audit"),))]


def test_the_default_group_still_applies_after_it_changes() -> None:
    index = build(group(1, "default-policy-group", default=True, packs=[pack(10)]),
                  *(group(g, f"team-{g}", stacks=[f"web/team-{g}"], packs=[pack(20)])
                    for g in range(2, 50)))
    assert [a.version_id for a in index.resolve("acme", "stacks", "web/dev")] == [10]
    # a pack added to it: the new snapshot replaces the group, and drops resolved results
    assert index.apply_change({"org": "acme", "revision": 2, "groupId": 1,
                               "group": group(1, "default-policy-group", default=True,
                                              packs=[pack(10), pack(11)])})
    assert [a.version_id for a in index.resolve("acme", "stacks", "web/dev")] == [10, 11]
    assert [a.version_id for a in index.resolve("acme", "stacks", "web/team-7")] == [20]


def test_same_pack_with_other_config_is_evaluated_twice() -> None:
    index = build(group(2, "prod", stacks=["web/prod"],
                        packs=[pack(20, config={"all": {"enforcementLevel": "mandatory"}})]),
                  group(3, "audit", stacks=["web/prod"], packs=[pack(20)], mode="audit"))
    assert len(index.resolve("acme", "stacks", "web/prod")) == 2


def test_accounts_and_stacks_do_not_mix() -> None:
    index = build(group(1, "default-policy-group", default=True, packs=[pack(10)]),
                  group(4, "default-account-policy-group", default=True, mode="audit",
                        entity_type="accounts", packs=[pack(40)]),
                  group(5, "aws", entity_type="accounts", accounts=["prod-aws"], mode="audit",
                        packs=[pack(50)]))
    assert [a.version_id for a in index.resolve("acme", "accounts", "prod-aws")] == [50]
    assert [a.version_id for a in index.resolve("acme", "accounts", "other")] == [40]
    assert [a.version_id for a in index.resolve("acme", "stacks", "prod-aws/x")] == [10]


def test_changes_apply_in_revision_order_and_old_ones_are_skipped() -> None:
    index = build(group(1, "default-policy-group", default=True), revision=5)
    newer = group(2, "prod", stacks=["web/prod"], packs=[pack(20)])
    assert index.apply_change({"org": "acme", "revision": 6, "groupId": 2, "group": newer})
    assert [a.version_id for a in index.resolve("acme", "stacks", "web/prod")] == [20]
    stale = group(2, "prod", stacks=["web/prod"], packs=[pack(99)])
    assert not index.apply_change({"org": "acme", "revision": 6, "groupId": 2, "group": stale})
    assert [a.version_id for a in index.resolve("acme", "stacks", "web/prod")] == [20]
    # removing the member sends the stack back to the default group
    assert index.apply_change({"org": "acme", "revision": 7, "groupId": 2,
                               "group": group(2, "prod", packs=[pack(20)])})
    assert index.resolve("acme", "stacks", "web/prod") == ()
    assert index.apply_change({"org": "acme", "revision": 8, "groupId": 1,
                               "group": group(1, "default-policy-group", default=True,
                                              packs=[pack(10)])})
    assert [a.version_id for a in index.resolve("acme", "stacks", "web/prod")] == [10]
    assert index.apply_change({"org": "acme", "revision": 9, "groupId": 1, "deleted": True,
                               "group": None})
    assert index.resolve("acme", "stacks", "web/prod") == ()


def test_unknown_org_resolves_to_nothing() -> None:
    assert GroupIndex().resolve("nobody", "stacks", "a/b") == ()
