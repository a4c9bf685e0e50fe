/* twin real build: what each thread is waiting on, for hang reports.
 *
 * The real backend notes, per thread, the blocking call it is in (a futex wait, an io_uring
 * wait, a join) and since when. Threads spawned with tw_thread_spawn carry the name their
 * options gave; any other thread that waits (the process's first thread, say) is noted when it
 * first waits. A test's watchdog (tests/support/watchdog_real.c) prints the table when a phase
 * lasts too long, so that a hang fails with what each thread waits on instead of a timeout.
 * The notes cost two thread-local stores and a clock read around each blocking call. */
#ifndef TWIN_REAL_WAITS_H
#define TWIN_REAL_WAITS_H

#include <stddef.h>
#include <stdint.h>

/* Threads the table holds at once; more are not noted (the report says how many were left
 * out). */
#define TW_REAL_WAITS_THREADS_MAX 256u

/* The calling thread enters a blocking call: what ("futex wait"), the object (its address;
 * a join's is the thread handle, printed as the joined thread's name) and a named detail (the
 * futex's expected value, a timeout; TW_TIMEOUT_NONE prints as "none"). Strings are static. */
void tw_real_wait_begin(const char *what, const void *object, const char *detail_name, uint64_t detail);
void tw_real_wait_end(void);

/* Writes one line per live thread into out (NUL-terminated, cut short at size): its name,
 * its kernel thread id, and either the call it waits in and for how long, or "running".
 * Returns the number of threads described. Safe from any thread while others run (the
 * entries are read with atomics; a thread that changes state meanwhile shows either state). */
uint32_t tw_real_waits_describe(char *out, size_t size);

#endif
