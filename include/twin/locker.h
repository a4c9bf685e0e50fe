/* twin: the Locker, a 32-bit futex mutex (the design of tb_client's Locker).
 *
 * States: 0 unlocked, 1 locked, 3 contended (locked, and someone may sleep on it).
 * A thread that has slept always takes the lock as contended, so the unlocker after it
 * knows to wake the next sleeper; the last unlock may wake nobody, which is accepted.
 * No allocation, no fairness guarantee, not recursive. Any thread may lock; only the
 * holder may unlock. */
#ifndef TWIN_LOCKER_H
#define TWIN_LOCKER_H

#include <stdbool.h>
#include <twin/atomic_types.h>

typedef struct tw_locker {
    tw_atomic_u32 state;
} tw_locker;

#define TW_LOCKER_INIT { .state = TW_ATOMIC_INIT(0) }

void tw_locker_init(tw_locker *locker);
/* Takes the lock if it is free; never sleeps. */
bool tw_locker_try_lock(tw_locker *locker);
void tw_locker_lock(tw_locker *locker);
/* The caller must hold the lock (asserted: unlocking a free lock panics). */
void tw_locker_unlock(tw_locker *locker);

#endif
