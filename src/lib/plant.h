/* twin: planted bugs, for proving that the simulator finds what it should.
 *
 * Product code marks a deliberate mistake with TW_PLANTED(id). In every shipped library
 * TW_PLANTED is the constant 0 and the compiler removes the branch; only the test-only
 * library twin_sim_planted is compiled with TW_PLANTED_BUGS, where a test selects one
 * bug at a time with tw_plant_select(). This is not a build switch on the backend: the
 * same planted library could be built for real too. */
#ifndef TWIN_PLANT_H
#define TWIN_PLANT_H

#include <stdint.h>

typedef enum tw_plant {
    tw_plant_none = 0,
    /* Locker: unlock of a contended lock forgets to wake a waiter. */
    tw_plant_locker_unlock_no_wake,
    /* Locker: a waiter that wakes takes the lock as "locked" rather than "contended",
     * so the next unlock does not wake the remaining waiters (Drepper, "Futexes are tricky"). */
    tw_plant_locker_wake_takes_locked,
    /* Locker: try_lock is a load then a store, not one atomic step. */
    tw_plant_locker_trylock_not_atomic,
    /* Pool: notify does not wake an idle thread (work waits while threads sleep). */
    tw_plant_pool_notify_skips_idle,
    /* Pool: a steal moves the victim's head before copying the tasks out, so the victim
     * may reuse those slots first. */
    tw_plant_pool_steal_commits_before_copy,
    /* Pool: deinit returns without waiting for the last thread to leave. */
    tw_plant_pool_join_skips_wait,
    /* Server: a retry of the last request executes again instead of getting the cached
     * reply (only a lost reply, i.e. a network fault, makes a client retry). */
    tw_plant_server_retry_executes_again,
    /* Client: a batched reply's create results reach each packet with the request's
     * indexes, not rebased to the packet's first event. */
    tw_plant_client_demux_no_rebase,
    /* Client: an eviction completes the request in flight and later packets, but forgets
     * the pending ones (they never complete). */
    tw_plant_client_eviction_forgets_pending,
    /* Client: a retry after a failed connection takes a new request number. */
    tw_plant_client_retry_new_number,
    /* Client: an eviction completes the root of each request, in flight or pending, but not
     * the packets batched behind it (they never complete): only an eviction that lands while
     * a request of two or more packets waits or is in flight shows it. */
    tw_plant_client_eviction_drops_batched,
    /* Client: a packet joins a waiting request while that request is not yet full, without
     * checking that the packet itself still fits (the batch may overflow its limit). */
    tw_plant_client_batch_full_not_fits,
    /* Server: a repeated register from a client that has a session and no request yet (its
     * retry after the register's reply was lost) opens a new session instead of getting its
     * register reply again. */
    tw_plant_server_register_again_new_session,
    tw_plant_count,
} tw_plant;

#if defined(TW_PLANTED_BUGS)
extern tw_plant tw_plant_active;
#define TW_PLANTED(id) (tw_plant_active == (id))
#else
#define TW_PLANTED(id) 0
#endif

#endif
