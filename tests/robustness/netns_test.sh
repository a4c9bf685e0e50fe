#!/usr/bin/env bash
# twin-load --check model against twin-server across a veth pair between two network
# namespaces this test creates (and removes on every exit path), under real faults:
#   usage: netns_test.sh PATH/twin-server PATH/twin-load
# Phases, each asserting that twin-load exits 0 (every packet completed exactly once, every
# ok reply equal to the model's, evictions resolved) and printing its figures:
#   (a) no faults (the baseline packets/s);
#   (b) random loss with nftables (numgen random mod 100 < PCT drop), 5% and 20%, both ways;
#   (c) a bandwidth limit with tc tbf on both ends;
#   (d) partitions: the server's veth set down for 2.5 s (longer than the client's 2 s
#       request timeout, so it retries on a new connection and gets cached replies) and up
#       again, 3 times, while twin-load runs (asserted: it was still running at each flap;
#       a 1 Mbit/s tbf limit during this phase keeps the load's length set by bandwidth
#       rather than by CPU);
#   (e) netem delay and loss where the kernel has it; where `tc qdisc add ... netem` fails,
#       "SKIPPED netem: <what tc printed>" for that phase only;
#   (f) evictions under loss: 4 clients on a second server with 3 sessions, 5% loss: clients
#       are evicted (asserted) and their evicted creates resolved, still 0 mismatches.
# Needs root (CAP_NET_ADMIN) and ip, tc, nft (scripts/deps.sh installs iproute2, nftables):
# without them it fails saying so; it never skips as a whole.
set -u
if [ $# -ne 2 ]; then
  echo "usage: $0 PATH/twin-server PATH/twin-load" >&2
  exit 2
fi
server="$1"
load="$2"
started=$(date +%s.%N)

die() { echo "FAILED: $*"; exit 1; }
[ "$(id -u)" -eq 0 ] ||
  die "netns_test needs root (CAP_NET_ADMIN) to create network namespaces; it runs as uid $(id -u). Run it as root (CI does)."
for tool in ip tc nft timeout; do
  command -v "$tool" >/dev/null ||
    die "netns_test needs '$tool' on PATH (Debian packages iproute2, nftables, coreutils; scripts/deps.sh twin_deps installs them)"
done

ns_server="twl-s$$"
ns_client="twl-c$$"
veth_server="twls$$"
veth_client="twlc$$"
server_ip=10.77.0.1
client_ip=10.77.0.2
port=3000
tmp=$(mktemp -d)
server_pid=""
server3_pid=""
load_pid=""

cleanup() {
  for pid in $load_pid $server_pid $server3_pid; do
    if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; fi
  done
  ip netns del "$ns_server" 2>/dev/null
  ip netns del "$ns_client" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

in_server() { ip netns exec "$ns_server" "$@"; }
in_client() { ip netns exec "$ns_client" "$@"; }

# ---- the namespaces ------------------------------------------------------------------------
out=$(ip netns add "$ns_server" 2>&1) ||
  die "cannot create network namespace $ns_server: $out (needs root with CAP_NET_ADMIN and CAP_SYS_ADMIN, and a kernel with network namespaces)"
out=$(ip netns add "$ns_client" 2>&1) || die "cannot create network namespace $ns_client: $out"
out=$(ip link add "$veth_server" netns "$ns_server" type veth peer name "$veth_client" netns "$ns_client" 2>&1) ||
  die "cannot create the veth pair $veth_server/$veth_client: $out (needs the veth module)"
ip -n "$ns_server" addr add "$server_ip/30" dev "$veth_server" || die "ip addr add $server_ip/30 failed"
ip -n "$ns_client" addr add "$client_ip/30" dev "$veth_client" || die "ip addr add $client_ip/30 failed"
for ns in "$ns_server" "$ns_client"; do ip -n "$ns" link set lo up || die "lo up in $ns failed"; done
ip -n "$ns_server" link set "$veth_server" up || die "$veth_server up failed"
ip -n "$ns_client" link set "$veth_client" up || die "$veth_client up failed"
echo "namespaces $ns_server ($server_ip) and $ns_client ($client_ip), veth $veth_server/$veth_client"

# ---- the server ----------------------------------------------------------------------------
# Not through in_server: $! must be the server itself (ip netns exec execs it), not a subshell.
ip netns exec "$ns_server" "$server" --listen "$server_ip:$port" --quiet 2>"$tmp/server.log" &
server_pid=$!
for _ in $(seq 1 100); do
  grep -q "^twin-server: listening on $server_ip:$port\$" "$tmp/server.log" && break
  kill -0 "$server_pid" 2>/dev/null || die "twin-server exited before listening: $(cat "$tmp/server.log")"
  sleep 0.05
done
grep -q "listening on" "$tmp/server.log" || die "twin-server printed no 'listening on' line within 5 s"

field() { sed -n "s/.* $1=\([0-9][0-9]*\).*/\1/p" <<<"$2"; }

fail=0
seed=100
# Runs twin-load in the client namespace (extra flags after the name); asserts exit 0 and
# that ok + evicted + the other statuses add up to the packets; prints the figures.
run_phase() {
  local name="$1"; shift
  seed=$((seed + 1))   # fresh ids in every phase: the server keeps its ledger throughout
  local t0 line rc
  in_client timeout 80 "$load" "$server_ip:$port" --check model --quiet --seed "$seed" \
    --deadline-s 30 "$@" >"$tmp/load.out" 2>"$tmp/load.err"
  rc=$?
  finish_phase "$name" "$rc"
}
finish_phase() {
  local name="$1" rc="$2"
  local line
  line=$(cat "$tmp/load.out")
  local packets ok evicted resolved rate mismatches elapsed other=0
  packets=$(field packets "$line"); ok=$(field ok "$line"); evicted=$(field evicted "$line")
  resolved=$(field resolved_evictions "$line"); rate=$(field packets_per_s "$line")
  mismatches=$(field mismatches "$line"); elapsed=$(field elapsed_ms "$line")
  for s in too_much_data client_release_too_low client_release_too_high client_shutdown \
           invalid_operation invalid_data_size; do
    local n
    n=$(field "$s" "$line")
    other=$((other + ${n:-0}))
  done
  echo "phase $name: packets=${packets:-?} ok=${ok:-?} evicted=${evicted:-?} resolved=${resolved:-?} other=$other mismatches=${mismatches:-?} elapsed_ms=${elapsed:-?} packets_per_s=${rate:-?}"
  if [ "$rc" -ne 0 ]; then
    echo "FAILED: phase $name: twin-load exited $rc (0 expected); its stdout and last stderr lines:"
    cat "$tmp/load.out"; tail -30 "$tmp/load.err"
    fail=1
  elif [ -z "$packets" ] || [ $((ok + evicted + other)) -ne "$packets" ] || [ "$mismatches" != 0 ]; then
    echo "FAILED: phase $name: counts do not add up: ok $ok + evicted $evicted + other $other vs packets $packets, mismatches $mismatches"
    fail=1
  else
    echo "ok: phase $name: exit 0, every packet completed once, 0 mismatches"
  fi
  kill -0 "$server_pid" 2>/dev/null || die "twin-server died during phase $name: $(tail -5 "$tmp/server.log")"
  last_rate=${rate:-0}
}

# nftables drops on the server's veth, both ways.
loss_on() {
  in_server nft -f - <<NFT || die "nft could not add the loss rule ($1%)"
table inet twin_loss {
  chain input { type filter hook input priority 0; policy accept; iifname "$veth_server" numgen random mod 100 < $1 drop; }
  chain output { type filter hook output priority 0; policy accept; oifname "$veth_server" numgen random mod 100 < $1 drop; }
}
NFT
}
loss_off() { in_server nft delete table inet twin_loss || die "nft could not remove the loss table"; }

# A tbf limit of RATE on both ends of the veth.
tbf_on() {
  local out
  out=$(in_server tc qdisc add dev "$veth_server" root tbf rate "$1" burst 4kb latency 100ms 2>&1) ||
    die "tc tbf $1 on $veth_server failed: $out"
  out=$(in_client tc qdisc add dev "$veth_client" root tbf rate "$1" burst 4kb latency 100ms 2>&1) ||
    die "tc tbf $1 on $veth_client failed: $out"
}
tbf_off() {
  in_server tc qdisc del dev "$veth_server" root || die "tc qdisc del on $veth_server failed"
  in_client tc qdisc del dev "$veth_client" root || die "tc qdisc del on $veth_client failed"
}

# ---- (a) baseline --------------------------------------------------------------------------
run_phase baseline --clients 4 --packets 1000 --inflight 4

# ---- (b) loss --------------------------------------------------------------------------------
loss_on 5
run_phase loss-5pct --clients 4 --packets 200 --inflight 4
loss_off
loss_on 20
run_phase loss-20pct --clients 2 --packets 40 --inflight 4
loss_off

# ---- (c) bandwidth limit ---------------------------------------------------------------------
tbf_on 512kbit
run_phase tbf-512kbit --clients 4 --packets 200 --inflight 4
tbf_off

# ---- (d) partitions --------------------------------------------------------------------------
# Under a 1 Mbit/s limit (a few hundred packets/s here, bound by bandwidth, not by the CPU the
# other tests leave) 4 x 500 packets take several seconds without faults, so the load runs
# through every flap (each stalls it for at least the 2.5 s the link is down).
flaps=3
packets=500
tbf_on 1mbit
seed=$((seed + 1))
ip netns exec "$ns_client" timeout 80 "$load" "$server_ip:$port" --check model --quiet --seed "$seed" \
  --deadline-s 30 --clients 4 --packets "$packets" --inflight 4 >"$tmp/load.out" 2>"$tmp/load.err" &
load_pid=$!
flaps_running=0
sleep 0.3
for i in $(seq 1 $flaps); do
  kill -0 "$load_pid" 2>/dev/null && flaps_running=$((flaps_running + 1))
  in_server ip link set "$veth_server" down || die "ip link set $veth_server down failed"
  sleep 2.5
  in_server ip link set "$veth_server" up || die "ip link set $veth_server up failed"
  sleep 1
done
wait "$load_pid"; rc=$?
load_pid=""
tbf_off
finish_phase "partitions-${flaps}x2.5s" "$rc"
if [ "$flaps_running" -eq "$flaps" ]; then
  echo "ok: twin-load was running at each of the $flaps flaps ($packets packets per client)"
else
  echo "FAILED: twin-load was running at only $flaps_running of $flaps flaps ($packets packets per client): the phase did not test partitions"
  fail=1
fi

# ---- (e) netem -------------------------------------------------------------------------------
if out=$(in_server tc qdisc add dev "$veth_server" root netem delay 20ms 5ms loss 2% 2>&1); then
  run_phase netem-20ms-2pct --clients 4 --packets 200 --inflight 4
  in_server tc qdisc del dev "$veth_server" root || die "tc qdisc del (netem) failed"
else
  echo "SKIPPED netem: $out"
fi

# ---- (f) evictions under loss ------------------------------------------------------------------
ip netns exec "$ns_server" "$server" --listen "$server_ip:$((port + 1))" --clients-max 3 --quiet \
  2>"$tmp/server3.log" &
server3_pid=$!
for _ in $(seq 1 100); do
  grep -q "listening on" "$tmp/server3.log" && break
  kill -0 "$server3_pid" 2>/dev/null || die "the 3-session twin-server exited before listening"
  sleep 0.05
done
loss_on 5
port_main=$port
port=$((port + 1))
run_phase evictions-3-sessions-loss-5pct --clients 4 --packets 200 --inflight 4
port=$port_main
loss_off
evicted_f=$(field evicted "$(cat "$tmp/load.out")")
if [ "${evicted_f:-0}" -gt 0 ]; then
  echo "ok: 4 clients on 3 sessions were evicted ($evicted_f packets) and resolved"
else
  echo "FAILED: 4 clients on 3 sessions: no packet was evicted (evicted=${evicted_f:-none})"
  fail=1
fi
kill -TERM "$server3_pid"; wait "$server3_pid"

kill -TERM "$server_pid"
wait "$server_pid"; rc=$?
server_pid=""
echo "$(grep 'stats:' "$tmp/server.log")"
[ "$rc" -eq 0 ] || { echo "FAILED: twin-server exited $rc after SIGTERM (0 expected)"; fail=1; }
elapsed=$(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
echo "netns_test: ${elapsed} s"
if [ $fail -ne 0 ]; then echo "netns_test: FAILED"; exit 1; fi
echo "netns_test: passed"
