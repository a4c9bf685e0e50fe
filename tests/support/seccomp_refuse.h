/* Tests of what twin does where the system refuses a call (a container's seccomp profile, a
 * limit): a seccomp filter that fails the listed system calls with an errno. */
#ifndef TWIN_TEST_SECCOMP_REFUSE_H
#define TWIN_TEST_SECCOMP_REFUSE_H

#include <stddef.h>

#define TW_TEST_SYSCALLS_REFUSED_MAX 4u

/* From now on, in this process and what it executes, each listed system call fails with
 * errno_value. 0 on success; -1 with a sentence in error otherwise (count outside
 * 1..TW_TEST_SYSCALLS_REFUSED_MAX, or the kernel refused the filter). A hand-written classic-BPF
 * filter of a few instructions: too small to justify a library (libseccomp) for the tests. */
int tw_test_seccomp_refuse(const long *syscalls, unsigned count, int errno_value, char *error,
                           size_t error_size);

#endif
