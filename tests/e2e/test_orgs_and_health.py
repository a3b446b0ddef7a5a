"""Health, authentication, tokens and the org endpoint through HTTP."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from gavel.settings import Settings
from gavel.tokens import TOKENS_CHANNEL
from tests.helpers import auth


async def test_healthz_and_readyz(client: TestClient, settings: Settings) -> None:
    assert (await client.get("/healthz")).status == 200
    resp = await client.get("/readyz")
    body = await resp.json()
    assert resp.status == 200, body
    checks = {"postgres": {"ok": True}, "kafka": {"ok": True}, "opa": {"ok": True}}
    if settings.opa.checks_url != settings.opa.url:
        checks["opa-check"] = {"ok": True}
    assert body["checks"] == checks


async def test_org_needs_its_own_token(client: TestClient, new_org) -> None:
    acme, token = await new_org()
    _other, other_token = await new_org()
    resp = await client.get(f"/api/orgs/{acme}", headers=auth(token))
    assert resp.status == 200
    assert await resp.json() == {"name": acme}

    resp = await client.get(f"/api/orgs/{acme}")
    assert resp.status == 401
    assert (await resp.json())["code"] == 401

    resp = await client.get(f"/api/orgs/{acme}", headers=auth("gvl_not-a-token"))
    assert resp.status == 401

    foreign = await client.get(f"/api/orgs/{acme}", headers=auth(other_token))
    missing = await client.get("/api/orgs/no-such-org", headers=auth(other_token))
    assert foreign.status == missing.status == 404
    assert await foreign.json() == {"code": 404, "message": f"Organization '{acme}' not found"}


async def test_tokens_roles_and_revocation(client: TestClient, new_org) -> None:
    org, admin = await new_org()
    resp = await client.post(f"/api/orgs/{org}/tokens", headers=auth(admin),
                             json={"role": "member", "description": "auditor"})
    assert resp.status == 201
    issued = await resp.json()
    member = issued["token"]
    assert (await client.get(f"/api/orgs/{org}", headers=auth(member))).status == 200
    # members read, they do not write
    resp = await client.post(f"/api/orgs/{org}/tokens", headers=auth(member),
                             json={"role": "admin"})
    assert resp.status == 403
    listed = await (await client.get(f"/api/orgs/{org}/tokens", headers=auth(admin))).json()
    assert issued["id"] in [t["id"] for t in listed["tokens"]]
    assert "token" not in listed["tokens"][0]

    resp = await client.delete(f"/api/orgs/{org}/tokens/{issued['id']}", headers=auth(admin))
    assert resp.status == 204
    assert (await client.get(f"/api/orgs/{org}", headers=auth(member))).status == 401


async def _admin_token_ids(client: TestClient, org: str, token: str) -> list[str]:
    resp = await client.get(f"/api/orgs/{org}/tokens", headers=auth(token))
    assert resp.status == 200, await resp.text()
    return [t["id"] for t in (await resp.json())["tokens"] if t["role"] == "admin"]


async def _issue_admin(client: TestClient, org: str, token: str) -> tuple[str, str]:
    resp = await client.post(f"/api/orgs/{org}/tokens", headers=auth(token),
                             json={"role": "admin"})
    assert resp.status == 201, await resp.text()
    issued = await resp.json()
    return issued["id"], issued["token"]


async def test_last_admin_token_is_not_revoked(client: TestClient, new_org) -> None:
    org, first = await new_org()
    [first_id] = await _admin_token_ids(client, org, first)
    resp = await client.delete(f"/api/orgs/{org}/tokens/{first_id}", headers=auth(first))
    assert await resp.json() == {
        "code": 400, "message": f"id: token '{first_id}' is the organization's last admin "
                                "token; create another admin token first"}
    assert (await client.get(f"/api/orgs/{org}", headers=auth(first))).status == 200
    # member and ingest tokens do not count
    for role in ("member", "ingest"):
        resp = await client.post(f"/api/orgs/{org}/tokens", headers=auth(first),
                                 json={"role": role})
        assert resp.status == 201
    resp = await client.delete(f"/api/orgs/{org}/tokens/{first_id}", headers=auth(first))
    assert resp.status == 400

    second_id, second = await _issue_admin(client, org, first)
    resp = await client.delete(f"/api/orgs/{org}/tokens/{first_id}", headers=auth(second))
    assert resp.status == 204
    assert (await client.get(f"/api/orgs/{org}", headers=auth(first))).status == 401
    resp = await client.delete(f"/api/orgs/{org}/tokens/{second_id}", headers=auth(second))
    assert resp.status == 400
    assert f"'{second_id}' is the organization's last admin token" in (
        await resp.json())["message"]
    assert await _admin_token_ids(client, org, second) == [second_id]


async def test_revoking_the_last_two_admin_tokens_at_once_keeps_one(
        client: TestClient, new_org, pool: asyncpg.Pool) -> None:
    org, first = await new_org()
    [first_id] = await _admin_token_ids(client, org, first)
    second_id, _ = await _issue_admin(client, org, first)
    waiting = ("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
               "AND wait_event_type = 'Lock' AND query LIKE '%tokens%'")
    async with pool.acquire() as conn, conn.transaction():
        # hold the org's tokens so that both revocations are under way before either runs
        await conn.execute("SELECT id FROM tokens WHERE org_id = (SELECT id FROM orgs "
                           "WHERE name = $1) FOR UPDATE", org)
        deletes = [asyncio.ensure_future(client.delete(f"/api/orgs/{org}/tokens/{token_id}",
                                                       headers=auth(first)))
                   for token_id in (first_id, second_id)]
        for _ in range(200):
            if await pool.fetchval(waiting) == 2:
                break
            await asyncio.sleep(0.02)
        else:
            raise AssertionError("the two revocations did not both wait")
    statuses = sorted([(await d).status for d in deletes])
    assert statuses == [204, 400]
    left = await pool.fetchval(
        "SELECT count(*) FROM tokens t JOIN orgs o ON o.id = t.org_id WHERE o.name = $1 "
        "AND t.role = 'admin' AND t.revoked_at IS NULL", org)
    assert left == 1


async def test_token_body_is_validated(client: TestClient, new_org) -> None:
    org, admin = await new_org()
    resp = await client.post(f"/api/orgs/{org}/tokens", headers=auth(admin),
                             json={"role": "owner"})
    assert resp.status == 400
    assert "role" in (await resp.json())["message"]
    resp = await client.post(f"/api/orgs/{org}/tokens", headers=auth(admin),
                             json={"role": "member", "colour": "red"})
    assert resp.status == 400
    assert "colour: unknown field" in (await resp.json())["message"]
    resp = await client.post(f"/api/orgs/{org}/tokens", headers=auth(admin), data=b"{nope")
    assert resp.status == 400
    assert "not valid JSON" in (await resp.json())["message"]


def test_cli_org_create_prints_token_last(settings: Settings, pool) -> None:
    env = {**os.environ, "GAVEL_DATABASE_URL": settings.database.url,
           "GAVEL_KAFKA_BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers,
           "GAVEL_OPA_URL": settings.opa.url}
    name = f"cli-{os.getpid()}"
    result = subprocess.run([sys.executable, "-m", "gavel.cli", "org", "create", name],
                            capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip().splitlines()[-1]
    assert token.startswith("gvl_")
    again = subprocess.run([sys.executable, "-m", "gavel.cli", "org", "create", name],
                           capture_output=True, text=True, env=env, timeout=60)
    assert again.returncode == 1
    assert "already exists" in again.stderr
    member = subprocess.run([sys.executable, "-m", "gavel.cli", "org", "token", name,
                             "--role", "member"], capture_output=True, text=True, env=env,
                            timeout=60)
    assert member.returncode == 0, member.stderr
    second = member.stdout.strip().splitlines()[-1]
    assert second.startswith("gvl_") and second != token
    missing = subprocess.run([sys.executable, "-m", "gavel.cli", "org", "token", f"{name}-x"],
                             capture_output=True, text=True, env=env, timeout=60)
    assert missing.returncode == 1 and "does not exist" in missing.stderr


async def _listener_lost_and_back(pool: asyncpg.Pool) -> None:
    """End the API's LISTEN connection and wait until it has listened again."""
    # its last statement listens to the token channel (the relay and the audit planner
    # listen to others)
    listening = ("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                 f"AND query = 'LISTEN \"{TOKENS_CHANNEL}\"'")
    lost = {r["pid"] for r in await pool.fetch(listening)}
    assert lost, "no LISTEN connection"
    await pool.execute("SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid",
                       list(lost))
    for _ in range(200):
        if {r["pid"] for r in await pool.fetch(listening)} - lost:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the API did not listen again")


@pytest.mark.parametrize("reconnected", [False, True])
async def test_revoked_token_is_refused_at_once(client: TestClient, new_org, pool,
                                                reconnected: bool) -> None:
    """Checked tokens are cached by the API; revoking one still takes effect at once, also
    after the API lost its LISTEN connection and listened again."""
    acme, token = await new_org()
    for _ in range(2):  # the second request is answered from the cache
        assert (await client.get(f"/api/orgs/{acme}", headers=auth(token))).status == 200
    if reconnected:
        await _listener_lost_and_back(pool)
        assert (await client.get(f"/api/orgs/{acme}", headers=auth(token))).status == 200
    await pool.execute("UPDATE tokens SET revoked_at = now() WHERE org_id = "
                       "(SELECT id FROM orgs WHERE name = $1)", acme)
    for _ in range(50):  # the notification reaches the API within moments
        resp = await client.get(f"/api/orgs/{acme}", headers=auth(token))
        if resp.status == 401:
            break
        await asyncio.sleep(0.05)
    assert resp.status == 401
