#!/usr/bin/env bash
# interop_test.sh - rsq and ioredis (Node.js) on the same streams, against a private
# redis-server (started here on a free port and a unix socket, stopped by its pid on
# exit). interop.js does the checks (its first comment lists them); this script
# provides the server, the rsq tool (`make rsq` if missing) and the Node modules
# (`npm install` into tests/interop/node_modules if missing).
# Prints "interop: ok", or fails non-zero. Needs node and npm (tools/deps.sh test
# installs Debian's nodejs and npm; make test-interop runs it first).
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/redis.sh
fail() { echo "interop: FAIL: $*" >&2; exit 1; }

command -v node >/dev/null 2>&1 || fail "node is not installed (Debian: apt-get install nodejs npm)"
[ -x ./rsq ] || make -s rsq >/dev/null || fail "make rsq failed"
if [ ! -d tests/interop/node_modules/ioredis ]; then
  command -v npm >/dev/null 2>&1 || fail "npm is not installed (Debian: apt-get install npm)"
  echo "interop: npm install (ioredis) into tests/interop/node_modules"
  (cd tests/interop && npm install --no-audit --no-fund --loglevel=error >/dev/null) || fail "npm install failed"
fi

dir=$(mktemp -d /tmp/rsq-interop-XXXXXX)
trap 'redis_stop; rm -rf "$dir"' EXIT
redis_start "$dir" --port --bind 127.0.0.1 || fail "redis-server did not start: $(tail -3 "$dir/redis.out" "$dir/redis.log" 2>/dev/null)"

REDIS_SOCK=$REDIS_SOCK RSQ_URL="redis://127.0.0.1:$REDIS_PORT" RSQ_BIN="$PWD/rsq" \
  timeout 60 node tests/interop/interop.js
