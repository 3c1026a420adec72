#!/usr/bin/env bash
# The whole check: lint, migrations, and the test suite on SQLite and on PostgreSQL.
set -eu
cd "$(dirname "$0")/.."
PY=.venv/bin/python
export PYTHONDONTWRITEBYTECODE=1

packages_rc=0
./scripts/debian_packages.sh postgresql chromium fonts-liberation || packages_rc=$?
if [ "$packages_rc" != 0 ] && [ "${CI:-}" = "true" ]; then
  echo "CI=true: nothing may be skipped, and the Debian packages could not be installed"; exit 1
fi

echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .

echo "== migrations are up to date"
DEBUG=True LORASTUDIO_DATA_DIR="$(mktemp -d)" $PY manage.py makemigrations --check --dry-run

echo "== tests on SQLite"
$PY -m pytest -q "$@"

if [ "$packages_rc" = 0 ]; then
  echo "== tests on PostgreSQL"
  ./scripts/with_postgres.sh $PY -m pytest -q "$@"
else
  echo "PostgreSQL is not installed: the PostgreSQL pass is skipped"
fi
