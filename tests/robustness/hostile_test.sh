#!/usr/bin/env bash
# Hostile peers against a real twin-server on loopback while well-behaved twin-load clients
# keep working:
#   usage: hostile_test.sh PATH/twin-server PATH/twin-hostile PATH/twin-load
# One server (clients-max 16, connections-max 64, message-size-max 65536, 50,000 accounts
# and transfers). A quiet baseline twin-load run, then for attack_s seconds five twin-hostile
# processes at once (garbage; huge headers at and above the maximum; slowloris, a byte a
# second; peers that send requests and never read the replies; connections opened and
# dropped, some with half a message), while twin-load runs again and again. Asserts:
# - every twin-load run (baseline, during the attack, a fresh one after) exits 0 with
#   mismatches=0 (each run has its own --seed, so its ids are fresh on the shared ledger);
# - twin-server is alive after the attack and exits 0 on SIGTERM with its stats;
# - its VmRSS, sampled every 0.1 s from /proc/PID/status, stays under rss_limit_kib, derived
#   from its flags (5 times the buffers' share, and a larger base, under ThreadSanitizer, whose
#   shadow memory is 4 bytes a byte): rss_base_kib + connections_max * 2 * message_size_max (receive and send
#   buffers) + clients_max * message_size_max (cached replies) + (accounts_max +
#   transfers_max) * ledger_bytes_per_object_max; the peak is printed;
# - the attacks did what they say: every garbage connection the server closed (all but
#   those open at the end), every over-size header refused with a close while the near-max
#   ones were kept, the server counted bad_header_checksum and size_above_max, the no-read
#   peers sent requests and the server dropped replies it could not queue (sends_dropped),
#   and churn opened at least churn_connects_min connections.
# Figures, not asserted: twin-load's packets/s during the attack against the baseline.
# Then every slot taken: slowloris peers on all connections_max slots, and twin-load must
# still finish (exit 0): the server reclaims an idle slot for a waiting connection
# (TW_SERVER_IDLE_RECLAIM_NS; before that, these peers starved new clients for good), and its
# stats count the reclaims.
set -u
if [ $# -ne 3 ]; then
  echo "usage: $0 PATH/twin-server PATH/twin-hostile PATH/twin-load" >&2
  exit 2
fi
server="$1"
hostile="$2"
load="$3"

clients_max=16
connections_max=64
message_size_max=65536
accounts_max=50000
transfers_max=50000
# The process itself: code, libc, the io_uring rings, thread stacks touched.
rss_base_kib=16384
# A ledger object and its share of the id table: an account is 64 bytes, a transfer 80, plus
# at most 4 table slots of 32 bytes (the table is at least twice the objects, rounded up to
# a power of two).
ledger_bytes_per_object_max=256
rss_budget_kib=$(( (connections_max * 2 * message_size_max
                   + clients_max * message_size_max
                   + (accounts_max + transfers_max) * ledger_bytes_per_object_max) / 1024 ))
# Under ThreadSanitizer (the tsan preset) every byte the program touches has shadow memory:
# 4 bytes of shadow per byte, by TSan's design, so its budget is 5 times the program's, and
# the runtime's own mappings (32 MiB here, idle) join the base.
sanitizer=none
rss_budget_factor=1
if nm "$server" 2>/dev/null | grep -q "__tsan_init"; then
  sanitizer=ThreadSanitizer
  rss_budget_factor=5
  rss_base_kib=$((rss_base_kib + 32768))
fi
rss_limit_kib=$(( rss_base_kib + rss_budget_factor * rss_budget_kib ))
attack_s=20
load_clients=4
load_packets=300
load_inflight=4
load_deadline_s=15      # twin-load's own watchdog: no completion for this long fails it
load_timeout_s=60       # the hang deadline of one run, generous; not a timing assertion
churn_connects_min=200
# Between two twin-load runs during the attack: each run creates about 1,000 accounts and as
# many transfers, and the ledger must not fill up (accounts_max / 1,000 runs at most).
load_pause_s=1

fail=0
tmp=$(mktemp -d)
server_pid=""
sampler_pid=""
hostile_pids=()
cleanup() {
  for pid in "${hostile_pids[@]}" "$sampler_pid" "$server_pid"; do
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      kill -KILL "$pid" 2>/dev/null
      wait "$pid" 2>/dev/null
    fi
  done
  rm -rf "$tmp"
}
trap cleanup EXIT

check() { if ! eval "$2"; then echo "FAILED: $1"; fail=1; else echo "ok: $1"; fi; }
abort() {
  echo "FAILED: $1"
  for f in "$tmp"/*.log "$tmp"/*.out; do [ -f "$f" ] && { echo "--- $f"; tail -20 "$f"; }; done
  exit 1
}
field() { sed -n "s/.* $1=\([0-9][0-9]*\).*/\1/p" <<<"$2"; }

# ---- the server -----------------------------------------------------------------------------
: >"$tmp/server.log"
"$server" --listen 127.0.0.1:0 --quiet --clients-max $clients_max \
  --connections-max $connections_max --message-size-max $message_size_max \
  --accounts-max $accounts_max --transfers-max $transfers_max 2>"$tmp/server.log" &
server_pid=$!
address=""
for _ in $(seq 1 100); do
  address=$(sed -n 's/^twin-server: listening on \(.*\)$/\1/p' "$tmp/server.log")
  [ -n "$address" ] && break
  kill -0 "$server_pid" 2>/dev/null || abort "twin-server exited before listening"
  sleep 0.05
done
[ -n "$address" ] || abort "no 'listening on' line from twin-server within 5 s"
echo "twin-server on $address: clients-max $clients_max connections-max $connections_max" \
     "message-size-max $message_size_max; VmRSS limit $rss_limit_kib KiB (sanitizer: $sanitizer)"

# VmRSS every 0.1 s until the server exits.
(
  while rss=$(sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB$/\1/p' "/proc/$server_pid/status" 2>/dev/null) \
        && [ -n "$rss" ]; do
    echo "$rss"
    sleep 0.1
  done
) >"$tmp/rss.samples" &
sampler_pid=$!

# One twin-load run with seed $1 and label $2; prints its line; returns its exit code.
load_run() {
  local seed="$1" label="$2" rc line
  timeout "$load_timeout_s" "$load" "$address" --clients $load_clients --packets $load_packets \
    --inflight $load_inflight --seed "$seed" --deadline-s $load_deadline_s --check model --quiet \
    >"$tmp/load-$seed.out" 2>"$tmp/load-$seed.log"
  rc=$?
  line=$(grep '^twin-load:' "$tmp/load-$seed.out" | tail -1)
  check "$label: twin-load --seed $seed exits 0 with mismatches=0 (rc=$rc): $line" \
    '[ $rc -eq 0 ] && [ "$(field mismatches "$line")" = 0 ]'
  if [ $rc -ne 0 ]; then echo "--- twin-load's stderr"; tail -20 "$tmp/load-$seed.log"; fi
  return $rc
}

# ---- a quiet baseline: the mean of baseline_runs runs (the first is on a cold server) ------------
baseline_runs=3
sum=0
for seed in $(seq 100 $((100 + baseline_runs - 1))); do
  load_run $seed "baseline"
  pps=$(field packets_per_s "$(grep '^twin-load:' "$tmp/load-$seed.out")")
  sum=$((sum + ${pps:-0}))
done
baseline_pps=$((sum / baseline_runs))

# ---- the attack ----------------------------------------------------------------------------------
common=(--duration-s $attack_s --message-size-max $message_size_max)
"$hostile" "$address" --attack garbage --connections 8 --interval-ms 10 --seed 1 "${common[@]}" \
  >"$tmp/hostile-garbage.out" 2>&1 &
hostile_pids+=($!)
"$hostile" "$address" --attack huge --connections 8 --interval-ms 10 --seed 2 "${common[@]}" \
  >"$tmp/hostile-huge.out" 2>&1 &
hostile_pids+=($!)
"$hostile" "$address" --attack slowloris --connections 8 --interval-ms 1000 --seed 3 "${common[@]}" \
  >"$tmp/hostile-slowloris.out" 2>&1 &
hostile_pids+=($!)
"$hostile" "$address" --attack no-read --connections 4 --interval-ms 2 --seed 4 "${common[@]}" \
  >"$tmp/hostile-no-read.out" 2>&1 &
hostile_pids+=($!)
"$hostile" "$address" --attack churn --connections 8 --interval-ms 20 --seed 5 "${common[@]}" \
  >"$tmp/hostile-churn.out" 2>&1 &
hostile_pids+=($!)
echo "attack: garbage, huge, slowloris, no-read and churn for $attack_s s"

attack_alive() {
  local pid
  for pid in "${hostile_pids[@]}"; do kill -0 "$pid" 2>/dev/null && return 0; done
  return 1
}
seed=110
attack_runs=0
attack_pps=()
sleep 1   # let every attack get going
while attack_alive; do
  load_run $seed "during the attack (run $((attack_runs + 1)))"
  attack_pps+=("$(field packets_per_s "$(grep '^twin-load:' "$tmp/load-$seed.out")")")
  attack_runs=$((attack_runs + 1))
  seed=$((seed + 1))
  sleep $load_pause_s
done
check "twin-load ran during the attack ($attack_runs runs)" '[ $attack_runs -gt 0 ]'

for i in "${!hostile_pids[@]}"; do
  wait "${hostile_pids[$i]}"; rc=$?
  hostile_pids[$i]=""
  check "twin-hostile #$i exits 0 (it connected at least once; rc=$rc)" '[ $rc -eq 0 ]'
done
for kind in garbage huge slowloris no-read churn; do
  echo "    $(cat "$tmp/hostile-$kind.out")"
done
line=$(cat "$tmp/hostile-garbage.out")
connects=$(field connects "$line"); closed=$(field closed_by_server "$line"); open=$(field open_at_end "$line")
check "garbage: the server closed every garbage connection but those open at the end (connects=$connects closed_by_server=$closed open_at_end=$open)" \
  '[ "$closed" -gt 0 ] && [ $((closed + open)) -eq "$connects" ]'
line=$(cat "$tmp/hostile-huge.out")
refused=$(field refused_as_expected "$line"); closed=$(field closed_by_server "$line"); held=$(field held "$line")
check "huge: over-size headers refused with a close, near-max ones kept waiting (refused_as_expected=$refused closed_by_server=$closed held=$held)" \
  '[ "$refused" -gt 0 ] && [ "$closed" -eq "$refused" ] && [ "$held" -gt 0 ]'
line=$(cat "$tmp/hostile-no-read.out")
requests=$(field messages "$line"); held=$(field held "$line")
check "no-read: requests sent without reading a reply (messages=$requests held=$held)" \
  '[ "$requests" -gt 0 ] && [ "$held" -gt 0 ]'
line=$(cat "$tmp/hostile-churn.out")
connects=$(field connects "$line")
check "churn: at least $churn_connects_min connections opened and dropped (connects=$connects)" \
  '[ "$connects" -ge $churn_connects_min ]'

# ---- after the attack ------------------------------------------------------------------------------
kill -0 "$server_pid" 2>/dev/null
check "twin-server is alive after the attack" '[ $? -eq 0 ]'
load_run 199 "after the attack (fresh run)"

# ---- every slot taken by slow peers ---------------------------------------------------------------
full_s=12
"$hostile" "$address" --attack slowloris --connections $connections_max --interval-ms 1000 --seed 6 \
  --duration-s $full_s --message-size-max $message_size_max >"$tmp/hostile-full.out" 2>&1 &
hostile_pids+=($!)
sleep 2   # let the slow peers take every slot
load_run 200 "with all $connections_max slots held by slowloris peers"
full_pps=$(field packets_per_s "$(grep '^twin-load:' "$tmp/load-200.out")")
wait "${hostile_pids[-1]}"; unset 'hostile_pids[-1]'
echo "    $(cat "$tmp/hostile-full.out")"

kill -TERM "$server_pid"; wait "$server_pid"; rc=$?; server_pid=""
wait "$sampler_pid" 2>/dev/null; sampler_pid=""
stats=$(grep 'twin-server: stats:' "$tmp/server.log")
check "twin-server exits 0 on SIGTERM with its stats (rc=$rc)" '[ $rc -eq 0 ] && [ -n "$stats" ]'
echo "    ${stats#twin-server: }"
check "the server counted the garbage and the over-size headers as malformed" \
  '[ "$(field bad_header_checksum "$stats")" -gt 0 ] && [ "$(field size_above_max "$stats")" -gt 0 ]'
check "the server dropped replies it could not queue to the peers that never read (sends_dropped=$(field sends_dropped "$stats"))" \
  '[ "$(field sends_dropped "$stats")" -gt 0 ]'
check "the server reclaimed idle slots for waiting connections (reclaimed=$(field reclaimed "$stats"))" \
  '[ "$(field reclaimed "$stats")" -gt 0 ]'

samples=$(wc -l <"$tmp/rss.samples")
peak=$(sort -n "$tmp/rss.samples" | tail -1)
check "VmRSS sampled ($samples samples) and its peak $peak KiB is under the limit $rss_limit_kib KiB" \
  '[ "$samples" -gt 10 ] && [ -n "$peak" ] && [ "$peak" -le $rss_limit_kib ]'

# ---- figures ------------------------------------------------------------------------------------------
mean_pps=0
if [ ${#attack_pps[@]} -gt 0 ]; then
  sum=0; for v in "${attack_pps[@]}"; do sum=$((sum + ${v:-0})); done
  mean_pps=$((sum / ${#attack_pps[@]}))
fi
ratio=$(awk -v a="$mean_pps" -v b="${baseline_pps:-0}" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }')
echo "figures (not asserted): baseline (mean of $baseline_runs) ${baseline_pps:-?} packets/s; during the attack" \
     "${attack_pps[*]} packets/s (mean $mean_pps, ratio $ratio); with every slot held by slow peers" \
     "${full_pps:-?} packets/s; VmRSS peak $peak KiB of $rss_limit_kib"
if [ $fail -ne 0 ]; then
  echo "hostile_test: FAILED"
  exit 1
fi
echo "hostile_test: passed"
