#!/bin/sh
# How tests/data/state-v1/ was made: fasttrack-gitops as it was at schema version 1 (commit 7db1c9d, the parent
# of e11624a, which added migration 2) runs four jobs with the local executor; their database is dumped as SQL and
# their attempt logs are copied. Run from a clone with history, with a Python that has the package's dependencies:
#     sh tests/data/state-v1/make.sh .venv/bin/python
set -eu
PY=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
OUT=$(cd "$(dirname "$0")" && pwd)
W=/tmp/ftg-v1
rm -rf "$W" && mkdir -p "$W/v1" "$W/mnist-pipelines"
ROOT=$(git -C "$OUT" rev-parse --show-toplevel)
git -C "$ROOT" archive 7db1c9d fasttrack_gitops schemas | tar -x -C "$W/v1"
export PYTHONPATH="$W/v1"
export GIT_AUTHOR_NAME=Test GIT_AUTHOR_EMAIL=test@example.com GIT_COMMITTER_NAME=Test GIT_COMMITTER_EMAIL=test@example.com
S="$W/state"
ftg() { "$PY" -m fasttrack_gitops "$@"; }
job_of() {
    ftg jobs list --state-dir "$S" --format json |
        "$PY" -c "import json, sys; print([j['id'] for j in json.load(sys.stdin) if j['pipeline'] == '$1'][0])"
}

cd "$W/mnist-pipelines"
git init -q -b main
mkdir -p pipelines tasks/fit
echo "fitted the model" > tasks/fit/msg.txt
cat > pipelines/train.yaml <<'EOF'
version: "26.4.4"
name: train
environment:
  envs: {STAGE: v1}
tasks:
  - name: prepare
    command: echo prepared > "$PIPELINE_OUTPUT_ROOT/data.txt"; echo prepared the data
  - name: fit
    dependencies: [prepare]
    code: tasks/fit
    retry: {max_attempts: 2}
    command: 'if [ ! -e "$PIPELINE_VFROOT/fit.tried" ]; then touch "$PIPELINE_VFROOT/fit.tried"; echo out of memory; exit 1; fi; cat msg.txt'
  - name: report
    dependencies: [fit]
    command: echo reported
EOF
cat > pipelines/broken.yaml <<'EOF'
version: "26.4.4"
name: broken
tasks:
  - name: check
    command: echo bad data; exit 3
  - name: publish
    dependencies: [check]
    command: echo published
  - name: docs
    skip: true
    command: echo docs
EOF
git add -A && git commit -q -m pipelines
ftg run pipelines/train.yaml --executor local --state-dir "$S"            # succeeds; fit on its second attempt
ftg run pipelines/broken.yaml --executor local --state-dir "$S" || true   # check fails, publish and docs skipped
ftg jobs rerun "$(job_of broken)" --executor local --state-dir "$S" || true
cat > pipelines/slow.yaml <<'EOF'
version: "26.4.4"
name: slow
tasks:
  - name: wait
    command: echo waiting; sleep 60
  - name: after
    dependencies: [wait]
    command: echo after
EOF
git add -A && git commit -q -m slow
ftg run pipelines/slow.yaml --executor local --state-dir "$S" > "$W/slow.out" 2>&1 &
sleep 3
ftg jobs cancel "$(job_of slow)" --state-dir "$S"                        # cancelled while wait runs
wait || true
ftg jobs list --state-dir "$S"

"$PY" - "$S/state.db" "$OUT/state.sql" <<'EOF'
import sqlite3, sys
cx = sqlite3.connect(sys.argv[1])
version, app = (cx.execute(f"PRAGMA {p}").fetchone()[0] for p in ("user_version", "application_id"))
assert version == 1, version
with open(sys.argv[2], "w") as out:
    out.write(f"PRAGMA application_id = {app};\nPRAGMA user_version = {version};\n")
    out.writelines(line + "\n" for line in cx.iterdump())
EOF
rm -rf "$OUT/logs" && cp -r "$S/logs" "$OUT/logs"
