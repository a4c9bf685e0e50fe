#include "workload_locker.h"

#include <twin/assert.h>
#include <twin/atomic.h>
#include <twin/os.h>

typedef struct locker_thread {
    tw_workload_locker *workload;
    uint32_t id; /* 1-based */
} locker_thread;

enum { try_lock_every = 4 };

static void locker_thread_main(void *arg) {
    locker_thread *self = arg;
    tw_workload_locker *workload = self->workload;
    TW_ASSERT(self->id != 0);
    for (uint32_t i = 0; i < workload->iterations; i++) {
        if (i % try_lock_every == try_lock_every - 1 && tw_locker_try_lock(&workload->locker)) {
            (void)tw_atomic_fetch_add_u64(&workload->try_lock_taken, 1, tw_relaxed);
        } else {
            tw_locker_lock(&workload->locker);
        }
        TW_ASSERT_MSG(workload->holder == 0, "mutual exclusion: two threads inside the lock");
        workload->holder = self->id;
        (void)tw_atomic_fetch_add_u64(&workload->inside, 1, tw_relaxed);
        workload->counter++;
        TW_ASSERT_MSG(workload->holder == self->id, "mutual exclusion: the holder changed");
        workload->holder = 0;
        tw_locker_unlock(&workload->locker);
    }
}

void tw_workload_locker_run(void *arg) {
    tw_workload_locker *workload = arg;
    TW_ASSERT(workload->threads_count >= 1);
    TW_ASSERT(workload->threads_count <= TW_WORKLOAD_LOCKER_THREADS_MAX);
    tw_locker_init(&workload->locker);
    workload->counter = 0;
    workload->holder = 0;
    tw_atomic_store_u64(&workload->inside, 0, tw_relaxed);
    tw_atomic_store_u64(&workload->try_lock_taken, 0, tw_relaxed);

    locker_thread threads[TW_WORKLOAD_LOCKER_THREADS_MAX];
    tw_thread handles[TW_WORKLOAD_LOCKER_THREADS_MAX];
    static const char *const names[] = {"locker-1", "locker-2", "locker-3", "locker-4",
                                        "locker-5", "locker-6", "locker-7", "locker-8"};
    for (uint32_t t = 0; t < workload->threads_count; t++) {
        threads[t] = (locker_thread){.workload = workload, .id = t + 1};
        tw_thread_options options = {.name = t < 8 ? names[t] : "locker-n"};
        tw_os_result result = tw_thread_spawn(&handles[t], &options, locker_thread_main, &threads[t]);
        TW_ASSERT_MSG(result == tw_os_ok, "locker workload: cannot spawn a thread");
    }
    for (uint32_t t = 0; t < workload->threads_count; t++) {
        TW_ASSERT(tw_thread_join(handles[t]) == tw_os_ok);
    }
    uint64_t expected = (uint64_t)workload->threads_count * workload->iterations;
    TW_ASSERT_MSG(workload->counter == expected, "locker workload: lost or extra increments");
    TW_ASSERT(tw_atomic_load_u64(&workload->inside, tw_relaxed) == expected);
    TW_ASSERT(tw_atomic_load_u32(&workload->locker.state, tw_relaxed) == 0);
}
