#!/usr/bin/env bash
# The server killed (-9) and restarted on the same loopback port while twin-load runs:
#   usage: restart_test.sh PATH/twin-server PATH/twin-load
# A restarted server has lost its sessions and ledger, so twin-load runs with --check
# completions: every packet must complete exactly once (ok or evicted: the clients hear
# no_session and twin-load registers new ones), none twice, none hanging (its watchdog).
# Asserted: twin-load exits 0, the counts add up, twin-load was running at each of the
# kills, and packets were evicted (the clients noticed the restarts). Prints the status counts.
set -u
if [ $# -ne 2 ]; then
  echo "usage: $0 PATH/twin-server PATH/twin-load" >&2
  exit 2
fi
server="$1"
load="$2"
kills=3
packets=50000       # per client: several seconds of load on loopback, past every kill
fail=0
tmp=$(mktemp -d)
server_pid=""
load_pid=""
cleanup() {
  for pid in $load_pid $server_pid; do
    if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; fi
  done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
die() {
  echo "FAILED: $*"
  for f in "$tmp"/*.log; do [ -f "$f" ] && { echo "--- $f"; tail -20 "$f"; }; done
  exit 1
}

# A free loopback port, chosen by the system (the server binds it again with SO_REUSEADDR).
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])') ||
  die "python3 could not find a free loopback port"

# Starts twin-server on the fixed port; waits for its listening line.
start_server() {
  local log="$tmp/server$1.log"
  "$server" --listen "127.0.0.1:$port" --quiet 2>"$log" &
  server_pid=$!
  for _ in $(seq 1 200); do
    grep -q "^twin-server: listening on 127.0.0.1:$port\$" "$log" && return 0
    kill -0 "$server_pid" 2>/dev/null || die "twin-server (start $1) exited before listening on port $port"
    sleep 0.025
  done
  die "twin-server (start $1) printed no 'listening on 127.0.0.1:$port' within 5 s"
}

start_server 0
"$load" "127.0.0.1:$port" --check completions --clients 4 --packets "$packets" --inflight 4 \
  --seed 7 --deadline-s 30 >"$tmp/load.out" 2>"$tmp/load.log" &
load_pid=$!
running_at_kills=0
for i in $(seq 1 $kills); do
  sleep 0.8
  kill -0 "$load_pid" 2>/dev/null && running_at_kills=$((running_at_kills + 1))
  kill -KILL "$server_pid"
  wait "$server_pid" 2>/dev/null
  echo "kill $i: twin-server killed (-9) after $(grep -c progress "$tmp/load.log") progress lines of twin-load"
  sleep 0.2
  start_server "$i"
  echo "kill $i: twin-server restarted on 127.0.0.1:$port"
done
wait "$load_pid"; rc=$?
load_pid=""
line=$(cat "$tmp/load.out")
echo "$line"
grep -v progress "$tmp/load.log" | head -30

field() { sed -n "s/.* $1=\([0-9][0-9]*\).*/\1/p" <<<"$line"; }
check() { if ! eval "$2"; then echo "FAILED: $1"; fail=1; else echo "ok: $1"; fi; }
total=$((4 * packets))
ok=$(field ok); evicted=$(field evicted); all=$(field packets)
other=0
for s in too_much_data client_release_too_low client_release_too_high client_shutdown \
         invalid_operation invalid_data_size; do
  n=$(field "$s"); other=$((other + ${n:-0}))
done
check "twin-load exits 0: every packet completed exactly once, no hang (rc $rc)" '[ $rc -eq 0 ]'
check "packets=$total (got ${all:-none})" '[ "${all:-}" = "$total" ]'
check "ok ${ok:-?} + evicted ${evicted:-?} + other $other = $total" \
      '[ -n "$ok" ] && [ $((ok + evicted + other)) -eq $total ]'
check "twin-load was running at each of the $kills kills (at $running_at_kills)" \
      '[ "$running_at_kills" -eq "$kills" ]'
check "the restarts evicted packets (evicted=${evicted:-?} > 0: clients heard no_session)" \
      '[ "${evicted:-0}" -gt 0 ]'

kill -TERM "$server_pid"; wait "$server_pid"; server_pid=""
grep 'stats:' "$tmp/server$kills.log"
if [ $fail -ne 0 ]; then echo "restart_test: FAILED"; exit 1; fi
echo "restart_test: passed"
