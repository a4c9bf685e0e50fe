/* twin sim: the world's internals, shared by the sim/ modules (not a public header). */
#ifndef TWIN_SIM_WORLD_H
#define TWIN_SIM_WORLD_H

#include <stdbool.h>
#include <stdint.h>

#include <twin/os.h>
#include <twin/pcg.h>
#include <twin/sim.h>

#include "fiber.h"
#include <twin/heap.h>

typedef struct tw_sim_world tw_sim_world;
typedef struct tw_sim_event tw_sim_event;

/* A timed event, embedded in its owner. Ordered by (time, order of scheduling): never by
 * address. The heap node's key is the time in ns. */
struct tw_sim_event {
    tw_heap_node node;
    void (*fire)(tw_sim_world *world, tw_sim_event *event);
};

static inline void tw_sim_event_init(tw_sim_event *event,
                                     void (*fire)(tw_sim_world *world, tw_sim_event *event)) {
    tw_heap_node_init(&event->node);
    event->fire = fire;
}

/* Kinds of scheduling point beyond the atomic ones (tw_atomic_kind uses 1..7). */
enum {
    tw_sim_point_futex_wait = 16,
    tw_sim_point_futex_wake,
    tw_sim_point_spawn,
    tw_sim_point_join,
};

typedef enum tw_sim_fiber_state {
    tw_sim_fiber_free = 0,
    tw_sim_fiber_runnable,
    tw_sim_fiber_blocked_futex,
    tw_sim_fiber_blocked_join,
    tw_sim_fiber_done,
} tw_sim_fiber_state;

typedef struct tw_sim_fiber tw_sim_fiber;
struct tw_sim_fiber {
    uint32_t id; /* 1-based, never reused within a run; also the thread handle */
    tw_sim_fiber_state state;
    tw_fiber fiber;
    tw_thread_fn fn;
    void *arg;
    const char *name;
    void *current; /* tw_thread_current_{get,set} */
    uint32_t runnable_index;
    int64_t priority; /* pct, pos */
    const void *pending_object; /* pos: the object of the event it waits to perform */
    /* futex wait */
    tw_atomic_u32 *wait_word;
    uint32_t wait_expected;
    tw_os_result wait_result;
    tw_sim_fiber *wait_next; /* FIFO of all futex waiters, in the order they slept */
    tw_sim_fiber *wait_prev;
    tw_sim_event wait_timeout;
    uint64_t decisions_made[tw_sim_purpose_count]; /* the ordinals of its decisions */
    /* join */
    tw_sim_fiber *joiner;
    tw_sim_fiber *join_target;
    bool detached;
    bool joined;
};

struct tw_sim_world {
    tw_sim_options options;
    tw_sim_report *report;
    tw_sim_strategy strategy;

    tw_fiber root;
    tw_sim_fiber *running;
    tw_sim_fiber *fibers; /* TW_SIM_FIBERS_MAX slots */
    uint32_t fibers_count;
    uint32_t fibers_live; /* spawned and not done */
    tw_sim_fiber **runnable;
    uint32_t runnable_count;
    tw_sim_fiber *waiters_head;
    tw_sim_fiber *waiters_tail;

    tw_heap events;
    tw_heap_node **events_storage;
    uint64_t now_ns;

    tw_pcg32 streams[tw_sim_purpose_count];
    size_t source_position;
    uint64_t hash;

    uint64_t switch_bound; /* random: switch when a draw below this is 0 */
    uint64_t spurious_bound; /* 0: off */
    uint32_t pct_change_next;
    uint64_t pct_change_steps[TW_SIM_PCT_DEPTH_MAX];
    int64_t pct_floor;
    uint64_t steps_max_resolved;

    struct tw_sim_net *net; /* the simulated network, made by the first loop (sim/io_sim.c) */
    struct tw_sim_block *blocks; /* tw_allocate'd in this run and not yet freed */
    uint64_t allocation_calls;   /* tw_allocate calls so far, failed ones included */
    uint64_t decisions_made[tw_sim_purpose_count]; /* ordinals of decisions with no fiber */
    tw_sim_decision *replay_sorted; /* a replay's decisions sorted by key (owned) */
    size_t replay_count;
    bool failed;
};

/* The running world of this OS thread, or NULL. */
tw_sim_world *tw_sim_world_current(void);

/* Whether a "1 in one_in" draw came out rare: the last value, never 0, so that 0 (what a
 * shrunk recording fills in) always means the common, quiet outcome: no fault, no switch. */
static inline bool tw_sim_rare(uint64_t value, uint64_t one_in) { return value + 1 == one_in; }

void tw_sim_event_schedule(tw_sim_world *world, tw_sim_event *event, uint64_t time_ns);
void tw_sim_event_cancel(tw_sim_world *world, tw_sim_event *event);

void tw_sim_trace_record(tw_sim_world *world, tw_sim_trace_kind kind, uint32_t detail, uint64_t a,
                         uint64_t b);
/* A decision's trace entry, with its key and the line that asked. */
void tw_sim_trace_record_decision(tw_sim_world *world, uint32_t purpose, uint64_t bound,
                                  uint64_t value, uint32_t fiber, uint64_t ordinal,
                                  const char *file, uint32_t line);

#define TW_SIM_TRACE_HASH_A 0x9e3779b97f4a7c15ULL    /* odd constants from the golden ratio, */
#define TW_SIM_TRACE_HASH_B 0xc2b2ae3d27d4eb4fULL    /* xxHash and PCG: any odd ones would do */
#define TW_SIM_TRACE_HASH_STEP 0x9fb21c651e98df25ULL

static inline uint64_t tw_sim_rotl64(uint64_t x, unsigned bits) {
    return (x << bits) | (x >> (64u - bits));
}

/* Folds an entry into the run's hash (and records it when a trace is kept). One multiply
 * per entry, order-sensitive (the previous hash is rotated in); the run's hash gets a full
 * mix at the end (tw_sim_run). Three full mixes per entry, out of line, were the hottest
 * thing in a small world's profile. */
static inline void tw_sim_trace_fold(tw_sim_world *world, tw_sim_trace_kind kind, uint32_t detail,
                                     uint64_t a, uint64_t b) {
    uint64_t entry_word = (((uint64_t)kind << 32) | detail) ^ (a * TW_SIM_TRACE_HASH_A) ^
                          tw_sim_rotl64(b * TW_SIM_TRACE_HASH_B, 31);
    world->hash = (tw_sim_rotl64(world->hash, 23) ^ entry_word) * TW_SIM_TRACE_HASH_STEP;
}

static inline void tw_sim_trace_add(tw_sim_world *world, tw_sim_trace_kind kind, uint32_t detail,
                                    uint64_t a, uint64_t b) {
    tw_sim_trace_fold(world, kind, detail, a, b);
    if (world->options.trace != NULL) tw_sim_trace_record(world, kind, detail, a, b);
}
/* Wakes futex waiters from an event (no fiber is running, so no scheduling point). */
uint32_t tw_sim_futex_wake_from_event(tw_sim_world *world, tw_atomic_u32 *word,
                                      uint32_t waiters_max);
/* Frees the network at the end of a run (sim/io_sim.c). */
void tw_sim_net_destroy(tw_sim_world *world);

_Noreturn void tw_sim_world_fail(tw_sim_world *world, tw_sim_outcome outcome, const char *message);

#endif
