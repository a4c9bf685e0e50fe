#!/usr/bin/env bash
# twin-server's command line and its protocol, end to end over loopback, with twin-raw:
#   usage: twin_server_cli_test.sh PATH/twin-server PATH/twin-raw
# (a) bad flags exit 2 with one line naming the flag, and the usage;
# (b) a server with 2 sessions: eviction of the least recently used client, an echo round
#     trip, a retry answered with the identical cached reply, a skipped request number
#     evicted as a protocol violation, a corrupt message closing its connection; then
#     SIGTERM: exit 0, with the eviction, the malformed input and the stats in its log.
set -u
if [ $# -ne 2 ]; then
  echo "usage: $0 PATH/twin-server PATH/twin-raw" >&2
  exit 2
fi
server="$1"
raw="$2"
fail=0
check() { if ! eval "$2"; then echo "FAILED: $1"; fail=1; else echo "ok: $1"; fi; }

tmp=$(mktemp -d)
server_pid=""
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -KILL "$server_pid" 2>/dev/null
    wait "$server_pid" 2>/dev/null
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

# Stops the test at once (nothing after it could be checked), showing what we have.
abort() {
  echo "FAILED: $1"
  for file in "$tmp"/*.log "$tmp"/*.out; do
    [ -f "$file" ] && { echo "--- $file"; cat "$file"; }
  done
  exit 1
}

# ---- (a) bad flags ----------------------------------------------------------------------
out=$(timeout 5 "$server" --help 2>&1); rc=$?
check "--help exits 0 and shows the usage" '[ $rc -eq 0 ] && [[ "$out" == *"usage: twin-server"* ]]'

for bad in "--clients-max abc" "--clients-max 0" "--clients-max 4097" "--clients-max -1" \
           "--connections-max 0" "--message-size-max 207" "--message-size-max 1048577" \
           "--listen nonsense" "--listen 127.0.0.1:99999" "--cluster 1x" "--bogus" \
           "--release-min 5 --release-max 2" "--accounts-max 0" "--quiet --listen"; do
  flag=${bad##*--quiet }   # the flag to name: the first one that is not --quiet
  flag=${flag%% *}
  # timeout: a flag wrongly accepted would start a server that never returns.
  err=$(timeout 5 "$server" $bad 2>&1 >/dev/null); rc=$?
  first=$(printf '%s\n' "$err" | head -1)
  check "'$bad' exits 2 naming $flag: $first" \
    '[ $rc -eq 2 ] && [[ "$first" == twin-server:*"$flag"* ]] && [[ "$err" == *"usage: twin-server"* ]]'
done

# ---- (b) a server with room for 2 sessions --------------------------------------------------
"$server" --listen 127.0.0.1:0 --clients-max 2 --message-size-max 4096 2>"$tmp/server.log" &
server_pid=$!
address=""
for _ in $(seq 100); do
  address=$(sed -n 's/^twin-server: listening on \(.*\)$/\1/p' "$tmp/server.log")
  [ -n "$address" ] && break
  kill -0 "$server_pid" 2>/dev/null || abort "twin-server exited before listening"
  sleep 0.05
done
[ -n "$address" ] || abort "no 'listening on' line from twin-server within 5 s"
[[ "$address" =~ ^127\.0\.0\.1:[0-9]+$ ]] && [ "${address##*:}" != 0 ] \
  || abort "the listening line should give the real port, not '$address'"
echo "ok: twin-server listens on $address (the port the system chose)"
check "exactly one 'listening on' line" '[ "$(grep -c "listening on" "$tmp/server.log")" -eq 1 ]'

err=$(timeout 5 "$server" --listen "$address" 2>&1 >/dev/null); rc=$?
check "a second server on $address exits 1: $err" \
  '[ $rc -eq 1 ] && [[ "$err" == "twin-server: cannot listen on $address: "* ]]'

cat >"$tmp/script.txt" <<'EOF'
# a registers and uses its session.
connect a 1
register a
expect a
echo a hello twin
expect a
create_accounts a 1:1:1 2:1:1
expect a
retry a
expect a
create_accounts a 2:1:1 3:1:1
expect a
lookup_accounts a 1 3 9
expect a
ping a
expect a
# b registers: 2 sessions, the limit.
connect b 2
register b
expect b
# c's register evicts the least recently used session: a's.
connect c 3
register c
expect a
expect c
# a hears the reason again when it next speaks.
echo a still here?
expect a
# b skips a request number: a protocol violation.
request_number b 5
echo b skipped ahead
expect b
# c is untouched.
echo c fine
expect c
expect_nothing c 100
# A body that does not match its checksum: the server closes the connection.
connect d 4
corrupt d
expect_closed d
EOF
"$raw" "$address" <"$tmp/script.txt" >"$tmp/raw.out" 2>"$tmp/raw.log"; rc=$?
echo "--- twin-raw output:"
cat "$tmp/raw.out" "$tmp/raw.log"
echo "---"
check "twin-raw ran the whole script (exit 0)" '[ $rc -eq 0 ]'

expect_line() { # description, extended regex for a whole line of twin-raw's output
  pattern="^$2\$"
  check "$1" 'grep -Eq "$pattern" "$tmp/raw.out"'
}
expect_line "a registers with session 1" \
  'a < reply register session=1 op=1 batch_size_max=3968'
expect_line "an echo round trip" \
  'a < reply echo request=1 op=[0-9]+ timestamp=[0-9]+ body="hello twin"'
expect_line "create_accounts of two new accounts: no failures" \
  'a < reply create_accounts request=2 op=[0-9]+ timestamp=[0-9]+ results: none'
replies=$(grep -E '^a < reply create_accounts request=2 ' "$tmp/raw.out")
check "the retry of create_accounts got the identical reply (same op and timestamp)" \
  '[ "$(printf "%s\n" "$replies" | wc -l)" -eq 2 ] && [ "$(printf "%s\n" "$replies" | sort -u | wc -l)" -eq 1 ]'
expect_line "create_accounts of an existing and a new account" \
  'a < reply create_accounts request=3 op=[0-9]+ timestamp=[0-9]+ results: 0:exists'
expect_line "lookup_accounts finds 1 and 3, not 9" \
  'a < reply lookup_accounts request=4 op=[0-9]+ timestamp=[0-9]+ accounts: id=1 ledger=1 code=1 debits=0 credits=0; id=3 ledger=1 code=1 debits=0 credits=0'
expect_line "a ping gets a pong" 'a < pong timestamp=[0-9]+'
expect_line "b registers" 'b < reply register session=[0-9]+ op=[0-9]+ batch_size_max=3968'
evictions_a=$(grep "^a < eviction" "$tmp/raw.out")
check "c's register evicts a: a hears it at once (too_many_clients, session 1)" \
  '[ "$(printf "%s\n" "$evictions_a" | head -1)" = "a < eviction reason=too_many_clients session=1" ]'
check "a hears the reason again when it next speaks" \
  '[ "$(printf "%s\n" "$evictions_a" | grep -c "^a < eviction reason=too_many_clients session=[0-9]*$")" -eq 2 ]'
expect_line "c registers" 'c < reply register session=[0-9]+ op=[0-9]+ batch_size_max=3968'
expect_line "a skipped request number evicts b (protocol_violation)" \
  'b < eviction reason=protocol_violation session=[0-9]+'
expect_line "c's session still works" \
  'c < reply echo request=1 op=[0-9]+ timestamp=[0-9]+ body="fine"'
expect_line "a corrupt body closes the connection" 'd closed by server'

# ---- SIGTERM: a clean stop ---------------------------------------------------------------
kill -TERM "$server_pid"
rc=""
for _ in $(seq 100); do
  kill -0 "$server_pid" 2>/dev/null || { wait "$server_pid"; rc=$?; break; }
  sleep 0.05
done
[ -n "$rc" ] || abort "twin-server did not exit within 5 s of SIGTERM"
server_pid=""
echo "--- twin-server log:"
cat "$tmp/server.log"
echo "---"
check "twin-server exits 0 after SIGTERM" '[ "$rc" -eq 0 ]'
check "its log names the eviction (too_many_clients)" \
  'grep -v "^twin-server: stats:" "$tmp/server.log" | grep -q "too_many_clients"'
check "its log names the eviction (protocol_violation)" \
  'grep -v "^twin-server: stats:" "$tmp/server.log" | grep -q "protocol_violation"'
check "its log names the malformed input (bad_body_checksum)" \
  'grep -v "^twin-server: stats:" "$tmp/server.log" | grep -q "bad_body_checksum"'
stats=$(grep "^twin-server: stats:" "$tmp/server.log")
check "one stats line" '[ "$(printf "%s\n" "$stats" | grep -c .)" -eq 1 ]'
check "the stats count 4 connections, 3 registrations, 1 retry" \
  '[[ "$stats" == *" connections=4 "* && "$stats" == *" registrations=3 "* && "$stats" == *" retries=1 "* ]]'
check "the stats count the evictions and the malformed message" \
  '[[ "$stats" == *"too_many_clients=1"* && "$stats" == *"protocol_violation=1"* && "$stats" == *"bad_body_checksum=1"* ]]'

if [ $fail -ne 0 ]; then
  echo "twin_server_cli_test: FAILED"
  exit 1
fi
echo "twin_server_cli_test: all checks passed"
exit 0
