#!/usr/bin/env bash
# The whole check: lint, migrations, the test suite on SQLite and on PostgreSQL, and the
# integration tests (real queue, websockets, several nodes) on PostgreSQL + Redis.
set -eu
cd "$(dirname "$0")/.."
PY=.venv/bin/python
export PYTHONDONTWRITEBYTECODE=1

packages_rc=0
./scripts/debian_packages.sh postgresql redis-server chromium fonts-liberation || packages_rc=$?
if [ "$packages_rc" != 0 ] && [ "${CI:-}" = "true" ]; then
  echo "CI=true: nothing may be skipped, and the Debian packages could not be installed"; exit 1
fi

echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .

echo "== migrations are up to date"
DEBUG=True LORASTUDIO_DATA_DIR="$(mktemp -d)" $PY manage.py makemigrations --check --dry-run

# The multi-node test needs PostgreSQL + Redis: it runs in the last pass only.
echo "== tests on SQLite"
$PY -m pytest -q --ignore=tests/system/test_multinode.py "$@"

if [ "$packages_rc" = 0 ]; then
  echo "== tests on PostgreSQL"
  ./scripts/with_postgres.sh $PY -m pytest -q --ignore=tests/system/test_multinode.py "$@"
  echo "== integration tests on PostgreSQL + Redis"
  # Everything marked integration (real qcluster, daphne, the multi-node test), plus the
  # websocket tests, which exercise channels_redis here.
  ws_tests=$(ls tests/training/test_consumers*.py tests/training/execution/test_samples.py 2>/dev/null || true)
  ./scripts/with_postgres.sh ./scripts/with_redis.sh $PY -m pytest -q -m "integration" tests "$@"
  if [ -n "$ws_tests" ]; then
    # shellcheck disable=SC2086
    ./scripts/with_postgres.sh ./scripts/with_redis.sh $PY -m pytest -q $ws_tests "$@"
  fi
else
  echo "PostgreSQL/Redis are not installed: the PostgreSQL and PostgreSQL + Redis passes are skipped"
fi
