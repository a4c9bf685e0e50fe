/* twin sim: the simulated world.
 *
 * tw_sim_run builds a world from a seed and runs main_fn(arg) as its first fiber. The
 * world is one OS thread: fibers switch only at scheduling points (every atomic, every
 * futex call, thread spawn and join), chosen by a seeded strategy. Virtual time
 * advances only when no fiber can run. A run ends when every fiber has exited, or
 * fails with a deadlock (no fiber can run, no event is due, some fiber is blocked),
 * a panic (TW_ASSERT in product or test code), or too many steps (a livelock).
 *
 * Every choice the world makes goes through one call, tw_sim_decide(purpose, bound),
 * whose source is the seed's PCG32 streams (one per purpose), a list of recorded
 * decisions (replay) or a fuzzer's bytes (PCG takes over when they run out).
 * Same options, same run: the trace hash is the witness. */
#ifndef TWIN_SIM_H
#define TWIN_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <twin/os.h>
#include <twin/reach.h>

/* Limits of one world. */
#define TW_SIM_FIBERS_MAX 1024u              /* spawns per run, the main fiber included */
#define TW_SIM_EVENTS_MAX 4096u              /* pending timed events */
#define TW_SIM_STACK_SIZE_DEFAULT (256u * 1024u)
#define TW_SIM_STEPS_MAX_DEFAULT (20u * 1000u * 1000u)
#define TW_SIM_PCT_DEPTH_MAX 8u
#define TW_SIM_PCT_STEPS_EXPECTED_DEFAULT 10000u
#define TW_SIM_CPU_COUNT 4u
#define TW_SIM_MESSAGE_SIZE 2048u

typedef enum tw_sim_strategy {
    tw_sim_strategy_seeded = 0, /* the seed picks random, pct or pos */
    tw_sim_strategy_random,     /* at each point, switch with a per-run probability */
    tw_sim_strategy_pct,        /* probabilistic concurrency testing, Burckhardt et al. 2010 */
    tw_sim_strategy_pos,        /* partial-order sampling, Yuan et al. 2018 */
} tw_sim_strategy;

/* One stream of decisions per purpose, so a new decision in one place does not shift
 * the others. */
typedef enum tw_sim_purpose {
    tw_sim_purpose_options = 0, /* the run's parameters drawn from the seed */
    tw_sim_purpose_scheduler,
    tw_sim_purpose_faults,
    tw_sim_purpose_network,
    tw_sim_purpose_workload,
    tw_sim_purpose_random, /* tw_random_u64: product code's ids and jitter */
    tw_sim_purpose_resources, /* seeded resource faults (tw_sim_resource_options) */
    tw_sim_purpose_count,
} tw_sim_purpose;

typedef enum tw_sim_outcome {
    tw_sim_passed = 0,
    tw_sim_deadlock,       /* includes lost wake-ups: blocked fibers with nothing to wake them */
    tw_sim_panic,          /* an assertion failed inside the run */
    tw_sim_steps_exceeded, /* steps_max scheduling points: a livelock or a runaway */
} tw_sim_outcome;

/* A decision, keyed by what asked for it: its purpose, the fiber that was running (0: none,
 * e.g. a network event between fibers) and that fiber's own count of decisions of that
 * purpose (1, 2, ...). A replay matches decisions by this key, not by their place in the
 * run, so a recording survives code changes that add or remove decisions elsewhere. */
typedef struct tw_sim_decision {
    uint32_t purpose; /* tw_sim_purpose */
    uint32_t fiber;
    uint64_t ordinal;
    uint64_t bound;
    uint64_t value;
} tw_sim_decision;

typedef enum tw_sim_source_kind {
    tw_sim_source_seed = 0, /* PCG32 streams of the seed */
    tw_sim_source_replay,   /* recorded decisions, then the seed */
    tw_sim_source_bytes,    /* a fuzzer's bytes, then the seed */
} tw_sim_source_kind;

typedef struct tw_sim_source {
    tw_sim_source_kind kind;
    const tw_sim_decision *decisions; /* replay */
    size_t decisions_count;
    bool unrecorded_zero; /* replay: a decision not recorded (or recorded with another bound)
                             takes 0, not the seed's (a shrunk recording: --shrink removes
                             what the failure does not need) */
    const uint8_t *bytes; /* bytes */
    size_t bytes_count;
} tw_sim_source;

/* The simulated network's trace entries (tw_sim_trace_net: detail is one of these). */
typedef enum tw_sim_net_event {
    tw_sim_net_event_connect = 1, /* a: the connecting socket; b: the accepted one, or an error */
    tw_sim_net_event_accept,
    tw_sim_net_event_deliver,     /* a: connection; b: stream offset delivered up to */
    tw_sim_net_event_reset,       /* a: connection */
    tw_sim_net_event_partition,   /* a: node << 32 | node; b: duration in ns */
    tw_sim_net_event_heal,        /* b: the time of the heal (tw_sim_net_heal) */
    tw_sim_net_event_corrupt,     /* a: connection; b: the offset of the flipped byte */
    tw_sim_net_event_close,       /* a: socket */
    tw_sim_net_event_half_dead,   /* a: connection; b: delivering again from (ns) */
} tw_sim_net_event;

/* What the trace records, in order. */
typedef enum tw_sim_trace_kind {
    tw_sim_trace_decision = 1, /* detail: purpose; a: bound; b: value */
    tw_sim_trace_point,        /* detail: tw_atomic_kind or a sim point kind; a: fiber */
    tw_sim_trace_switch,       /* a: from fiber; b: to fiber */
    tw_sim_trace_futex_wait,   /* detail: tw_os_result; a: fiber; b: expected value */
    tw_sim_trace_futex_wake,   /* a: fiber; b: woken count */
    tw_sim_trace_clock,        /* a: new time in ns */
    tw_sim_trace_spawn,        /* a: parent fiber; b: new fiber */
    tw_sim_trace_exit,         /* a: fiber */
    tw_sim_trace_net,          /* detail: network event kind; a, b: its values */
} tw_sim_trace_kind;

typedef struct tw_sim_trace_entry {
    uint64_t step;
    uint32_t kind; /* tw_sim_trace_kind */
    uint32_t detail;
    uint64_t a;
    uint64_t b;
    /* Decisions: the key (tw_sim_decision) and the source line that asked (file, line).
     * Spawns: file is the new fiber's name. */
    uint32_t fiber;
    uint64_t ordinal;
    const char *file;
    uint32_t line;
} tw_sim_trace_entry;

/* A growable record of a run, for replay and for naming where two runs part. */
typedef struct tw_sim_trace {
    tw_sim_trace_entry *entries;
    size_t count;
    size_t capacity;
    size_t count_max; /* 0: unlimited; beyond it entries are dropped and truncated set */
    bool truncated;
} tw_sim_trace;

/* The network's fault rates, each "1 in N" per event (0: off), for a caller that chooses
 * them itself (twin-sim's cluster draws them as options, so they print and pin). */
typedef struct tw_sim_net_rates {
    uint64_t partial_send_one_in;    /* per send */
    uint64_t partial_receive_one_in; /* per receive */
    uint64_t spike_one_in;           /* per segment: a latency spike (x100) */
    uint64_t reset_one_in;           /* per send */
    uint64_t refuse_one_in;          /* per connect */
    uint64_t connect_timeout_one_in; /* per connect */
    uint64_t partition_one_in;       /* per send */
    uint64_t half_dead_one_in;       /* per send */
    uint64_t corrupt_one_in;         /* per segment: a bit flip */
} tw_sim_net_rates;

/* The simulated network's faults. Each seeded fault has a per-run probability drawn from
 * the seed (some runs have it off, some high), unless rates are given. */
typedef struct tw_sim_net_options {
    bool faults_off;       /* no seeded faults at all: partial sends/receives, latency
                              spikes, resets, refused and timed-out connects, partitions */
    bool disruptions_off;  /* keep partial sends/receives and latency spikes; no resets,
                              refused or timed-out connects, partitions, half-dead
                              connections */
    bool corruption; /* flip bits in segments (off unless asked for) */
    const tw_sim_net_rates *rates; /* non-NULL: these rates, and the three flags above are
                                      ignored (latencies are still drawn from the seed) */
} tw_sim_net_options;

/* What the network did in a run. */
typedef struct tw_sim_net_counts {
    uint64_t connections;
    uint64_t segments;
    uint64_t bytes;
    uint64_t partial_sends;
    uint64_t partial_receives;
    uint64_t latency_spikes;
    uint64_t resets;
    uint64_t refused;
    uint64_t connect_timeouts;
    uint64_t partitions;
    uint64_t corruptions;
    uint64_t send_stalls; /* sends that waited for the reader to drain (backpressure) */
    uint64_t half_dead;   /* connections that stopped delivering for a while, still open */
} tw_sim_net_counts;

/* total += one, field by field. */
void tw_sim_net_counts_add(tw_sim_net_counts *total, const tw_sim_net_counts *one);

/* Resource failures. At a chosen point of a run: the Nth call of the run (counted from 1)
 * fails, 0 never; deterministic, so a test can sweep every failure point of a piece of code
 * and check each error path (its status, and that it frees what it took). Or seeded: each
 * call fails with probability 1 in N (0 never), as SQLite's fault-injecting VFS does. */
typedef struct tw_sim_resource_options {
    uint64_t allocation_fail_at; /* the Nth tw_allocate returns NULL */
    uint64_t spawn_fail_at;      /* the Nth tw_thread_spawn returns tw_os_system_resources */
    uint64_t allocation_fail_one_in; /* tw_allocate returns NULL */
    uint64_t spawn_fail_one_in;      /* tw_thread_spawn returns tw_os_system_resources */
    uint64_t submit_full_one_in;     /* the IO queue is full: tw_io_submit refuses (only while
                                        completions wait to be reaped, whose reaping makes
                                        room, as with io_uring's EBUSY) */
    uint64_t accept_fail_one_in;     /* an accept with a connection waiting fails as out of
                                        descriptors (EMFILE); the connection stays queued */
    uint64_t socket_fail_one_in;     /* opening a socket fails as out of descriptors */
} tw_sim_resource_options;

typedef struct tw_sim_options {
    uint64_t seed;
    tw_sim_strategy strategy;
    uint32_t pct_depth;          /* the paper's d: d - 1 priority change points (d = 1: none);
                                    0: drawn from the seed (1..4) */
    uint64_t pct_steps_expected; /* the paper's k, the run's length in scheduling points, over
                                    which change points fall (twin-sim measures it with a
                                    calibration run); 0: TW_SIM_PCT_STEPS_EXPECTED_DEFAULT */
    uint32_t switch_shift;       /* random: switch with probability 2^-shift; 0: drawn (1..7) */
    int32_t spurious_shift;      /* spurious futex wakes and weak-CAS failures with
                                    probability 2^-shift; 0: drawn; -1: off */
    uint64_t steps_max;          /* 0: TW_SIM_STEPS_MAX_DEFAULT */
    const tw_sim_source *source; /* NULL: the seed */
    tw_sim_trace *trace;         /* NULL: no record (the hash is always computed) */
    tw_sim_net_options net;
    tw_sim_resource_options resources;
} tw_sim_options;

typedef struct tw_sim_report {
    tw_sim_outcome outcome;
    uint64_t seed;
    tw_sim_strategy strategy; /* as resolved */
    uint32_t pct_depth;          /* pct: the paper's d */
    uint64_t pct_steps_expected; /* pct: the paper's k, as used */
    uint32_t switch_shift;
    int32_t spurious_shift; /* -1: off */
    uint64_t steps;
    uint64_t switches;
    uint64_t decisions;
    uint64_t futex_waits;
    uint64_t futex_wakes;
    uint64_t spurious_wakes;
    uint64_t cas_spurious_failures;
    uint64_t fibers_spawned;
    uint64_t time_ns;
    uint64_t replay_used;       /* decisions a replay supplied */
    uint64_t replay_mismatches; /* recorded for the key, but with another bound: from PCG */
    uint64_t replay_missing;    /* no decision recorded for the key: from PCG */
    char replay_mismatch_first[TW_SIM_MESSAGE_SIZE / 4]; /* where the first mismatch was */
    uint64_t allocations;       /* blocks tw_allocate made in the run */
    uint64_t allocations_live;  /* blocks still allocated at the end (freed by the world) */
    uint64_t allocations_failed; /* tw_allocate calls that returned NULL by resources */
    uint64_t spawns;             /* tw_thread_spawn calls in the run */
    uint64_t spawns_failed;      /* of those, failed by resources */
    uint64_t submits_refused;    /* tw_io_submit calls refused as a full queue */
    uint64_t accepts_failed;     /* accepts failed as out of descriptors */
    uint64_t sockets_failed;     /* socket opens failed as out of descriptors */
    uint32_t reached[tw_reach_count]; /* times each reachability marker was passed */
    uint64_t hash;
    tw_sim_net_counts net;
    char message[TW_SIM_MESSAGE_SIZE]; /* the failure, e.g. each blocked fiber */
} tw_sim_report;

/* Runs one world to its end. Returns report->outcome. */
tw_sim_outcome tw_sim_run(const tw_sim_options *options, tw_thread_fn main_fn, void *arg,
                          tw_sim_report *report);

/* Inside a run: a value in [0, bound) for purpose, from the run's decision source. The
 * macro records the line that asked (for naming where two runs part). */
uint64_t tw_sim_decide_at(tw_sim_purpose purpose, uint64_t bound, const char *file, uint32_t line);
#define tw_sim_decide(purpose, bound) tw_sim_decide_at((purpose), (bound), __FILE__, __LINE__)
/* Inside a run: the network heals for good. Every seeded fault stops (resets, refused and
 * timed-out connects, partitions, half-dead connections, partial IO, spikes, bit flips, and
 * the resource faults drawn 1 in N: allocations, spawns, full IO queues, accepts, sockets),
 * partitions and half-dead connections end now, and what they held back is delivered
 * after the usual latency. For liveness checks: after a fault phase, the work must finish. */
void tw_sim_net_heal(void);

/* Inside a run: tw_allocate and tw_thread_spawn calls so far (failed ones included), the
 * counts tw_sim_resource_options' fail_at fields are compared with. */
uint64_t tw_sim_allocation_calls(void);
uint64_t tw_sim_spawn_calls(void);
/* True inside a running world. */
bool tw_sim_active(void);
/* Inside a run: fail it now with a message (a checker's verdict). */
_Noreturn void tw_sim_fail(const char *message);

/* The strategy a run with these options will use (the seed's draw for seeded), without
 * running it. */
tw_sim_strategy tw_sim_strategy_resolve(const tw_sim_options *options);
const char *tw_sim_strategy_name(tw_sim_strategy strategy);
bool tw_sim_strategy_parse(const char *text, tw_sim_strategy *strategy);
const char *tw_sim_outcome_name(tw_sim_outcome outcome);
const char *tw_sim_purpose_name(tw_sim_purpose purpose);

void tw_sim_trace_reset(tw_sim_trace *trace);
void tw_sim_trace_free(tw_sim_trace *trace);
/* Index of the first entry where a and b differ; returns false when they are equal. */
bool tw_sim_trace_first_difference(const tw_sim_trace *a, const tw_sim_trace *b,
                                   size_t *index);
/* One line naming an entry (kind, step, purpose, values), or "(end of trace)". */
void tw_sim_trace_describe(const tw_sim_trace *trace, size_t index, char *buffer,
                           size_t buffer_size);
/* The decisions of a trace, for replay. The caller frees the result. Returns NULL when
 * memory is short; *count receives the number. */
tw_sim_decision *tw_sim_trace_decisions(const tw_sim_trace *trace, size_t *count);

/* Decision files: one "purpose fiber ordinal bound value" line each (purpose by name). A
 * recording written with unrecorded_zero starts with a directive that reading gives back.
 * comment (NULL: none) is written first, as it is: lines starting with '#', which reading
 * skips (twin-sim writes its "#! world:" line there). */
bool tw_sim_decisions_write(const char *path, const tw_sim_decision *decisions, size_t count,
                            bool unrecorded_zero, const char *comment);
/* Returns NULL and a message in error (what was wrong, at which line) on bad input. */
tw_sim_decision *tw_sim_decisions_read(const char *path, size_t *count, bool *unrecorded_zero, char *error,
                                       size_t error_size);
/* The same from an open stream (e.g. fmemopen on a fuzzer's input); path names it in messages. */
tw_sim_decision *tw_sim_decisions_read_stream(FILE *file, const char *path, size_t *count,
                                              bool *unrecorded_zero, char *error, size_t error_size);

#endif
