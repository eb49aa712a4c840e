#!/usr/bin/env bash
# Stop the real Backend.AI stack that scripts/realstack-env.sh brought up (only what it started).
set -euo pipefail
stack="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/realstack/realstack.sh"
if [ ! -f "$stack" ]; then
  echo "realstack-stop: cannot find scripts/realstack/realstack.sh in this checkout" >&2
  exit 1
fi
exec bash "$stack" stop
