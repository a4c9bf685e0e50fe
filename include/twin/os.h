/* twin: the OS seam for everything but atomics (see <twin/atomic.h>).
 *
 * One declaration, two implementations chosen at link time:
 *   twin_real: futex(2), pthreads, CLOCK_MONOTONIC, getrandom(2), calloc  (real/os_real.c)
 *   twin_sim:  fibers parked and woken by the world, virtual time, the world's decisions
 *              and tracked blocks  (sim/world.c; the fibers' stacks and switch: sim/fiber.c)
 * tw_os_result_name is shared by both (src/lib/os_names.c).
 *
 * Threads: any thread may call any function here. In the sim build, "thread" means a
 * fiber of the running world, and every futex call is a scheduling point. */
#ifndef TWIN_OS_H
#define TWIN_OS_H

#include <stddef.h>
#include <stdint.h>
#include <twin/atomic_types.h>

typedef enum tw_os_result {
    tw_os_ok = 0,
    /* futex_wait: the word did not hold the expected value, so the call did not sleep. */
    tw_os_value_changed,
    /* futex_wait: the timeout passed with no wake. */
    tw_os_timed_out,
    /* thread_spawn: out of threads, memory or (sim) fiber slots. */
    tw_os_system_resources,
    /* join or detach of a handle that is not a joinable thread. */
    tw_os_invalid,
} tw_os_result;

const char *tw_os_result_name(tw_os_result result);

/* Timeout meaning "wait until woken". */
#define TW_TIMEOUT_NONE UINT64_MAX

/* Sleeps while *word == expected, until woken or timeout_ns passes. May return tw_os_ok
 * without a wake (a spurious wake-up, as the kernel allows): callers re-check their
 * condition in a loop. */
tw_os_result tw_futex_wait(tw_atomic_u32 *word, uint32_t expected, uint64_t timeout_ns);

/* Wakes up to waiters_max threads sleeping on word, oldest first. Returns how many woke. */
uint32_t tw_futex_wake(tw_atomic_u32 *word, uint32_t waiters_max);

#define TW_FUTEX_WAKE_ALL UINT32_MAX

typedef void (*tw_thread_fn)(void *arg);

/* A thread handle, a value. handle 0 is never a valid thread. */
typedef struct tw_thread {
    uint64_t handle;
} tw_thread;

typedef struct tw_thread_options {
    /* 0 picks the backend's default. */
    size_t stack_size_bytes;
    /* Shown in sim reports (deadlocks list each fiber by name); may be NULL. Not copied. */
    const char *name;
} tw_thread_options;

/* options may be NULL. On failure *thread is left with handle 0. */
tw_os_result tw_thread_spawn(tw_thread *thread, const tw_thread_options *options, tw_thread_fn fn,
                             void *arg);
/* Waits for the thread to finish. Each spawned thread is joined or detached exactly once. */
tw_os_result tw_thread_join(tw_thread thread);
tw_os_result tw_thread_detach(tw_thread thread);

/* The calling thread's handle: what tw_thread_spawn gave for it (the process's first
 * thread, and the sim's main fiber, have one too). For "am I that thread?" checks only:
 * never for ordering or hashing. */
tw_thread tw_thread_self(void);

/* A per-thread pointer for the code above the seam (e.g. "the pool worker I am"). */
void tw_thread_current_set(void *current);
void *tw_thread_current_get(void);

/* Monotonic time in ns: CLOCK_MONOTONIC, or the world's virtual clock. */
uint64_t tw_clock_monotonic_ns(void);

/* 64 random bits, for identities and jitter (not for cryptography): getrandom(2) in the
 * real build; in the sim, a decision of the world's "random" stream, so a seed replays it. */
uint64_t tw_random_u64(void);

/* CPUs available to the process (the sim reports a fixed, seeded-independent count). */
uint32_t tw_cpu_count(void);

/* Zeroed memory for product code; NULL when there is none. In the sim, the world tracks
 * every block allocated inside a run: what a run leaves behind (a failed run abandons its
 * threads mid-way) is freed when the run ends and counted in its report. */
void *tw_allocate(size_t size_bytes);
void tw_free(void *block);

/* The failure path of TW_ASSERT. Real: prints and aborts. Sim: fails the current run
 * (the world reports the seed and the message) without taking the process down. */
_Noreturn void tw_panic(const char *file, int line, const char *message);

#endif
