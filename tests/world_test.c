/* The simulated world: futex semantics, virtual time, failure detection, determinism,
 * decision sources, replay and divergence diagnosis. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <twin/assert.h>
#include <twin/atomic.h>
#include <twin/os.h>
#include <twin/sim.h>

#include "driver.h"
#include "workload_locker.h"

#define MS (1000u * 1000u)

static int failures;

static void expect(bool condition, const char *format, ...) {
    if (condition) return;
    va_list args;
    va_start(args, format);
    fprintf(stdout, "FAILED: ");
    vfprintf(stdout, format, args);
    fprintf(stdout, "\n");
    va_end(args);
    failures++;
}

static tw_sim_report report;

static tw_sim_outcome run(uint64_t seed, tw_sim_strategy strategy, tw_thread_fn fn, void *arg) {
    tw_sim_options options = {.seed = seed, .strategy = strategy, .spurious_shift = -1};
    return tw_sim_run(&options, fn, arg, &report);
}

/* ---- futex: a differing value returns at once ---- */
static void value_changed_main(void *arg) {
    (void)arg;
    tw_atomic_u32 word = TW_ATOMIC_INIT(1);
    TW_ASSERT(tw_futex_wait(&word, 0, TW_TIMEOUT_NONE) == tw_os_value_changed);
    TW_ASSERT(tw_futex_wait(&word, 1, 0) == tw_os_timed_out);
    TW_ASSERT(tw_clock_monotonic_ns() == 0);
}

/* ---- futex: wake order is FIFO ---- */
typedef struct fifo {
    tw_atomic_u32 word;
    tw_atomic_u32 sleeper_word; /* never woken: main sleeps on it with a timeout */
    uint32_t order[3];
    uint32_t order_count;
    uint32_t ids[3];
} fifo;
static fifo fifo_state;

static void fifo_waiter(void *arg) {
    uint32_t id = *(uint32_t *)arg;
    TW_ASSERT(tw_futex_wait(&fifo_state.word, 0, TW_TIMEOUT_NONE) == tw_os_ok);
    fifo_state.order[fifo_state.order_count++] = id;
}

static void sleep_ms(uint32_t ms) {
    TW_ASSERT(tw_futex_wait(&fifo_state.sleeper_word, 0, (uint64_t)ms * MS) == tw_os_timed_out);
}

static void fifo_main(void *arg) {
    (void)arg;
    memset(&fifo_state, 0, sizeof(fifo_state));
    tw_thread threads[3];
    for (uint32_t i = 0; i < 3; i++) {
        fifo_state.ids[i] = i + 1;
        TW_ASSERT(tw_thread_spawn(&threads[i], NULL, fifo_waiter, &fifo_state.ids[i]) == tw_os_ok);
        sleep_ms(1); /* time moves only when every waiter so far sleeps */
    }
    for (uint32_t i = 0; i < 3; i++) {
        TW_ASSERT(tw_futex_wake(&fifo_state.word, 1) == 1);
        sleep_ms(1);
        TW_ASSERT(fifo_state.order_count == i + 1);
        TW_ASSERT(fifo_state.order[i] == i + 1);
    }
    TW_ASSERT(tw_futex_wake(&fifo_state.word, TW_FUTEX_WAKE_ALL) == 0);
    for (uint32_t i = 0; i < 3; i++) TW_ASSERT(tw_thread_join(threads[i]) == tw_os_ok);
    TW_ASSERT(tw_clock_monotonic_ns() == 6 * MS);
}

/* ---- timeouts in virtual time; a wake cancels the timeout ---- */
typedef struct timeouts {
    tw_atomic_u32 main_word;
    tw_atomic_u32 helper_word;
} timeouts;

static void timeouts_helper(void *arg) {
    timeouts *t = arg;
    /* Spawned at 5 ms. */
    TW_ASSERT(tw_futex_wait(&t->helper_word, 0, 3 * MS) == tw_os_timed_out);
    TW_ASSERT(tw_clock_monotonic_ns() == 8 * MS);
    TW_ASSERT(tw_futex_wake(&t->main_word, 1) == 1);
}

static void timeouts_main(void *arg) {
    (void)arg;
    timeouts t = {TW_ATOMIC_INIT(0), TW_ATOMIC_INIT(0)};
    TW_ASSERT(tw_futex_wait(&t.main_word, 0, 5 * MS) == tw_os_timed_out);
    TW_ASSERT(tw_clock_monotonic_ns() == 5 * MS);
    tw_thread helper;
    TW_ASSERT(tw_thread_spawn(&helper, NULL, timeouts_helper, &t) == tw_os_ok);
    TW_ASSERT(tw_futex_wait(&t.main_word, 0, 10 * MS) == tw_os_ok);
    TW_ASSERT(tw_clock_monotonic_ns() == 8 * MS);
    TW_ASSERT(tw_thread_join(helper) == tw_os_ok);
}

/* ---- time advances only when no fiber can run ---- */
enum { busy_rounds = 5000 };
static tw_atomic_u32 busy_count;
static void busy_fiber(void *arg) {
    (void)arg;
    for (int i = 0; i < busy_rounds; i++) (void)tw_atomic_fetch_add_u32(&busy_count, 1, tw_relaxed);
}
static void busy_main(void *arg) {
    (void)arg;
    tw_atomic_store_u32(&busy_count, 0, tw_relaxed);
    tw_thread thread;
    TW_ASSERT(tw_thread_spawn(&thread, NULL, busy_fiber, NULL) == tw_os_ok);
    tw_atomic_u32 word = TW_ATOMIC_INIT(0);
    TW_ASSERT(tw_futex_wait(&word, 0, 1 * MS) == tw_os_timed_out);
    /* The timeout could only fire once the busy fiber had finished. */
    TW_ASSERT(tw_atomic_load_u32(&busy_count, tw_relaxed) == busy_rounds);
    TW_ASSERT(tw_thread_join(thread) == tw_os_ok);
}

/* ---- failures: deadlock, panic, livelock ---- */
static tw_atomic_u32 stuck_word;
static void stuck_fiber(void *arg) {
    (void)arg;
    (void)tw_futex_wait(&stuck_word, 0, TW_TIMEOUT_NONE);
}
static void deadlock_main(void *arg) {
    (void)arg;
    tw_thread threads[2];
    tw_thread_options options[2] = {{.name = "stuck-a"}, {.name = "stuck-b"}};
    for (int i = 0; i < 2; i++) {
        TW_ASSERT(tw_thread_spawn(&threads[i], &options[i], stuck_fiber, NULL) == tw_os_ok);
    }
    for (int i = 0; i < 2; i++) (void)tw_thread_join(threads[i]);
}

static void panic_main(void *arg) {
    (void)arg;
    int two = 2;
    TW_ASSERT(two + two == 5);
}

static void livelock_main(void *arg) {
    (void)arg;
    tw_atomic_u32 word = TW_ATOMIC_INIT(0);
    for (;;) (void)tw_atomic_load_u32(&word, tw_relaxed);
}

/* ---- pct: a spinner does not starve the fiber it waits for ---- */
static tw_atomic_u32 spin_flag;
static void spin_setter(void *arg) {
    (void)arg;
    tw_atomic_store_u32(&spin_flag, 1, tw_release);
}
static void spin_main(void *arg) {
    (void)arg;
    tw_atomic_store_u32(&spin_flag, 0, tw_relaxed);
    tw_thread thread;
    TW_ASSERT(tw_thread_spawn(&thread, NULL, spin_setter, NULL) == tw_os_ok);
    while (tw_atomic_load_u32(&spin_flag, tw_acquire) == 0) tw_spin_hint();
    TW_ASSERT(tw_thread_join(thread) == tw_os_ok);
}

/* ---- threads: join, detach, the current pointer ---- */
static void current_fiber(void *arg) {
    tw_thread_current_set(arg);
    tw_atomic_u32 word = TW_ATOMIC_INIT(0);
    (void)tw_atomic_load_u32(&word, tw_relaxed); /* a chance for others to run */
    TW_ASSERT(tw_thread_current_get() == arg);
}
static void threads_main(void *arg) {
    (void)arg;
    int marks[3];
    tw_thread threads[3];
    for (int i = 0; i < 3; i++) {
        TW_ASSERT(tw_thread_spawn(&threads[i], NULL, current_fiber, &marks[i]) == tw_os_ok);
    }
    TW_ASSERT(tw_thread_current_get() == NULL);
    TW_ASSERT(tw_thread_detach(threads[2]) == tw_os_ok);
    TW_ASSERT(tw_thread_join(threads[2]) == tw_os_invalid);
    TW_ASSERT(tw_thread_join(threads[0]) == tw_os_ok);
    TW_ASSERT(tw_thread_join(threads[0]) == tw_os_invalid);
    TW_ASSERT(tw_thread_join(threads[1]) == tw_os_ok);
    TW_ASSERT(tw_thread_join((tw_thread){0}) == tw_os_invalid);
    TW_ASSERT(tw_thread_join((tw_thread){999}) == tw_os_invalid);
}

/* ---- a run that depends on something outside the seed ---- */
static uint32_t outside_counter;
static void nondeterministic_main(void *arg) {
    (void)arg;
    outside_counter++;
    tw_atomic_u32 word = TW_ATOMIC_INIT(0);
    for (uint32_t i = 0; i < 10 + outside_counter; i++) (void)tw_atomic_load_u32(&word, tw_relaxed);
}

/* ---- weak CAS used as if it were strong: a once-initialiser without a retry loop ----
 *
 * Two fibers race to initialise. Each tries one weak compare-exchange idle -> running and
 * takes a failure to mean "the other one is initialising", then sleeps until the state is
 * done. A strong CAS on idle can only fail when the other fiber won; a weak one may also
 * fail spuriously. When every contender fails spuriously, nobody initialises and both sleep
 * on a word that never changes: the sim reports a deadlock. The fixed version retries while
 * the failure left the state idle (C11 writes the current value back on failure). */
enum { once_idle = 0, once_running = 1, once_done = 2 };
typedef struct weak_once {
    tw_atomic_u32 state;
    uint32_t initialised; /* plain: only the winner writes it, before publishing done */
    bool retry;           /* the fixed version */
} weak_once;
static weak_once weak_once_state;

static void weak_once_enter(void *arg) {
    weak_once *o = arg;
    uint32_t expected = once_idle;
    bool won = tw_atomic_cas_weak_u32(&o->state, &expected, once_running, tw_acq_rel, tw_acquire);
    while (!won && o->retry && expected == once_idle) {
        won = tw_atomic_cas_weak_u32(&o->state, &expected, once_running, tw_acq_rel, tw_acquire);
    }
    if (won) {
        o->initialised++;
        tw_atomic_store_u32(&o->state, once_done, tw_release);
        (void)tw_futex_wake(&o->state, TW_FUTEX_WAKE_ALL);
        return;
    }
    for (;;) {
        uint32_t state = tw_atomic_load_u32(&o->state, tw_acquire);
        if (state == once_done) break;
        (void)tw_futex_wait(&o->state, state, TW_TIMEOUT_NONE);
    }
}

static void weak_once_main(void *arg) {
    weak_once *o = arg;
    tw_atomic_store_u32(&o->state, once_idle, tw_relaxed);
    o->initialised = 0;
    tw_thread threads[2];
    for (int i = 0; i < 2; i++) {
        TW_ASSERT(tw_thread_spawn(&threads[i], NULL, weak_once_enter, o) == tw_os_ok);
    }
    for (int i = 0; i < 2; i++) TW_ASSERT(tw_thread_join(threads[i]) == tw_os_ok);
    TW_ASSERT_MSG(o->initialised == 1, "the once-initialiser ran other than once");
}

/* Runs the once-initialiser over seeds 1..seeds with both strategies; counts outcomes. */
typedef struct weak_once_tally {
    uint32_t runs;
    uint32_t passed;
    uint32_t deadlocks;
    uint32_t other;                 /* any other outcome: never expected */
    uint32_t runs_with_cas_failure; /* runs in which the world failed a weak CAS */
    uint32_t deadlocks_without_cas_failure;
    uint64_t cas_failures;
    char first_deadlock[TW_SIM_MESSAGE_SIZE];
    uint64_t first_deadlock_seed;
} weak_once_tally;

static void weak_once_sweep(bool retry, int32_t spurious_shift, uint64_t seeds, weak_once_tally *t) {
    memset(t, 0, sizeof(*t));
    weak_once_state.retry = retry;
    for (int s = tw_sim_strategy_random; s <= tw_sim_strategy_pct; s++) {
        for (uint64_t seed = 1; seed <= seeds; seed++) {
            tw_sim_options options = {.seed = seed, .strategy = (tw_sim_strategy)s,
                                      .spurious_shift = spurious_shift};
            tw_sim_outcome outcome = tw_sim_run(&options, weak_once_main, &weak_once_state, &report);
            t->runs++;
            t->cas_failures += report.cas_spurious_failures;
            t->runs_with_cas_failure += report.cas_spurious_failures > 0;
            if (outcome == tw_sim_passed) {
                t->passed++;
            } else if (outcome == tw_sim_deadlock) {
                t->deadlocks++;
                t->deadlocks_without_cas_failure += report.cas_spurious_failures == 0;
                if (t->deadlocks == 1) {
                    t->first_deadlock_seed = seed;
                    snprintf(t->first_deadlock, sizeof(t->first_deadlock), "%s", report.message);
                }
            } else {
                t->other++;
                expect(false, "weak once (retry %d, spurious_shift %d): seed %" PRIu64 " %s: %s: %s",
                       retry, spurious_shift, seed, tw_sim_strategy_name((tw_sim_strategy)s),
                       tw_sim_outcome_name(outcome), report.message);
            }
        }
    }
}

static void check_weak_cas_used_as_strong(void) {
    enum { seeds = 16 };
    weak_once_tally t;

    /* Spurious failures on (probability 1/2): the bug shows, and only through them. */
    weak_once_sweep(false, 1, seeds, &t);
    expect(t.runs_with_cas_failure > 0, "weak once, spurious_shift 1: no weak CAS failed "
           "spuriously in %u runs", t.runs);
    expect(t.deadlocks > 0, "weak once, spurious_shift 1: the weak-as-strong bug never showed "
           "in %u runs (%u with a spurious CAS failure)", t.runs, t.runs_with_cas_failure);
    expect(t.deadlocks_without_cas_failure == 0, "weak once, spurious_shift 1: %u deadlocks "
           "without a spurious CAS failure", t.deadlocks_without_cas_failure);
    expect(t.deadlocks == 0 || (strstr(t.first_deadlock, "nothing will wake it") != NULL &&
                                strstr(t.first_deadlock, "(main): joining fiber") != NULL),
           "weak once: the deadlock report does not show both sleepers and the join: %s",
           t.first_deadlock);
    printf("ok: weak CAS used as strong: %u of %u runs deadlock with spurious CAS failures on "
           "(%u runs saw one, %" PRIu64 " in all); first at seed %" PRIu64 "\n",
           t.deadlocks, t.runs, t.runs_with_cas_failure, t.cas_failures, t.first_deadlock_seed);

    /* Spurious failures off: the same bug passes every seed, and no weak CAS fails. */
    weak_once_sweep(false, -1, seeds, &t);
    expect(t.passed == t.runs && t.cas_failures == 0, "weak once, spurious_shift -1: %u of %u "
           "passed, %" PRIu64 " spurious CAS failures", t.passed, t.runs, t.cas_failures);
    printf("ok: with spurious failures off the same bug passes all %u runs (0 CAS failures)\n",
           t.runs);

    /* The fix (retry while the state is still idle) survives the same failures. */
    weak_once_sweep(true, 1, seeds, &t);
    expect(t.passed == t.runs && t.runs_with_cas_failure > 0, "weak once with a retry loop, "
           "spurious_shift 1: %u of %u passed, %u runs with a spurious CAS failure", t.passed,
           t.runs, t.runs_with_cas_failure);
    printf("ok: with a retry loop all %u runs pass through %" PRIu64 " spurious CAS failures\n",
           t.runs, t.cas_failures);
}

static tw_workload_locker locker_workload = {.threads_count = 8, .iterations = 50};

/* ---- a recording replays through an unrelated change ---- */
/* Two workers increment a counter with a load and a store: a lost update in some
 * schedules. The "changed" program also draws one more random value in main before it
 * spawns them, an unrelated change that moves every later decision of the run by one
 * place; a replay keyed by (purpose, fiber, ordinal) still gives the workers their
 * recorded schedule. */
typedef struct race {
    tw_atomic_u32 counter;
    bool changed;
} race;
static race race_state;

static void race_worker(void *arg) {
    (void)arg;
    uint32_t seen = tw_atomic_load_u32(&race_state.counter, tw_relaxed);
    tw_atomic_store_u32(&race_state.counter, seen + 1, tw_relaxed);
}

static void race_main(void *arg) {
    (void)arg;
    tw_atomic_store_u32(&race_state.counter, 0, tw_relaxed);
    if (race_state.changed) (void)tw_random_u64(); /* the unrelated change */
    tw_thread workers[2];
    for (int i = 0; i < 2; i++) {
        tw_thread_options options = {.name = "worker"};
        TW_ASSERT(tw_thread_spawn(&workers[i], &options, race_worker, NULL) == tw_os_ok);
    }
    for (int i = 0; i < 2; i++) TW_ASSERT(tw_thread_join(workers[i]) == tw_os_ok);
    TW_ASSERT_MSG(tw_atomic_load_u32(&race_state.counter, tw_relaxed) == 2, "race: an increment was lost");
}

static void check_replay_survives_change(void) {
    /* The first seed whose run loses an increment, recorded. */
    tw_sim_trace trace = {0};
    uint64_t seed = 0;
    race_state.changed = false;
    for (uint64_t s = 1; s <= 1000 && seed == 0; s++) {
        tw_sim_options options = {.seed = s, .strategy = tw_sim_strategy_random, .trace = &trace};
        tw_sim_run(&options, race_main, NULL, &report);
        if (report.outcome == tw_sim_panic) seed = s;
    }
    expect(seed != 0, "no seed in 1..1000 lost an increment");
    if (seed == 0) return;
    size_t count = 0;
    tw_sim_decision *decisions = tw_sim_trace_decisions(&trace, &count);
    tw_sim_source replay = {.kind = tw_sim_source_replay, .decisions = decisions, .decisions_count = count};
    /* Another seed under which the changed program, left to itself, passes: the failure
     * below then comes from the recording alone. */
    race_state.changed = true;
    uint64_t other = 0;
    for (uint64_t s = seed + 1000003; s < seed + 1000103 && other == 0; s++) {
        tw_sim_options plain = {.seed = s, .strategy = tw_sim_strategy_random};
        tw_sim_run(&plain, race_main, NULL, &report);
        if (report.outcome == tw_sim_passed) other = s;
    }
    expect(other != 0, "no seed lets the changed program pass on its own");
    /* The changed program under that seed, with the recording: it loses the increment. */
    tw_sim_options changed = {.seed = other, .strategy = tw_sim_strategy_random, .source = &replay};
    tw_sim_run(&changed, race_main, NULL, &report);
    bool reproduced = report.outcome == tw_sim_panic && strstr(report.message, "an increment was lost") != NULL;
    expect(reproduced, "the recording of seed %" PRIu64 " did not replay to the failure through an "
           "unrelated change: %s (%" PRIu64 " used, %" PRIu64 " missing, %" PRIu64 " mismatched)",
           seed, tw_sim_outcome_name(report.outcome), report.replay_used, report.replay_missing,
           report.replay_mismatches);
    if (reproduced) {
        printf("ok: seed %" PRIu64 "'s recording (%zu decisions) replays to \"an increment was lost\" "
               "through an unrelated extra decision, under seed %" PRIu64 ", which passes without it\n",
               seed, count, other);
    }
    race_state.changed = false;
    free(decisions);
    tw_sim_trace_free(&trace);
}

static void check_seeds(const char *what, tw_thread_fn fn, void *arg, uint64_t seeds) {
    for (int s = tw_sim_strategy_random; s <= tw_sim_strategy_pct; s++) {
        for (uint64_t seed = 1; seed <= seeds; seed++) {
            tw_sim_outcome outcome = run(seed, (tw_sim_strategy)s, fn, arg);
            expect(outcome == tw_sim_passed, "%s: seed %" PRIu64 " strategy %s: %s: %s", what,
                   seed, tw_sim_strategy_name((tw_sim_strategy)s), tw_sim_outcome_name(outcome),
                   report.message);
            if (outcome != tw_sim_passed) return;
        }
    }
    printf("ok: %s (%" PRIu64 " seeds x 2 strategies)\n", what, seeds);
}

int main(void) {
    check_seeds("futex wait returns at once when the value differs", value_changed_main, NULL, 20);
    check_seeds("futex wake is FIFO, one at a time", fifo_main, NULL, 200);
    check_seeds("futex timeouts in virtual time; a wake cancels the timeout", timeouts_main, NULL, 200);
    check_seeds("time advances only when no fiber can run", busy_main, NULL, 50);
    check_seeds("pct: a spinning fiber lets the one it waits for run", spin_main, NULL, 200);
    check_seeds("join, detach, thread-current", threads_main, NULL, 100);

    /* Deadlock: both sleepers listed by name, with the word each sleeps on. */
    expect(run(1, tw_sim_strategy_random, deadlock_main, NULL) == tw_sim_deadlock,
           "deadlock not detected: %s", tw_sim_outcome_name(report.outcome));
    expect(strstr(report.message, "(stuck-a): futex_wait on") != NULL &&
               strstr(report.message, "(stuck-b): futex_wait on") != NULL &&
               strstr(report.message, "expected 0, word now 0 (nothing will wake it)") != NULL &&
               strstr(report.message, "(main): joining fiber 2") != NULL,
           "deadlock report lacks the blocked fibers: %s", report.message);
    printf("ok: deadlock detected and reported:\n%s\n", report.message);

    expect(run(1, tw_sim_strategy_pct, panic_main, NULL) == tw_sim_panic, "panic not reported");
    expect(strstr(report.message, "world_test.c") != NULL &&
               strstr(report.message, "two + two == 5") != NULL,
           "panic message lacks place and expression: %s", report.message);
    printf("ok: a failed assertion fails the run, not the process: %s\n", report.message);

    tw_sim_options livelock = {.seed = 1, .steps_max = 10000};
    expect(tw_sim_run(&livelock, livelock_main, NULL, &report) == tw_sim_steps_exceeded &&
               report.steps == 10001,
           "livelock not stopped at steps_max: %s after %" PRIu64 " steps",
           tw_sim_outcome_name(report.outcome), report.steps);
    printf("ok: a livelock stops at steps_max: %s\n", report.message);

    /* The world is reusable after failures: a clean run follows. */
    expect(run(5, tw_sim_strategy_random, tw_workload_locker_run, &locker_workload) == tw_sim_passed,
           "a run after failed runs did not pass: %s", report.message);

    /* Determinism: same seed, same hash; different seeds mostly differ. */
    uint64_t hashes[100];
    uint32_t distinct = 0;
    for (uint64_t seed = 1; seed <= 100; seed++) {
        tw_sim_options options = {.seed = seed};
        tw_sim_run(&options, tw_workload_locker_run, &locker_workload, &report);
        uint64_t first = report.hash;
        tw_sim_run(&options, tw_workload_locker_run, &locker_workload, &report);
        expect(report.hash == first, "seed %" PRIu64 ": hashes differ", seed);
        hashes[seed - 1] = first;
        bool seen = false;
        for (uint64_t j = 0; j + 1 < seed; j++) seen = seen || hashes[j] == first;
        distinct += !seen;
    }
    expect(distinct >= 95, "only %u distinct hashes in 100 seeds", distinct);
    printf("ok: 100 seeds twice: equal hashes; %u distinct hashes\n", distinct);

    /* Spurious wake-ups and weak-CAS failures, when switched on, happen and are survived. */
    uint64_t spurious = 0;
    uint64_t cas_failures = 0;
    for (uint64_t seed = 1; seed <= 50; seed++) {
        tw_sim_options options = {.seed = seed, .strategy = tw_sim_strategy_random, .spurious_shift = 2};
        expect(tw_sim_run(&options, tw_workload_locker_run, &locker_workload, &report) ==
                   tw_sim_passed, "spurious seed %" PRIu64 ": %s", seed, report.message);
        spurious += report.spurious_wakes;
        cas_failures += report.cas_spurious_failures;
    }
    expect(spurious > 0, "no spurious wake-up injected at probability 1/4");
    printf("ok: %" PRIu64 " spurious futex wake-ups injected in 50 seeds, locker still correct\n",
           spurious);
    (void)cas_failures;

    /* Weak-CAS failure injection matters: a weak CAS used as if strong fails only with it. */
    check_weak_cas_used_as_strong();
    check_replay_survives_change();

    /* Replay: a recorded run's decisions, replayed under another seed, give the same run. */
    tw_sim_trace trace = {0};
    tw_sim_options recorded = {.seed = 7, .strategy = tw_sim_strategy_random, .trace = &trace};
    tw_sim_run(&recorded, tw_workload_locker_run, &locker_workload, &report);
    uint64_t recorded_hash = report.hash;
    size_t decisions_count = 0;
    tw_sim_decision *decisions = tw_sim_trace_decisions(&trace, &decisions_count);
    tw_sim_source replay = {.kind = tw_sim_source_replay, .decisions = decisions,
                            .decisions_count = decisions_count};
    tw_sim_options replayed = {.seed = 12345, .strategy = tw_sim_strategy_random, .source = &replay};
    tw_sim_run(&replayed, tw_workload_locker_run, &locker_workload, &report);
    expect(report.hash == recorded_hash && report.replay_mismatches == 0,
           "replay of %zu decisions: hash %016" PRIx64 " != %016" PRIx64 ", %" PRIu64 " mismatches",
           decisions_count, report.hash, recorded_hash, report.replay_mismatches);
    /* Through a decision file, too. */
    const char *path = "world_test.decisions";
    expect(tw_sim_decisions_write(path, decisions, decisions_count, false, NULL), "cannot write %s", path);
    char error[256];
    size_t read_count = 0;
    tw_sim_decision *read_back = tw_sim_decisions_read(path, &read_count, NULL, error, sizeof(error));
    bool same = read_back != NULL && read_count == decisions_count;
    for (size_t i = 0; same && i < read_count; i++) {
        same = read_back[i].purpose == decisions[i].purpose && read_back[i].fiber == decisions[i].fiber &&
               read_back[i].ordinal == decisions[i].ordinal && read_back[i].bound == decisions[i].bound &&
               read_back[i].value == decisions[i].value;
    }
    expect(same, "decision file round trip failed");
    free(read_back);
    FILE *bad = fopen(path, "w");
    fprintf(bad, "scheduler 1 1 4 2\nscheduler 1 2 4 9\n");
    fclose(bad);
    expect(tw_sim_decisions_read(path, &read_count, NULL, error, sizeof(error)) == NULL &&
               strstr(error, ":2:") != NULL,
           "a bad decision line was not rejected with its line number: %s", error);
    remove(path);
    free(decisions);
    tw_sim_trace_free(&trace);
    printf("ok: %zu recorded decisions replay to the same hash; decision files round-trip; "
           "bad lines rejected (%s)\n", decisions_count, error);

    /* Fuzzer bytes as the decision source: same bytes, same run; the seed takes over after. */
    uint8_t bytes[64];
    for (size_t i = 0; i < sizeof(bytes); i++) bytes[i] = (uint8_t)(i * 37u + 11u);
    tw_sim_source from_bytes = {.kind = tw_sim_source_bytes, .bytes = bytes, .bytes_count = sizeof(bytes)};
    tw_sim_options fuzzed = {.seed = 3, .source = &from_bytes};
    tw_sim_run(&fuzzed, tw_workload_locker_run, &locker_workload, &report);
    uint64_t bytes_hash = report.hash;
    expect(report.outcome == tw_sim_passed, "bytes-driven run failed: %s", report.message);
    tw_sim_run(&fuzzed, tw_workload_locker_run, &locker_workload, &report);
    expect(report.hash == bytes_hash, "bytes-driven runs differ");
    bytes[0] ^= 1; /* the strategy draw: random <-> pct */
    tw_sim_run(&fuzzed, tw_workload_locker_run, &locker_workload, &report);
    expect(report.hash != bytes_hash, "changing a decision byte did not change the run");
    printf("ok: fuzzer bytes drive decisions deterministically\n");

    /* Diagnosis: two runs of one seed that differ are told apart at the first difference. */
    tw_driver_seed *seed_run = malloc(sizeof(*seed_run));
    tw_sim_options plain = {.seed = 1, .strategy = tw_sim_strategy_random};
    tw_driver_run_seed(&plain, nondeterministic_main, NULL, true, seed_run);
    expect(!seed_run->deterministic && strstr(seed_run->divergence, "part at trace entry") != NULL &&
               strstr(seed_run->divergence, "first run:") != NULL,
           "nondeterminism not diagnosed: %s", seed_run->divergence);
    printf("ok: nondeterminism diagnosed: %s\n", seed_run->divergence);
    free(seed_run);

    if (failures != 0) {
        printf("world_sim: %d checks FAILED\n", failures);
        return 1;
    }
    printf("world_sim: all checks passed\n");
    return 0;
}
