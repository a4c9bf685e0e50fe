#!/usr/bin/env bash
# twin-load against twin-server on loopback (port 0), with the reference-model check:
#   usage: load_test.sh PATH/twin-server PATH/twin-load
# (a) bad usage exits 2 naming the flag;
# (b) 4 clients x 1000 packets, 4 in flight: exit 0; every packet completed (ok + statuses
#     = 4000), every ok reply checked, no mismatch, no eviction; the same seed again against
#     the same server passes too (ids are fresh per run);
# (c) more clients than sessions (--clients-max 3, 4 clients): evictions happen, evicted
#     creates are resolved, still exit 0 with no mismatch;
# (d) the planted wrong model (--plant-wrong-model): exit 1 with a mismatch line naming the
#     client, the packet, what was expected and what came;
# (e) the watchdog: against a port nobody listens on, --deadline-s 1: exit 1 with the hang
#     line and each client's outstanding packets.
set -u
if [ $# -ne 2 ]; then
  echo "usage: $0 PATH/twin-server PATH/twin-load" >&2
  exit 2
fi
server="$1"
load="$2"
fail=0
tmp=$(mktemp -d)
server_pid=""
stop_server() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -KILL "$server_pid" 2>/dev/null
    wait "$server_pid" 2>/dev/null
  fi
  server_pid=""
}
cleanup() { stop_server; rm -rf "$tmp"; }
trap cleanup EXIT

check() { if ! eval "$2"; then echo "FAILED: $1"; fail=1; else echo "ok: $1"; fi; }
abort() { echo "FAILED: $1"; for f in "$tmp"/*.log; do [ -f "$f" ] && { echo "--- $f"; tail -40 "$f"; }; done; exit 1; }

# Starts twin-server on 127.0.0.1:0 with extra flags; sets port.
start_server() {
  stop_server
  "$server" --listen 127.0.0.1:0 --quiet "$@" 2>"$tmp/server.log" &
  server_pid=$!
  port=""
  for _ in $(seq 1 100); do
    port=$(sed -n 's/^twin-server: listening on 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$tmp/server.log")
    [ -n "$port" ] && return 0
    kill -0 "$server_pid" 2>/dev/null || abort "twin-server $* exited before listening"
    sleep 0.05
  done
  abort "twin-server $* printed no 'listening on' line within 5 s"
}

# The value of key=NUMBER in a twin-load line.
field() { sed -n "s/.* $1=\([0-9][0-9]*\).*/\1/p" <<<"$2"; }

# Checks the stdout line of a passing run: the counts add up and nothing mismatched.
check_counts() {
  local name="$1" line="$2" expected_packets="$3"
  local packets ok evicted other checked mismatches
  packets=$(field packets "$line"); ok=$(field ok "$line"); evicted=$(field evicted "$line")
  checked=$(field replies_checked "$line"); mismatches=$(field mismatches "$line")
  other=0
  for s in too_much_data client_release_too_low client_release_too_high client_shutdown \
           invalid_operation invalid_data_size; do
    other=$((other + $(field "$s" "$line")))
  done
  check "$name: packets=$expected_packets (got '$packets')" '[ "$packets" = "$expected_packets" ]'
  check "$name: ok $ok + evicted $evicted + other $other = $expected_packets" \
        '[ $((ok + evicted + other)) -eq "$expected_packets" ]'
  check "$name: every ok reply checked (ok $ok, replies_checked $checked)" '[ "$ok" = "$checked" ]'
  check "$name: mismatches=0 (got $mismatches)" '[ "$mismatches" = 0 ]'
  check "$name: some packets ok ($ok)" '[ "$ok" -gt 0 ]'
}

# ---- (a) bad usage -----------------------------------------------------------------------
for bad in "" "127.0.0.1:1 --clients 0" "127.0.0.1:1 --check maybe" "127.0.0.1:1 --bogus" \
           "not-an-address" "127.0.0.1:1 --inflight"; do
  err=$(timeout 5 "$load" $bad 2>&1 >/dev/null); rc=$?
  check "twin-load $bad exits 2 with the usage (rc $rc)" \
        '[ $rc -eq 2 ] && [[ "$err" == *"usage: twin-load"* ]]'
done

# ---- (b) the model check passes ----------------------------------------------------------
start_server
out=$(timeout 120 "$load" "127.0.0.1:$port" --clients 4 --packets 1000 --inflight 4 --seed 11 \
      --quiet 2>"$tmp/load_b.log"); rc=$?
echo "$out"
check "model check: exit 0 (rc $rc)" '[ $rc -eq 0 ]'
check_counts "model check" "$out" 4000
check "model check: no eviction with room for every client" '[ "$(field evicted "$out")" = 0 ]'
[ $rc -eq 0 ] || tail -25 "$tmp/load_b.log"
# The same seed again, same server: ids carry a per-run nonce, so this run is fresh too.
out=$(timeout 120 "$load" "127.0.0.1:$port" --clients 4 --packets 300 --inflight 4 --seed 11 \
      --quiet 2>"$tmp/load_b2.log"); rc=$?
echo "$out"
check "the same seed again on the same server: exit 0 (rc $rc)" '[ $rc -eq 0 ]'
check_counts "same seed again" "$out" 1200

# ---- (c) evictions resolved --------------------------------------------------------------
start_server --clients-max 3
out=$(timeout 120 "$load" "127.0.0.1:$port" --clients 4 --packets 1000 --inflight 4 --seed 12 \
      2>"$tmp/load_c.log"); rc=$?
echo "$out"
grep -v progress "$tmp/load_c.log"
check "evictions: exit 0 (rc $rc)" '[ $rc -eq 0 ]'
check_counts "evictions" "$out" 4000
check "evictions: 4 clients on 3 sessions were evicted (evicted=$(field evicted "$out"))" \
      '[ "$(field evicted "$out")" -gt 0 ]'

# ---- (d) the planted wrong model must fail -----------------------------------------------
start_server
out=$(timeout 120 "$load" "127.0.0.1:$port" --clients 2 --packets 200 --seed 13 --quiet \
      --plant-wrong-model 2>"$tmp/load_d.log"); rc=$?
err=$(cat "$tmp/load_d.log")
echo "$out"
echo "$err"
check "planted wrong model: exit 1 (rc $rc)" '[ $rc -eq 1 ]'
check "planted wrong model: mismatches=1 (got $(field mismatches "$out"))" \
      '[ "$(field mismatches "$out")" = 1 ]'
check "planted wrong model: a mismatch line names client, packet, expected and got" \
      '[[ "$err" =~ mismatch:\ client\ [0-9]+\ packet\ [0-9]+.*expected.*got ]]'

# ---- (e) the watchdog ---------------------------------------------------------------------
stop_server
free_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
out=$(timeout 60 "$load" "127.0.0.1:$free_port" --clients 2 --packets 10 --inflight 3 --deadline-s 1 \
      --quiet 2>"$tmp/load_e.log"); rc=$?
err=$(cat "$tmp/load_e.log")
echo "$err"
check "watchdog: exit 1 with nothing listening (rc $rc)" '[ $rc -eq 1 ]'
check "watchdog: the hang line names the deadline" \
      '[[ "$err" == *"hang: no packet completed for 1 s (0/20 completed)"* ]]'
check "watchdog: each client's 3 outstanding packets are listed" \
      '[ "$(grep -c "outstanding 3" <<<"$err")" -eq 2 ] && [ "$(grep -c "not completed" <<<"$err")" -eq 6 ]'
check "watchdog: no result line on stdout after a hang ('$out')" '[ -z "$out" ]'

if [ $fail -ne 0 ]; then echo "load_test: FAILED"; exit 1; fi
echo "load_test: passed"
