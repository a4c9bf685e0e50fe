#!/usr/bin/env bash
# twin-sim's command line: a run prints its line; bad input exits 2 with the usage line;
# a failing run exits 1 with a repro command, and that command reproduces the same hash.
set -u
sim="$1"
fail=0
check() { if ! eval "$2"; then echo "FAILED: $1"; fail=1; else echo "ok: $1"; fi; }

out=$("$sim" --seed 0x2a --strategy pct); rc=$?
check "a seed runs and prints seed, strategy, steps, time, hash" \
  '[ $rc -eq 0 ] && [[ "$out" =~ ^seed=42\ strategy=pct\ .*steps=[0-9]+.*time_ns=[0-9]+\ hash=[0-9a-f]{16}\ outcome=passed$ ]]'
again=$("$sim" --seed 42 --strategy pct)
check "0x2a and 42 are the same seed, same hash" '[ "$out" = "$again" ]'

for bad in "--seed" "--seed abc" "--seed -1" "--seed 0x" "--seed 18446744073709551616" \
           "--strategy fifo" "--threads 0" "--threads 65" "--count 0" "--bogus"; do
  err=$("$sim" $bad 2>&1 >/dev/null); rc=$?
  check "'$bad' exits 2 with a message and the usage line" \
    '[ $rc -eq 2 ] && [[ "$err" == twin-sim:* ]] && [[ "$err" == *"usage: twin-sim"* ]]'
done

out=$("$sim" --seed 9 --strategy random --steps-max 50); rc=$?
repro=$(printf '%s\n' "$out" | sed -n 's/^repro: //p')
check "a failing run exits 1 and prints a repro command" '[ $rc -eq 1 ] && [ -n "$repro" ]'
hash1=$(printf '%s\n' "$out" | grep -o 'hash=[0-9a-f]*' | head -1)
out2=$($repro); rc2=$?
hash2=$(printf '%s\n' "$out2" | grep -o 'hash=[0-9a-f]*' | head -1)
check "the repro command fails the same way with the same hash ($hash1)" \
  '[ $rc2 -eq 1 ] && [ -n "$hash1" ] && [ "$hash1" = "$hash2" ]'

out=$("$sim" --seed 1 --count 50 --twice); rc=$?
check "a sweep of 50 seeds, each twice, passes" '[ $rc -eq 0 ] && [[ "$out" == *"50 passed, 0 failed (each run twice)"* ]]'

tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
rec=$("$sim" --seed 77 --strategy random --record "$tmp/d.txt")
rep=$("$sim" --seed 5 --strategy random --replay "$tmp/d.txt")
check "--record then --replay (under another seed) gives the same hash" \
  '[ "$(grep -o "hash=[0-9a-f]*" <<<"$rec")" = "$(grep -o "hash=[0-9a-f]*" <<<"$rep")" ]'
echo "garbage here" > "$tmp/bad.txt"
err=$("$sim" --replay "$tmp/bad.txt" 2>&1); rc=$?
check "a malformed decision file exits 2 naming the line" '[ $rc -eq 2 ] && [[ "$err" == *"bad.txt:1:"* ]]'
exit $fail
