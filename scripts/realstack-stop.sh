#!/usr/bin/env bash
# Stop the real Backend.AI stack that scripts/realstack-env.sh brought up (only what it started).
set -euo pipefail
project="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
for candidate in "$project/../shared" "$project/../../shared"; do
  if [ -f "$candidate/backendai-realstack/realstack.sh" ]; then
    exec bash "$candidate/backendai-realstack/realstack.sh" stop
  fi
done
echo "realstack-stop: cannot find shared/backendai-realstack beside this checkout" >&2
exit 1
