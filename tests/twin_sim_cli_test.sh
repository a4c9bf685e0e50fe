#!/usr/bin/env bash
# twin-sim's command line: a run prints its options, its line and what it did; bad input
# exits 2 with the usage line; a failing run exits 1 with a repro command that reproduces
# the same hash; sweeps split into shards and jobs cover the same seeds as one sweep.
set -u
sim="$1"
fail=0
check() { if ! eval "$2"; then echo "FAILED: $1"; fail=1; else echo "ok: $1"; fi; }

out=$("$sim" --seed 0x2a --strategy pct); rc=$?
first=$(head -1 <<<"$out")
line=$(sed -n 2p <<<"$out")
check "a seed of the default workload runs and names every option on its first line" \
  '[ $rc -eq 0 ] && [[ "$first" =~ ^twin-sim:\ workload=cluster\ seed=42\ clients=[0-9]+\ .*resource-faults=[0-9]+\ .*corrupt-one-in=[0-9]+\ large=[0-9]+$ ]]'
check "its second line: seed, strategy, steps, time, hash, outcome" \
  '[[ "$line" =~ ^seed=42\ strategy=pct\ .*steps=[0-9]+.*time_ns=[0-9]+\ hash=[0-9a-f]{16}\ outcome=passed$ ]]'
check "then what the world did (commits, requests, packets)" \
  '[[ "$(sed -n 3p <<<"$out")" =~ ^cluster:\ commits=[0-9]+\ requests=[0-9]+.*packets_ok=[0-9]+ ]]'
again=$("$sim" --seed 42 --strategy pct)
check "0x2a and 42 are the same seed: same options, same run line" \
  '[ "$(head -2 <<<"$out")" = "$(head -2 <<<"$again")" ]'
pinned=$("$sim" --seed 42 --strategy pct --clients 1 --users 2)
check "a given option overrides the drawn one" \
  '[[ "$(head -1 <<<"$pinned")" == *" clients=1 "*" users=2 "* ]]'
check "locker: the lock workload runs too" \
  '[[ "$("$sim" --workload locker --seed 42 --strategy pct | sed -n 2p)" =~ ^seed=42\ strategy=pct\ .*outcome=passed$ ]]'

for bad in "--seed" "--seed abc" "--seed -1" "--seed 0x" "--seed 18446744073709551616" \
           "--strategy fifo" "--clients 0" "--clients 9" "--workload nope" "--seeds 0" \
           "--shard 2/2" "--shard 1" "--seeds 5 --jobs 0" "--jobs 2" "--threads 4" "--bogus"; do
  err=$("$sim" $bad 2>&1 >/dev/null); rc=$?
  check "'$bad' exits 2 with a message and the usage line" \
    '[ $rc -eq 2 ] && [[ "$err" == twin-sim:* ]] && [[ "$err" == *"usage: twin-sim"* ]]'
done
check "--list names every workload and option" \
  '[[ "$("$sim" --list)" == *"cluster (default)"*"--clients-max"*"locker:"*"--iterations"* ]]'

out=$("$sim" --workload locker --seed 9 --strategy random --steps-max 50); rc=$?
repro=$(printf '%s\n' "$out" | sed -n 's/^repro: //p')
check "a failing run exits 1 and prints a repro command" '[ $rc -eq 1 ] && [ -n "$repro" ]'
hash1=$(printf '%s\n' "$out" | grep -o 'hash=[0-9a-f]*' | head -1)
out2=$($repro); rc2=$?
hash2=$(printf '%s\n' "$out2" | grep -o 'hash=[0-9a-f]*' | head -1)
check "the repro command fails the same way with the same hash ($hash1)" \
  '[ $rc2 -eq 1 ] && [ -n "$hash1" ] && [ "$hash1" = "$hash2" ]'

whole=$("$sim" --seeds 60 --seed-from 7 --twice | grep -o 'sweep_hash=[0-9a-f]*'); rc=$?
check "a sweep of 60 seeds, each twice, passes" '[ $rc -eq 0 ] && [ -n "$whole" ]'
jobs=$("$sim" --seeds 60 --seed-from 7 --twice --jobs 3 | grep -o 'sweep_hash=[0-9a-f]*')
check "--jobs 3 gives the same sweep hash ($whole)" '[ "$jobs" = "$whole" ]'
shards=""
for i in 0 1 2; do
  shards+=$("$sim" --seeds 60 --seed-from 7 --shard $i/3 | grep -o ' [0-9]* run,')
done
check "--shard 0/3, 1/3 and 2/3 run 20 seeds each" '[ "$shards" = " 20 run, 20 run, 20 run," ]'
unreached=$("$sim" --seeds 20 --faults 0 --clients-max 4 --reach-all); rc=$?
check "--reach-all fails a sweep that misses markers (no faults, no evictions), naming them" \
  '[ $rc -eq 1 ] && [[ "$unreached" == *"client_request_timeout"*"NOT REACHED"* ]] && [[ "$unreached" == *"reached by no seed"* ]]'
budget=$("$sim" --seeds 100000000 --time-budget 1 | grep -c 'the time budget (1 s) ended the sweep'); rc=$?
check "--time-budget 1 ends a long sweep, saying so" '[ "$budget" = 1 ]'

tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
rec=$("$sim" --seed 77 --strategy random --record "$tmp/d.txt")
rep=$("$sim" --seed 5 --strategy random --replay "$tmp/d.txt" $(head -1 <<<"$rec" | sed 's/^twin-sim: workload=cluster seed=[0-9]* //; s/\([a-z-]*\)=\([0-9]*\)/--\1 \2/g'))
check "--record then --replay (under another seed, same options) gives the same hash" \
  '[ "$(grep -o "hash=[0-9a-f]*" <<<"$rec")" = "$(grep -o "hash=[0-9a-f]*" <<<"$rep")" ]'
echo "garbage here" > "$tmp/bad.txt"
err=$("$sim" --replay "$tmp/bad.txt" 2>&1); rc=$?
check "a malformed decision file exits 2 naming the line" '[ $rc -eq 2 ] && [[ "$err" == *"bad.txt:1:"* ]]'
exit $fail
