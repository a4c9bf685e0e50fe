/* The real seam: futex semantics, threads, the clock. */
#include <stdio.h>

#include <twin/assert.h>
#include <twin/atomic.h>
#include <twin/os.h>

enum { timeout_ns = 20 * 1000 * 1000, waiters = 3 };

typedef struct shared {
    tw_atomic_u32 word;
    tw_atomic_u32 asleep;
    tw_atomic_u32 woken;
    void *current_seen;
} shared;

static void waiter(void *arg) {
    shared *s = arg;
    int marker = 0;
    tw_thread_current_set(&marker);
    (void)tw_atomic_fetch_add_u32(&s->asleep, 1, tw_acq_rel);
    while (tw_atomic_load_u32(&s->word, tw_acquire) == 0) {
        tw_os_result result = tw_futex_wait(&s->word, 0, TW_TIMEOUT_NONE);
        TW_ASSERT(result == tw_os_ok || result == tw_os_value_changed);
    }
    TW_ASSERT(tw_thread_current_get() == &marker);
    (void)tw_atomic_fetch_add_u32(&s->woken, 1, tw_acq_rel);
}

int main(void) {
    shared s = {.word = TW_ATOMIC_INIT(0)};
    /* A differing value returns at once. */
    TW_ASSERT(tw_futex_wait(&s.word, 1, TW_TIMEOUT_NONE) == tw_os_value_changed);
    /* A timeout is honoured, measured on the monotonic clock. */
    uint64_t start_ns = tw_clock_monotonic_ns();
    TW_ASSERT(tw_futex_wait(&s.word, 0, timeout_ns) == tw_os_timed_out);
    uint64_t waited_ns = tw_clock_monotonic_ns() - start_ns;
    TW_ASSERT(waited_ns >= timeout_ns);
    /* Wake with nobody waiting wakes nobody. */
    TW_ASSERT(tw_futex_wake(&s.word, 1) == 0);

    tw_thread threads[waiters];
    for (int i = 0; i < waiters; i++) {
        TW_ASSERT(tw_thread_spawn(&threads[i], NULL, waiter, &s) == tw_os_ok);
        TW_ASSERT(threads[i].handle != 0);
    }
    while (tw_atomic_load_u32(&s.asleep, tw_acquire) != waiters) tw_spin_hint();
    tw_atomic_store_u32(&s.word, 1, tw_release);
    (void)tw_futex_wake(&s.word, TW_FUTEX_WAKE_ALL);
    for (int i = 0; i < waiters; i++) TW_ASSERT(tw_thread_join(threads[i]) == tw_os_ok);
    TW_ASSERT(tw_atomic_load_u32(&s.woken, tw_acquire) == waiters);
    TW_ASSERT(tw_thread_join((tw_thread){0}) == tw_os_invalid);
    TW_ASSERT(tw_cpu_count() >= 1);
    TW_ASSERT(tw_thread_current_get() == NULL);

    /* Atomics of every width. */
    tw_atomic_u8 a8 = TW_ATOMIC_INIT(250);
    TW_ASSERT(tw_atomic_fetch_add_u8(&a8, 10, tw_relaxed) == 250);
    TW_ASSERT(tw_atomic_load_u8(&a8, tw_relaxed) == 4); /* wraps */
    tw_atomic_u16 a16 = TW_ATOMIC_INIT(0xF0F0);
    TW_ASSERT(tw_atomic_fetch_and_u16(&a16, 0x0FF0, tw_relaxed) == 0xF0F0);
    TW_ASSERT(tw_atomic_load_u16(&a16, tw_relaxed) == 0x00F0);
    tw_atomic_u64 a64 = TW_ATOMIC_INIT(5);
    uint64_t expected = 4;
    TW_ASSERT(!tw_atomic_cas_strong_u64(&a64, &expected, 9, tw_acq_rel, tw_acquire));
    TW_ASSERT(expected == 5);
    while (!tw_atomic_cas_weak_u64(&a64, &expected, 9, tw_acq_rel, tw_acquire)) {}
    TW_ASSERT(tw_atomic_load_u64(&a64, tw_relaxed) == 9);
    int target = 0;
    tw_atomic_ptr p = TW_ATOMIC_INIT(NULL);
    TW_ASSERT(tw_atomic_exchange_ptr(&p, &target, tw_acq_rel) == NULL);
    TW_ASSERT(tw_atomic_load_ptr(&p, tw_acquire) == &target);
    tw_atomic_usize usz = TW_ATOMIC_INIT(1);
    TW_ASSERT(tw_atomic_fetch_or_usize(&usz, 6, tw_relaxed) == 1);
    TW_ASSERT(tw_atomic_fetch_sub_usize(&usz, 7, tw_relaxed) == 7);
    tw_atomic_fence(tw_seq_cst);

    printf("seam_real: futex (value changed, %llu ms timeout, wake of %d), threads, atomics: ok\n",
           (unsigned long long)(waited_ns / 1000000u), waiters);
    return 0;
}
