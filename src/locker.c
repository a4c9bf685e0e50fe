#include <twin/assert.h>
#include <twin/atomic.h>
#include <twin/locker.h>
#include <twin/reach.h>

#include "lib/plant.h"

enum {
    locker_unlocked = 0,
    locker_locked = 1,
    locker_contended = 3, /* includes the locked bit */
};

void tw_locker_init(tw_locker *locker) {
    TW_ASSERT(locker != NULL);
    tw_atomic_store_u32(&locker->state, locker_unlocked, tw_relaxed);
}

bool tw_locker_try_lock(tw_locker *locker) {
    TW_ASSERT(locker != NULL);
    if (TW_PLANTED(tw_plant_locker_trylock_not_atomic)) {
        if (tw_atomic_load_u32(&locker->state, tw_acquire) != locker_unlocked) return false;
        tw_atomic_store_u32(&locker->state, locker_locked, tw_relaxed);
        return true;
    }
    /* Setting bit 0 (x86: lock bts) fails on both locked and contended, and leaves a
     * contended state unchanged. */
    uint32_t old = tw_atomic_fetch_or_u32(&locker->state, locker_locked, tw_acquire);
    /* Only bit 0 is read, so x86 compilers emit one `lock bts` (lock() and unlock()
     * assert the full state). */
    return (old & locker_locked) == 0;
}

void tw_locker_lock(tw_locker *locker) {
    TW_ASSERT(locker != NULL);
    if (tw_locker_try_lock(locker)) return;

    /* Already contended: sleep once before writing, to avoid a needless store. */
    TW_REACHED(tw_reach_locker_contended);
    if (tw_atomic_load_u32(&locker->state, tw_relaxed) == locker_contended) {
        (void)tw_futex_wait(&locker->state, locker_contended, TW_TIMEOUT_NONE);
    }
    /* Whoever has slept takes the lock as contended: other sleepers may remain. */
    uint32_t acquire_with = locker_contended;
    for (;;) {
        uint32_t old = tw_atomic_exchange_u32(&locker->state, acquire_with, tw_acquire);
        TW_ASSERT(old == locker_unlocked || old == locker_locked || old == locker_contended);
        if (old == locker_unlocked) return;
        (void)tw_futex_wait(&locker->state, acquire_with, TW_TIMEOUT_NONE);
        if (TW_PLANTED(tw_plant_locker_wake_takes_locked)) acquire_with = locker_locked;
    }
}

void tw_locker_unlock(tw_locker *locker) {
    TW_ASSERT(locker != NULL);
    uint32_t old = tw_atomic_exchange_u32(&locker->state, locker_unlocked, tw_release);
    TW_ASSERT_MSG(old != locker_unlocked, "tw_locker_unlock: the lock was not held");
    TW_ASSERT(old == locker_locked || old == locker_contended);
    if (old == locker_contended && !TW_PLANTED(tw_plant_locker_unlock_no_wake)) {
        (void)tw_futex_wake(&locker->state, 1);
    }
}
