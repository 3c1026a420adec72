#!/usr/bin/env bash
# Run a command with a throw-away PostgreSQL server on loopback (Debian's binaries, a temporary
# directory, a free port) and DATABASE_URL pointing at it; the server stops afterwards.
set -eu
bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -n "$bindir" ] || { echo "PostgreSQL server binaries not found"; exit 3; }
tmp=$(mktemp -d /tmp/lorastudio-pg.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
as_pg=()
if [ "$(id -u)" = 0 ]; then
  # PostgreSQL refuses to run as root: use the postgres account the package created.
  chown postgres "$tmp"
  as_pg=(runuser -u postgres --)
fi
password=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
printf '%s\n' "$password" > "$tmp/pw"
[ "$(id -u)" = 0 ] && chown postgres "$tmp/pw"
cleanup() {
  "${as_pg[@]}" "$bindir/pg_ctl" -D "$tmp/data" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
"${as_pg[@]}" "$bindir/initdb" -D "$tmp/data" -U lorastudio --pwfile="$tmp/pw" -A scram-sha-256 \
  --no-sync >/dev/null
"${as_pg[@]}" "$bindir/pg_ctl" -D "$tmp/data" -l "$tmp/server.log" -w \
  -o "-c listen_addresses=127.0.0.1 -p $port -k $tmp -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
  start >/dev/null
PGPASSWORD=$password "$bindir/createdb" -h 127.0.0.1 -p "$port" -U lorastudio lorastudio
echo "PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') on 127.0.0.1:$port"
export DATABASE_URL="postgres://lorastudio:$password@127.0.0.1:$port/lorastudio"
"$@"
