/* twin real build: the OS seam over Linux futex(2), pthreads and CLOCK_MONOTONIC. */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <twin/assert.h>
#include <twin/os.h>
#include <twin/real_waits.h>

_Static_assert(sizeof(pthread_t) <= sizeof(uint64_t), "pthread_t must fit a tw_thread handle");
_Static_assert(sizeof(tw_atomic_u32) == sizeof(uint32_t), "futex words are 32-bit");

enum { ns_per_s = 1000000000 };

/* ---- what each thread waits on (twin/real_waits.h) ---------------------------------------- */

typedef struct wait_slot {
    uint32_t used;          /* 1 while a live thread owns the slot (atomic) */
    int32_t tid;            /* gettid() of the owner (atomic, as every field the report reads) */
    const char *name;       /* the owner's name (atomic pointer; static strings only) */
    const char *what;       /* the blocking call, NULL while running (atomic) */
    uint64_t handle;        /* pthread_self() of the owner: a join names the thread it waits for */
    uintptr_t object;       /* atomic */
    const char *detail_name; /* atomic */
    uint64_t detail;        /* atomic */
    uint64_t since_ns;      /* when the call began (atomic) */
} wait_slot;

static wait_slot wait_slots[TW_REAL_WAITS_THREADS_MAX];
static uint32_t wait_slots_missed; /* threads that found no free slot (atomic) */
static _Thread_local wait_slot *wait_self;
static _Thread_local int wait_self_tried;

static wait_slot *wait_slot_claim(const char *name) {
    TW_ASSERT(wait_self == NULL);
    for (uint32_t i = 0; i < TW_REAL_WAITS_THREADS_MAX; i++) {
        uint32_t free_value = 0;
        if (__atomic_compare_exchange_n(&wait_slots[i].used, &free_value, 1u, false, __ATOMIC_ACQ_REL,
                                        __ATOMIC_RELAXED)) {
            wait_slot *slot = &wait_slots[i];
            __atomic_store_n(&slot->tid, (int32_t)syscall(SYS_gettid), __ATOMIC_RELAXED);
            __atomic_store_n(&slot->handle, (uint64_t)pthread_self(), __ATOMIC_RELAXED);
            __atomic_store_n(&slot->what, (const char *)NULL, __ATOMIC_RELAXED);
            __atomic_store_n(&slot->name, name, __ATOMIC_RELEASE);
            return slot;
        }
    }
    __atomic_fetch_add(&wait_slots_missed, 1u, __ATOMIC_RELAXED);
    return NULL;
}

static void wait_slot_release(void) {
    if (wait_self == NULL) return;
    TW_ASSERT(__atomic_load_n(&wait_self->used, __ATOMIC_RELAXED) == 1u);
    __atomic_store_n(&wait_self->used, 0u, __ATOMIC_RELEASE);
    wait_self = NULL;
}

void tw_real_wait_begin(const char *what, const void *object, const char *detail_name, uint64_t detail) {
    TW_ASSERT(what != NULL && detail_name != NULL);
    if (wait_self == NULL && !wait_self_tried) {
        wait_self_tried = 1;
        wait_self = wait_slot_claim((pid_t)syscall(SYS_gettid) == getpid() ? "main" : "unnamed");
    }
    wait_slot *slot = wait_self;
    if (slot == NULL) return;
    __atomic_store_n(&slot->object, (uintptr_t)object, __ATOMIC_RELAXED);
    __atomic_store_n(&slot->detail_name, detail_name, __ATOMIC_RELAXED);
    __atomic_store_n(&slot->detail, detail, __ATOMIC_RELAXED);
    __atomic_store_n(&slot->since_ns, tw_clock_monotonic_ns(), __ATOMIC_RELAXED);
    __atomic_store_n(&slot->what, what, __ATOMIC_RELEASE);
}

void tw_real_wait_end(void) {
    if (wait_self == NULL) return;
    __atomic_store_n(&wait_self->what, (const char *)NULL, __ATOMIC_RELEASE);
}

uint32_t tw_real_waits_describe(char *out, size_t size) {
    TW_ASSERT(out != NULL && size > 0);
    uint64_t now_ns = tw_clock_monotonic_ns();
    size_t used = 0;
    uint32_t described = 0;
    out[0] = '\0';
    for (uint32_t i = 0; i < TW_REAL_WAITS_THREADS_MAX && used < size; i++) {
        wait_slot *slot = &wait_slots[i];
        if (__atomic_load_n(&slot->used, __ATOMIC_ACQUIRE) == 0) continue;
        const char *name = __atomic_load_n(&slot->name, __ATOMIC_ACQUIRE);
        const char *what = __atomic_load_n(&slot->what, __ATOMIC_ACQUIRE);
        int n;
        if (what == NULL) {
            n = snprintf(out + used, size - used, "  thread '%s' (tid %d): running\n",
                         name != NULL ? name : "?", (int)__atomic_load_n(&slot->tid, __ATOMIC_RELAXED));
        } else {
            uint64_t since_ns = __atomic_load_n(&slot->since_ns, __ATOMIC_RELAXED);
            uint64_t waited_ms = now_ns > since_ns ? (now_ns - since_ns) / 1000000u : 0;
            uintptr_t object = __atomic_load_n(&slot->object, __ATOMIC_RELAXED);
            const char *detail_name = __atomic_load_n(&slot->detail_name, __ATOMIC_RELAXED);
            uint64_t detail = __atomic_load_n(&slot->detail, __ATOMIC_RELAXED);
            char on[64];
            snprintf(on, sizeof(on), "%#lx", (unsigned long)object);
            if (strcmp(what, "thread join") == 0) {
                for (uint32_t j = 0; j < TW_REAL_WAITS_THREADS_MAX; j++) {
                    if (__atomic_load_n(&wait_slots[j].used, __ATOMIC_ACQUIRE) != 0 &&
                        __atomic_load_n(&wait_slots[j].handle, __ATOMIC_RELAXED) == (uint64_t)object) {
                        const char *joined = __atomic_load_n(&wait_slots[j].name, __ATOMIC_ACQUIRE);
                        snprintf(on, sizeof(on), "'%s' (tid %d)", joined != NULL ? joined : "?",
                                 (int)__atomic_load_n(&wait_slots[j].tid, __ATOMIC_RELAXED));
                        break;
                    }
                }
            }
            char detail_text[48];
            if (detail == TW_TIMEOUT_NONE) snprintf(detail_text, sizeof(detail_text), "none");
            else snprintf(detail_text, sizeof(detail_text), "%llu", (unsigned long long)detail);
            n = snprintf(out + used, size - used, "  thread '%s' (tid %d): in %s on %s (%s %s) for %llu.%03llu s\n",
                         name != NULL ? name : "?", (int)__atomic_load_n(&slot->tid, __ATOMIC_RELAXED), what, on,
                         detail_name != NULL ? detail_name : "detail", detail_text,
                         (unsigned long long)(waited_ms / 1000u), (unsigned long long)(waited_ms % 1000u));
        }
        if (n < 0) break;
        used += (size_t)n;
        described++;
    }
    uint32_t missed = __atomic_load_n(&wait_slots_missed, __ATOMIC_RELAXED);
    if (missed > 0 && used < size) {
        snprintf(out + used, size - used, "  (%u more threads were not noted: the table holds %u)\n",
                 missed, TW_REAL_WAITS_THREADS_MAX);
    }
    return described;
}

tw_os_result tw_futex_wait(tw_atomic_u32 *word, uint32_t expected, uint64_t timeout_ns) {
    TW_ASSERT(word != NULL);
    struct timespec timeout;
    struct timespec *timeout_ptr = NULL;
    if (timeout_ns != TW_TIMEOUT_NONE) {
        timeout.tv_sec = (time_t)(timeout_ns / ns_per_s);
        timeout.tv_nsec = (long)(timeout_ns % ns_per_s);
        timeout_ptr = &timeout;
    }
    tw_real_wait_begin("futex wait", word, "expected value", expected);
    long rc = syscall(SYS_futex, (void *)&word->raw, FUTEX_WAIT_PRIVATE, expected, timeout_ptr,
                      NULL, 0);
    int wait_errno = errno;
    tw_real_wait_end();
    errno = wait_errno;
    if (rc == 0) return tw_os_ok;
    switch (errno) {
    case EAGAIN: return tw_os_value_changed;
    case ETIMEDOUT: return tw_os_timed_out;
    case EINTR: return tw_os_ok; /* a spurious wake: the caller re-checks */
    default:
        /* EFAULT/EINVAL mean a bad word: a bug in the caller, not a runtime condition. */
        tw_panic(__FILE__, __LINE__, "futex wait failed on a bad address");
    }
}

uint32_t tw_futex_wake(tw_atomic_u32 *word, uint32_t waiters_max) {
    TW_ASSERT(word != NULL);
    int count = waiters_max > INT_MAX ? INT_MAX : (int)waiters_max;
    long rc = syscall(SYS_futex, (void *)&word->raw, FUTEX_WAKE_PRIVATE, count, NULL, NULL, 0);
    TW_ASSERT_MSG(rc >= 0, "futex wake failed on a bad address");
    TW_ASSERT(rc <= count);
    return (uint32_t)rc;
}

typedef struct thread_start {
    tw_thread_fn fn;
    void *arg;
    const char *name; /* for the waits table; static strings only (tw_thread_options.name) */
} thread_start;

static void *thread_trampoline(void *opaque) {
    thread_start start = *(thread_start *)opaque;
    free(opaque);
    TW_ASSERT(start.fn != NULL);
    wait_self_tried = 1;
    wait_self = wait_slot_claim(start.name != NULL ? start.name : "unnamed");
    start.fn(start.arg);
    wait_slot_release();
    return NULL;
}

tw_os_result tw_thread_spawn(tw_thread *thread, const tw_thread_options *options, tw_thread_fn fn,
                             void *arg) {
    TW_ASSERT(thread != NULL);
    TW_ASSERT(fn != NULL);
    thread->handle = 0;
    thread_start *start = malloc(sizeof(*start));
    if (start == NULL) return tw_os_system_resources;
    start->fn = fn;
    start->arg = arg;
    start->name = options != NULL ? options->name : NULL;

    pthread_attr_t attr;
    if (pthread_attr_init(&attr) != 0) {
        free(start);
        return tw_os_system_resources;
    }
    if (options != NULL && options->stack_size_bytes != 0) {
        size_t size = options->stack_size_bytes;
        if (size < (size_t)PTHREAD_STACK_MIN) size = (size_t)PTHREAD_STACK_MIN;
        if (pthread_attr_setstacksize(&attr, size) != 0) {
            pthread_attr_destroy(&attr);
            free(start);
            return tw_os_invalid;
        }
    }
    pthread_t id;
    int rc = pthread_create(&id, &attr, thread_trampoline, start);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        free(start);
        return tw_os_system_resources;
    }
    thread->handle = (uint64_t)id;
    TW_ASSERT(thread->handle != 0);
    return tw_os_ok;
}

tw_os_result tw_thread_join(tw_thread thread) {
    if (thread.handle == 0) return tw_os_invalid;
    tw_real_wait_begin("thread join", (const void *)(uintptr_t)thread.handle, "timeout_ns", TW_TIMEOUT_NONE);
    int rc = pthread_join((pthread_t)thread.handle, NULL);
    tw_real_wait_end();
    return rc == 0 ? tw_os_ok : tw_os_invalid;
}

tw_os_result tw_thread_detach(tw_thread thread) {
    if (thread.handle == 0) return tw_os_invalid;
    return pthread_detach((pthread_t)thread.handle) == 0 ? tw_os_ok : tw_os_invalid;
}

tw_thread tw_thread_self(void) {
    tw_thread self = {.handle = (uint64_t)pthread_self()};
    TW_ASSERT(self.handle != 0);
    return self;
}

static _Thread_local void *thread_current;

void tw_thread_current_set(void *current) { thread_current = current; }

void *tw_thread_current_get(void) { return thread_current; }

uint64_t tw_clock_monotonic_ns(void) {
    struct timespec now;
    int rc = clock_gettime(CLOCK_MONOTONIC, &now);
    TW_ASSERT(rc == 0);
    return (uint64_t)now.tv_sec * ns_per_s + (uint64_t)now.tv_nsec;
}

uint64_t tw_random_u64(void) {
    uint64_t value = 0;
    size_t filled = 0;
    while (filled < sizeof(value)) {
        ssize_t got = getrandom((uint8_t *)&value + filled, sizeof(value) - filled, 0);
        if (got < 0 && errno == EINTR) continue;
        /* Without GRND_NONBLOCK it only fails for a bad buffer or a kernel before 3.17. */
        TW_ASSERT_MSG(got > 0, "getrandom(2) failed: twin needs Linux 3.17 or later");
        filled += (size_t)got;
    }
    return value;
}

uint32_t tw_cpu_count(void) {
    long count = sysconf(_SC_NPROCESSORS_ONLN);
    return count < 1 ? 1u : (uint32_t)count;
}

void *tw_allocate(size_t size_bytes) { return calloc(1, size_bytes == 0 ? 1 : size_bytes); }

void tw_free(void *block) { free(block); }

_Noreturn void tw_panic(const char *file, int line, const char *message) {
    fprintf(stderr, "twin: panic at %s:%d: %s\n", file, line, message);
    fflush(stderr);
    abort();
}
