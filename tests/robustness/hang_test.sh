#!/usr/bin/env bash
# The real runner's hang watchdog: a test that hangs on purpose fails within seconds, naming
# its phase and what each thread waits on, instead of running into ctest's 300-s timeout.
#   usage: hang_test.sh PATH/hang_real
set -u
[ $# -eq 1 ] || { echo "usage: $0 PATH/hang_real" >&2; exit 2; }
binary="$1"
fail=0
check() { if eval "$2"; then echo "ok: $1"; else echo "FAILED: $1"; fail=1; fi; }

for mode in futex client; do
  start=$(date +%s%N)
  out=$(TWIN_TEST_HANG_S=1 timeout 30 "$binary" "$mode" 2>&1); rc=$?
  elapsed_ms=$(( ($(date +%s%N) - start) / 1000000 ))
  echo "--- hang_real $mode: exit $rc after $elapsed_ms ms:"
  echo "$out"
  check "$mode: the watchdog ends the hang with exit 3 (not the 30-s timeout: 124)" '[ $rc -eq 3 ]'
  check "$mode: one HANG line naming the test and the 1-s limit" \
    '[ "$(grep -c "^hang_real: HANG: phase" <<<"$out")" -eq 1 ] && grep -q "the limit is 1 s" <<<"$out"'
  if [ "$mode" = futex ]; then
    check "futex: it names the phase" 'grep -q "phase '"'"'joining the stuck worker'"'"'" <<<"$out"'
    check "futex: the worker waits in a futex wait" \
      'grep -Eq "thread '"'"'stuck-worker'"'"' \(tid [0-9]+\): in futex wait on 0x[0-9a-f]+ \(expected value 0\) for [0-9]+\.[0-9]{3} s" <<<"$out"'
    check "futex: main waits to join the stuck worker, by name" \
      'grep -Eq "thread '"'"'main'"'"' \(tid [0-9]+\): in thread join on '"'"'stuck-worker'"'"'" <<<"$out"'
  else
    check "client: it names the phase" 'grep -q "phase '"'"'waiting for packet 1'"'"'s reply'"'"'" <<<"$out"'
    check "client: the client's IO thread waits in io_uring" \
      'grep -Eq "thread '"'"'client-io'"'"' \(tid [0-9]+\): (in io_uring wait on 0x[0-9a-f]+ \(timeout_ns [0-9a-z]+\)|running)" <<<"$out"'
    check "client: main waits on a futex for the reply" \
      'grep -Eq "thread '"'"'main'"'"' \(tid [0-9]+\): in futex wait on 0x[0-9a-f]+ \(expected value 0\)" <<<"$out"'
  fi
done

out=$(TWIN_TEST_HANG_S=0 timeout 10 "$binary" futex 2>&1); rc=$?
check "TWIN_TEST_HANG_S=0 is refused with exit 2 and what is accepted: $out" \
  '[ $rc -eq 2 ] && [[ "$out" == *"is not a number of seconds in 1..3600"* ]]'
exit $fail
