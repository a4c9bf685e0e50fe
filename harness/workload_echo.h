/* twin harness: the echo workload and its oracle (moved from tests/echo_test.c, which now
 * runs it). Backend-neutral: the same code runs on pthreads and on simulated fibers.
 *
 * One server loop, `clients` client threads each with its own loop. Each client streams
 * bytes_per_client bytes of a pattern that depends on its id and the byte's position, the
 * server echoes every byte back through a write queue, and the client checks each byte it
 * gets back, so any byte lost, duplicated or reordered on a connection that was not reset
 * fails the run at that byte. Connects are retried after refused or timed-out attempts
 * (at most 20 per client); a reset ends a connection, and must be seen by both of its
 * ends. Odd clients send through a small send buffer, so their sends wait for the reader. */
#ifndef TWIN_HARNESS_WORKLOAD_ECHO_H
#define TWIN_HARNESS_WORKLOAD_ECHO_H

#include <stdint.h>

#include <twin/atomic_types.h>

#define TW_WORKLOAD_ECHO_CLIENTS_MAX 8u

typedef struct tw_workload_echo {
    uint32_t clients;          /* 1 .. TW_WORKLOAD_ECHO_CLIENTS_MAX */
    uint64_t bytes_per_client;
    /* What the last run saw. */
    uint32_t resets;   /* connections reset (each seen by both ends) */
    uint32_t connects; /* connect attempts */
    tw_atomic_u64 runs; /* runs finished (the last step of a run: a scheduling point too) */
} tw_workload_echo;

/* A tw_thread_fn: one run; checks with TW_ASSERT. One run at a time per process. */
void tw_workload_echo_run(void *workload);

/* The echo as a twin-sim workload (harness/workload_echo_spec.c, sim build only). */
struct tw_workload;
extern const struct tw_workload tw_workload_echo_spec;

#endif
