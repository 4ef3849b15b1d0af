#!/usr/bin/env bash
# tls_test.sh - runs examples/tls_openssl against a private redis-server speaking TLS.
# Usage: tests/tls_test.sh PATH/TO/tls_openssl
# Makes a throwaway CA and a server certificate for 127.0.0.1/localhost, starts
# redis-server on a TLS port only (plain TCP off), checks that the example connects,
# runs PING/XADD/XRANGE and prints what it should; then that a wrong CA (not retried),
# an address the certificate does not hold, a missing CA file and a plain redis:// URL
# each fail with exit 1 and one line on stderr; then, against the server requiring
# client certificates (tls-auth-clients yes), that the example with a client
# certificate works and without one fails saying that the server closed the TLS
# session, likely for a missing client certificate (TLS 1.3: the server's alert comes
# after the handshake; TLS 1.2: during it, not retried). The server is stopped by its pid on
# exit. Prints "tls: ok". A redis-server built without TLS cannot run this: the reason
# on stderr and exit status 77 (tests/tls.mk turns it into a skip, which fails unless
# tests/skips.txt lists it; Debian's redis-server has TLS).
set -euo pipefail
bin=${1:?usage: tests/tls_test.sh PATH/TO/tls_openssl}
[ -x "$bin" ] || { echo "tls: $bin not built" >&2; exit 1; }
for tool in redis-server redis-cli openssl; do
  command -v "$tool" >/dev/null 2>&1 || { echo "tls: $tool not found (run tools/deps.sh test)" >&2; exit 1; }
done

. "$(dirname "$0")/redis.sh"
dir=$(mktemp -d /tmp/rsq-tls-XXXXXX)
trap 'redis_stop; rm -rf "$dir"' EXIT
fail() { echo "tls: FAIL: $*" >&2; [ -f "$dir/redis.log" ] && tail -5 "$dir/redis.log" >&2; exit 1; }

# --- certificates: a CA, a server certificate it signs, and an unrelated CA ---------
ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
openssl req -x509 -new "${ec[@]}" -keyout "$dir/ca.key" -out "$dir/ca.crt" -days 2 \
  -subj "/CN=rsq test CA" 2>/dev/null || fail "cannot make the CA"
openssl req -new "${ec[@]}" -keyout "$dir/server.key" -out "$dir/server.csr" \
  -subj "/CN=localhost" 2>/dev/null || fail "cannot make the server key"
printf '%s\n' "subjectAltName=IP:127.0.0.1,DNS:localhost" "basicConstraints=CA:FALSE" \
  "keyUsage=digitalSignature,keyEncipherment" "extendedKeyUsage=serverAuth" > "$dir/ext.cnf"
openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial \
  -out "$dir/server.crt" -days 2 -extfile "$dir/ext.cnf" 2>/dev/null || fail "cannot sign the server certificate"
openssl req -x509 -new "${ec[@]}" -keyout "$dir/other.key" -out "$dir/other.crt" -days 2 \
  -subj "/CN=some other CA" 2>/dev/null || fail "cannot make the second CA"
# a client certificate signed by the CA, for the server that requires one
openssl req -new "${ec[@]}" -keyout "$dir/client.key" -out "$dir/client.csr" \
  -subj "/CN=rsq test client" 2>/dev/null || fail "cannot make the client key"
printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=digitalSignature" "extendedKeyUsage=clientAuth" > "$dir/client.cnf"
openssl x509 -req -in "$dir/client.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial \
  -out "$dir/client.crt" -days 2 -extfile "$dir/client.cnf" 2>/dev/null || fail "cannot sign the client certificate"
chmod 600 "$dir"/*.key

# --- server: TLS port only; readiness through a unix socket -------------------------
# 127.0.0.2 is a loopback alias on Linux, bound when available ("-": optional)
if ! redis_start "$dir" --tls-port --bind 127.0.0.1 -127.0.0.2 \
       --tls-cert-file "$dir/server.crt" --tls-key-file "$dir/server.key" \
       --tls-ca-cert-file "$dir/ca.crt" --tls-auth-clients no; then
  # A build without TLS refuses the tls-* options: exit 77, a skip (see above).
  if grep -qiE 'tls.*(not (supported|compiled|available)|BUILD_TLS)|bad directive|connection type tls' \
       "$dir/redis.out" "$dir/redis.log" 2>/dev/null; then
    echo "tls: this redis-server was built without TLS support ($(redis-server --version | head -1))" >&2
    exit 77
  fi
  fail "redis-server did not start with TLS: $(tail -3 "$dir/redis.out")"
fi
port=$REDIS_PORT
# Some builds accept the tls-* options and still cannot speak TLS: probe the port.
if ! openssl s_client -connect "127.0.0.1:$port" -CAfile "$dir/ca.crt" -verify_return_error \
     </dev/null >"$dir/probe" 2>&1; then
  if grep -qiE 'no peer certificate|wrong version number|unexpected eof|connection reset' "$dir/probe"; then
    echo "tls: redis-server accepted --tls-port but does not speak TLS on it (built without TLS?)" >&2
    exit 77
  fi
  fail "openssl s_client cannot complete a handshake with the server: $(tail -3 "$dir/probe")"
fi

# --- the example, the right way ------------------------------------------------------
url="rediss://127.0.0.1:$port"
out=$("$bin" "$url" "$dir/ca.crt" 2>"$dir/err") || fail "example exited $? against $url: $(cat "$dir/err")"
[ ! -s "$dir/err" ] || fail "example wrote to stderr: $(cat "$dir/err")"
grep -qx 'PING: PONG' <<<"$out" || fail "no PONG in: $out"
id=$(sed -n 's/^added \([0-9]*-[0-9]*\)$/\1/p' <<<"$out")
[ -n "$id" ] || fail "no added ID in: $out"
grep -qx "$id payload=hello over TLS" <<<"$out" || fail "XRANGE did not list $id: $out"
# the entry really is on the server
[ "$(redis_cli xlen tls:demo)" = 1 ] || fail "stream tls:demo does not hold one entry"
# by name: SNI and the DNS entry of the certificate
out=$("$bin" "rediss://localhost:$port" "$dir/ca.crt" 2>"$dir/err") || fail "by name: $(cat "$dir/err")"
[ "$(grep -c 'payload=hello over TLS' <<<"$out")" = 2 ] || fail "by name: expected two entries in: $out"

# --- failures: exit 1, one line on stderr, nothing on stdout ------------------------
expect_fail() { # what, pattern, args...
  local what=$1 pat=$2 rc=0
  shift 2
  out=$("$bin" "$@" 2>"$dir/err") || rc=$?
  [ "$rc" = 1 ] || fail "$what: exit status $rc, expected 1"
  [ -z "$out" ] || fail "$what: wrote to stdout: $out"
  [ "$(wc -l <"$dir/err")" = 1 ] || fail "$what: expected one line on stderr, got: $(cat "$dir/err")"
  grep -qiE "$pat" "$dir/err" || fail "$what: stderr does not match '$pat': $(cat "$dir/err")"
}
expect_fail "wrong CA" 'certificate verify failed' "$url" "$dir/other.crt"
# 127.0.0.2 (a loopback alias on Linux, bound when available) is not in the certificate
if redis__port_busy "$port" 127.0.0.2; then
  expect_fail "address not in the certificate" 'certificate verify failed.*mismatch' "rediss://127.0.0.2:$port" "$dir/ca.crt"
fi
expect_fail "plain URL" 'rediss://' "redis://127.0.0.1:$port" "$dir/ca.crt"
expect_fail "missing CA file" 'cannot load CA file' "$url" "$dir/no-such.crt"
# a wrong CA is not retried: the server saw exactly one failed handshake for that run
before=$(grep -c 'unknown ca' "$dir/redis.log" || true)
"$bin" "$url" "$dir/other.crt" >/dev/null 2>&1 || true
redis_cli ping >/dev/null; redis_cli ping >/dev/null # the server has read the client's alerts by now
after=$(grep -c 'unknown ca' "$dir/redis.log" || true)
[ $(( after - before )) = 1 ] || fail "wrong CA: the server saw $(( after - before )) handshakes, expected 1 (no retry)"
[ "$(redis_cli xlen tls:demo)" = 2 ] || fail "failed connects wrote to the stream"

# --- a server that requires client certificates (tls-auth-clients yes) ---------------
for proto in TLSv1.3 TLSv1.2; do
  redis_stop
  redis_start "$dir" --tls-port --bind 127.0.0.1 --tls-cert-file "$dir/server.crt" --tls-key-file "$dir/server.key" \
    --tls-ca-cert-file "$dir/ca.crt" --tls-auth-clients yes --tls-protocols "$proto" ||
    fail "redis-server did not start with tls-auth-clients yes ($proto): $(tail -3 "$dir/redis.out")"
  url="rediss://127.0.0.1:$REDIS_PORT"
  out=$("$bin" "$url" "$dir/ca.crt" "$dir/client.crt" "$dir/client.key" 2>"$dir/err") ||
    fail "$proto: with a client certificate: exit $?: $(cat "$dir/err")"
  grep -qx 'PING: PONG' <<<"$out" || fail "$proto: with a client certificate: no PONG in: $out"
  expect_fail "$proto: no client certificate" 'closed the TLS session.*client certificate' "$url" "$dir/ca.crt"
done
# TLS 1.2 refuses during the handshake: one attempt, not retried
before=$(grep -c 'did not return a certificate' "$dir/redis.log" || true)
"$bin" "$url" "$dir/ca.crt" >/dev/null 2>&1 || true
redis_cli ping >/dev/null; redis_cli ping >/dev/null
after=$(grep -c 'did not return a certificate' "$dir/redis.log" || true)
[ $(( after - before )) = 1 ] || fail "no client certificate: the server saw $(( after - before )) handshakes, expected 1 (no retry)"

echo "tls: ok"
