#!/usr/bin/env bash
# Walks through Gavel against a running `make up`: creates an organization, publishes
# the aws-baseline pack, applies it to the default stack group, sends the sample
# preview and prints its outcome.
#   bash examples/quickstart.sh [ORG]
set -euo pipefail
cd "$(dirname "$0")/.."
ORG=${1:-acme-$RANDOM}
API=${GAVEL_API:-http://127.0.0.1:${GAVEL_HTTP_PORT:-8080}}
eval "$(python3 deploy/local/devstack.py env --name dev 2>/dev/null)"

T=$(.venv/bin/gavel org create "$ORG" | tail -1)
H=(-H "Authorization: token $T" -H "Content-Type: application/json")
echo "organization $ORG created"

curl -fsS "${H[@]}" -X POST "$API/api/orgs/$ORG/policypacks" --data @examples/aws-baseline.json
echo
curl -fsS "${H[@]}" -X PATCH "$API/api/orgs/$ORG/policygroups/default-policy-group" \
  --data '{"addPolicyPack": {"name": "aws-baseline", "version": 1}}'
echo "aws-baseline v1 applied to default-policy-group"

ID=$(curl -fsS "${H[@]}" -X POST "$API/api/stacks/$ORG/web/prod/events" \
  --data @examples/sample-preview.json | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
echo "preview sent: evaluation $ID"
curl -fsS "${H[@]}" "$API/api/orgs/$ORG/evaluations/$ID?wait=30" | python3 -c '
import json, sys
e = json.load(sys.stdin)
print("outcome:", e["outcome"], " blocking:", e["blocking"])
for v in e["violations"]:
    print("  [%s] %s/%s: %s" % (v["level"], v["pack"], v["policy"], v["message"]))
'
