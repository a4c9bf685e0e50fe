/* twin sim: the world: fibers, the seeded scheduler, futexes, virtual time, decisions.
 *
 * Fibers switch directly to one another (no scheduler fiber in between): the fiber that
 * reaches a scheduling point picks the next one itself, and when nothing can run it
 * advances virtual time to the next event on its own stack. Runs end by switching back
 * to the root context saved by tw_sim_run. */
#include "world.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <twin/assert.h>
#include <twin/hash.h>
#include <twin/atomic.h>

static _Thread_local tw_sim_world *world_current;

tw_sim_world *tw_sim_world_current(void) { return world_current; }

bool tw_sim_active(void) { return world_current != NULL && world_current->running != NULL; }

/* ---- names ------------------------------------------------------------------------ */

const char *tw_sim_strategy_name(tw_sim_strategy strategy) {
    switch (strategy) {
    case tw_sim_strategy_seeded: return "seeded";
    case tw_sim_strategy_random: return "random";
    case tw_sim_strategy_pct: return "pct";
    case tw_sim_strategy_pos: return "pos";
    }
    return "unknown";
}

bool tw_sim_strategy_parse(const char *text, tw_sim_strategy *strategy) {
    TW_ASSERT(strategy != NULL);
    if (text == NULL) return false;
    if (strcmp(text, "random") == 0) *strategy = tw_sim_strategy_random;
    else if (strcmp(text, "pct") == 0) *strategy = tw_sim_strategy_pct;
    else if (strcmp(text, "pos") == 0) *strategy = tw_sim_strategy_pos;
    else if (strcmp(text, "seeded") == 0) *strategy = tw_sim_strategy_seeded;
    else return false;
    return true;
}

const char *tw_sim_outcome_name(tw_sim_outcome outcome) {
    switch (outcome) {
    case tw_sim_passed: return "passed";
    case tw_sim_deadlock: return "deadlock";
    case tw_sim_panic: return "panic";
    case tw_sim_steps_exceeded: return "steps_exceeded";
    }
    return "unknown";
}

const char *tw_sim_purpose_name(tw_sim_purpose purpose) {
    switch (purpose) {
    case tw_sim_purpose_options: return "options";
    case tw_sim_purpose_scheduler: return "scheduler";
    case tw_sim_purpose_faults: return "faults";
    case tw_sim_purpose_network: return "network";
    case tw_sim_purpose_workload: return "workload";
    case tw_sim_purpose_random: return "random";
    case tw_sim_purpose_resources: return "resources";
    case tw_sim_purpose_count: break;
    }
    return "unknown";
}

/* ---- trace and hash --------------------------------------------------------------- */


static void trace_record(tw_sim_trace *trace, const tw_sim_trace_entry *entry) {
    if (trace->count_max != 0 && trace->count >= trace->count_max) {
        trace->truncated = true;
        return;
    }
    if (trace->count == trace->capacity) {
        size_t capacity = trace->capacity == 0 ? 4096 : trace->capacity * 2;
        tw_sim_trace_entry *entries = realloc(trace->entries, capacity * sizeof(*entries));
        if (entries == NULL) {
            trace->truncated = true;
            return;
        }
        trace->entries = entries;
        trace->capacity = capacity;
    }
    trace->entries[trace->count++] = *entry;
}

void tw_sim_trace_record_decision(tw_sim_world *world, uint32_t purpose, uint64_t bound,
                                  uint64_t value, uint32_t fiber, uint64_t ordinal,
                                  const char *file, uint32_t line) {
    TW_ASSERT(world != NULL && world->options.trace != NULL);
    tw_sim_trace_entry entry = {.step = world->report->steps, .kind = tw_sim_trace_decision,
                                .detail = purpose, .a = bound, .b = value, .fiber = fiber,
                                .ordinal = ordinal, .file = file, .line = line};
    trace_record(world->options.trace, &entry);
}

/* The hash step is inline in world.h; recording a trace entry is here. */
void tw_sim_trace_record(tw_sim_world *world, tw_sim_trace_kind kind, uint32_t detail, uint64_t a,
                         uint64_t b) {
    TW_ASSERT(world != NULL && world->options.trace != NULL);
    tw_sim_trace_entry entry = {
        .step = world->report->steps, .kind = kind, .detail = detail, .a = a, .b = b};
    trace_record(world->options.trace, &entry);
}

/* ---- decisions -------------------------------------------------------------------- */

static uint64_t decide_from_bytes(tw_sim_world *world, uint64_t bound, bool *taken) {
    const tw_sim_source *source = world->options.source;
    size_t bytes_needed = 0;
    for (uint64_t rest = bound - 1; rest != 0; rest >>= 8) bytes_needed++;
    if (source->bytes_count - world->source_position < bytes_needed) {
        world->source_position = source->bytes_count;
        *taken = false;
        return 0;
    }
    uint64_t value = 0;
    for (size_t i = 0; i < bytes_needed; i++) {
        value |= (uint64_t)source->bytes[world->source_position + i] << (8 * i);
    }
    world->source_position += bytes_needed;
    *taken = true;
    return value % bound;
}

static int decision_key_compare(const void *a, const void *b) {
    const tw_sim_decision *x = a;
    const tw_sim_decision *y = b;
    if (x->purpose != y->purpose) return x->purpose < y->purpose ? -1 : 1;
    if (x->fiber != y->fiber) return x->fiber < y->fiber ? -1 : 1;
    if (x->ordinal != y->ordinal) return x->ordinal < y->ordinal ? -1 : 1;
    return 0;
}

/* The recorded decision for this key, if any; one that no longer fits (another bound) is
 * reported with its place, and the value comes from PCG instead. */
static uint64_t decide_from_replay(tw_sim_world *world, tw_sim_purpose purpose, uint64_t bound,
                                   uint32_t fiber, uint64_t ordinal, bool *taken) {
    *taken = false;
    tw_sim_decision key = {.purpose = purpose, .fiber = fiber, .ordinal = ordinal};
    /* An empty recording has no array at all: bsearch must not see its NULL (found by the
     * simulator fuzz target, corpus/regressions/simulator/empty-recording). */
    const tw_sim_decision *found =
        world->replay_count == 0 ? NULL
                                 : bsearch(&key, world->replay_sorted, world->replay_count,
                                           sizeof(*world->replay_sorted), decision_key_compare);
    if (found == NULL) {
        world->report->replay_missing++;
        *taken = world->options.source->unrecorded_zero; /* 0, or the seed's */
        return 0;
    }
    if (found->bound != bound) {
        if (world->report->replay_mismatches++ == 0) {
            snprintf(world->report->replay_mismatch_first, sizeof(world->report->replay_mismatch_first),
                     "%s decision %" PRIu64 " of fiber %" PRIu32 " was recorded with bound %" PRIu64
                     ", asked with %" PRIu64, tw_sim_purpose_name(purpose), ordinal, fiber,
                     found->bound, bound);
        }
        *taken = world->options.source->unrecorded_zero; /* 0, or the seed's */
        return 0;
    }
    world->report->replay_used++;
    *taken = true;
    return found->value;
}

static uint64_t world_decide_at(tw_sim_world *world, tw_sim_purpose purpose, uint64_t bound,
                                const char *file, uint32_t line) {
    TW_ASSERT(bound >= 1);
    TW_ASSERT(purpose < tw_sim_purpose_count);
    if (bound == 1) return 0; /* no choice: not a decision, so not recorded or replayed */
    /* The key: who asked (the running fiber, or 0 between fibers), and its count. */
    uint32_t fiber = world->running != NULL ? world->running->id : 0;
    uint64_t *made = world->running != NULL ? world->running->decisions_made : world->decisions_made;
    uint64_t ordinal = ++made[purpose];
    uint64_t value = 0;
    bool taken = false;
    if (world->options.source != NULL) {
        switch (world->options.source->kind) {
        case tw_sim_source_seed: break;
        case tw_sim_source_replay:
            value = decide_from_replay(world, purpose, bound, fiber, ordinal, &taken);
            break;
        case tw_sim_source_bytes: value = decide_from_bytes(world, bound, &taken); break;
        }
    }
    if (!taken) value = tw_pcg32_bounded64(&world->streams[purpose], bound);
    TW_ASSERT(value < bound);
    world->report->decisions++;
    tw_sim_trace_fold(world, tw_sim_trace_decision, purpose, bound, value);
    if (world->options.trace != NULL) {
        tw_sim_trace_record_decision(world, purpose, bound, value, fiber, ordinal, file, line);
    }
    return value;
}
#define world_decide(world, purpose, bound) world_decide_at((world), (purpose), (bound), __FILE__, __LINE__)

uint64_t tw_sim_decide_at(tw_sim_purpose purpose, uint64_t bound, const char *file, uint32_t line) {
    tw_sim_world *world = world_current;
    TW_ASSERT_MSG(world != NULL, "tw_sim_decide called outside a simulated world");
    return world_decide_at(world, purpose, bound, file, line);
}

/* ---- events ----------------------------------------------------------------------- */

void tw_sim_event_schedule(tw_sim_world *world, tw_sim_event *event, uint64_t time_ns) {
    TW_ASSERT(event->fire != NULL);
    uint64_t at_ns = time_ns < world->now_ns ? world->now_ns : time_ns;
    bool pushed = tw_heap_push(&world->events, &event->node, at_ns);
    TW_ASSERT_MSG(pushed, "TW_SIM_EVENTS_MAX events pending");
}

void tw_sim_event_cancel(tw_sim_world *world, tw_sim_event *event) {
    tw_heap_remove(&world->events, &event->node);
}

/* ---- the runnable set ------------------------------------------------------------- */

static void runnable_add(tw_sim_world *world, tw_sim_fiber *fiber) {
    TW_ASSERT(world->runnable_count < TW_SIM_FIBERS_MAX);
    fiber->state = tw_sim_fiber_runnable;
    fiber->runnable_index = world->runnable_count;
    world->runnable[world->runnable_count++] = fiber;
}

static void runnable_remove(tw_sim_world *world, tw_sim_fiber *fiber, tw_sim_fiber_state state) {
    TW_ASSERT(fiber->state == tw_sim_fiber_runnable);
    uint32_t index = fiber->runnable_index;
    TW_ASSERT(index < world->runnable_count && world->runnable[index] == fiber);
    tw_sim_fiber *last = world->runnable[--world->runnable_count];
    world->runnable[index] = last;
    last->runnable_index = index;
    fiber->state = state;
}

static tw_sim_fiber *pct_highest(tw_sim_world *world) {
    tw_sim_fiber *best = NULL;
    for (uint32_t i = 0; i < world->runnable_count; i++) {
        tw_sim_fiber *fiber = world->runnable[i];
        if (best == NULL || fiber->priority > best->priority ||
            (fiber->priority == best->priority && fiber->id < best->id)) {
            best = fiber;
        }
    }
    return best;
}

/* Any runnable fiber but `except` (which may be NULL), uniformly. */
static tw_sim_fiber *random_other(tw_sim_world *world, tw_sim_fiber *except) {
    uint32_t count = world->runnable_count;
    bool skip = except != NULL && except->state == tw_sim_fiber_runnable;
    TW_ASSERT(count > (skip ? 1u : 0u));
    uint32_t index = (uint32_t)world_decide(world, tw_sim_purpose_scheduler, count - (skip ? 1 : 0));
    if (skip && index >= except->runnable_index) index++;
    return world->runnable[index];
}

static tw_sim_fiber *pick_runnable(tw_sim_world *world) {
    TW_ASSERT(world->runnable_count > 0);
    if (world->strategy == tw_sim_strategy_pct || world->strategy == tw_sim_strategy_pos) {
        return pct_highest(world);
    }
    return random_other(world, NULL);
}

/* POS: a fresh random priority for a fiber's next event. */
#define POS_PRIORITY_BOUND (1u << 30)

static void pos_reprioritise(tw_sim_world *world, tw_sim_fiber *fiber) {
    TW_ASSERT(fiber != NULL && world->strategy == tw_sim_strategy_pos);
    fiber->priority = (int64_t)world_decide(world, tw_sim_purpose_scheduler, POS_PRIORITY_BOUND);
}

/* POS (Yuan et al., CAV 2018): every fiber's pending event has a random priority, and the
 * highest runs. When self reaches its next point, the event it announced at its last one has
 * happened: self's next event gets a fresh priority, and so does every runnable fiber whose
 * pending event touches the same object (the events that raced with it). Objects are
 * compared for equality only: which fibers race does not depend on where memory is. */
static tw_sim_fiber *pos_next(tw_sim_world *world, tw_sim_fiber *self, const void *object) {
    const void *executed = self->pending_object;
    pos_reprioritise(world, self);
    if (executed != NULL) {
        for (uint32_t i = 0; i < world->runnable_count; i++) {
            tw_sim_fiber *other = world->runnable[i];
            if (other != self && other->pending_object == executed) pos_reprioritise(world, other);
        }
    }
    self->pending_object = object;
    return pct_highest(world);
}

/* ---- switching -------------------------------------------------------------------- */

static void switch_to(tw_sim_world *world, tw_sim_fiber *self, tw_sim_fiber *next) {
    TW_ASSERT(world->running == self);
    if (next == self) return;
    TW_ASSERT(next->state == tw_sim_fiber_runnable);
    world->report->switches++;
    tw_sim_trace_add(world, tw_sim_trace_switch, 0, self->id, next->id);
    world->running = next;
    tw_fiber_switch(&self->fiber, &next->fiber);
    TW_ASSERT(world->running == self);
}

_Noreturn void tw_sim_world_fail(tw_sim_world *world, tw_sim_outcome outcome, const char *message) {
    TW_ASSERT(outcome != tw_sim_passed);
    TW_ASSERT(world->running != NULL);
    if (!world->failed) {
        world->failed = true;
        world->report->outcome = outcome;
        snprintf(world->report->message, sizeof(world->report->message), "%s", message);
    }
    tw_sim_fiber *self = world->running;
    world->running = NULL;
    tw_fiber_switch_final(&self->fiber, &world->root);
}

_Noreturn void tw_sim_fail(const char *message) {
    tw_sim_world *world = world_current;
    TW_ASSERT_MSG(world != NULL && world->running != NULL, "tw_sim_fail outside a run");
    tw_sim_world_fail(world, tw_sim_panic, message);
}

static size_t append(char *buffer, size_t size, size_t used, const char *format, ...)
    __attribute__((format(printf, 4, 5)));

static size_t append(char *buffer, size_t size, size_t used, const char *format, ...) {
    if (used >= size) return used;
    va_list args;
    va_start(args, format);
    int written = vsnprintf(buffer + used, size - used, format, args);
    va_end(args);
    return written < 0 ? used : used + (size_t)written;
}

/* The words blocked fibers sleep on are named 1, 2, ... in the order of the fibers' ids,
 * never by address: a failure message must read the same in every process. */
#define DEADLOCK_WORDS_MAX 64u

static uint32_t word_number(const tw_atomic_u32 **words, uint32_t *count, const tw_atomic_u32 *word) {
    for (uint32_t i = 0; i < *count; i++) {
        if (words[i] == word) return i + 1;
    }
    if (*count == DEADLOCK_WORDS_MAX) return 0; /* "word 0": one of many */
    words[(*count)++] = word;
    return *count;
}

_Noreturn static void fail_deadlock(tw_sim_world *world) {
    char message[TW_SIM_MESSAGE_SIZE];
    const tw_atomic_u32 *words[DEADLOCK_WORDS_MAX];
    uint32_t words_count = 0;
    size_t used = append(message, sizeof(message), 0,
                         "deadlock: no fiber can run and no event is due; blocked fibers:");
    for (uint32_t i = 0; i < world->fibers_count; i++) {
        tw_sim_fiber *fiber = &world->fibers[i];
        const char *name = fiber->name != NULL ? fiber->name : "-";
        if (fiber->state == tw_sim_fiber_blocked_futex) {
            uint32_t now = atomic_load_explicit(&fiber->wait_word->raw, memory_order_relaxed);
            used = append(message, sizeof(message), used,
                          "\n  fiber %" PRIu32 " (%s): futex_wait on word %" PRIu32 ", expected %" PRIu32
                          ", word now %" PRIu32 "%s",
                          fiber->id, name, word_number(words, &words_count, fiber->wait_word),
                          fiber->wait_expected, now,
                          now == fiber->wait_expected
                              ? " (nothing will wake it)"
                              : " (a lost wake-up: the word changed after it slept, and no "
                                "wake came)");
        } else if (fiber->state == tw_sim_fiber_blocked_join) {
            used = append(message, sizeof(message), used,
                          "\n  fiber %" PRIu32 " (%s): joining fiber %" PRIu32, fiber->id, name,
                          fiber->join_target->id);
        }
    }
    tw_sim_world_fail(world, tw_sim_deadlock, message);
}

/* Next fiber to run after self stopped being runnable; advances time when none can. */
static tw_sim_fiber *pick_after_stop(tw_sim_world *world) {
    for (;;) {
        if (world->runnable_count > 0) return pick_runnable(world);
        tw_heap_node *node = tw_heap_pop(&world->events);
        if (node == NULL) return NULL;
        tw_sim_event *event = TW_CONTAINER_OF(node, tw_sim_event, node);
        TW_ASSERT(node->key >= world->now_ns);
        if (node->key != world->now_ns) {
            world->now_ns = node->key;
            tw_sim_trace_add(world, tw_sim_trace_clock, 0, world->now_ns, 0);
        }
        event->fire(world, event);
    }
}

static void count_step(tw_sim_world *world) {
    if (++world->report->steps > world->steps_max_resolved) {
        char message[128];
        snprintf(message, sizeof(message),
                 "steps_exceeded: %" PRIu64 " scheduling points without finishing (a livelock?)",
                 world->steps_max_resolved);
        tw_sim_world_fail(world, tw_sim_steps_exceeded, message);
    }
}

/* ---- scheduling points -------------------------------------------------------------- */

static void schedule_point(tw_sim_world *world, uint32_t kind, const void *object) {
    tw_sim_fiber *self = world->running;
    TW_ASSERT(self != NULL && self->state == tw_sim_fiber_runnable);
    count_step(world);
    tw_sim_trace_add(world, tw_sim_trace_point, kind, self->id, 0);
    tw_sim_fiber *next = self;
    if (world->strategy == tw_sim_strategy_pos) {
        next = pos_next(world, self, object);
    } else if (world->strategy == tw_sim_strategy_pct) {
        while (world->pct_change_next + 1 < world->report->pct_depth &&
               world->pct_change_steps[world->pct_change_next] <= world->report->steps) {
            /* A change point: below every initial priority (those are > pct_depth). */
            self->priority = (int64_t)world->pct_change_next + 1;
            world->pct_change_next++;
        }
        next = pct_highest(world);
    } else if (world->runnable_count > 1 &&
               tw_sim_rare(world_decide(world, tw_sim_purpose_scheduler, world->switch_bound),
                           world->switch_bound)) {
        next = random_other(world, self);
    }
    switch_to(world, self, next);
}

void tw_sim_atomic_point(int kind, const void *object) {
    tw_sim_world *world = world_current;
    if (world == NULL || world->running == NULL) return;
    schedule_point(world, (uint32_t)kind, object);
}

void tw_sim_spin_point(void) {
    tw_sim_world *world = world_current;
    if (world == NULL || world->running == NULL) return;
    tw_sim_fiber *self = world->running;
    count_step(world);
    tw_sim_trace_add(world, tw_sim_trace_point, tw_atomic_kind_spin, self->id, 0);
    /* A spinner waits for someone else: let another fiber run. Under pct it drops below
     * every priority, so a spinning high-priority fiber cannot livelock the world. */
    if (world->strategy == tw_sim_strategy_pct || world->strategy == tw_sim_strategy_pos) {
        self->priority = --world->pct_floor;
        switch_to(world, self, pct_highest(world));
    } else if (world->runnable_count > 1) {
        switch_to(world, self, random_other(world, self));
    }
}

bool tw_sim_cas_weak_spurious(void) {
    tw_sim_world *world = world_current;
    if (world == NULL || world->running == NULL || world->spurious_bound == 0) return false;
    if (!tw_sim_rare(world_decide(world, tw_sim_purpose_faults, world->spurious_bound), world->spurious_bound)) {
        return false;
    }
    world->report->cas_spurious_failures++;
    return true;
}

/* self has left the runnable set: run someone else until self is runnable again. */
static void block_current(tw_sim_world *world) {
    tw_sim_fiber *self = world->running;
    TW_ASSERT(self != NULL);
    TW_ASSERT(self->state == tw_sim_fiber_blocked_futex || self->state == tw_sim_fiber_blocked_join);
    tw_sim_fiber *next = pick_after_stop(world);
    if (next == NULL) fail_deadlock(world);
    switch_to(world, self, next);
    TW_ASSERT(self->state == tw_sim_fiber_runnable);
}

/* ---- fibers ----------------------------------------------------------------------- */

static tw_sim_fiber *fiber_of_handle(tw_sim_world *world, tw_thread thread) {
    if (thread.handle == 0 || thread.handle > world->fibers_count) return NULL;
    return &world->fibers[thread.handle - 1];
}

_Noreturn static void fiber_exit(tw_sim_world *world, tw_sim_fiber *self) {
    TW_ASSERT(world->running == self);
    tw_sim_trace_add(world, tw_sim_trace_exit, 0, self->id, 0);
    runnable_remove(world, self, tw_sim_fiber_done);
    TW_ASSERT(world->fibers_live > 0);
    world->fibers_live--;
    if (self->joiner != NULL) {
        TW_ASSERT(self->joiner->state == tw_sim_fiber_blocked_join);
        runnable_add(world, self->joiner);
    }
    tw_sim_fiber *next = pick_after_stop(world);
    if (next == NULL) {
        if (world->fibers_live > 0) fail_deadlock(world);
        world->running = NULL; /* every fiber has exited: the run is over */
        tw_fiber_switch_final(&self->fiber, &world->root);
    }
    world->report->switches++;
    tw_sim_trace_add(world, tw_sim_trace_switch, 0, self->id, next->id);
    world->running = next;
    tw_fiber_switch_final(&self->fiber, &next->fiber);
}

static void fiber_entry(void *opaque) {
    tw_sim_fiber *self = opaque;
    tw_sim_world *world = world_current;
    TW_ASSERT(world != NULL && world->running == self);
    self->fn(self->arg);
    fiber_exit(world, self);
}

static void futex_timeout_fire(tw_sim_world *world, tw_sim_event *event);

static tw_os_result fiber_spawn(tw_sim_world *world, tw_thread *thread,
                                const tw_thread_options *options, tw_thread_fn fn, void *arg) {
    TW_ASSERT(fn != NULL);
    thread->handle = 0;
    if (world->fibers_count == TW_SIM_FIBERS_MAX) return tw_os_system_resources;
    tw_sim_fiber *fiber = &world->fibers[world->fibers_count];
    memset(fiber, 0, sizeof(*fiber));
    size_t stack_size = options != NULL && options->stack_size_bytes != 0
                            ? options->stack_size_bytes
                            : TW_SIM_STACK_SIZE_DEFAULT;
    if (!tw_fiber_init(&fiber->fiber, stack_size, fiber_entry, fiber)) {
        return tw_os_system_resources;
    }
    world->fibers_count++;
    fiber->id = world->fibers_count;
    fiber->fn = fn;
    fiber->arg = arg;
    fiber->name = options != NULL ? options->name : NULL;
    tw_sim_event_init(&fiber->wait_timeout, futex_timeout_fire);
    if (world->strategy == tw_sim_strategy_pct) {
        /* Initial priorities lie above every change-point priority (1..d-1). */
        fiber->priority = (int64_t)world->report->pct_depth + 1 +
                          (int64_t)world_decide(world, tw_sim_purpose_scheduler, 1u << 30);
    } else if (world->strategy == tw_sim_strategy_pos) {
        pos_reprioritise(world, fiber);
    }
    runnable_add(world, fiber);
    world->fibers_live++;
    world->report->fibers_spawned++;
    tw_sim_trace_add(world, tw_sim_trace_spawn, 0,
                     world->running != NULL ? world->running->id : 0, fiber->id);
    tw_sim_trace *trace = world->options.trace;
    if (trace != NULL && trace->count > 0 && trace->entries[trace->count - 1].kind == tw_sim_trace_spawn) {
        trace->entries[trace->count - 1].file = fiber->name; /* the new fiber's name */
    }
    thread->handle = fiber->id;
    return tw_os_ok;
}

tw_os_result tw_thread_spawn(tw_thread *thread, const tw_thread_options *options, tw_thread_fn fn,
                             void *arg) {
    TW_ASSERT(thread != NULL);
    tw_sim_world *world = world_current;
    TW_ASSERT_MSG(world != NULL && world->running != NULL,
                  "tw_thread_spawn in the sim build needs a running world (tw_sim_run)");
    uint64_t call = ++world->report->spawns;
    uint64_t one_in = world->options.resources.spawn_fail_one_in;
    if (call == world->options.resources.spawn_fail_at ||
        (one_in != 0 && tw_sim_rare(tw_sim_decide(tw_sim_purpose_resources, one_in), one_in))) {
        world->report->spawns_failed++;
        schedule_point(world, tw_sim_point_spawn, NULL); /* a failed spawn is a system call too */
        return tw_os_system_resources;
    }
    tw_os_result result = fiber_spawn(world, thread, options, fn, arg);
    if (result == tw_os_ok) schedule_point(world, tw_sim_point_spawn, NULL);
    return result;
}

tw_os_result tw_thread_join(tw_thread thread) {
    tw_sim_world *world = world_current;
    TW_ASSERT_MSG(world != NULL && world->running != NULL, "tw_thread_join outside a run");
    tw_sim_fiber *self = world->running;
    tw_sim_fiber *target = fiber_of_handle(world, thread);
    if (target == NULL || target == self || target->detached || target->joined ||
        target->joiner != NULL) {
        return tw_os_invalid;
    }
    schedule_point(world, tw_sim_point_join, NULL);
    if (target->state != tw_sim_fiber_done) {
        target->joiner = self;
        self->join_target = target;
        runnable_remove(world, self, tw_sim_fiber_blocked_join);
        block_current(world);
    }
    TW_ASSERT(target->state == tw_sim_fiber_done);
    target->joined = true;
    tw_fiber_release(&target->fiber);
    return tw_os_ok;
}

tw_os_result tw_thread_detach(tw_thread thread) {
    tw_sim_world *world = world_current;
    TW_ASSERT_MSG(world != NULL && world->running != NULL, "tw_thread_detach outside a run");
    tw_sim_fiber *target = fiber_of_handle(world, thread);
    if (target == NULL || target->detached || target->joined || target->joiner != NULL) {
        return tw_os_invalid;
    }
    target->detached = true;
    if (target->state == tw_sim_fiber_done) tw_fiber_release(&target->fiber);
    return tw_os_ok;
}

tw_thread tw_thread_self(void) {
    tw_sim_world *world = world_current;
    TW_ASSERT_MSG(world != NULL && world->running != NULL, "tw_thread_self outside a run");
    return (tw_thread){.handle = world->running->id};
}

void tw_thread_current_set(void *current) {
    tw_sim_world *world = world_current;
    TW_ASSERT_MSG(world != NULL && world->running != NULL, "tw_thread_current_set outside a run");
    world->running->current = current;
}

void *tw_thread_current_get(void) {
    tw_sim_world *world = world_current;
    if (world == NULL || world->running == NULL) return NULL;
    return world->running->current;
}

/* ---- futex ------------------------------------------------------------------------ */

static void waiters_remove(tw_sim_world *world, tw_sim_fiber *fiber) {
    if (fiber->wait_prev != NULL) fiber->wait_prev->wait_next = fiber->wait_next;
    else world->waiters_head = fiber->wait_next;
    if (fiber->wait_next != NULL) fiber->wait_next->wait_prev = fiber->wait_prev;
    else world->waiters_tail = fiber->wait_prev;
    fiber->wait_next = NULL;
    fiber->wait_prev = NULL;
}

static void futex_timeout_fire(tw_sim_world *world, tw_sim_event *event) {
    tw_sim_fiber *fiber = TW_CONTAINER_OF(event, tw_sim_fiber, wait_timeout);
    TW_ASSERT(fiber->state == tw_sim_fiber_blocked_futex);
    waiters_remove(world, fiber);
    fiber->wait_result = tw_os_timed_out;
    runnable_add(world, fiber);
}

tw_os_result tw_futex_wait(tw_atomic_u32 *word, uint32_t expected, uint64_t timeout_ns) {
    TW_ASSERT(word != NULL);
    tw_sim_world *world = world_current;
    if (world == NULL || world->running == NULL) {
        /* Outside a run nothing could ever wake us. */
        if (atomic_load_explicit(&word->raw, memory_order_acquire) != expected) {
            return tw_os_value_changed;
        }
        tw_panic(__FILE__, __LINE__, "tw_futex_wait would sleep forever outside a simulated world");
    }
    tw_sim_fiber *self = world->running;
    schedule_point(world, tw_sim_point_futex_wait, word);
    world->report->futex_waits++;
    tw_os_result result;
    if (atomic_load_explicit(&word->raw, memory_order_acquire) != expected) {
        result = tw_os_value_changed;
    } else if (world->spurious_bound != 0 &&
               tw_sim_rare(world_decide(world, tw_sim_purpose_faults, world->spurious_bound),
                           world->spurious_bound)) {
        world->report->spurious_wakes++;
        result = tw_os_ok;
    } else if (timeout_ns == 0) {
        result = tw_os_timed_out;
    } else {
        self->wait_word = word;
        self->wait_expected = expected;
        self->wait_result = tw_os_ok;
        self->wait_prev = world->waiters_tail;
        self->wait_next = NULL;
        if (world->waiters_tail != NULL) world->waiters_tail->wait_next = self;
        else world->waiters_head = self;
        world->waiters_tail = self;
        if (timeout_ns != TW_TIMEOUT_NONE) {
            uint64_t deadline_ns = UINT64_MAX - world->now_ns < timeout_ns
                                       ? UINT64_MAX
                                       : world->now_ns + timeout_ns;
            tw_sim_event_schedule(world, &self->wait_timeout, deadline_ns);
        }
        runnable_remove(world, self, tw_sim_fiber_blocked_futex);
        block_current(world);
        result = self->wait_result;
        self->wait_word = NULL;
    }
    tw_sim_trace_add(world, tw_sim_trace_futex_wait, result, self->id, expected);
    return result;
}

static uint32_t futex_wake_waiters(tw_sim_world *world, tw_atomic_u32 *word,
                                   uint32_t waiters_max) {
    uint32_t woken = 0;
    tw_sim_fiber *fiber = world->waiters_head;
    while (fiber != NULL && woken < waiters_max) {
        tw_sim_fiber *next = fiber->wait_next;
        if (fiber->wait_word == word) {
            TW_ASSERT(fiber->state == tw_sim_fiber_blocked_futex);
            waiters_remove(world, fiber);
            tw_sim_event_cancel(world, &fiber->wait_timeout);
            fiber->wait_result = tw_os_ok;
            runnable_add(world, fiber);
            woken++;
        }
        fiber = next;
    }
    return woken;
}

uint32_t tw_sim_futex_wake_from_event(tw_sim_world *world, tw_atomic_u32 *word,
                                      uint32_t waiters_max) {
    TW_ASSERT(world != NULL && word != NULL);
    uint32_t woken = futex_wake_waiters(world, word, waiters_max);
    tw_sim_trace_add(world, tw_sim_trace_futex_wake, 0, 0, woken);
    return woken;
}

uint32_t tw_futex_wake(tw_atomic_u32 *word, uint32_t waiters_max) {
    TW_ASSERT(word != NULL);
    tw_sim_world *world = world_current;
    if (world == NULL || world->running == NULL) return 0;
    tw_sim_fiber *self = world->running;
    schedule_point(world, tw_sim_point_futex_wake, word);
    world->report->futex_wakes++;
    uint32_t woken = futex_wake_waiters(world, word, waiters_max);
    tw_sim_trace_add(world, tw_sim_trace_futex_wake, 0, self->id, woken);
    return woken;
}

uint64_t tw_clock_monotonic_ns(void) {
    tw_sim_world *world = world_current;
    return world == NULL ? 0 : world->now_ns;
}

uint32_t tw_cpu_count(void) { return TW_SIM_CPU_COUNT; }

uint64_t tw_random_u64(void) {
    TW_ASSERT_MSG(tw_sim_active(), "tw_random_u64 outside a run: the seed is the only randomness");
    return tw_sim_decide(tw_sim_purpose_random, UINT64_MAX);
}

_Noreturn void tw_panic(const char *file, int line, const char *message) {
    tw_sim_world *world = world_current;
    if (world != NULL && world->running != NULL) {
        char text[TW_SIM_MESSAGE_SIZE];
        snprintf(text, sizeof(text), "panic at %s:%d: %s", file, line, message);
        tw_sim_world_fail(world, tw_sim_panic, text);
    }
    fprintf(stderr, "twin: panic at %s:%d: %s\n", file, line, message);
    fflush(stderr);
    abort();
}

/* ---- memory ------------------------------------------------------------------------ */

/* A header before each block: the world's list of live blocks. */
typedef struct tw_sim_block {
    struct tw_sim_block *previous;
    struct tw_sim_block *next;
    tw_sim_world *world; /* NULL: allocated outside any run */
    uint64_t magic;
} tw_sim_block;

#define TW_SIM_BLOCK_MAGIC 0x74772d626c6f636bULL /* "tw-block" */
_Static_assert(sizeof(tw_sim_block) % 16 == 0, "blocks stay 16-byte aligned");

void *tw_allocate(size_t size_bytes) {
    tw_sim_world *world = world_current;
    if (world != NULL) {
        /* Counted before the block exists: a call the resources fail is a call too. */
        uint64_t call = ++world->allocation_calls;
        uint64_t one_in = world->options.resources.allocation_fail_one_in;
        if (call == world->options.resources.allocation_fail_at ||
            (one_in != 0 && world->running != NULL &&
             tw_sim_rare(tw_sim_decide(tw_sim_purpose_resources, one_in), one_in))) {
            world->report->allocations_failed++;
            return NULL;
        }
    }
    tw_sim_block *block = calloc(1, sizeof(tw_sim_block) + size_bytes);
    if (block == NULL) return NULL;
    block->magic = TW_SIM_BLOCK_MAGIC;
    block->world = world;
    if (world != NULL) {
        block->next = world->blocks;
        if (world->blocks != NULL) world->blocks->previous = block;
        world->blocks = block;
        world->report->allocations++;
    }
    return block + 1;
}

void tw_sim_reached(uint32_t marker) {
    TW_ASSERT(marker < tw_reach_count);
    tw_sim_world *world = world_current;
    if (world == NULL) return;
    if (world->report->reached[marker] != UINT32_MAX) world->report->reached[marker]++;
}

uint64_t tw_sim_allocation_calls(void) {
    TW_ASSERT_MSG(world_current != NULL, "tw_sim_allocation_calls outside a run");
    return world_current->allocation_calls;
}

uint64_t tw_sim_spawn_calls(void) {
    TW_ASSERT_MSG(world_current != NULL, "tw_sim_spawn_calls outside a run");
    return world_current->report->spawns;
}

void tw_free(void *pointer) {
    if (pointer == NULL) return;
    tw_sim_block *block = (tw_sim_block *)pointer - 1;
    TW_ASSERT_MSG(block->magic == TW_SIM_BLOCK_MAGIC, "tw_free of a block tw_allocate did not make");
    tw_sim_world *world = block->world;
    if (world != NULL) {
        TW_ASSERT_MSG(world == world_current, "tw_free of a block from another run");
        if (block->previous != NULL) block->previous->next = block->next;
        else world->blocks = block->next;
        if (block->next != NULL) block->next->previous = block->previous;
    }
    block->magic = 0;
    free(block);
}

static void free_leftover_blocks(tw_sim_world *world) {
    while (world->blocks != NULL) {
        tw_sim_block *block = world->blocks;
        world->blocks = block->next;
        world->report->allocations_live++;
        block->magic = 0;
        free(block);
    }
}

/* ---- a run ------------------------------------------------------------------------ */

static int compare_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a;
    uint64_t y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The strategies the seed picks from, by its first options decision. */
static const tw_sim_strategy strategies_drawn[] = {tw_sim_strategy_random, tw_sim_strategy_pct,
                                                   tw_sim_strategy_pos};
#define STRATEGIES_DRAWN (sizeof(strategies_drawn) / sizeof(strategies_drawn[0]))

tw_sim_strategy tw_sim_strategy_resolve(const tw_sim_options *options) {
    TW_ASSERT(options != NULL);
    if (options->strategy != tw_sim_strategy_seeded) return options->strategy;
    /* The same draw as resolve_options: the options stream's first decision. */
    tw_pcg32 stream;
    tw_pcg32_seed(&stream, options->seed, tw_sim_purpose_options);
    return strategies_drawn[tw_pcg32_bounded64(&stream, STRATEGIES_DRAWN)];
}

/* Every parameter is drawn, in a fixed order, whether or not an option overrides it,
 * so overriding one leaves the others as the seed chose them. */
static void resolve_options(tw_sim_world *world) {
    const tw_sim_options *options = &world->options;
    tw_sim_report *report = world->report;
    uint64_t strategy_draw = world_decide(world, tw_sim_purpose_options, STRATEGIES_DRAWN);
    uint64_t depth_draw = 1 + world_decide(world, tw_sim_purpose_options, 4); /* d: 1..4 */
    uint64_t shift_draw = 1 + world_decide(world, tw_sim_purpose_options, 7);
    uint64_t spurious_on_draw = world_decide(world, tw_sim_purpose_options, 2);
    uint64_t spurious_shift_draw = 4 + world_decide(world, tw_sim_purpose_options, 7);

    world->strategy = options->strategy != tw_sim_strategy_seeded ? options->strategy
                                                                  : strategies_drawn[strategy_draw];
    report->strategy = world->strategy;
    report->switch_shift = options->switch_shift != 0 ? options->switch_shift : (uint32_t)shift_draw;
    TW_ASSERT(report->switch_shift < 63);
    world->switch_bound = (uint64_t)1 << report->switch_shift;
    report->spurious_shift = options->spurious_shift != 0
                                 ? options->spurious_shift
                                 : (spurious_on_draw == 0 ? -1 : (int32_t)spurious_shift_draw);
    TW_ASSERT(report->spurious_shift < 63);
    world->spurious_bound =
        report->spurious_shift < 0 ? 0 : (uint64_t)1 << (uint32_t)report->spurious_shift;
    world->steps_max_resolved =
        options->steps_max != 0 ? options->steps_max : TW_SIM_STEPS_MAX_DEFAULT;

    if (world->strategy == tw_sim_strategy_pct) {
        uint32_t depth = options->pct_depth != 0 ? options->pct_depth : (uint32_t)depth_draw;
        if (depth > TW_SIM_PCT_DEPTH_MAX) depth = TW_SIM_PCT_DEPTH_MAX;
        report->pct_depth = depth;
        uint64_t steps_expected = options->pct_steps_expected != 0
                                      ? options->pct_steps_expected
                                      : TW_SIM_PCT_STEPS_EXPECTED_DEFAULT;
        report->pct_steps_expected = steps_expected;
        /* The paper's d - 1 change points, uniformly over the k expected steps. */
        for (uint32_t i = 0; i + 1 < depth; i++) {
            world->pct_change_steps[i] =
                1 + world_decide(world, tw_sim_purpose_scheduler, steps_expected);
        }
        qsort(world->pct_change_steps, depth - 1, sizeof(uint64_t), compare_u64);
    }
}

/* A world and its arrays, kept from one run to the next on this OS thread: a run of a small
 * world should cost its work, not a fresh 250 KiB of zeroed memory (and the mmap behind it).
 * What a run used is cleared when it ends: the fibers it spawned, nothing more. */
static _Thread_local tw_sim_world *world_spare;

static tw_sim_world *world_storage_take(void) {
    tw_sim_world *world = world_spare;
    world_spare = NULL;
    if (world == NULL) {
        world = calloc(1, sizeof(*world));
        TW_ASSERT_MSG(world != NULL, "tw_sim_run: out of memory for the world");
        world->fibers = calloc(TW_SIM_FIBERS_MAX, sizeof(*world->fibers));
        world->runnable = calloc(TW_SIM_FIBERS_MAX, sizeof(*world->runnable));
        world->events_storage = calloc(TW_SIM_EVENTS_MAX, sizeof(*world->events_storage));
        TW_ASSERT_MSG(world->fibers != NULL && world->runnable != NULL && world->events_storage != NULL,
                      "tw_sim_run: out of memory for the world");
    }
    return world;
}

/* Clears what the run used and keeps it all for the next run. */
static void world_storage_put(tw_sim_world *world) {
    TW_ASSERT(world != NULL && world->fibers_count <= TW_SIM_FIBERS_MAX);
    memset(world->fibers, 0, (size_t)world->fibers_count * sizeof(*world->fibers));
    memset(world->runnable, 0, (size_t)world->fibers_count * sizeof(*world->runnable));
    tw_sim_fiber *fibers = world->fibers;
    tw_sim_fiber **runnable = world->runnable;
    tw_heap_node **events_storage = world->events_storage;
    /* The event heap's slots need no clearing: only its first count entries are ever read. */
    memset(world, 0, sizeof(*world));
    world->fibers = fibers;
    world->runnable = runnable;
    world->events_storage = events_storage;
    if (world_spare == NULL) {
        world_spare = world;
        return;
    }
    free(world->events_storage);
    free(world->runnable);
    free(world->fibers);
    free(world);
}

tw_sim_outcome tw_sim_run(const tw_sim_options *options, tw_thread_fn main_fn, void *arg,
                          tw_sim_report *report) {
    TW_ASSERT(options != NULL && main_fn != NULL && report != NULL);
    TW_ASSERT_MSG(world_current == NULL, "tw_sim_run: worlds do not nest");
    memset(report, 0, sizeof(*report));
    report->seed = options->seed;

    tw_sim_world *world = world_storage_take();
    tw_heap_init(&world->events, world->events_storage, TW_SIM_EVENTS_MAX);
    world->options = *options;
    world->report = report;
    /* Not seeded with the seed: a replayed run under another seed hashes the same. */
    world->hash = 0x7477696e2d73696dULL; /* "twin-sim" */
    if (options->trace != NULL) tw_sim_trace_reset(options->trace);
    for (uint32_t purpose = 0; purpose < tw_sim_purpose_count; purpose++) {
        tw_pcg32_seed(&world->streams[purpose], options->seed, purpose);
    }
    world_current = world;
    if (options->source != NULL && options->source->kind == tw_sim_source_replay &&
        options->source->decisions_count > 0) {
        /* Sorted by key once, so that each decision finds its recording by bsearch. */
        size_t count = options->source->decisions_count;
        world->replay_sorted = malloc(count * sizeof(*world->replay_sorted));
        TW_ASSERT_MSG(world->replay_sorted != NULL, "tw_sim_run: out of memory for the replay");
        memcpy(world->replay_sorted, options->source->decisions, count * sizeof(*world->replay_sorted));
        qsort(world->replay_sorted, count, sizeof(*world->replay_sorted), decision_key_compare);
        world->replay_count = count;
    }
    resolve_options(world);
    tw_fiber_init_root(&world->root);

    tw_thread main_thread;
    tw_thread_options main_options = {.stack_size_bytes = 0, .name = "main"};
    tw_os_result spawned = fiber_spawn(world, &main_thread, &main_options, main_fn, arg);
    TW_ASSERT_MSG(spawned == tw_os_ok, "tw_sim_run: cannot map the main fiber's stack");
    tw_sim_fiber *main_fiber = fiber_of_handle(world, main_thread);
    world->running = main_fiber;
    tw_fiber_switch(&world->root, &main_fiber->fiber);

    /* Back on the root: every fiber has exited, or the run failed. */
    TW_ASSERT(world->running == NULL);
    world_current = NULL;
    for (uint32_t i = 0; i < world->fibers_count; i++) tw_fiber_release(&world->fibers[i].fiber);
    if (world->net != NULL) tw_sim_net_destroy(world);
    free_leftover_blocks(world);
    report->time_ns = world->now_ns;
    report->hash = tw_mix64(world->hash ^ report->steps);
    if (!world->failed) report->outcome = tw_sim_passed;
    free(world->replay_sorted);
    world->replay_sorted = NULL;
    world_storage_put(world);
    return report->outcome;
}
