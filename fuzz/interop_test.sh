#!/usr/bin/env bash
# A recording made by twin-sim replays in the simulator fuzz target to the same trace hash,
# and a fuzzer's input replays in twin-sim to the same hash as in the target.
#   interop_test.sh TWIN_SIM FUZZ_SIMULATOR
set -uo pipefail
sim=$1
target=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0
check() { if [ "$2" = "$3" ] && [ -n "$2" ]; then echo "ok: $1 ($2)"; else echo "FAILED: $1: '$2' vs '$3'"; failures=$((failures + 1)); fi; }
for run in "--seed 7" "--seed 42 --strategy pct" "--seed 9 --strategy pos" "--workload pool --seed 3" "--workload echo --seed 5"; do
  # shellcheck disable=SC2086
  recorded=$("$sim" $run --record "$tmp/rec" | sed -n 's/^summary: .* hash=\([0-9a-f]*\).*/\1/p')
  replayed=$(TWIN_FUZZ_VERBOSE=1 "$target" "$tmp/rec" | sed -n 's/^fuzz_simulator: .* hash=\([0-9a-f]*\).*/\1/p')
  check "twin-sim $run --record, replayed by the fuzz target: the same hash" "$recorded" "$replayed"
done
for n in 1 2 3 4 5 6; do
  head -c $((n * 97)) /dev/urandom > "$tmp/bytes$n"
  in_target=$(TWIN_FUZZ_VERBOSE=1 "$target" "$tmp/bytes$n" | sed -n 's/^fuzz_simulator: .* hash=\([0-9a-f]*\).*/\1/p')
  in_sim=$("$sim" --replay "$tmp/bytes$n" | sed -n 's/^summary: .* hash=\([0-9a-f]*\).*/\1/p')
  check "random input $n ($((n * 97)) bytes) in twin-sim --replay: the same hash as in the target" "$in_target" "$in_sim"
  in_target=$(TWIN_FUZZ_VERBOSE=1 TWIN_FUZZ_WORKLOAD=cluster "$target" "$tmp/bytes$n" | sed -n 's/^fuzz_simulator: .* hash=\([0-9a-f]*\).*/\1/p')
  in_sim=$("$sim" --replay "$tmp/bytes$n" --workload cluster | sed -n 's/^summary: .* hash=\([0-9a-f]*\).*/\1/p')
  check "the same as cluster's (TWIN_FUZZ_WORKLOAD / --workload)" "$in_target" "$in_sim"
done
# Flags that would change a fuzzer input's world are refused, with what to do.
out=$("$sim" --replay "$tmp/bytes1" --seed 3 2>&1); rc=$?
check "--replay of a fuzzer input with --seed exits 2" "$rc" "2"
case "$out" in *"carries its own seed"*) echo "ok: and says why";; *) echo "FAILED: message: $out"; failures=$((failures + 1));; esac
exit $((failures > 0))
