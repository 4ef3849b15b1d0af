#!/usr/bin/env bash
# examples_test.sh - builds every examples/*.c exactly as its first comment says
# ("Build: cc examples/NAME.c -o NAME [-lLIB...]"), again with every warning as an
# error, and runs each one against a private redis-server (started here on a free port
# and a unix socket, stopped by its pid on exit), checking what it prints.
# tls_openssl is built here and run by tests/tls_test.sh (make test-tls).
# Prints "examples: ok".
set -euo pipefail
cd "$(dirname "$0")/.."
. tests/redis.sh
STRICT=(-std=c99 -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes -Werror)
dir=$(mktemp -d /tmp/rsq-examples-XXXXXX)
trap 'redis_stop; rm -rf "$dir"' EXIT
fail() { echo "examples: FAIL: $*" >&2; exit 1; }

# --- build -------------------------------------------------------------------------
have_openssl() { printf '#include <openssl/ssl.h>\n' | cc -E -x c - >/dev/null 2>&1; }
built=()
for src in examples/*.c; do
  name=$(basename "$src" .c)
  # the Build: line of the first comment (the comment ends at the first */)
  line=$(sed -n '1,/\*\//{s/^[[:space:]]*Build:[[:space:]]*//p}' "$src" | head -1)
  [ -n "$line" ] || fail "$src: its first comment has no 'Build: cc $src -o $name' line"
  read -r -a cmd <<<"$line"
  [ "${cmd[0]}" = cc ] && [ "${cmd[1]}" = "$src" ] && [ "${cmd[2]}" = -o ] && [ "${cmd[3]}" = "$name" ] ||
    fail "$src: the build line must start 'cc $src -o $name', not '$line'"
  libs=("${cmd[@]:4}")
  for l in "${libs[@]}"; do [[ $l == -l* ]] || fail "$src: only -l flags may follow, not '$l'"; done
  if [[ " ${libs[*]} " == *" -lssl "* ]] && ! have_openssl; then
    echo "examples: $name skipped: OpenSSL headers not installed (tools/deps.sh test)"
    continue
  fi
  cc "$src" -o "$dir/$name" "${libs[@]}" 2>"$dir/$name.cc" ||
    fail "$src: '$line' failed: $(head -20 "$dir/$name.cc")"
  [ ! -s "$dir/$name.cc" ] || fail "$src: '$line' printed warnings: $(head -20 "$dir/$name.cc")"
  for compiler in gcc clang; do
    command -v "$compiler" >/dev/null 2>&1 || continue
    "$compiler" "${STRICT[@]}" "$src" -o "$dir/$name.strict" "${libs[@]}" 2>"$dir/$name.cc" ||
      fail "$src: $compiler ${STRICT[*]}: $(head -20 "$dir/$name.cc")"
  done
  built+=("$name")
done

# --- a private server ----------------------------------------------------------------
redis_start "$dir" --port --bind 127.0.0.1 || fail "redis-server did not start: $(tail -3 "$dir/redis.out" "$dir/redis.log" 2>/dev/null)"
tcp="redis://127.0.0.1:$REDIS_PORT"
unix="unix://$REDIS_SOCK"

run() { # name args... : runs an example; its stdout in $out, fails on a non-zero exit or stderr
  local name=$1 rc=0
  shift
  out=$("$dir/$name" "$@" 2>"$dir/err") || rc=$?
  [ "$rc" = 0 ] || fail "$name $*: exit status $rc: $(head -5 "$dir/err")"
  [ ! -s "$dir/err" ] || fail "$name $*: wrote to stderr: $(head -5 "$dir/err")"
}
has() { grep -qxE "$2" <<<"$out" || fail "$1: no line matching '$2' in:"$'\n'"$out"; }
ID='[0-9]+-[0-9]+'

for name in "${built[@]}"; do
  case $name in
  hello)
    run hello "$tcp"
    has hello "added $ID"
    id=$(sed -n 's/^added //p' <<<"$out")
    has hello "$id payload=hello, streams"
    [ "$(redis_cli xlen hello)" = 1 ] || fail "hello: stream 'hello' does not hold one entry"
    ;;
  custom_transport)
    for url in "$unix" "$tcp"; do
      run custom_transport "$url"
      has custom_transport 'connected; descriptor -1 .*'
      has custom_transport 'PING: PONG'
      [ "$(grep -cE "^added $ID$" <<<"$out")" = 3 ] || fail "custom_transport: expected 3 IDs in: $out"
      for i in 1 2 3; do has custom_transport "entry $ID payload=reading $i"; done
      has custom_transport 'XREAD BLOCK 300: nothing new'
      has custom_transport 'transport: 1 open, 1 close'
    done
    [ "$(redis_cli xlen custom:demo)" = 3 ] || fail "custom_transport: stream custom:demo does not hold 3 entries"
    # a server that is not there: exit 1, one line on stderr naming the cause
    rc=0
    "$dir/custom_transport" "unix://$dir/no-such.sock" >/dev/null 2>"$dir/err" || rc=$?
    [ "$rc" = 1 ] && [ "$(wc -l <"$dir/err")" = 1 ] && grep -q 'No such file' "$dir/err" ||
      fail "custom_transport on a missing socket: status $rc, stderr: $(cat "$dir/err")"
    ;;
  poll_loop)
    for url in "$tcp" "$unix"; do
      run poll_loop "$url" 60
      has poll_loop 'round trip: 60 published, 60 confirmed, 60 received .*'
      # every event once, in order (the example itself checks the order too)
      got=$(sed -n 's/^received [0-9]*-[0-9]* //p' <<<"$out")
      want=$(for i in $(seq 60); do echo "event $i"; done)
      [ "$got" = "$want" ] || fail "poll_loop: events missing or out of order:"$'\n'"$out"
      [ "$(redis_cli xlen poll_loop:events)" = 60 ] || fail "poll_loop: the stream does not hold 60 entries"
    done
    ;;
  tls_openssl) ;; # run by tests/tls_test.sh against a TLS server
  *) echo "examples: $name built; no run check here yet" ;;
  esac
done
echo "examples: ok"
