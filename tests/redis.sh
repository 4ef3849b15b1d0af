# redis.sh - sourced by the test scripts: a private redis-server in a temp dir, on a
# free TCP port and a unix socket, stopped by its pid (never by name).
#   redis_start DIR PORT_OPTION [ARGS...]
#       PORT_OPTION is --port (plain TCP) or --tls-port (then plain TCP is off).
#       Sets REDIS_PID, REDIS_PORT, REDIS_SOCK. Returns 0 when the server answers PING
#       on its unix socket, 1 if it did not start (its output: DIR/redis.out, DIR/redis.log).
#   redis_stop      SIGTERM, then SIGKILL after 5 s; safe to call twice.
#   redis_cli ARGS  redis-cli over the unix socket.
REDIS_PID=""
REDIS_PORT=""
REDIS_SOCK=""

redis__port_busy() { (exec 3<>"/dev/tcp/${2:-127.0.0.1}/$1") 2>/dev/null; }

redis_start() {
  local dir=$1 portopt=$2 port attempt i
  local -a pre
  shift 2
  REDIS_SOCK="$dir/redis.sock"
  for attempt in 1 2 3 4 5 6 7 8; do
    port=$(( 20000 + RANDOM % 40000 ))
    redis__port_busy "$port" && continue
    rm -f "$dir/redis.log"
    if [ "$portopt" = --tls-port ]; then pre=(--port 0 --tls-port "$port"); else pre=(--port "$port"); fi
    redis-server "${pre[@]}" "$@" --unixsocket "$REDIS_SOCK" --unixsocketperm 700 --dir "$dir" \
      --logfile "$dir/redis.log" --save "" --appendonly no --daemonize no >"$dir/redis.out" 2>&1 &
    REDIS_PID=$!
    for i in $(seq 200); do
      kill -0 "$REDIS_PID" 2>/dev/null || break
      if [ "$(redis-cli -s "$REDIS_SOCK" ping 2>/dev/null)" = PONG ]; then REDIS_PORT=$port; return 0; fi
      sleep 0.05
    done
    redis_stop
    # a port taken between the check and the bind: try another; anything else: give up
    grep -qi 'address already in use' "$dir/redis.log" "$dir/redis.out" 2>/dev/null || return 1
  done
  return 1
}

redis_stop() {
  local i
  if [ -n "$REDIS_PID" ] && kill -0 "$REDIS_PID" 2>/dev/null; then
    kill "$REDIS_PID" 2>/dev/null || true
    for i in $(seq 100); do kill -0 "$REDIS_PID" 2>/dev/null || break; sleep 0.05; done
    kill -9 "$REDIS_PID" 2>/dev/null || true
    wait "$REDIS_PID" 2>/dev/null || true
  fi
  REDIS_PID=""
}

redis_cli() { redis-cli -s "$REDIS_SOCK" "$@"; }
