#!/usr/bin/env bash
# --check-determinism names where two runs of a seed part: the test-only twin-sim-planted
# --nondeterministic draws one decision whose bound changes from run to run in a process.
#   twin_sim_determinism_test.sh TWIN_SIM TWIN_SIM_PLANTED
set -u
sim="$1" planted="$2"
fail=0
check() { if eval "$2"; then echo "ok: $1"; else echo "FAILED: $1"; fail=1; fi; }
out=$("$planted" --workload locker --seed 3 --nondeterministic --check-determinism); rc=$?
line=$(grep -m1 '^nondeterminism:' <<<"$out")
echo "$line"
check "a nondeterministic run fails (exit 1)" '[ $rc -eq 1 ]'
check "the divergence is named: the decision, both bounds, its fiber and the line that drew it" \
  '[[ "$line" == *"decision purpose=workload bound=2"*"second run"*"decision purpose=workload bound=3"* ]] && [[ "$line" == *"drawn at harness/twin_sim.c:"* ]]'
out=$("$sim" --workload locker --seed 3 --check-determinism); rc=$?
check "the same seed without the planted nondeterminism passes --check-determinism" \
  '[ $rc -eq 0 ] && ! grep -q nondeterminism <<<"$out"'
exit $fail
