#!/usr/bin/env bash
# Where io_uring is not permitted (a seccomp policy, the io_uring_disabled sysctl), made so
# here by no_io_uring (io_uring_setup fails with EPERM):
#  - a real test that needs io_uring says so and skips with the reason (exit 77, ctest's
#    SKIP_RETURN_CODE), and one that does not need it still runs and passes;
#  - twin-server fails to start (exit 1) with a message that says what to do.
#   usage: io_uring_refused_test.sh PATH/no_io_uring PATH/loop_real PATH/locker_real PATH/twin-server
set -u
[ $# -eq 4 ] || { echo "usage: $0 PATH/no_io_uring PATH/loop_real PATH/locker_real PATH/twin-server" >&2; exit 2; }
wrap="$1"; loop_real="$2"; locker_real="$3"; server="$4"
fail=0
check() { if eval "$2"; then echo "ok: $1"; else echo "FAILED: $1"; fail=1; fi; }

out=$(timeout 60 "$loop_real" 2>&1); rc=$?
check "loop_real passes where io_uring is permitted (exit $rc)" '[ $rc -eq 0 ]'

out=$(timeout 60 "$wrap" "$loop_real" 2>&1); rc=$?
echo "--- no_io_uring loop_real: exit $rc: $out"
check "loop_real without io_uring exits 77 (skipped)" '[ $rc -eq 77 ]'
check "and says why and what to do" \
  '[[ "$out" == "loop: real: SKIPPED: io_uring is refused here"*"io_uring_disabled"*"seccomp"* ]]'

out=$(timeout 60 "$wrap" "$locker_real" 2>&1); rc=$?
check "locker_real, which needs no io_uring, still runs and passes without it (exit $rc)" '[ $rc -eq 0 ]'

out=$(timeout 10 "$wrap" "$server" --listen 127.0.0.1:0 2>&1); rc=$?
echo "--- no_io_uring twin-server: exit $rc: $out"
check "twin-server without io_uring exits 1 (cannot start), not a crash or a hang" '[ $rc -eq 1 ]'
check "with one line that names the cause and what to do" \
  '[ "$(wc -l <<<"$out")" -eq 1 ] && [[ "$out" == "twin-server: cannot start the event loop: unsupported: io_uring is refused here"*"sysctl -w kernel.io_uring_disabled=0"*"seccomp"* ]]'
exit $fail
