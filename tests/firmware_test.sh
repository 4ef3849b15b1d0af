#!/usr/bin/env bash
# firmware_test.sh ELF - runs the firmware example (examples/firmware/, built by
# `make firmware`) under qemu-system-arm, board mps2-an386, and checks what it did.
#
# 1. A private redis-server (temp dir, free port, stopped by its pid) gets 10 commands
#    in fw:commands (redis-cli XADD). qemu joins the board's UART0 to the server's TCP
#    port (-serial tcp:127.0.0.1:PORT: qemu connects to it as a client, so the UART's
#    byte stream is the connection's), prints the program's console (semihosting) and
#    exits with the program's exit code. Then, with redis-cli: fw:telemetry holds the
#    20 entries in order with their readings; the group "fw" has read all 10 commands
#    (entries-read 10, lag 0) and has nothing pending (XPENDING); fw:replies holds one
#    answer per answerable command, each naming its command's ID; {fw:commands}:dlq
#    holds the unknown command and the one nacked until max_deliveries, with their
#    error texts and delivery counts. The program's own report must show no heap use
#    and no arena left after its frees, and its link resynchronised after a reply it
#    gave up on (the late reply skipped, the next command answered rightly).
# 2. The same image with nothing on the line (-serial null: what it sends is dropped,
#    nothing comes back): it must give up with its connect error (exit code 3, "no
#    answer from the server") after exactly retry_attempts (3) opens of its link, not
#    hang. (qemu's tcp client refuses to start when nothing listens on the port, and
#    with reconnect=N it could meet another test's server on a reused port: the null
#    line is the missing server without either problem.)
# Every qemu run is bounded by FW_TIMEOUT seconds (default 120; a run takes seconds).
# Prints "firmware: ok".
set -euo pipefail
cd "$(dirname "$0")/.."
. tests/redis.sh
ELF=${1:-build/firmware/fw.elf}
FW_TIMEOUT=${FW_TIMEOUT:-120}
[ -f "$ELF" ] || { echo "firmware: $ELF not built (make firmware)" >&2; exit 1; }
dir=$(mktemp -d /tmp/rsq-firmware-XXXXXX)
cleanup() {
  redis_stop
  rm -rf "$dir"
}
trap cleanup EXIT
out=""
fail() {
  echo "firmware: FAIL: $*" >&2
  if [ -n "$out" ] && [ -f "$out" ]; then echo "  the program's output:" >&2; sed 's/^/  | /' "$out" >&2; fi
  exit 1
}

# qemu SERIAL OUTFILE: runs the image; sets fw_rc (the program's exit code, 124 when
# the time ran out) and fw_ms (wall time).
run_fw() {
  local t0
  t0=$(date +%s%N)
  fw_rc=0
  timeout -k 5 "$FW_TIMEOUT" qemu-system-arm -M mps2-an386 -display none -monitor none -serial "$1" \
    -semihosting-config enable=on,target=native -kernel "$ELF" >"$2" 2>&1 || fw_rc=$?
  fw_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
}

# The value of field NAME in redis-cli's lines: name, value, name, value... (an
# entry's fields once its ID line is dropped, or XINFO's).
field() { awk -v f="$1" 'NR % 2 == 1 && $0 == f { getline; print; exit }'; }
# expect LINES NAME VALUE WHAT: field NAME of LINES must be VALUE.
expect() {
  local got
  got=$(field "$2" <<<"$1")
  [ "$got" = "$3" ] || fail "$4: $2 is '$got', expected '$3'"
}

# --- 1. against redis-server -----------------------------------------------------------
redis_start "$dir" --port || fail "redis-server did not start (see $dir/redis.log)"
cmds=("add 2 3" "mul 6 7" "echo hello world" "flaky" "add -40 2" "mul 12345 6789" "reboot" \
      "add 1000000 2000000" "mul -3 3" "echo last")
answers=("5" "42" "hello world" "" "-38" "83810205" "" "3000000" "-9" "last")
ids=()
for c in "${cmds[@]}"; do ids+=("$(redis_cli XADD fw:commands '*' payload "$c")"); done
out="$dir/run.out"
run_fw "tcp:127.0.0.1:$REDIS_PORT,nodelay=on" "$out"
[ "$fw_rc" != 124 ] || fail "the program did not finish within ${FW_TIMEOUT} s"
[ "$fw_rc" = 0 ] || fail "the program exited with $fw_rc (0 expected)"
grep -q '^fw: done: ok$' "$out" || fail "no 'fw: done: ok' line"
grep -q '^fw: resync: .*ECHO got its reply$' "$out" || fail "no resync line"
grep -q '^fw: commands: 8 answered, 2 dead-lettered;' "$out" || fail "expected 8 commands answered and 2 dead-lettered"
grep -q 'refused 0, left after free 0; heap requests 0, default allocator calls 0$' "$out" ||
  fail "heap use, arena refusals, or arena bytes left"

# telemetry: 20 entries, in order, each with its reading
n=$(redis_cli XLEN fw:telemetry)
[ "$n" = 20 ] || fail "XLEN fw:telemetry is $n, expected 20"
# redis-cli prints an entry as its ID, then names and values, one per line: each
# telemetry entry is 3 lines (ID, "payload", the reading)
mapfile -t L < <(redis_cli XRANGE fw:telemetry - +)
[ "${#L[@]}" = 60 ] || fail "XRANGE fw:telemetry: ${#L[@]} lines, expected 20 entries of one field (60)"
for i in $(seq 0 19); do
  want="seq=$i temp_mC=$(( 21000 + (i * 37) % 500 )) uptime_ms="
  [ "${L[$((3 * i + 1))]}" = payload ] || fail "fw:telemetry entry $i has no payload field"
  got=${L[$((3 * i + 2))]}
  case "$got" in "$want"*) ;; *) fail "fw:telemetry entry $i: '$got', expected '$want...'";; esac
done

# the group: everything read and handled
pend=$(redis_cli XPENDING fw:commands fw | head -1)
[ "$pend" = 0 ] || fail "XPENDING fw:commands fw: $pend pending, expected 0"
info=$(redis_cli XINFO GROUPS fw:commands)
expect "$info" entries-read 10 "XINFO GROUPS fw:commands, group fw"
expect "$info" lag 0 "XINFO GROUPS fw:commands, group fw"
expect "$info" pending 0 "XINFO GROUPS fw:commands, group fw"
expect "$info" consumers 1 "XINFO GROUPS fw:commands, group fw"

# replies: one per answerable command, in command order, naming the command
n=$(redis_cli XLEN fw:replies)
[ "$n" = 8 ] || fail "XLEN fw:replies is $n, expected 8"
# each reply is 5 lines: ID, "payload", the answer, "cmd-id", the command's ID
mapfile -t L < <(redis_cli XRANGE fw:replies - +)
[ "${#L[@]}" = 40 ] || fail "XRANGE fw:replies: ${#L[@]} lines, expected 8 entries of two fields (40)"
k=0
for r in $(seq 0 7); do
  while [ -z "${answers[$k]}" ]; do k=$((k + 1)); done
  [ "${L[$((5 * r + 1))]}" = payload ] && [ "${L[$((5 * r + 3))]}" = cmd-id ] ||
    fail "reply ${L[$((5 * r))]}: fields '${L[$((5 * r + 1))]}' and '${L[$((5 * r + 3))]}', expected payload and cmd-id"
  got=${L[$((5 * r + 2))]} got_id=${L[$((5 * r + 4))]}
  [ "$got_id" = "${ids[$k]}" ] || fail "reply $r names command '$got_id', expected ${ids[$k]} (\"${cmds[$k]}\")"
  [ "$got" = "${answers[$k]}" ] || fail "reply to \"${cmds[$k]}\" is '$got', expected '${answers[$k]}'"
  k=$((k + 1))
done

# dead letters: "flaky" after 3 deliveries (nacked each time), "reboot" at once
dlq='{fw:commands}:dlq'
n=$(redis_cli XLEN "$dlq")
[ "$n" = 2 ] || fail "XLEN $dlq is $n, expected 2"
e=$(redis_cli XRANGE "$dlq" - + COUNT 1 | tail -n +2)
expect "$e" dlq-id "${ids[3]}" "the first dead letter (flaky)"
expect "$e" payload flaky "the first dead letter (flaky)"
expect "$e" dlq-deliveries 3 "the first dead letter (flaky)"
expect "$e" dlq-error "delivered 3 times (max_deliveries 3)" "the first dead letter (flaky)"
e=$(redis_cli XREVRANGE "$dlq" + - COUNT 1 | tail -n +2)
expect "$e" dlq-id "${ids[6]}" "the second dead letter (reboot)"
expect "$e" dlq-error "unknown command" "the second dead letter (reboot)"
expect "$e" dlq-deliveries 1 "the second dead letter (reboot)"
ok_ms=$fw_ms
grep -E '^fw: (client|uart|arena|stack|run time)' "$out" | sed 's/^/  /'
echo "firmware: against redis-server: exit 0, 20 telemetry entries, 10 commands (8 answered, 2 dead letters)," \
  "group drained (qemu run ${ok_ms} ms)"
redis_stop

# --- 2. nothing on the line ------------------------------------------------------------
out="$dir/noserver.out"
run_fw null "$out"
[ "$fw_rc" != 124 ] || fail "with no server the program hung (still running after ${FW_TIMEOUT} s)"
[ "$fw_rc" = 3 ] || fail "with no server the program exited with $fw_rc, expected 3 (publishing failed)"
grep -q '^fw: FAIL: publish: RSQ_ERR_TIMEOUT: no answer from the server over UART0 within 2000 ms' "$out" ||
  fail "with no server: no 'publish: RSQ_ERR_TIMEOUT: no answer from the server' line"
grep -q '^fw: uart: opens 3 closes 0 failed syncs 3 ' "$out" ||
  fail "with no server: expected 3 opens of the link (retry_attempts), all failed: $(grep '^fw: uart:' "$out")"
echo "firmware: with no server: exit 3 after 3 failed opens, RSQ_ERR_TIMEOUT (qemu run ${fw_ms} ms)"
echo "firmware: ok"
