#!/usr/bin/env bash
# servers_test.sh - the test runner against every server rsq supports: each release in
# ../shared/servers (built once per machine by its build.sh, into a cache outside the
# clone: a second run starts at once), then the system's own redis-server. Each run
# has that server's folder first on PATH, so every redis-server and redis-cli the tests
# start is that release's. One summary line per server, then a table (server, passed,
# failed, skipped, seconds). Exit status 1 when any server has a failed test or a skip
# that tests/skips.txt does not list (the runner's own verdict), 2 when a server cannot
# be built or the runner is missing.
#   tests/servers_test.sh [NAME[:FILTER,...]...]
#       NAME: a build.sh name (build.sh --list) or "system"; default: all of them, then
#       system. With :FILTER,... that server runs only the tests whose names contain
#       one of the filters (the runner once per filter), e.g. redis-7.4.1:test_live_,
#       test_consumer_ (a shorter run where a full one elsewhere covers the rest).
# Environment:
#   SERVERS_DIR     the folder with build.sh and the tarballs (default ../shared/servers)
#   RSQ_TEST        the runner (default build/rsq_test)
#   SERVERS_FILTER  blank-separated test-name filters for the servers named without
#                   their own (`rsq_test NAME` once per filter); default: the whole runner
#   SERVERS_LOGS    where each server's runner output goes (default build/servers)
set -uo pipefail
cd "$(dirname "$0")/.."
dir=${SERVERS_DIR:-../shared/servers}
runner=${RSQ_TEST:-build/rsq_test}
logs=${SERVERS_LOGS:-build/servers}
filters=${SERVERS_FILTER:-}
[ -x "$runner" ] || { echo "test-servers: no runner at $runner (make build/rsq_test)" >&2; exit 2; }
[ -x "$dir/build.sh" ] || { echo "test-servers: no $dir/build.sh" >&2; exit 2; }
mkdir -p "$logs"

args=("$@")
if [ ${#args[@]} -eq 0 ]; then
  mapfile -t args < <("$dir/build.sh" --list)
  args+=(system)
fi
names=()
declare -A only
for a in "${args[@]}"; do
  n=${a%%:*}
  names+=("$n")
  if [ "$n" != "$a" ]; then only[$n]=${a#*:}; only[$n]=${only[$n]//,/ }; else only[$n]=$filters; fi
done

# Build (or find in the cache) every server first: the runs below then time tests only.
declare -A bin
t0=$(date +%s)
for n in "${names[@]}"; do
  if [ "$n" = system ]; then
    s=$(command -v redis-server) || { echo "test-servers: no redis-server on PATH (tools/deps.sh test)" >&2; exit 2; }
    bin[$n]=$(dirname "$(readlink -f "$s")")
    continue
  fi
  b0=$(date +%s)
  bin[$n]=$("$dir/build.sh" "$n") || { echo "test-servers: cannot build $n" >&2; exit 2; }
  [ $(( $(date +%s) - b0 )) -lt 2 ] || echo "test-servers: built $n in $(( $(date +%s) - b0 )) s"
done
build_s=$(( $(date +%s) - t0 ))
# The Redis 6.2 quirk tests (tests/test_edges.c) start a 6.2 server of their own.
r62=""
case " $("$dir/build.sh" --list | tr '\n' ' ') " in
  *" redis-6.2.16 "*) r62=$("$dir/build.sh" redis-6.2.16) || { echo "test-servers: cannot build redis-6.2.16" >&2; exit 2; } ;;
esac

rows=()
bad=0
for n in "${names[@]}"; do
  b=${bin[$n]}
  v=$("$b/redis-server" --version 2>/dev/null | sed -n 's/.* v=\([0-9.]*\).*/\1/p')
  label=$n
  [ "$n" = system ] && label="system-$v"
  log=$logs/$label.log
  : >"$log"
  p=0; f=0; k=0; rc=0
  s0=$(date +%s)
  read -r -a runs <<<"${only[$n]}"
  [ ${#runs[@]} -gt 0 ] || runs=("")
  for flt in "${runs[@]}"; do
    PATH="$b:$PATH" RSQ_REDIS_6_2="$r62" "$runner" ${flt:+"$flt"} >>"$log" 2>&1 || rc=1
    last=$(tail -1 "$log")
    if [[ $last =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed,\ ([0-9]+)\ skipped$ ]]; then
      p=$((p + BASH_REMATCH[1])); f=$((f + BASH_REMATCH[2])); k=$((k + BASH_REMATCH[3]))
      if [ $((BASH_REMATCH[1] + BASH_REMATCH[2] + BASH_REMATCH[3])) = 0 ]; then
        # a filter that matches no test tests nothing: a mistake, not a pass
        rc=1; f=$((f + 1)); echo "test-servers: $label: no test matches \"$flt\"" >>"$log"
      fi
    else
      rc=1; f=$((f + 1)); echo "test-servers: $label: the runner ended without its closing line (crashed?)" >>"$log"
    fi
  done
  secs=$(( $(date +%s) - s0 ))
  if [ $rc = 0 ]; then verdict=ok; else verdict=FAILED; bad=1; fi
  echo "test-servers: $label (redis-server $v${only[$n]:+, only ${only[$n]}}): $p passed, $f failed, $k skipped in $secs s: $verdict (log $log)"
  if [ $rc != 0 ]; then
    grep -E '^FAIL |unlisted skip|without its closing line|no test matches' "$log" | sed 's/^/    /'
  fi
  rows+=("$label $p $f $k $secs ${only[$n]:-all}")
done

echo
printf '%-20s %7s %7s %8s %8s  %s\n' server passed failed skipped seconds tests
for r in "${rows[@]}"; do
  read -r l p f k secs t <<<"$r"
  printf '%-20s %7s %7s %8s %8s  %s\n' "$l" "$p" "$f" "$k" "$secs" "$t"
done
echo "(server builds: $build_s s; tests \"all\": the whole runner)"
exit $bad
