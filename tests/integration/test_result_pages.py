"""Reading a page of a result list leaves nothing behind on the pool's connections."""

from __future__ import annotations

import uuid

from gavel import result_pages, result_queries
from gavel.db import pool_context
from gavel.orgs import create_org
from gavel.settings import Settings


async def test_a_page_is_planned_for_its_values_without_changing_the_connection(
        settings: Settings) -> None:
    one_connection = settings.database.model_copy(update={"pool_min": 1, "pool_max": 1})
    async with pool_context(one_connection) as pool:
        org_id, _ = await create_org(pool, f"org-{uuid.uuid4().hex[:8]}")
        try:
            query = result_queries.violation_query(org_id, {"group": "shared"}, ())
            for _ in range(8):  # past the runs after which a generic plan may be chosen
                page = await result_pages.fetch_page(pool, query, 0, 10)
                assert page.rows == [] and page.total == 0
            async with pool.acquire() as conn:
                assert await conn.fetchval("SHOW plan_cache_mode") == "auto"
                assert not conn.is_in_transaction()
        finally:
            await pool.execute("DELETE FROM orgs WHERE id = $1", org_id)
