#!/usr/bin/env bash
# Runs every seed of the corpus files given (one twin-sim flag list per line; '#' starts a
# comment) and fails naming each line that does not pass, each run twice.
#   corpus_seeds_test.sh TWIN_SIM FILE...
set -u
sim="$1"
shift
runs=0
failed=0
for file in "$@"; do
  number=0
  while IFS= read -r line || [ -n "$line" ]; do
    number=$((number + 1))
    flags="${line%%#*}"
    [ -z "${flags// /}" ] && continue
    runs=$((runs + 1))
    # shellcheck disable=SC2086 # the flags are words
    if out=$("$sim" $flags --twice 2>&1); then
      echo "ok: $file:$number: $(grep -m1 '^seed=' <<<"$out")"
    else
      echo "FAILED: $file:$number: $sim $flags --twice"
      printf '%s\n' "$out" | grep -E 'failure:|nondeterminism:' | head -3
      failed=$((failed + 1))
    fi
  done <"$file"
done
echo "corpus: $runs seed(s), $failed failed"
[ "$runs" -gt 0 ] && [ "$failed" -eq 0 ]
