/* twin fuzz target: the work-stealing pool (include/twin/pool.h, src/pool.c) in the sim
 * build, driven by an operation sequence decoded from the input; the rest of the input is
 * the world's decisions (tw_sim_source_bytes: the schedule, spurious wake-ups and weak-CAS
 * failures), so the fuzzer steers both what the pool is asked to do and how its threads
 * interleave. Harness/workload_pool.c runs fixed phases; here the phases come from the bytes.
 *
 * Input:
 *   byte 0   threads_max of the first pool: byte % 9 (0: the CPU count, 4 in the sim)
 *   byte 1   the number of operations: byte % (POOL_OPS_MAX + 1)
 *   then that many operations, 2 bytes each (opcode % pool_op_count, argument; bytes
 *   missing at the end of the input read as 0), then every remaining byte is a decision
 *   byte for the world (when they run out, the seed POOL_SEED's PCG takes over).
 *   Operations (the main fiber is "outside" the pool; "inside" is a task on a worker):
 *     single         one task from outside; the argument picks its kind (a leaf, a yielder,
 *                    a blocker or a task with one child)
 *     batch          1 + arg leaves in one batch from outside (up to 256: a whole ring)
 *     singles        1 + arg % 64 leaves from outside, one tw_pool_schedule each
 *     tree           a binary fan-out tree of depth arg % 8 from inside (a node schedules
 *                    its two children as one batch)
 *     chain          1 + arg % 64 tasks, each scheduling the next from inside (single tasks
 *                    from inside, one at a time)
 *     burst_batch    a task that schedules POOL_BURST_TASKS_BASE (128) + 2 * arg leaves in one batch
 *                    from inside: more than the 256-slot ring, so half of it and the rest
 *                    of the batch overflow to the thread's queue
 *     burst_singles  a task that schedules POOL_BURST_TASKS_BASE + arg leaves one at a time from
 *                    inside (the ring fills and overflows push by push)
 *     blocker        a task that blocks its worker for 1 + arg % 4 ms of virtual time (a
 *                    futex wait with a timeout), then schedules (arg >> 2) % 8 leaves
 *     yielder        a task that yields (tw_spin_hint) 1 + arg % 16 times
 *     wait           the main fiber waits until every task of the pool so far has run
 *     sleep          the main fiber sleeps 1 + arg % 8 ms of virtual time (workers go idle)
 *     yield          the main fiber yields 1 + arg % 16 times
 *     shutdown       tw_pool_shutdown and tw_pool_deinit now, with whatever is queued or
 *                    running (arg >> 4 picks what comes first: nothing, yields, a sleep, a
 *                    wait for everything, so that shutdown meets busy or idle threads, and
 *                    between shutdown and deinit the main fiber yields when arg & 0x08);
 *                    then a new pool with threads_max arg % 9
 *   After the last operation the pool is shut down and deinit'ed the same way. An operation
 *   whose tasks would pass POOL_TASKS_MAX in all is skipped; so is a shutdown past
 *   POOL_GENERATIONS_MAX pools.
 *
 * Oracle (a failure prints what failed and at which operation, and aborts):
 *   - every task runs exactly once: a second run fails the world at once, naming the task;
 *     when tw_pool_deinit returns, every task scheduled on that pool (from outside, and from
 *     inside by tasks, before or after the shutdown) has run (pool.h: shutdown drains);
 *   - nothing runs after deinit: a task checks, when it starts, that its pool's deinit has
 *     not returned; the pool's memory is tw_allocate'd and freed right after deinit (pool.h
 *     allows it), so a worker that touches it later is a use after free under ASan;
 *   - deinit returns and waits return: a deadlock or a livelock (POOL_STEPS_MAX scheduling
 *     points) is reported by the sim, with the operation the main fiber was at;
 *   - no leak: the world's report.allocations_live is 0.
 * Deterministic: the seed is fixed, messages name tasks and pools by index. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <twin/assert.h>
#include <twin/atomic.h>
#include <twin/os.h>
#include <twin/pool.h>
#include <twin/sim.h>

#include "common.h"

#define POOL_OPS_MAX 64u
#define POOL_OP_SIZE 2u
#define POOL_HEADER_SIZE 2u
#define POOL_THREADS_CHOICES 9u /* 0 (the CPU count) .. 8 */
#define POOL_TASKS_MAX 4096u
#define POOL_GENERATIONS_MAX 16u
#define POOL_SEED 1u
#define POOL_STEPS_MAX (4u * 1000u * 1000u)
#define POOL_BURST_TASKS_BASE 128u
#define POOL_TREE_DEPTH_CHOICES 8u
#define POOL_CHAIN_LENGTH_CHOICES 64u
#define POOL_SINGLES_CHOICES 64u
#define POOL_BLOCK_MS_CHOICES 4u
#define POOL_BLOCKER_CHILDREN_CHOICES 8u
#define POOL_YIELD_CHOICES 16u
#define POOL_SLEEP_MS_CHOICES 8u
#define POOL_SHUTDOWN_YIELDS 4u
#define POOL_SHUTDOWN_SLEEP_MS 1u
#define POOL_SHUTDOWN_GAP_YIELD_BIT 0x08u
#define POOL_MS_NS (1000u * 1000u)
#define POOL_FAILURE_TEXT_SIZE 512u
#define POOL_WHERE_TEXT_SIZE 64u

typedef enum pool_op {
    pool_op_single = 0,
    pool_op_batch,
    pool_op_singles,
    pool_op_tree,
    pool_op_chain,
    pool_op_burst_batch,
    pool_op_burst_singles,
    pool_op_blocker,
    pool_op_yielder,
    pool_op_wait,
    pool_op_sleep,
    pool_op_yield,
    pool_op_shutdown,
    pool_op_count,
} pool_op;

static const char *const pool_op_names[pool_op_count] = {
    "single", "batch", "singles", "tree", "chain", "burst_batch", "burst_singles",
    "blocker", "yielder", "wait", "sleep", "yield", "shutdown",
};

typedef enum task_kind {
    task_leaf = 0,
    task_tree_node,    /* param: depth below it; first: the tree's first task */
    task_chain_link,   /* param: links after it */
    task_burst_batch,  /* param: leaves after it, scheduled as one batch */
    task_burst_singles, /* param: leaves after it, scheduled one at a time */
    task_blocker,      /* param: ms << 8 | leaves after it */
    task_yielder,      /* param: yields */
    task_parent,       /* one leaf after it */
} task_kind;

static const char *const task_kind_names[] = {
    "leaf", "tree node", "chain link", "burst (batch)", "burst (singles)", "blocker", "yielder", "parent",
};

typedef struct pool_job {
    tw_pool_task task;
    uint32_t index; /* in jobs[] */
    uint32_t generation;
    uint8_t kind; /* task_kind */
    uint32_t param;
    uint32_t first;
    tw_atomic_u32 runs;
} pool_job;

typedef struct pool_generation {
    tw_pool *pool; /* tw_allocate'd; freed right after deinit */
    uint32_t threads;
    uint32_t first_job;
    uint32_t jobs;  /* scheduled (directly or by tasks) on this pool */
    tw_atomic_u32 completed;
    tw_atomic_u32 deinit_returned;
} pool_generation;

typedef struct pool_op_decoded {
    uint8_t op; /* pool_op */
    uint8_t arg;
} pool_op_decoded;

static struct {
    uint32_t threads_first;
    uint32_t ops_count;
    pool_op_decoded ops[POOL_OPS_MAX];
    tw_sim_source source;
} input;

/* The run's state: reset before each world. */
static pool_job jobs[POOL_TASKS_MAX];
static uint32_t jobs_used;
static pool_generation generations[POOL_GENERATIONS_MAX];
static uint32_t generations_used;
static uint32_t op_at; /* the operation the main fiber is at (for messages) */
static uint32_t ops_skipped;
static char failure[POOL_FAILURE_TEXT_SIZE]; /* tw_sim_fail keeps the pointer: one failure a run */

/* Where the main fiber is, for messages: "operation 3 (shutdown)" or "the final shutdown". */
static const char *op_where(char *out, size_t out_size) {
    if (op_at < input.ops_count) {
        snprintf(out, out_size, "operation %u (%s)", op_at, pool_op_names[input.ops[op_at].op]);
    } else {
        snprintf(out, out_size, "the final shutdown");
    }
    return out;
}

static void fail_job(const pool_job *job, const char *what) {
    char where[POOL_WHERE_TEXT_SIZE];
    snprintf(failure, sizeof(failure), "pool: task %u (%s) of pool %u %s (main at %s)", job->index,
             task_kind_names[job->kind], job->generation, what, op_where(where, sizeof(where)));
    tw_sim_fail(failure);
}

static pool_job *job_take(uint32_t generation, task_kind kind, uint32_t param) {
    TW_ASSERT(jobs_used < POOL_TASKS_MAX && generation < generations_used);
    pool_job *job = &jobs[jobs_used];
    *job = (pool_job){
        .task = {.callback = NULL}, .index = jobs_used, .generation = generation, .kind = (uint8_t)kind, .param = param};
    tw_atomic_store_u32(&job->runs, 0, tw_relaxed);
    jobs_used++;
    generations[generation].jobs++;
    return job;
}

static void job_run(tw_pool_task *task);

static tw_pool_batch job_batch(pool_job *job) {
    job->task.callback = job_run;
    return tw_pool_batch_of(&job->task);
}

static void sleep_ns(uint64_t duration_ns) {
    tw_atomic_u32 never = TW_ATOMIC_INIT(0); /* nobody wakes it: only the timeout ends a wait */
    uint64_t until_ns = tw_clock_monotonic_ns() + duration_ns;
    for (uint64_t now_ns = tw_clock_monotonic_ns(); now_ns < until_ns; now_ns = tw_clock_monotonic_ns()) {
        (void)tw_futex_wait(&never, 0, until_ns - now_ns);
    }
}

static void yield_times(uint32_t times) {
    for (uint32_t i = 0; i < times; i++) tw_spin_hint();
}

static void job_run(tw_pool_task *task) {
    pool_job *job = TW_CONTAINER_OF(task, pool_job, task);
    TW_ASSERT(job->index < jobs_used && job->generation < generations_used);
    pool_generation *g = &generations[job->generation];
    if (tw_atomic_fetch_add_u32(&job->runs, 1, tw_relaxed) != 0) fail_job(job, "ran twice");
    if (tw_atomic_load_u32(&g->deinit_returned, tw_acquire) != 0) fail_job(job, "ran after tw_pool_deinit returned");
    tw_pool *pool = g->pool;
    switch ((task_kind)job->kind) {
    case task_leaf: break;
    case task_tree_node:
        if (job->param > 0) {
            uint32_t node = job->index - job->first;
            tw_pool_batch children = {0};
            tw_pool_batch_push(&children, job_batch(&jobs[job->first + 2 * node + 1]));
            tw_pool_batch_push(&children, job_batch(&jobs[job->first + 2 * node + 2]));
            tw_pool_schedule(pool, children);
        }
        break;
    case task_chain_link:
        if (job->param > 0) tw_pool_schedule(pool, job_batch(&jobs[job->index + 1]));
        break;
    case task_burst_batch: {
        tw_pool_batch batch = {0};
        for (uint32_t i = 1; i <= job->param; i++) tw_pool_batch_push(&batch, job_batch(&jobs[job->index + i]));
        tw_pool_schedule(pool, batch);
        break;
    }
    case task_burst_singles:
        for (uint32_t i = 1; i <= job->param; i++) tw_pool_schedule(pool, job_batch(&jobs[job->index + i]));
        break;
    case task_blocker: {
        sleep_ns((uint64_t)(job->param >> 8) * POOL_MS_NS);
        uint32_t children = job->param & 0xFFu;
        tw_pool_batch batch = {0};
        for (uint32_t i = 1; i <= children; i++) tw_pool_batch_push(&batch, job_batch(&jobs[job->index + i]));
        tw_pool_schedule(pool, batch); /* an empty batch is allowed and does nothing */
        break;
    }
    case task_yielder: yield_times(job->param); break;
    case task_parent: tw_pool_schedule(pool, job_batch(&jobs[job->index + 1])); break;
    }
    (void)tw_atomic_fetch_add_u32(&g->completed, 1, tw_acq_rel);
    (void)tw_futex_wake(&g->completed, TW_FUTEX_WAKE_ALL);
}

/* ---- the main fiber ------------------------------------------------------------------------ */

static void generation_start(uint32_t threads) {
    TW_ASSERT(generations_used < POOL_GENERATIONS_MAX);
    pool_generation *g = &generations[generations_used];
    *g = (pool_generation){.threads = threads, .first_job = jobs_used};
    tw_atomic_store_u32(&g->completed, 0, tw_relaxed);
    tw_atomic_store_u32(&g->deinit_returned, 0, tw_relaxed);
    g->pool = tw_allocate(sizeof(tw_pool));
    TW_ASSERT_MSG(g->pool != NULL, "pool: no memory for a tw_pool (no resource faults are asked for)");
    TW_ASSERT_MSG(tw_pool_init(g->pool, &(tw_pool_options){.threads_max = threads}) == tw_pool_ok,
                  "pool: tw_pool_init failed (no resource faults are asked for)");
    generations_used++;
}

static pool_generation *generation_current(void) {
    TW_ASSERT(generations_used > 0);
    return &generations[generations_used - 1];
}

/* Waits until every task of the current pool so far has run. */
static void wait_all(void) {
    pool_generation *g = generation_current();
    for (;;) {
        uint32_t completed = tw_atomic_load_u32(&g->completed, tw_acquire);
        TW_ASSERT(completed <= g->jobs);
        if (completed == g->jobs) return;
        (void)tw_futex_wait(&g->completed, completed, TW_TIMEOUT_NONE);
    }
}

static void generation_end(uint8_t arg) {
    uint32_t index = generations_used - 1;
    pool_generation *g = generation_current();
    switch ((arg >> 4) % 4u) {
    case 0: break;
    case 1: yield_times(POOL_SHUTDOWN_YIELDS); break;
    case 2: sleep_ns((uint64_t)POOL_SHUTDOWN_SLEEP_MS * POOL_MS_NS); break;
    default: wait_all(); break;
    }
    tw_pool_shutdown(g->pool);
    if ((arg & POOL_SHUTDOWN_GAP_YIELD_BIT) != 0) yield_times(POOL_SHUTDOWN_YIELDS);
    tw_pool_deinit(g->pool);
    tw_atomic_store_u32(&g->deinit_returned, 1, tw_release);
    tw_free(g->pool); /* pool.h: the pool may be freed once deinit returned */
    g->pool = NULL;
    uint32_t completed = tw_atomic_load_u32(&g->completed, tw_acquire);
    for (uint32_t i = g->first_job; i < g->first_job + g->jobs; i++) {
        if (jobs[i].generation != index) continue;
        if (tw_atomic_load_u32(&jobs[i].runs, tw_relaxed) != 1) {
            fail_job(&jobs[i], "had not run when tw_pool_deinit returned (shutdown must drain)");
        }
    }
    if (completed != g->jobs) {
        char where[POOL_WHERE_TEXT_SIZE];
        snprintf(failure, sizeof(failure),
                 "pool: %u of pool %u's %u tasks completed when tw_pool_deinit returned (main at %s)", completed,
                 index, g->jobs, op_where(where, sizeof(where)));
        tw_sim_fail(failure);
    }
}

/* Tasks an operation takes; 0 for those that take none. */
static uint32_t op_tasks(pool_op op, uint8_t arg) {
    switch (op) {
    case pool_op_single: return arg % 4u == 3u ? 2u : 1u;
    case pool_op_batch: return 1u + arg;
    case pool_op_singles: return 1u + arg % POOL_SINGLES_CHOICES;
    case pool_op_tree: return (2u << (arg % POOL_TREE_DEPTH_CHOICES)) - 1u;
    case pool_op_chain: return 1u + arg % POOL_CHAIN_LENGTH_CHOICES;
    case pool_op_burst_batch: return 1u + POOL_BURST_TASKS_BASE + 2u * arg;
    case pool_op_burst_singles: return 1u + POOL_BURST_TASKS_BASE + arg;
    case pool_op_blocker: return 1u + (arg >> 2) % POOL_BLOCKER_CHILDREN_CHOICES;
    case pool_op_yielder: return 1u;
    case pool_op_wait:
    case pool_op_sleep:
    case pool_op_yield:
    case pool_op_shutdown:
    case pool_op_count: break;
    }
    return 0;
}

static void op_apply(pool_op op, uint8_t arg) {
    uint32_t generation = generations_used - 1;
    tw_pool *pool = generation_current()->pool;
    uint32_t tasks = op_tasks(op, arg);
    if (jobs_used + tasks > POOL_TASKS_MAX) {
        ops_skipped++;
        return;
    }
    switch (op) {
    case pool_op_single: {
        static const task_kind kinds[4] = {task_leaf, task_yielder, task_blocker, task_parent};
        task_kind kind = kinds[arg % 4u];
        uint32_t param = kind == task_yielder ? 1u + (arg >> 2) % POOL_YIELD_CHOICES
                         : kind == task_blocker ? (1u + (arg >> 2) % POOL_BLOCK_MS_CHOICES) << 8
                                                : 0u;
        pool_job *job = job_take(generation, kind, param);
        if (kind == task_parent) (void)job_take(generation, task_leaf, 0);
        tw_pool_schedule(pool, job_batch(job));
        break;
    }
    case pool_op_batch: {
        tw_pool_batch batch = {0};
        for (uint32_t i = 0; i < tasks; i++) tw_pool_batch_push(&batch, job_batch(job_take(generation, task_leaf, 0)));
        tw_pool_schedule(pool, batch);
        break;
    }
    case pool_op_singles:
        for (uint32_t i = 0; i < tasks; i++) tw_pool_schedule(pool, job_batch(job_take(generation, task_leaf, 0)));
        break;
    case pool_op_tree: {
        uint32_t depth = arg % POOL_TREE_DEPTH_CHOICES;
        uint32_t first = jobs_used;
        for (uint32_t i = 0; i < tasks; i++) {
            /* Node i of a heap-shaped tree is at level floor(log2(i + 1)). */
            uint32_t level = 0;
            for (uint32_t n = i + 1; n > 1; n >>= 1) level++;
            pool_job *node = job_take(generation, task_tree_node, depth - level);
            node->first = first;
        }
        tw_pool_schedule(pool, job_batch(&jobs[first]));
        break;
    }
    case pool_op_chain: {
        uint32_t first = jobs_used;
        for (uint32_t i = 0; i < tasks; i++) (void)job_take(generation, task_chain_link, tasks - 1u - i);
        tw_pool_schedule(pool, job_batch(&jobs[first]));
        break;
    }
    case pool_op_burst_batch:
    case pool_op_burst_singles: {
        pool_job *burst = job_take(generation, op == pool_op_burst_batch ? task_burst_batch : task_burst_singles,
                                   tasks - 1u);
        for (uint32_t i = 1; i < tasks; i++) (void)job_take(generation, task_leaf, 0);
        tw_pool_schedule(pool, job_batch(burst));
        break;
    }
    case pool_op_blocker: {
        uint32_t ms = 1u + arg % POOL_BLOCK_MS_CHOICES;
        pool_job *blocker = job_take(generation, task_blocker, ms << 8 | (tasks - 1u));
        for (uint32_t i = 1; i < tasks; i++) (void)job_take(generation, task_leaf, 0);
        tw_pool_schedule(pool, job_batch(blocker));
        break;
    }
    case pool_op_yielder:
        tw_pool_schedule(pool, job_batch(job_take(generation, task_yielder, 1u + arg % POOL_YIELD_CHOICES)));
        break;
    case pool_op_wait: wait_all(); break;
    case pool_op_sleep: sleep_ns((uint64_t)(1u + arg % POOL_SLEEP_MS_CHOICES) * POOL_MS_NS); break;
    case pool_op_yield: yield_times(1u + arg % POOL_YIELD_CHOICES); break;
    case pool_op_shutdown:
        if (generations_used == POOL_GENERATIONS_MAX) {
            ops_skipped++;
            break;
        }
        generation_end(arg);
        generation_start(arg % POOL_THREADS_CHOICES);
        break;
    case pool_op_count: TW_ASSERT(false); break;
    }
}

static void pool_main(void *arg) {
    (void)arg;
    generation_start(input.threads_first);
    for (op_at = 0; op_at < input.ops_count; op_at++) {
        op_apply((pool_op)input.ops[op_at].op, input.ops[op_at].arg);
    }
    generation_end(0);
}

/* ---- the target ---------------------------------------------------------------------------- */

static void input_decode(const uint8_t *data, size_t size) {
    size_t at = 0;
    uint8_t threads = at < size ? data[at] : 0;
    at++;
    uint8_t count = at < size ? data[at] : 0;
    at++;
    input.threads_first = threads % POOL_THREADS_CHOICES;
    input.ops_count = count % (POOL_OPS_MAX + 1u);
    for (uint32_t i = 0; i < input.ops_count; i++) {
        uint8_t op = at < size ? data[at] : 0;
        uint8_t arg = at + 1 < size ? data[at + 1] : 0;
        at += POOL_OP_SIZE;
        input.ops[i] = (pool_op_decoded){.op = (uint8_t)(op % pool_op_count), .arg = arg};
    }
    input.source = (tw_sim_source){.kind = tw_sim_source_bytes};
    if (at < size) {
        input.source.bytes = data + at;
        input.source.bytes_count = size - at;
    }
}

static void describe_ops(char *out, size_t out_size) {
    size_t used = 0;
    out[0] = '\0';
    for (uint32_t i = 0; i < input.ops_count && used < out_size; i++) {
        int n = snprintf(out + used, out_size - used, "%s%s(%u)", i == 0 ? "" : " ", pool_op_names[input.ops[i].op],
                         input.ops[i].arg);
        if (n < 0) break;
        used += (size_t)n;
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    tw_fuzz_plant_from_env();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    TW_ASSERT(data != NULL || size == 0);
    input_decode(data, size);
    jobs_used = 0;
    generations_used = 0;
    op_at = 0;
    ops_skipped = 0;
    failure[0] = '\0';
    tw_sim_options options = {
        .seed = POOL_SEED,
        .strategy = tw_sim_strategy_random,
        .steps_max = POOL_STEPS_MAX,
        .source = &input.source,
    };
    tw_sim_report report;
    memset(&report, 0, sizeof(report));
    tw_sim_run(&options, pool_main, NULL, &report);
    bool leaked = report.outcome == tw_sim_passed && report.allocations_live != 0;
    if (report.outcome != tw_sim_passed || leaked) {
        char ops[4096];
        describe_ops(ops, sizeof(ops));
        if (leaked) {
            fprintf(stderr, "fuzz_pool: %llu of the run's %llu blocks were never freed (a leak)\n",
                    (unsigned long long)report.allocations_live, (unsigned long long)report.allocations);
        } else {
            char where[POOL_WHERE_TEXT_SIZE];
            fprintf(stderr, "fuzz_pool: %s with the main fiber at %s of %u operations: %s\n",
                    tw_sim_outcome_name(report.outcome), op_where(where, sizeof(where)), input.ops_count,
                    report.message);
        }
        fprintf(stderr, "fuzz_pool: first pool threads_max %u; operations: %s; %u tasks, %u pools, %llu steps, "
                        "%llu decisions\n",
                input.threads_first, ops, jobs_used, generations_used, (unsigned long long)report.steps,
                (unsigned long long)report.decisions);
        abort();
    }
    if (tw_fuzz_verbose()) {
        printf("fuzz_pool: %u operations (%u skipped), %u tasks, %u pools, steps=%llu switches=%llu spurious=%llu "
               "hash=%016llx\n",
               input.ops_count, ops_skipped, jobs_used, generations_used, (unsigned long long)report.steps,
               (unsigned long long)report.switches,
               (unsigned long long)(report.spurious_wakes + report.cas_spurious_failures),
               (unsigned long long)report.hash);
    }
    return 0;
}
