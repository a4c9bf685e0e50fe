/* twin real build: the OS seam over Linux futex(2), pthreads and CLOCK_MONOTONIC. */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <twin/assert.h>
#include <twin/os.h>

_Static_assert(sizeof(pthread_t) <= sizeof(uint64_t), "pthread_t must fit a tw_thread handle");
_Static_assert(sizeof(tw_atomic_u32) == sizeof(uint32_t), "futex words are 32-bit");

enum { ns_per_s = 1000000000 };

tw_os_result tw_futex_wait(tw_atomic_u32 *word, uint32_t expected, uint64_t timeout_ns) {
    TW_ASSERT(word != NULL);
    struct timespec timeout;
    struct timespec *timeout_ptr = NULL;
    if (timeout_ns != TW_TIMEOUT_NONE) {
        timeout.tv_sec = (time_t)(timeout_ns / ns_per_s);
        timeout.tv_nsec = (long)(timeout_ns % ns_per_s);
        timeout_ptr = &timeout;
    }
    long rc = syscall(SYS_futex, (void *)&word->raw, FUTEX_WAIT_PRIVATE, expected, timeout_ptr,
                      NULL, 0);
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
} thread_start;

static void *thread_trampoline(void *opaque) {
    thread_start start = *(thread_start *)opaque;
    free(opaque);
    TW_ASSERT(start.fn != NULL);
    start.fn(start.arg);
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
    return pthread_join((pthread_t)thread.handle, NULL) == 0 ? tw_os_ok : tw_os_invalid;
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
