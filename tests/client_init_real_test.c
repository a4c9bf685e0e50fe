/* The client's init failures that only the real build has, each made for real in a child
 * process (the parent checks the child's exit code):
 *   - io_uring refused by a seccomp filter, as a container's default profile does: io_uring_setup
 *     fails with ENOSYS, then with EPERM (the io_uring_disabled sysctl's answer) -> init returns
 *     network_subsystem;
 *   - no descriptor left (RLIMIT_NOFILE at the lowest free descriptor): io_uring_setup fails
 *     with EMFILE -> system_resources;
 *   - no thread (a seccomp filter fails clone and clone3 with EAGAIN, what pthread_create
 *     meets at the threads limit) -> system_resources.
 * After each: submit, completion_context and deinit return invalid, and the process has as
 * many descriptors open as before init (nothing leaked; under ASan, LeakSanitizer checks the
 * memory when the child exits, except in the no-thread child: LeakSanitizer needs a thread
 * itself, so that child leaves with _exit; the sim's client_init_sim checks that path's
 * memory). A last child inits and deinits with nothing refused, so the set-up itself is
 * shown not to be what fails. */
#include <errno.h>
#include <dirent.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <twin/client.h>

#include "seccomp_refuse.h"

#define CHILD_OK 0
#define CHILD_FAILED 1

static const tw_u128 cluster = {.low = 7, .high = 0};
/* Nothing needs to listen: init fails before a connection, or the client is deinit'ed. */
static const char address[] = "127.0.0.1:1";

static void completion(uintptr_t context, tw_packet *packet, uint64_t timestamp,
                       const uint8_t *result, uint32_t result_size) {
    (void)context, (void)packet, (void)timestamp, (void)result, (void)result_size;
}

static int child_fail(const char *what, const char *detail) {
    printf("FAILED: %s%s%s\n", what, detail != NULL ? ": " : "", detail != NULL ? detail : "");
    return CHILD_FAILED;
}

/* Makes each listed system call fail with errno_value from now on, in this process. */
static int refuse(const long *syscalls, unsigned count, int errno_value) {
    char error[128];
    if (tw_test_seccomp_refuse(syscalls, count, errno_value, error, sizeof(error)) != 0) {
        return child_fail("refuse", error);
    }
    return CHILD_OK;
}

static int descriptors_open(void) {
    DIR *dir = opendir("/proc/self/fd");
    if (dir == NULL) return -1;
    int count = 0;
    while (readdir(dir) != NULL) count++;
    closedir(dir);
    return count; /* includes ., .. and the directory's own descriptor: the same each time */
}

/* init must return expected and leave nothing behind. */
static int init_expect(tw_client_init_status expected) {
    int before = descriptors_open();
    tw_client client;
    tw_client_init_status status = tw_client_init(&client, cluster, address, 1, completion, NULL);
    if (status != expected) {
        char detail[128];
        snprintf(detail, sizeof(detail), "returned %s, expected %s", tw_client_init_status_name(status),
                 tw_client_init_status_name(expected));
        return child_fail("tw_client_init", detail);
    }
    if (expected == tw_client_init_ok) {
        if (tw_client_deinit(&client) != tw_client_ok) return child_fail("deinit after ok", NULL);
    } else {
        tw_packet packet = {.operation = tw_operation_echo};
        uintptr_t context = 0;
        if (tw_client_submit(&client, &packet) != tw_client_invalid) {
            return child_fail("submit after a failed init was accepted", NULL);
        }
        if (tw_client_completion_context(&client, &context) != tw_client_invalid) {
            return child_fail("completion_context after a failed init was accepted", NULL);
        }
        if (tw_client_deinit(&client) != tw_client_invalid) {
            return child_fail("deinit after a failed init was accepted", NULL);
        }
    }
    int after = descriptors_open();
    if (before < 0 || after != before) {
        char detail[64];
        snprintf(detail, sizeof(detail), "%d open before init, %d after", before, after);
        return child_fail("descriptors leaked", detail);
    }
    return CHILD_OK;
}

static int case_io_uring_enosys(void) {
    static const long calls[] = {SYS_io_uring_setup};
    int rc = refuse(calls, 1, ENOSYS);
    return rc != CHILD_OK ? rc : init_expect(tw_client_init_network_subsystem);
}

static int case_io_uring_eperm(void) {
    static const long calls[] = {SYS_io_uring_setup};
    int rc = refuse(calls, 1, EPERM);
    return rc != CHILD_OK ? rc : init_expect(tw_client_init_network_subsystem);
}

static int case_descriptors_exhausted(void) {
    int lowest_free = dup(0);
    if (lowest_free < 0) return child_fail("dup", strerror(errno));
    close(lowest_free);
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return child_fail("getrlimit", strerror(errno));
    limit.rlim_cur = (rlim_t)lowest_free; /* every descriptor below it is open */
    if (setrlimit(RLIMIT_NOFILE, &limit) != 0) return child_fail("setrlimit", strerror(errno));
    /* The limit holds (descriptors_open would need a descriptor itself, so the check for a
     * leak below is done with dup instead). */
    int probe = dup(0);
    if (probe >= 0 || errno != EMFILE) return child_fail("RLIMIT_NOFILE did not hold", NULL);
    tw_client client;
    tw_client_init_status status = tw_client_init(&client, cluster, address, 1, completion, NULL);
    if (status != tw_client_init_system_resources) {
        return child_fail("tw_client_init with no descriptor left returned",
                          tw_client_init_status_name(status));
    }
    /* Nothing leaked: with the limit raised by one, exactly one descriptor can be had at the
     * lowest number again (a leaked descriptor would have taken it). */
    limit.rlim_cur = (rlim_t)lowest_free + 1;
    if (setrlimit(RLIMIT_NOFILE, &limit) != 0) return child_fail("setrlimit", strerror(errno));
    probe = dup(0);
    if (probe != lowest_free) return child_fail("a descriptor leaked from the failed init", NULL);
    close(probe);
    if (tw_client_deinit(&client) != tw_client_invalid) {
        return child_fail("deinit after a failed init was accepted", NULL);
    }
    return CHILD_OK;
}

static int case_no_thread(void) {
#ifdef SYS_clone3
    static const long calls[] = {SYS_clone, SYS_clone3};
    int rc = refuse(calls, 2, EAGAIN);
#else
    static const long calls[] = {SYS_clone};
    int rc = refuse(calls, 1, EAGAIN);
#endif
    return rc != CHILD_OK ? rc : init_expect(tw_client_init_system_resources);
}

static int case_nothing_refused(void) { return init_expect(tw_client_init_ok); }

typedef struct test_case {
    const char *name;
    int (*run)(void);
    bool threads_refused; /* the child cannot start a thread, LeakSanitizer's included */
} test_case;

int main(void) {
    static const test_case cases[] = {
        {"io_uring refused with ENOSYS -> network_subsystem", case_io_uring_enosys, false},
        {"io_uring refused with EPERM -> network_subsystem", case_io_uring_eperm, false},
        {"no descriptor left -> system_resources", case_descriptors_exhausted, false},
        {"no thread -> system_resources", case_no_thread, true},
        {"nothing refused -> ok", case_nothing_refused, false},
    };
    int failures = 0;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        fflush(stdout);
        pid_t child = fork();
        if (child < 0) {
            perror("fork");
            return 1;
        }
        if (child == 0) {
            int rc = cases[i].run();
            fflush(stdout);
            if (cases[i].threads_refused) _exit(rc);
            exit(rc); /* exit, not _exit: LeakSanitizer runs at exit in ASan builds */
        }
        int status = 0;
        if (waitpid(child, &status, 0) != child) {
            perror("waitpid");
            return 1;
        }
        bool passed = WIFEXITED(status) && WEXITSTATUS(status) == CHILD_OK;
        printf("%s: %s", passed ? "ok" : "FAILED", cases[i].name);
        if (WIFSIGNALED(status)) printf(" (the child died of signal %d)", WTERMSIG(status));
        else if (!passed) printf(" (the child exited %d)", WEXITSTATUS(status));
        printf("\n");
        if (!passed) failures++;
    }
    printf("%s: %d of %zu cases failed\n", failures == 0 ? "PASSED" : "FAILED", failures,
           sizeof(cases) / sizeof(cases[0]));
    return failures == 0 ? 0 : 1;
}
