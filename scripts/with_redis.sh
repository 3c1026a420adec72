#!/usr/bin/env bash
# Run a command with a throw-away Redis server on loopback (Debian's redis-server, a temporary
# directory, a free port, no persistence) and REDIS_URL pointing at it; the server stops
# afterwards.
set -eu
server=$(command -v redis-server || true)
[ -n "$server" ] || { echo "redis-server not found (Debian: apt-get install redis-server)"; exit 3; }
tmp=$(mktemp -d /tmp/lorastudio-redis.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
pid=""
cleanup() {
  if [ -n "$pid" ]; then
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
"$server" --bind 127.0.0.1 --port "$port" --dir "$tmp" --save '' --appendonly no \
  --logfile "$tmp/redis.log" --protected-mode yes &
pid=$!
for _ in $(seq 100); do
  python3 -c "import socket,sys; s=socket.socket(); sys.exit(s.connect_ex(('127.0.0.1', $port)))" && break
  sleep 0.05
done
echo "Redis $("$server" --version | awk '{print $3}' | cut -d= -f2) on 127.0.0.1:$port"
export REDIS_URL="redis://127.0.0.1:$port/0"
"$@"
