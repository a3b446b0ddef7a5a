"""Every route of the API, in one place."""

from __future__ import annotations

from aiohttp import web

from api.handlers import (
    accounts,
    audits,
    evaluations,
    events,
    health,
    metrics,
    orgs,
    policygroups,
    policypacks,
    results,
    stacks,
)
from api.openapi import openapi_json


def setup_routes(app: web.Application) -> None:
    app.router.add_routes([
        web.get("/healthz", health.healthz),
        web.get("/readyz", health.readyz),
        web.get("/metrics", metrics.metrics),
        web.get("/api/openapi.json", openapi_json),
        web.get("/api/orgs/{org}", orgs.get_org),
        web.get("/api/orgs/{org}/tokens", orgs.list_tokens),
        web.post("/api/orgs/{org}/tokens", orgs.create_token),
        web.delete("/api/orgs/{org}/tokens/{token_id}", orgs.revoke_token),
        # metadata before {group}: aiohttp matches routes in the order they are added
        web.get("/api/orgs/{org}/policygroups/metadata", policygroups.metadata),
        web.get("/api/orgs/{org}/policygroups", policygroups.list_groups),
        web.post("/api/orgs/{org}/policygroups", policygroups.create_group),
        web.get("/api/orgs/{org}/policygroups/{group}", policygroups.get_group),
        web.patch("/api/orgs/{org}/policygroups/{group}", policygroups.update_group),
        web.delete("/api/orgs/{org}/policygroups/{group}", policygroups.delete_group),
        web.patch("/api/orgs/{org}/policygroups/{group}/batch",
                  policygroups.batch_update_group),
        web.put("/api/stacks/{org}/{project}/{stack}", stacks.register_stack),
        web.get("/api/stacks/{org}/{project}/{stack}", stacks.get_stack),
        web.get("/api/stacks/{org}/{project}/{stack}/policygroups",
                stacks.stack_policy_groups),
        web.get("/api/orgs/{org}/stacks", stacks.list_stacks),
        web.post("/api/orgs/{org}/accounts", accounts.create_account),
        web.get("/api/orgs/{org}/accounts", accounts.list_accounts),
        web.get("/api/orgs/{org}/accounts/{name}", accounts.get_account),
        web.delete("/api/orgs/{org}/accounts/{name}", accounts.delete_account),
        web.post("/api/stacks/{org}/{project}/{stack}/events", events.post_stack_event),
        web.post("/api/orgs/{org}/accounts/{name}/scans", events.post_account_scan),
        web.get("/api/orgs/{org}/evaluations", results.list_evaluations),
        web.get("/api/orgs/{org}/evaluations/{id}", evaluations.get_evaluation),
        web.get("/api/orgs/{org}/violations", results.list_violations),
        web.get("/api/orgs/{org}/policyresults/violationsv2", results.pulumi_violations),
        web.get("/api/orgs/{org}/compliance", results.get_compliance),
        web.post("/api/orgs/{org}/audits", audits.start_audit),
        web.get("/api/orgs/{org}/audits", audits.list_audits),
        web.get("/api/orgs/{org}/audits/{id}", audits.get_audit),
        web.get("/api/orgs/{org}/policypacks", policypacks.list_policy_packs),
        web.post("/api/orgs/{org}/policypacks", policypacks.publish_pack),
        web.get("/api/orgs/{org}/policypacks/{name}/versions/{version}",
                policypacks.get_version),
        web.delete("/api/orgs/{org}/policypacks/{name}/versions/{version}",
                   policypacks.delete_version),
    ])
