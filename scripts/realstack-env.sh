#!/usr/bin/env bash
# realstack-env.sh -- bring up the real Backend.AI 23.09 stack (scripts/realstack/realstack.sh)
# and print the variables our client reads, as shell `export` lines:
#
#   eval "$(scripts/realstack-env.sh)" && FTG_REALSTACK=1 .venv/bin/python -m pytest tests/integration
#
# The launcher lives in this repository (scripts/realstack/). The stack's state goes to
# $RS_BASE (realstack.sh's default: /tmp/ftg-realstack). `up` is idempotent: a
# running stack is reused (~4 s), a stopped one restarts (~9 s), an empty base dir
# installs everything (~1-2 min). Progress goes to stderr; stdout holds only the
# export lines. Exits non-zero, with a message on stderr, when it cannot.
set -euo pipefail

say() { printf 'realstack-env: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

stack="$(cd "$(dirname "${BASH_SOURCE[0]}")/realstack" 2>/dev/null && pwd)" || stack=""
[ -n "$stack" ] && [ -f "$stack/realstack.sh" ] \
  || die "cannot find scripts/realstack/realstack.sh in this checkout"

say "bringing up the stack with $stack/realstack.sh up (RS_BASE=${RS_BASE:-/tmp/ftg-realstack})"
rc=0
output="$(bash "$stack/realstack.sh" up)" || rc=$?
[ "$rc" = 0 ] || die "$stack/realstack.sh up failed (exit $rc); its messages are above, its logs in ${RS_BASE:-/tmp/ftg-realstack}/logs"

endpoint="" access="" secret=""
while IFS= read -r line; do
  case "$line" in
    BACKEND_ENDPOINT=*) endpoint="${line#*=}" ;;
    BACKEND_ACCESS_KEY=*) access="${line#*=}" ;;
    BACKEND_SECRET_KEY=*) secret="${line#*=}" ;;
  esac
done <<<"$output"
missing=()
[ -n "$endpoint" ] || missing+=(BACKEND_ENDPOINT)
[ -n "$access" ] || missing+=(BACKEND_ACCESS_KEY)
[ -n "$secret" ] || missing+=(BACKEND_SECRET_KEY)
[ ${#missing[@]} -eq 0 ] || die "realstack.sh up succeeded but did not print ${missing[*]}"

# %q quotes each value for the shell that evals these lines, whatever a key contains.
printf 'export BACKEND_ENDPOINT=%q\n' "$endpoint"
printf 'export BACKEND_ACCESS_KEY=%q\n' "$access"
printf 'export BACKEND_SECRET_KEY=%q\n' "$secret"
printf 'export BACKEND_ENDPOINT_TYPE=api\n'
say "stack up: $endpoint (stop it with scripts/realstack-stop.sh)"
