"""Build a publish body (``POST /api/orgs/{org}/policypacks``) from a pack directory.

A pack directory holds ``manifest.json`` (the body without Rego) and one
``<policy name>.rego`` per policy. The .rego files are the sources; the JSON next to
the directory is generated:

    python examples/build_pack.py examples/aws-baseline            # writes aws-baseline.json
    python examples/build_pack.py --check examples/aws-baseline    # exit 1 if out of date
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def build(directory: Path) -> dict[str, Any]:
    manifest = json.loads((directory / "manifest.json").read_text())
    policies = [{**policy, "rego": (directory / f"{policy['name']}.rego").read_text()}
                for policy in manifest["policies"]]
    return {**manifest, "policies": policies}


def render(body: dict[str, Any]) -> str:
    return json.dumps(body, indent=2) + "\n"


def output_path(directory: Path) -> Path:
    return directory.parent / f"{directory.name}.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--check", action="store_true",
                        help="only compare with the existing JSON")
    args = parser.parse_args(argv)
    directory: Path = args.directory.resolve()
    text = render(build(directory))
    target = output_path(directory)
    if args.check:
        if not target.exists() or target.read_text() != text:
            print(f"{target} is out of date: run examples/build_pack.py {args.directory}",
                  file=sys.stderr)
            return 1
        return 0
    target.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
