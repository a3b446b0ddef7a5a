"""Reading evaluations, with long-polling for CI gates."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid

from aiohttp import web

from api.auth import access
from api.errors import BadRequest, NotFound
from api.evaluation_waiters import WAITERS
from api.json import json_response
from api.keys import POOL, principal
from api.paging import single_value
from api.query_params import refuse_unknown
from gavel.evaluations import load_evaluation

MAX_WAIT = 120.0


def _wait_seconds(request: web.Request) -> float:
    refuse_unknown(request, ("wait",))
    raw = single_value(request, "wait") or "0"
    try:
        wait = float(raw)
    except ValueError:
        raise BadRequest(f"wait: {raw!r} is not a number of seconds") from None
    if not 0 <= wait <= MAX_WAIT:
        raise BadRequest(f"wait: must be between 0 and {MAX_WAIT:.0f} seconds")
    return wait


@access("outcome")
async def get_evaluation(request: web.Request) -> web.Response:
    try:
        evaluation_id = uuid.UUID(request.match_info["id"])
    except ValueError:
        raise NotFound(f"Evaluation '{request.match_info['id']}' not found") from None
    wait = _wait_seconds(request)
    me = principal(request)
    pool = request.app[POOL]
    deadline = time.monotonic() + wait
    while True:
        # registered before reading, so that a notification cannot slip in between
        with request.app[WAITERS].waiter(str(evaluation_id)) as finished:
            document = await load_evaluation(pool, me.org_id, me.org_name, evaluation_id)
            if document is not None and document["status"] == "finished":
                return json_response(document)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                # events produced straight to Kafka have no row until they are evaluated
                if document is None:
                    raise NotFound(f"Evaluation '{evaluation_id}' not found")
                return json_response(document)
            # woken by the evaluation's notification, or by the sweep that finds it
            # finished if the notification was lost (api.evaluation_waiters)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(finished, remaining)
