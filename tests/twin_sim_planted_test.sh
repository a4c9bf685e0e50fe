#!/usr/bin/env bash
# A planted bug must be caught by a twin-sim sweep, as the failure this test names, and the
# repro line printed for it must reproduce the same failure with the same hash.
#   twin_sim_planted_test.sh BINARY PLANT VERDICT MESSAGE SEEDS [twin-sim flags...]
# VERDICT: safety (exit 1) or liveness (exit 3). MESSAGE: text the first failure must hold.
set -u
bin="$1" plant="$2" verdict="$3" message="$4" seeds="$5"
shift 5
fail=0
check() { if eval "$2"; then echo "ok: $1"; else echo "FAILED: $1"; fail=1; fi; }

out=$("$bin" --plant "$plant" --seeds "$seeds" "$@"); rc=$?
first=$(printf '%s\n' "$out" | grep -m1 -- ' failure: ')
run_line=$(printf '%s\n' "$out" | grep -m1 -- '^seed=')
repro=$(printf '%s\n' "$out" | sed -n 's/^repro: //p' | head -1)
# Exit 1 when any seed failed on safety, else 3 for liveness failures.
want_rc=3; grep -q -- '^safety failure: ' <<<"$out" && want_rc=1
want_repro_rc=1; [ "$verdict" = liveness ] && want_repro_rc=3
echo "first failing seed: $(grep -o '^seed=[0-9]*' <<<"$run_line")"
echo "its failure: $first"
check "the sweep exits $want_rc (got $rc)" '[ $rc -eq $want_rc ]'
check "the first failure is a $verdict failure holding '$message'" \
  '[[ "$first" == "$verdict failure: "* ]] && [[ "$first" == *"$message"* ]]'
check "a repro line names the plant" '[[ "$repro" == *"--plant $plant"* ]]'

again=$($repro); rc2=$?
check "the repro line fails the same way (exit $rc2)" \
  '[ $rc2 -eq $want_repro_rc ] && [ "$(grep -m1 -- " failure: " <<<"$again")" = "$first" ]'
check "with the same run line (hash included)" '[ "$(grep -m1 -- "^seed=" <<<"$again")" = "$run_line" ]'
exit $fail
