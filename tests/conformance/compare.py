#!/usr/bin/env python3
"""Real-vs-sim conformance: runs the conformance driver in both builds over the same
scenarios and compares their outcomes line for line.

usage: compare.py [--self-check] [--seeds N] REAL_BIN SIM_BIN DIFFERENCES.md SCENARIO.scn...

The sim build runs N seeds (default 50) and itself fails unless every seed printed the
same outcome; that outcome must equal the real build's, except for the known differences
listed in DIFFERENCES.md, one per line:

    known | <the real build's line> | <the sim build's line>

Each listed pair must still occur exactly as written (the real line exactly once in the
real outcome, the sim line exactly once in the sim outcome): a listed difference that no
longer occurs fails the comparison too, so the list cannot go stale or grow into a blanket
ignore. Any other difference fails, and the unified diff is printed.

--self-check: proves the comparison can fail. After the real comparison passes, it changes
one line of the sim's outcome (one that no known difference covers, then, if there are any,
the sim line of a known difference) and asserts that each changed outcome fails the
comparison with the changed line in the diff. The real comparison itself is not changed."""
import difflib
import subprocess
import sys
import tempfile
import os


def fail(message):
    print(f"conformance compare: FAILED: {message}")
    sys.exit(1)


def read_known(path):
    known = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.startswith("known | "):
                continue
            parts = line.rstrip("\n").split(" | ")
            if len(parts) != 3 or not parts[1] or not parts[2]:
                fail(f"{path}:{number}: a known difference is 'known | REAL LINE | SIM LINE', got: {line.strip()}")
            known.append((number, parts[1], parts[2]))
    return known


def run(binary, scenarios, runner_flags, label):
    with tempfile.NamedTemporaryFile("r", suffix=".txt", delete=False) as out:
        path = out.name
    try:
        command = [binary, "--out", path] + scenarios + (["--"] + runner_flags if runner_flags else [])
        result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        print(result.stdout.rstrip())
        if result.returncode != 0:
            fail(f"the {label} build's driver exited {result.returncode}: {' '.join(command)}")
        with open(path, encoding="utf-8") as f:
            return f.read().splitlines()
    finally:
        os.unlink(path)


def compare(real, sim, known, differences_path):
    """Returns (ok, report): the real outcome with the known differences applied against sim."""
    expected = list(real)
    problems = []
    for number, real_line, sim_line in known:
        real_hits = [i for i, line in enumerate(expected) if line == real_line]
        sim_hits = sum(1 for line in sim if line == sim_line)
        if len(real_hits) != 1 or sim_hits != 1:
            problems.append(f"{differences_path}:{number}: the known difference no longer occurs as listed "
                            f"(real line found {len(real_hits)} times, sim line {sim_hits} times; each must be "
                            f"once): real '{real_line}', sim '{sim_line}'")
            continue
        expected[real_hits[0]] = sim_line
    diff = list(difflib.unified_diff(expected, sim, "real (known differences applied)", "sim", lineterm="", n=1))
    report = "\n".join(problems + diff)
    return not problems and not diff, report


def main(argv):
    self_check = False
    seeds = "50"
    args = argv[1:]
    while args and args[0].startswith("--"):
        if args[0] == "--self-check":
            self_check = True
            args = args[1:]
        elif args[0] == "--seeds" and len(args) > 1:
            seeds = args[1]
            args = args[2:]
        else:
            print(__doc__)
            return 2
    if len(args) < 4:
        print(__doc__)
        return 2
    real_bin, sim_bin, differences_path, scenarios = args[0], args[1], args[2], args[3:]
    known = read_known(differences_path)
    real = run(real_bin, scenarios, [], "real")
    sim = run(sim_bin, scenarios, ["--seeds", seeds], "sim")
    ok, report = compare(real, sim, known, differences_path)
    if not ok:
        print(report)
        fail(f"the sim's outcome differs from the real one ({len(real)} real lines, {len(sim)} sim lines, "
             f"{len(known)} known differences listed in {differences_path})")
    print(f"conformance compare: {len(scenarios)} scenarios: real and sim ({seeds} seeds) print the same "
          f"{len(sim)} lines, {len(known)} of them known differences ({differences_path})")
    if not self_check:
        return 0

    known_sim_lines = {sim_line for _, _, sim_line in known}
    mutations = []
    plain = next((i for i, line in enumerate(sim) if line not in known_sim_lines), None)
    if plain is None:
        fail("self-check: every sim line is a known difference; nothing to mutate")
    mutations.append(("a line no known difference covers", plain))
    covered = next((i for i, line in enumerate(sim) if line in known_sim_lines), None)
    if covered is not None:
        mutations.append(("the sim line of a known difference", covered))
    for what, index in mutations:
        mutated = list(sim)
        mutated[index] = sim[index] + " (mutated)"
        ok, report = compare(real, mutated, known, differences_path)
        if ok:
            fail(f"self-check: the comparison passed with {what} changed: '{mutated[index]}'")
        if f"+{mutated[index]}" not in report.splitlines() and mutated[index] not in report:
            fail(f"self-check: the comparison failed but its report does not show the changed line "
                 f"'{mutated[index]}':\n{report}")
        print(f"conformance compare: self-check: with {what} changed ('{mutated[index]}') the comparison "
              f"fails, showing:\n{report}")
    print(f"conformance compare: self-check passed: {len(mutations)} mutated outcomes were caught")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
