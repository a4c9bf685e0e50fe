#!/usr/bin/env python3
"""twin-sim --trace writes Chrome trace-event JSON that a viewer can load: valid JSON with a
traceEvents list; every fiber, connection and node track named; running slices that begin
and end in pairs, in time order, one at a time (one fiber runs at a time); faults as
instant events; the same seed writes the same file.
    twin_sim_trace_test.py TWIN_SIM"""
import json, subprocess, sys, tempfile, os
from collections import Counter, defaultdict

sim = sys.argv[1]
failures = 0
def check(what, ok):
    global failures
    print(("ok: " if ok else "FAILED: ") + what)
    failures += not ok

with tempfile.TemporaryDirectory() as tmp:
    paths = [os.path.join(tmp, n) for n in ("a.json", "b.json")]
    for path in paths:
        out = subprocess.run([sim, "--seed", "7", "--trace", path], capture_output=True, text=True)
        check("--trace exits 0 and says where it wrote (%s)" % out.returncode,
              out.returncode == 0 and ("to " + path) in out.stdout)
    data = json.load(open(paths[0]))
    events = data["traceEvents"]
    kinds = Counter((e["ph"], e.get("cat", "")) for e in events)
    print("events:", len(events), dict(kinds))
    names = [e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "thread_name"]
    check("fiber tracks are named (fiber 1 (main), the server, clients' IO threads, pool workers)",
          "fiber 1 (main)" in names and any("(server)" in n for n in names)
          and any("(client-io)" in n for n in names) and any("(pool-worker)" in n for n in names))
    check("connection tracks are named", any(n.startswith("connection ") for n in names))
    depth = defaultdict(int)
    last = defaultdict(int)
    running = 0
    ordered = True
    single = True
    for e in events:
        if e["ph"] not in "BE":
            continue
        key = (e["pid"], e["tid"])
        depth[key] += 1 if e["ph"] == "B" else -1
        running += 1 if e["ph"] == "B" else -1
        ordered = ordered and e["ts"] >= last[key] and depth[key] in (0, 1)
        single = single and running in (0, 1)
        last[key] = e["ts"]
    check("running slices pair up and run in order on each fiber", ordered and all(v == 0 for v in depth.values()))
    check("one fiber runs at a time", single)
    faults = [e for e in events if e.get("cat") == "fault"]
    check("faults are instant events (%d: %s)" % (len(faults), dict(Counter(e["name"] for e in faults))),
          len(faults) > 0 and all(e["ph"] == "i" for e in faults))
    check("the same seed writes the same trace", open(paths[0]).read() == open(paths[1]).read())
sys.exit(1 if failures else 0)
