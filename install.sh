#!/usr/bin/env bash
# Set up LoRA Studio on this machine: venv, packages, .env, database, and this machine as a
# GPU node with the sd-scripts / ComfyUI / SwarmUI folders and model files found in a home
# folder, and a Hugging Face cache holding sd-scripts' tokenizers ($HF_HOME, else the home
# folder's .cache/huggingface) as the trainer's HF_HOME. Idempotent: run it again after an
# upgrade or after adding models.
#
#   ./install.sh [--dry-run] [--home DIR] [--env-file FILE] [--node NAME] [--no-probe]
#
# --dry-run prints what it would do and changes nothing. Needs only PyPI (and Debian's
# python3-venv); no path of this machine is written into the repository, only into .env
# (ignored by git) and the database.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")" && pwd)
cd "$ROOT"

DRY_RUN=0
HOME_DIR=${HOME:-}
ENV_FILE="$ROOT/.env"
NODE=""
PROBE=1
PYTHON=${PYTHON:-}
VENV="$ROOT/.venv"

usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DRY_RUN=1 ;;
    --home) HOME_DIR=${2:?--home needs a folder}; shift ;;
    --env-file) ENV_FILE=${2:?--env-file needs a file}; shift ;;
    --node) NODE=${2:?--node needs a name}; shift ;;
    --no-probe) PROBE=0 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "unknown option: $1"; usage; exit 2 ;;
  esac
  shift
done
[ -d "$HOME_DIR" ] || { echo "--home: $HOME_DIR is not a folder"; exit 2; }
HOME_DIR=$(cd "$HOME_DIR" && pwd)

say() { echo "==> $*"; }
act() {  # print, and run unless --dry-run
  if [ "$DRY_RUN" = 1 ]; then echo "would run: $*"; else echo "+ $*"; "$@"; fi
}

# 1. Python and the virtual environment
if [ -z "$PYTHON" ]; then
  PYTHON=$(command -v python3.11 || command -v python3 || true)
fi
[ -n "$PYTHON" ] || { echo "Python 3.11 is needed (Debian: apt-get install python3 python3-venv)"; exit 1; }
if [ -x "$VENV/bin/python" ]; then
  say "virtual environment: $VENV (exists)"
else
  say "virtual environment: $VENV (new)"
  act "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"

# 2. Packages (skipped when a stamp is newer than the requirements)
stamp="$VENV/.installed-runtime"
if { [ -f "$stamp" ] && [ "$stamp" -nt requirements.txt ]; } ||
   { [ -f "$VENV/.installed" ] && [ "$VENV/.installed" -nt requirements.txt ]; }; then
  say "packages: up to date"
else
  say "packages: installing requirements.txt"
  act "$PY" -m pip install --quiet -r requirements.txt
  [ "$DRY_RUN" = 1 ] || touch "$stamp"
fi

# 3. .env: a secret key and this machine's node name, added only when missing. It holds
# SECRET_KEY (and perhaps DATABASE_URL's password): readable by its owner only, however it
# was made.
if [ -f "$ENV_FILE" ]; then
  mode=$(stat -c %a "$ENV_FILE")
  if [ "$mode" != 600 ]; then
    if [ "$DRY_RUN" = 1 ]; then
      echo "would run: chmod 600 $ENV_FILE (now $mode)"
    else
      chmod 600 "$ENV_FILE"
      say "$ENV_FILE: readable by its owner only now (mode 600, was $mode)"
    fi
  fi
fi
env_has() { [ -f "$ENV_FILE" ] && grep -q "^$1=" "$ENV_FILE"; }
NODE=${NODE:-${LORASTUDIO_NODE:-$(hostname -s 2>/dev/null || hostname)}}
if env_has LORASTUDIO_NODE; then
  NODE=$(grep '^LORASTUDIO_NODE=' "$ENV_FILE" | tail -n 1 | cut -d= -f2-)
fi
for key in SECRET_KEY LORASTUDIO_NODE; do
  if env_has "$key"; then
    say "$ENV_FILE: $key already set"
  elif [ "$DRY_RUN" = 1 ]; then
    echo "would add $key to $ENV_FILE"
  else
    case "$key" in
      SECRET_KEY) value=$("$PY" -c 'import secrets; print(secrets.token_urlsafe(50))') ;;
      LORASTUDIO_NODE) value=$NODE ;;
    esac
    (umask 077 && touch "$ENV_FILE") && chmod 600 "$ENV_FILE"
    printf '%s=%s\n' "$key" "$value" >> "$ENV_FILE"
    say "$ENV_FILE: added $key"
  fi
done
export LORASTUDIO_ENV_FILE="$ENV_FILE"

probe=()
[ "$PROBE" = 1 ] || probe=(--no-probe)
if [ "$DRY_RUN" = 1 ]; then
  if [ ! -x "$PY" ]; then
    say "detection runs once the virtual environment exists"
    exit 0
  fi
  # Read-only detection: a throw-away data folder, so not even a database file is made.
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  export LORASTUDIO_DATA_DIR="$tmp" DATABASE_URL="sqlite:///$tmp/dry-run.sqlite3"
  export DEBUG=True SECRET_KEY=${SECRET_KEY:-dry-run-only}
  export LORASTUDIO_NODE="$NODE"
  echo "would run: $PY manage.py migrate --noinput"
  say "this machine as node $NODE (detected under $HOME_DIR)"
  "$PY" manage.py register_node --name "$NODE" --detect "$HOME_DIR" "${probe[@]}" --dry-run
  say "base models under $HOME_DIR"
  "$PY" manage.py scan_models "$HOME_DIR" --dry-run
  exit 0
fi

# 4. Database, node and base models
act "$PY" manage.py migrate --noinput
say "this machine as node $NODE (detected under $HOME_DIR)"
act "$PY" manage.py register_node --name "$NODE" --detect "$HOME_DIR" "${probe[@]}"
say "base models under $HOME_DIR"
act "$PY" manage.py scan_models "$HOME_DIR"
say "done. Next: $PY manage.py check_node [--probe] (tokenizers offline, one real training step);"
say "make run (one workstation) or deploy/ (systemd)"
