#include "seccomp_refuse.h"

#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>

#if defined(__x86_64__)
#define TEST_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define TEST_AUDIT_ARCH AUDIT_ARCH_AARCH64
#else
#error "seccomp_refuse: add this machine's AUDIT_ARCH"
#endif

int tw_test_seccomp_refuse(const long *syscalls, unsigned count, int errno_value, char *error,
                           size_t error_size) {
    if (syscalls == NULL || count == 0 || count > TW_TEST_SYSCALLS_REFUSED_MAX) {
        snprintf(error, error_size, "refuse: %u system calls; 1..%u are accepted", count,
                 TW_TEST_SYSCALLS_REFUSED_MAX);
        return -1;
    }
    struct sock_filter filter[5 + 2 * TW_TEST_SYSCALLS_REFUSED_MAX]; /* 4 + 2 per call + 1 */
    unsigned n = 0;
    filter[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
                                               offsetof(struct seccomp_data, arch));
    filter[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, TEST_AUDIT_ARCH, 1, 0);
    filter[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    filter[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
                                               offsetof(struct seccomp_data, nr));
    for (unsigned i = 0; i < count; i++) {
        filter[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)syscalls[i], 0, 1);
        filter[n++] = (struct sock_filter)BPF_STMT(
            BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ((unsigned)errno_value & SECCOMP_RET_DATA));
    }
    filter[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    struct sock_fprog program = {.len = (unsigned short)n, .filter = filter};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
        snprintf(error, error_size, "PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
        return -1;
    }
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program) != 0) {
        snprintf(error, error_size, "PR_SET_SECCOMP: %s", strerror(errno));
        return -1;
    }
    return 0;
}
