#!/usr/bin/env bash
# --shrink: a planted bug's failing run, recorded, shrinks to fewer decisions that still
# fail the same way, and the shrunk file replays to that failure.
#   twin_sim_shrink_test.sh TWIN_SIM_PLANTED
set -u
planted="$1"
fail=0
check() { if eval "$2"; then echo "ok: $1"; else echo "FAILED: $1"; fail=1; fi; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
repro=$("$planted" --plant client_demux_no_rebase --seeds 200 --large 0 --faults 0 --clients 1 --users 4 --stop-at-failure | sed -n 's/^repro: //p' | head -1)
check "the planted bug fails within 200 seeds" '[ -n "$repro" ]'
$repro --record "$tmp/run.decisions" >/dev/null
out=$($repro --shrink "$tmp/run.decisions" --time-budget 5); rc=$?
line=$(grep '^twin-sim: shrank' <<<"$out")
echo "$line"
before=$(sed -n 's/^twin-sim: shrank \([0-9]*\) decisions to \([0-9]*\) .*/\1/p' <<<"$line")
after=$(sed -n 's/^twin-sim: shrank \([0-9]*\) decisions to \([0-9]*\) .*/\2/p' <<<"$line")
check "--shrink exits 0 and writes a smaller file ($before -> $after decisions)" \
  '[ $rc -eq 0 ] && [ -n "$after" ] && [ "$after" -lt "$before" ] && [ -f "$tmp/run.decisions.min" ]'
again=$($repro --replay "$tmp/run.decisions.min"); rc=$?
check "the shrunk file replays to the same kind of failure (exit $rc)" \
  '[ $rc -eq 1 ] && grep -q "^safety failure: packet .*expected {index" <<<"$again"'
check "and says it is a shrunk recording" 'grep -q "took 0: the file is a shrunk recording" <<<"$again"'
exit $fail
