#!/usr/bin/env bash
# Prints on stdout the URL of a PostgreSQL server the tests may use (create
# and drop databases as superuser). Everything else goes to stderr, so callers
# can write  VIDEOSHARE_TEST_DATABASE=$(scripts/ensure-postgres.sh) cargo test
#
# In order:
#   1. $VIDEOSHARE_TEST_DATABASE, when `psql "$URL" -Atc 'select 1'` works.
#   2. A server already running here that lets `postgres` in without a
#      password: on 127.0.0.1:5432, then on the local socket.
#   3. A throwaway cluster of its own in /var/tmp/videoshare-test-pg, on
#      127.0.0.1:54329, installing Debian's postgresql first if needed. Reused
#      when already running, (re)started otherwise. Its URL is also written to
#      target/videoshare-test-db.url so a bare `cargo test` can find it.
# Safe to run any number of times. See docs/postgres-tests.md.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Outside the repository: the server runs as the postgres user, which need
# not be able to enter the checkout.
D=/var/tmp/videoshare-test-pg
DATA=$D/data
PORT=54329
URL="postgres://postgres@127.0.0.1:$PORT/postgres"

# Only the URL may reach stdout: keep the real stdout as fd 3 and send
# everything else (apt, initdb, pg_ctl, psql chatter) to stderr.
exec 3>&1 1>&2

# Never wait on a password prompt (-w below) nor on a host that drops packets.
export PGCONNECT_TIMEOUT=${PGCONNECT_TIMEOUT:-5}

say() { echo "ensure-postgres: $*" >&2; }
die() { say "error: $*"; exit 1; }

# 1. A server chosen by the caller.
if [[ -n "${VIDEOSHARE_TEST_DATABASE:-}" ]]; then
  command -v psql >/dev/null || "$REPO/scripts/ensure-deps.sh" postgresql
  if psql "$VIDEOSHARE_TEST_DATABASE" -X -w -Atc 'select 1' >/dev/null; then
    echo "$VIDEOSHARE_TEST_DATABASE" >&3
    exit 0
  fi
  say "warning: VIDEOSHARE_TEST_DATABASE does not answer 'select 1' (psql's error above);"
  say "warning: falling back to the throwaway cluster on port $PORT"
fi

# 2. A server this machine already runs, if it lets us in without a password.
if command -v psql >/dev/null; then
  for local in "postgres://postgres@127.0.0.1:5432/postgres" \
      "postgres://postgres@/postgres?host=/var/run/postgresql"; do
    if psql "$local" -X -w -Atc 'select 1' >/dev/null 2>&1; then
      say "using the PostgreSQL server at $local"
      mkdir -p "$REPO/target"
      echo "$local" >"$REPO/target/videoshare-test-db.url"
      echo "$local" >&3
      exit 0
    fi
  done
fi

# 3. Our own cluster. Work from /: run as postgres from a folder it cannot
# enter (say /root), the PostgreSQL tools complain "could not change directory".
cd /

newest_bin() {
  local dir
  dir=$(compgen -G '/usr/lib/postgresql/*/bin/initdb' | sort -V | tail -n 1)
  [[ -n "$dir" ]] && dirname "$dir"
}
BIN=$(newest_bin) || { "$REPO/scripts/ensure-deps.sh" postgresql; BIN=$(newest_bin); } ||
  die "no initdb under /usr/lib/postgresql/*/bin even after installing postgresql"
VERSION=$(basename "$(dirname "$BIN")")

# initdb and postgres refuse to run as root: as root, run them as the postgres
# user (created by the Debian package); anyone else runs them as themselves.
if ((EUID == 0)); then
  id postgres >/dev/null 2>&1 || die "no 'postgres' user (is Debian's postgresql installed?)"
  OWNER=postgres
  as_owner() { runuser -u postgres -- "$@"; }
else
  OWNER=$(id -un)
  as_owner() { "$@"; }
fi

# The server outlives this script and keeps every file descriptor pg_ctl
# hands it: one still open on a caller's pipe (our fd 3 is the stdout of
# `$(scripts/ensure-postgres.sh)`) would make that caller wait for the server
# to exit. So pg_ctl start gets only stdin, stdout and stderr.
without_extra_fds() {
  (
    for fd in /proc/self/fd/*; do
      fd=${fd##*/}
      ((fd > 2)) && eval "exec $fd>&-" 2>/dev/null
    done
    "$@"
  )
}

# Our psql, not Debian's wrapper: same version as the server, never reads ~/.psqlrc.
q() { "$BIN/psql" "$URL" -X -w -q -v ON_ERROR_STOP=1 "$@"; }

# Answers on our port, and is the server of our data folder (not some other one).
ours_running() {
  [[ "$(q -Atc 'show data_directory' 2>/dev/null)" == "$DATA" ]]
}

if [[ -d "$D" && "$(stat -c %U "$D")" != "$OWNER" ]]; then
  die "$D belongs to $(stat -c %U "$D"), not $OWNER: run as root, or remove it"
fi
install -d -m 700 -o "$OWNER" -g "$(id -gn "$OWNER")" "$D"

# A data folder from another major version, or a half-done initdb: the data is
# throwaway, so start over instead of upgrading.
if [[ -e "$DATA" && "$(cat "$DATA/PG_VERSION" 2>/dev/null)" != "$VERSION" ]]; then
  old=$(cat "$DATA/PG_VERSION" 2>/dev/null || echo none)
  say "$DATA holds PostgreSQL '$old', not $VERSION: recreating it"
  # Stop a server still running on it first (its own pg_ctl when present).
  ctl=/usr/lib/postgresql/$old/bin/pg_ctl
  [[ -x "$ctl" ]] || ctl=$BIN/pg_ctl
  as_owner "$ctl" -D "$DATA" stop -m immediate >/dev/null 2>&1 || true
  rm -rf -- "$DATA"
fi

if [[ ! -e "$DATA" ]]; then
  say "creating a PostgreSQL $VERSION cluster in $DATA"
  # trust: only 127.0.0.1 and our own socket folder can reach it, and it holds
  # nothing but test databases. --no-sync: nothing here needs to survive a crash.
  as_owner "$BIN/initdb" -D "$DATA" -U postgres -A trust --no-sync -E UTF8 >/dev/null ||
    die "initdb failed (see above)"
fi

if ours_running; then
  say "reusing the server on port $PORT"
else
  say "starting PostgreSQL $VERSION on 127.0.0.1:$PORT (log: $D/log)"
  # Speed over durability: a crash only loses test databases. The socket sits
  # beside the data, not in /var/run/postgresql (may be missing, root-owned).
  # postgres ignores a stale postmaster.pid by itself, but for a second or so
  # after a kill -9 the dead server is an unreaped zombie that still counts as
  # "another postmaster running": hence a few tries.
  tries=0
  until without_extra_fds as_owner "$BIN/pg_ctl" -D "$DATA" -l "$D/log" -w -t 60 start -o \
      "-p $PORT -k $D -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=400" \
      </dev/null >/dev/null; do
    if ((++tries == 4)); then
      tail -n 20 "$D/log" >&2 || true
      die "PostgreSQL did not start (log above, from $D/log). Another program on port $PORT?"
    fi
    say "start failed; trying again in 2 s"
    sleep 2
  done
  ours_running || die "started, but $URL does not answer as the server of $DATA"
fi

# Databases left by killed test runs (a test drops its own when it ends).
# Without FORCE: a database still in use belongs to a test running right now,
# maybe from another checkout sharing this cluster, so it is kept.
dropped=0 kept=0
while IFS= read -r db; do
  [[ -n "$db" ]] || continue
  if q -c "drop database $db" 2>/dev/null; then
    dropped=$((dropped + 1))
  else
    kept=$((kept + 1))
  fi
done < <(q -Atc "select quote_ident(datname) from pg_database where datname like 'vs\_t\_%'")
((dropped + kept == 0)) || say "leftover test databases: $dropped dropped, $kept in use and kept"

mkdir -p "$REPO/target"
echo "$URL" >"$REPO/target/videoshare-test-db.url"
echo "$URL" >&3
