#!/usr/bin/env bash
# twin-load through twin-proxy to twin-server, all on loopback (port 0), one fault at a time
# and all together:
#   usage: proxy_test.sh PATH/twin-server PATH/twin-proxy PATH/twin-load
# (a) twin-proxy's bad flags exit 2 with one line naming the flag, and the usage;
# (b) for each profile (delay, cut, reset, stall, all): a fresh server and proxy, twin-load
#     --check model with 8 clients x 300 packets, 4 in flight: exit 0 with mismatches=0 and
#     every packet accounted for; the proxy exits 0 on SIGTERM and its totals line shows the
#     profile's faults really happened (chunks_held > 0 with a delay, chunks_cut > 0 with
#     cutting, resets > 0, stalls > 0); the server saw no malformed input (the proxy must
#     not change the bytes) and is still alive. Prints ok/evicted/resolved and packets/s;
# (c) an upstream that refuses: the client's connection is reset, the proxy counts it.
# The stall profile uses stall-ms 2500, above the client's 2 s request timeout, so stalled
# clients time out and retry on a new connection. Which connections stall is fixed by the
# seed (connection i draws from (seed, i)): with seed 1 and 1 in 2, 4 of the first 8 do.
set -u
if [ $# -ne 3 ]; then
  echo "usage: $0 PATH/twin-server PATH/twin-proxy PATH/twin-load" >&2
  exit 2
fi
server="$1"
proxy="$2"
load="$3"
fail=0
tmp=$(mktemp -d)
server_pid=""
proxy_pid=""
# A generous hang deadline for one twin-load run (its own watchdog fires after 30 s without
# a completion); not a timing assertion.
load_timeout_s=120
clients=8
packets=300
inflight=4

kill_pid() {
  if [ -n "$1" ] && kill -0 "$1" 2>/dev/null; then
    kill -KILL "$1" 2>/dev/null
    wait "$1" 2>/dev/null
  fi
}
cleanup() { kill_pid "$proxy_pid"; kill_pid "$server_pid"; rm -rf "$tmp"; }
trap cleanup EXIT

check() { if ! eval "$2"; then echo "FAILED: $1"; fail=1; else echo "ok: $1"; fi; }
abort() {
  echo "FAILED: $1"
  for f in "$tmp"/*.log "$tmp"/*.out; do [ -f "$f" ] && { echo "--- $f"; tail -40 "$f"; }; done
  exit 1
}

# Waits for "NAME: listening on ADDR" in LOG from PID; prints ADDR.
wait_listening() {
  local name="$1" log="$2" pid="$3" address=""
  for _ in $(seq 1 100); do
    address=$(sed -n "s/^$name: listening on \\(.*\\)\$/\\1/p" "$log")
    if [ -n "$address" ]; then echo "$address"; return 0; fi
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}

# The value of key=NUMBER in a line.
field() { sed -n "s/.* $1=\([0-9][0-9]*\).*/\1/p" <<<"$2"; }

# ---- (a) bad flags -----------------------------------------------------------------------
out=$(timeout 5 "$proxy" --help 2>&1); rc=$?
check "--help exits 0 and shows the usage" '[ $rc -eq 0 ] && [[ "$out" == *"usage: twin-proxy"* ]]'
ok_flags="--listen 127.0.0.1:0 --upstream 127.0.0.1:9"
for bad in "--bogus 1" "--listen nonsense --upstream 127.0.0.1:9" "--upstream 127.0.0.1:0 --listen 127.0.0.1:0" \
           "--delay-ms 60001" "--delay-ms x" "--chunk-max 0" "--chunk-max 1048577" \
           "--reset-one-in -1" "--stall-one-in 4294967296" "--stall-ms 600001" "--seed 1x" \
           "--seed"; do
  flag=${bad%% *}
  case "$bad" in
    --listen*) args="$bad"; flag=--listen ;;
    --upstream*) args="$bad"; flag=--upstream ;;
    *) args="$ok_flags $bad" ;;
  esac
  # timeout: a flag wrongly accepted would start a proxy that never returns.
  err=$(timeout 5 "$proxy" $args 2>&1 >/dev/null); rc=$?
  first=$(printf '%s\n' "$err" | head -1)
  check "'$bad' exits 2 naming $flag: $first" \
    '[ $rc -eq 2 ] && [[ "$first" == twin-proxy:*"$flag"* ]] && [[ "$err" == *"usage: twin-proxy"* ]]'
done
for missing in "--listen 127.0.0.1:0" "--upstream 127.0.0.1:9"; do
  other=--upstream; [[ "$missing" == --upstream* ]] && other=--listen
  err=$(timeout 5 "$proxy" $missing 2>&1 >/dev/null); rc=$?
  first=$(printf '%s\n' "$err" | head -1)
  check "'$missing' alone exits 2 naming $other: $first" \
    '[ $rc -eq 2 ] && [[ "$first" == twin-proxy:*"$other is required"* ]]'
done

# ---- (b) twin-load through the proxy, per fault profile -------------------------------------
# name|proxy flags|the totals fields that must be above 0
profiles=(
  "delay|--delay-ms 5|chunks_held"
  "cut|--chunk-max 16|chunks_cut"
  "reset|--reset-one-in 100|resets"
  "stall|--stall-one-in 2 --stall-ms 2500|stalls"
  "all|--seed 7 --delay-ms 2 --chunk-max 64 --reset-one-in 200 --stall-one-in 3 --stall-ms 2500|chunks_held chunks_cut resets stalls"
)
summary=()
for profile in "${profiles[@]}"; do
  IFS='|' read -r name flags must <<<"$profile"
  echo "--- profile $name: twin-proxy $flags"
  : >"$tmp/server-$name.log"; : >"$tmp/proxy-$name.log"   # there before the children write
  "$server" --listen 127.0.0.1:0 --quiet 2>"$tmp/server-$name.log" &
  server_pid=$!
  server_address=$(wait_listening twin-server "$tmp/server-$name.log" "$server_pid") \
    || abort "$name: twin-server printed no 'listening on' line within 5 s"
  # shellcheck disable=SC2086
  "$proxy" --listen 127.0.0.1:0 --upstream "$server_address" $flags 2>"$tmp/proxy-$name.log" &
  proxy_pid=$!
  proxy_address=$(wait_listening twin-proxy "$tmp/proxy-$name.log" "$proxy_pid") \
    || abort "$name: twin-proxy printed no 'listening on' line within 5 s"
  [[ "$proxy_address" =~ ^127\.0\.0\.1:[0-9]+$ ]] && [ "${proxy_address##*:}" != 0 ] \
    || abort "$name: the proxy's listening line should give the real port, not '$proxy_address'"

  timeout "$load_timeout_s" "$load" "$proxy_address" --clients "$clients" --packets "$packets" \
    --inflight "$inflight" --check model --quiet >"$tmp/load-$name.out" 2>"$tmp/load-$name.log"
  rc=$?
  line=$(grep '^twin-load:' "$tmp/load-$name.out" | tail -1)
  if [ $rc -ne 0 ]; then
    echo "--- twin-load's stderr ($name)"; tail -30 "$tmp/load-$name.log"
  fi
  check "$name: twin-load exits 0 (rc=$rc): $line" '[ $rc -eq 0 ]'
  mismatches=$(field mismatches "$line"); total=$(field packets "$line")
  check "$name: mismatches=0 and packets=$((clients * packets)) (got mismatches=$mismatches packets=$total)" \
    '[ "$mismatches" = 0 ] && [ "$total" = $((clients * packets)) ]'

  kill -0 "$server_pid" 2>/dev/null
  check "$name: twin-server is alive after the run" '[ $? -eq 0 ]'
  kill -TERM "$proxy_pid"; wait "$proxy_pid"; rc=$?; proxy_pid=""
  totals=$(grep '^twin-proxy: stats:' "$tmp/proxy-$name.log")
  check "$name: twin-proxy exits 0 on SIGTERM with a totals line (rc=$rc)" '[ $rc -eq 0 ] && [ -n "$totals" ]'
  echo "    $totals"
  for key in $must; do
    value=$(field "$key" "$totals")
    check "$name: the proxy injected its fault: $key=$value > 0" '[ -n "$value" ] && [ "$value" -gt 0 ]'
  done
  kill -TERM "$server_pid"; wait "$server_pid"; rc=$?; server_pid=""
  stats=$(grep 'twin-server: stats:' "$tmp/server-$name.log")
  check "$name: twin-server exits 0 with no malformed input (rc=$rc): ${stats#twin-server: }" \
    '[ $rc -eq 0 ] && [[ "$stats" == *"malformed: none"* ]]'
  summary+=("$(printf '%-6s ok=%-5s evicted=%-4s resolved=%-4s packets_per_s=%-6s proxy: connections=%s resets=%s stalls=%s chunks_held=%s chunks_cut=%s pieces=%s' \
    "$name" "$(field ok "$line")" "$(field evicted "$line")" "$(field resolved_evictions "$line")" \
    "$(field packets_per_s "$line")" "$(field connections "$totals")" "$(field resets "$totals")" \
    "$(field stalls "$totals")" "$(field chunks_held "$totals")" "$(field chunks_cut "$totals")" \
    "$(field pieces "$totals")")")
done

# ---- (c) an upstream that refuses: the client's connection is reset, and counted ---------------
# The last profile's server has exited, so its port refuses connections.
: >"$tmp/proxy-refused.log"
"$proxy" --listen 127.0.0.1:0 --upstream "$server_address" 2>"$tmp/proxy-refused.log" &
proxy_pid=$!
proxy_address=$(wait_listening twin-proxy "$tmp/proxy-refused.log" "$proxy_pid") \
  || abort "refused: twin-proxy printed no 'listening on' line within 5 s"
# A connect through the proxy, then a read: the proxy resets it once the upstream refuses.
timeout 5 bash -c "exec 3<>/dev/tcp/${proxy_address%:*}/${proxy_address##*:} && cat <&3 >/dev/null" \
  2>/dev/null
rc=$?
check "refused upstream: the client's connection ends by itself (rc=$rc, not 124 = hung)" '[ $rc -ne 124 ]'
kill -TERM "$proxy_pid"; wait "$proxy_pid"; rc=$?; proxy_pid=""
totals=$(grep '^twin-proxy: stats:' "$tmp/proxy-refused.log")
check "refused upstream: the proxy exits 0 and counts it: $totals" \
  '[ $rc -eq 0 ] && [ "$(field upstream_failed "$totals")" = 1 ] && [ "$(field connections "$totals")" = 1 ]'

echo "--- per profile ($clients clients x $packets packets, $inflight in flight; figures, not asserted)"
printf '%s\n' "${summary[@]}"
if [ $fail -ne 0 ]; then
  echo "proxy_test: FAILED"
  exit 1
fi
echo "proxy_test: passed"
