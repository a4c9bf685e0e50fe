/* no_io_uring COMMAND [ARGS...]: runs COMMAND where io_uring is refused, as a container's
 * seccomp profile or the kernel.io_uring_disabled sysctl refuses it (io_uring_setup fails
 * with EPERM), for tests of what twin does there. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "seccomp_refuse.h"

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s COMMAND [ARGS...]\n", argv[0]);
        return 2;
    }
    static const long refused[] = {SYS_io_uring_setup};
    char error[128];
    if (tw_test_seccomp_refuse(refused, 1, EPERM, error, sizeof(error)) != 0) {
        fprintf(stderr, "no_io_uring: %s\n", error);
        return 1;
    }
    execvp(argv[1], argv + 1);
    fprintf(stderr, "no_io_uring: cannot run %s: %s\n", argv[1], strerror(errno));
    return 127;
}
