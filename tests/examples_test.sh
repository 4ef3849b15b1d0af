#!/usr/bin/env bash
# examples_test.sh - builds every examples/*.c exactly as its first comment says
# ("Build: cc examples/NAME.c -o NAME [-lLIB...]"), again with every warning as an
# error, and runs each one against a private redis-server (started here on a free port
# and a unix socket, stopped by its pid on exit), checking what it prints.
# tls_openssl is built here and run by tests/tls_test.sh (make test-tls).
# The runs: hello, custom_transport, poll_loop (their output and the stream they fill);
# producer (every ID printed, priorities, headers as stored, throughput lines); worker
# in the background on a backlog with a "crashed" consumer holding entries and a short
# visibility: every job done once, retries, a dead letter with its fields, reclaims,
# then SIGTERM -> exit 0 and exact counters; restarted under the same name it resumes
# its own pending entries, SIGINT -> exit 0; fanout (both groups get every event);
# priority (drained highest level first).
# Prints "examples: ok".
set -euo pipefail
cd "$(dirname "$0")/.."
. tests/redis.sh
STRICT=(-std=c99 -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes -Werror)
dir=$(mktemp -d /tmp/rsq-examples-XXXXXX)
bg_pid="" # an example running in the background, stopped by its pid on exit
cleanup() {
  if [ -n "$bg_pid" ]; then kill -9 "$bg_pid" 2>/dev/null || true; wait "$bg_pid" 2>/dev/null || true; fi
  redis_stop
  rm -rf "$dir"
}
trap cleanup EXIT
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
count() { grep -cxE "$1" <<<"$out" || true; } # lines of $out matching a pattern

# worker_start NAME VISIBILITY: ./worker in the background on queue jobs, group workers
worker_start() {
  "$dir/worker" "$tcp" jobs workers "$1" "$2" >"$dir/worker.out" 2>"$dir/worker.err" &
  bg_pid=$!
}
# worker_wait PATTERN N: until worker.out has N lines matching PATTERN (10 s at most)
worker_wait() {
  local i
  for i in $(seq 200); do
    [ "$(grep -cxE "$1" "$dir/worker.out" || true)" -ge "$2" ] && return 0
    kill -0 "$bg_pid" 2>/dev/null || fail "worker exited early:"$'\n'"$(cat "$dir/worker.out" "$dir/worker.err")"
    sleep 0.05
  done
  fail "worker: no $2 lines matching '$1' within 10 s:"$'\n'"$(cat "$dir/worker.out" "$dir/worker.err")"
}
# worker_stop SIGNAL: sends it, waits (5 s at most); the exit status must be 0. Sets $out.
worker_stop() {
  local i rc=0
  kill "-$1" "$bg_pid"
  for i in $(seq 100); do kill -0 "$bg_pid" 2>/dev/null || break; sleep 0.05; done
  kill -0 "$bg_pid" 2>/dev/null && fail "worker still runs 5 s after SIG$1"
  wait "$bg_pid" || rc=$?
  bg_pid=""
  out=$(cat "$dir/worker.out")
  [ "$rc" = 0 ] || fail "worker: exit status $rc after SIG$1:"$'\n'"$out"$'\n'"$(cat "$dir/worker.err")"
  if grep -v -E '^worker: (info|warning): ' "$dir/worker.err" | grep -q .; then
    fail "worker: unexpected stderr: $(cat "$dir/worker.err")"
  fi
}

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
  producer)
    # 2 x 30 messages (one by one, then one batch) on the unix socket: every ID printed,
    # every tenth urgent, a throughput line per method
    run producer "$unix" orders 30
    has producer 'queue orders: normal messages in orders, urgent ones in \{orders\}:p1'
    [ "$(count "sent $ID order [0-9]+ priority [01]")" = 60 ] || fail "producer: expected 60 'sent' lines in:"$'\n'"$out"
    for i in $(seq 60); do
      p=0; [ $((i % 10)) = 0 ] && p=1
      [ "$(count "sent $ID order $i priority $p")" = 1 ] || fail "producer: order $i (priority $p) not printed once"
    done
    has producer 'one by one: 30 messages in [0-9.]+ ms \([0-9]+ msg/s\)'
    has producer 'batch: +30 messages in [0-9.]+ ms \([0-9]+ msg/s\)'
    [ "$(redis_cli xlen orders)" = 54 ] || fail "producer: stream orders does not hold 54 entries"
    [ "$(redis_cli xlen '{orders}:p1')" = 6 ] || fail "producer: stream {orders}:p1 does not hold 6 entries"
    # the IDs printed are the entries stored, with the payload and both headers
    id=$(sed -n 's/^sent \([^ ]*\) order 20 priority 1$/\1/p' <<<"$out")
    got=$(redis_cli xrange '{orders}:p1' "$id" "$id" | tr '\n' ' ')
    [ "$got" = "$id payload order 20 source producer-example seq 20 " ] || fail "producer: entry $id of {orders}:p1 is: $got"
    id=$(sed -n 's/^sent \([^ ]*\) order 59 priority 0$/\1/p' <<<"$out")
    got=$(redis_cli xrange orders "$id" "$id" | tr '\n' ' ')
    [ "$got" = "$id payload order 59 source producer-example seq 59 " ] || fail "producer: entry $id of orders is: $got"
    ;;
  worker)
    # 1. A backlog written by another client: jobs 1..20 and one poison entry, three of
    #    them held by a consumer that "crashed" (read, never acked). Visibility 300 ms.
    redis_cli xgroup create jobs workers 0 mkstream >/dev/null
    for i in $(seq 20); do
      redis_cli xadd jobs '*' payload "$i" >/dev/null
      [ "$i" = 8 ] && redis_cli xadd jobs '*' payload oops origin test >/dev/null
    done
    [ "$(redis_cli xreadgroup group workers ghost count 3 streams jobs '>' | grep -cxE '[123]')" = 3 ] ||
      fail "worker: the ghost consumer did not take jobs 1..3"
    worker_start w1 300
    worker_wait "$ID job [0-9]+: [0-9]+ \(delivery [0-9]+\)" 20
    worker_wait "$ID poison \"oops\": dead-lettered" 1
    worker_stop TERM
    has worker 'worker w1: queue jobs, group workers, visibility 300 ms; SIGINT/SIGTERM stops'
    for i in $(seq 20); do
      d=1; [ "$i" -le 3 ] && d=2; [ $((i % 5)) = 0 ] && d=2 # reclaimed from the ghost, or retried
      [ "$(count "$ID job $i: $((i * i)) \(delivery $d\)")" = 1 ] || fail "worker: job $i not done once at delivery $d:"$'\n'"$out"
      if [ $((i % 5)) = 0 ]; then
        [ "$(count "$ID job $i: transient failure, retry in 200 ms")" = 1 ] || fail "worker: job $i did not fail once first"
      fi
    done
    [ "$(count "$ID job .*")" = 24 ] || fail "worker: expected 24 job lines (20 done, 4 retried):"$'\n'"$out"
    # every entry handled: 21 + 4 redeliveries; 3 taken over from the ghost + the 4 retries
    has worker 'worker w1 stopped: delivered 25, acked 20, retried 4, dead-lettered 1, reclaimed 7, resumed 7'
    [ "$(redis_cli xpending jobs workers | head -1)" = 0 ] || fail "worker: entries still pending after the stop"
    [ "$(redis_cli xlen '{jobs}:dlq')" = 1 ] || fail "worker: {jobs}:dlq does not hold one dead letter"
    got=$(redis_cli xrange '{jobs}:dlq' - + | tail -n +2 | tr '\n' ' ')
    poison=$(sed -n 's/^\([^ ]*\) poison.*/\1/p' <<<"$out")
    [ "$got" = "payload oops origin test dlq-stream jobs dlq-group workers dlq-id $poison dlq-deliveries 1 dlq-error payload is not a number " ] ||
      fail "worker: the dead letter is: $got"
    # 2. A restart under the same name resumes its own pending entries (here taken by
    #    "w1" before it "crashed"), even with a visibility too long for any reclaim;
    #    then SIGINT while it waits for more.
    redis_cli xadd jobs '*' payload 21 >/dev/null
    redis_cli xadd jobs '*' payload 22 >/dev/null
    redis_cli xreadgroup group workers w1 count 2 streams jobs '>' >/dev/null
    worker_start w1 60000
    worker_wait "$ID job 22: 484 \(delivery 2\)" 1
    sleep 0.2 # let it block in its read
    worker_stop INT
    has worker "$ID job 21: 441 \(delivery 2\)"
    has worker 'worker w1 stopped: delivered 2, acked 2, retried 0, dead-lettered 0, reclaimed 0, resumed 2'
    [ "$(redis_cli xpending jobs workers | head -1)" = 0 ] || fail "worker: entries still pending after the restart"
    ;;
  fanout)
    for round in 1 2; do # twice: the example starts afresh each time
      run fanout "$tcp" 7
      has fanout 'published 7 events to signups'
      for g in mailer analytics; do
        got=$(sed -n "s/^$g *got [0-9-]* //p" <<<"$out")
        want=$(for i in $(seq 7); do echo "user $i signed up"; done)
        [ "$got" = "$want" ] || fail "fanout: group $g did not get every event in order:"$'\n'"$out"
        has fanout "$g received 7 of 7 events"
        [ "$(redis_cli xpending signups "$g" | head -1)" = 0 ] || fail "fanout: group $g left entries pending"
      done
      # both groups saw the same entries
      [ "$(sed -n 's/^mailer *got \([^ ]*\) .*/\1/p' <<<"$out")" = "$(sed -n 's/^analytics *got \([^ ]*\) .*/\1/p' <<<"$out")" ] ||
        fail "fanout: the groups saw different IDs:"$'\n'"$out"
    done
    [ "$(redis_cli xlen signups)" = 7 ] || fail "fanout: stream signups does not hold 7 entries"
    ;;
  priority)
    for round in 1 2; do
      run priority "$tcp"
      got=$(sed -n 's/^got //p' <<<"$out")
      want=$(printf '%s\n' "high 1 (level 2, stream {tasks}:p2)" "high 2 (level 2, stream {tasks}:p2)" \
        "high 3 (level 2, stream {tasks}:p2)" "normal 1 (level 1, stream {tasks}:p1)" \
        "normal 2 (level 1, stream {tasks}:p1)" "normal 3 (level 1, stream {tasks}:p1)" \
        "low 1 (level 0, stream tasks)" "low 2 (level 0, stream tasks)" "low 3 (level 0, stream tasks)")
      [ "$got" = "$want" ] || fail "priority: not drained highest level first:"$'\n'"$out"
      # it published the least urgent first
      [ "$(sed -n 's/^published //p' <<<"$out" | tr '\n' ' ')" = "low 1 low 2 low 3 normal 1 normal 2 normal 3 high 1 high 2 high 3 " ] ||
        fail "priority: publish order:"$'\n'"$out"
      has priority 'drained 9 tasks, highest priority first'
    done
    for k in tasks '{tasks}:p1' '{tasks}:p2'; do
      [ "$(redis_cli xlen "$k")" = 3 ] || fail "priority: stream $k does not hold 3 entries"
      [ "$(redis_cli xpending "$k" runners | head -1)" = 0 ] || fail "priority: entries pending on $k"
    done
    ;;
  tls_openssl) ;; # run by tests/tls_test.sh against a TLS server
  *) echo "examples: $name built; no run check here yet" ;;
  esac
done
echo "examples: ok"
