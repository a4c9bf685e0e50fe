#!/usr/bin/env python3
"""twin-sim --trace writes Chrome trace-event JSON that a viewer can load: valid JSON with a
traceEvents list; every fiber, connection and node track named; running slices as complete
events, one after another (one fiber runs at a time); faults as
instant events; the same seed writes the same file.
    twin_sim_trace_test.py TWIN_SIM"""
import json, subprocess, sys, tempfile, os
from collections import Counter

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
    slices = [e for e in events if e["ph"] == "X"]
    check("running slices are complete events of at least one step (%d), no begin/end pairs" % len(slices),
          len(slices) > 0 and all(e["name"] == "running" and e["dur"] > 0 for e in slices)
          and not any(e["ph"] in "BE" for e in events))
    # One fiber runs at a time: in file order each slice starts at or after the end of the one
    # before it (slices of zero steps are left out), and virtual time does not run backwards.
    joined = all(b["ts"] >= a["ts"] + a["dur"] for a, b in zip(slices, slices[1:]))
    forward = all(e["args"]["virtual_ns_end"] >= e["args"]["virtual_ns"] for e in slices)
    check("slices follow one another without overlap, virtual time forward", joined and forward)
    check("more than one fiber runs", len({e["tid"] for e in slices}) > 1)
    faults = [e for e in events if e.get("cat") == "fault"]
    check("faults are instant events (%d: %s)" % (len(faults), dict(Counter(e["name"] for e in faults))),
          len(faults) > 0 and all(e["ph"] == "i" for e in faults))
    check("the same seed writes the same trace", open(paths[0]).read() == open(paths[1]).read())
sys.exit(1 if failures else 0)
