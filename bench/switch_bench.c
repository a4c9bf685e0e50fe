/* twin-bench-switch: the cost of one context switch, three ways, in one run:
 *   fiber:    twin's sim fiber switch (tw_fiber_switch, hand-written x86_64 or fallback)
 *   ucontext: swapcontext(3) between two contexts (glibc; saves the signal mask: a syscall)
 *   baton:    two pthreads handing a baton through a futex (a real OS thread switch)
 * Prints ns per switch and the ratios. Usage: twin-bench-switch [--switches N] */
#include <inttypes.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include <twin/assert.h>

#include "fiber.h"

#define SWITCHES_DEFAULT 2000000u
#define BATON_SWITCHES_MAX 400000u /* OS switches are ~1000x slower: cap their count */
#define UCONTEXT_STACK_SIZE (64u * 1024u)

static uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* ---- fiber ---- */
static tw_fiber fiber_root;
static tw_fiber fiber_other;
static uint64_t fiber_rounds;

static void fiber_entry(void *arg) {
    (void)arg;
    for (;;) tw_fiber_switch(&fiber_other, &fiber_root);
}

static double bench_fiber(uint64_t switches) {
    tw_fiber_init_root(&fiber_root);
    TW_ASSERT(tw_fiber_init(&fiber_other, 64 * 1024, fiber_entry, NULL));
    fiber_rounds = switches / 2;
    uint64_t start = now_ns();
    for (uint64_t i = 0; i < fiber_rounds; i++) tw_fiber_switch(&fiber_root, &fiber_other);
    uint64_t elapsed = now_ns() - start;
    tw_fiber_release(&fiber_other);
    return (double)elapsed / (double)(fiber_rounds * 2);
}

/* ---- ucontext ---- */
static ucontext_t uc_main;
static ucontext_t uc_other;

static void uc_entry(void) {
    for (;;) swapcontext(&uc_other, &uc_main);
}

static double bench_ucontext(uint64_t switches) {
    void *stack = malloc(UCONTEXT_STACK_SIZE);
    TW_ASSERT(stack != NULL);
    TW_ASSERT(getcontext(&uc_other) == 0);
    uc_other.uc_stack.ss_sp = stack;
    uc_other.uc_stack.ss_size = UCONTEXT_STACK_SIZE;
    uc_other.uc_link = NULL;
    makecontext(&uc_other, uc_entry, 0);
    uint64_t rounds = switches / 2;
    uint64_t start = now_ns();
    for (uint64_t i = 0; i < rounds; i++) swapcontext(&uc_main, &uc_other);
    uint64_t elapsed = now_ns() - start;
    free(stack);
    return (double)elapsed / (double)(rounds * 2);
}

/* ---- pthread baton through a futex ---- */
static _Atomic uint32_t baton; /* 0: main's turn, 1: the other thread's turn */
static uint64_t baton_rounds;

static void futex_wait_while(uint32_t value) {
    while (atomic_load_explicit(&baton, memory_order_acquire) == value) {
        syscall(SYS_futex, &baton, FUTEX_WAIT_PRIVATE, value, NULL, NULL, 0);
    }
}

static void baton_pass(uint32_t to) {
    atomic_store_explicit(&baton, to, memory_order_release);
    syscall(SYS_futex, &baton, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

static void *baton_thread(void *arg) {
    (void)arg;
    for (uint64_t i = 0; i < baton_rounds; i++) {
        futex_wait_while(0);
        baton_pass(0);
    }
    return NULL;
}

static double bench_baton(uint64_t switches) {
    baton_rounds = switches / 2;
    atomic_store(&baton, 0);
    pthread_t thread;
    TW_ASSERT(pthread_create(&thread, NULL, baton_thread, NULL) == 0);
    uint64_t start = now_ns();
    for (uint64_t i = 0; i < baton_rounds; i++) {
        baton_pass(1);
        futex_wait_while(1);
    }
    uint64_t elapsed = now_ns() - start;
    TW_ASSERT(pthread_join(thread, NULL) == 0);
    return (double)elapsed / (double)(baton_rounds * 2);
}

int main(int argc, char **argv) {
    uint64_t switches = SWITCHES_DEFAULT;
    for (int i = 1; i < argc; i++) {
        char *end = NULL;
        if (strcmp(argv[i], "--switches") == 0 && i + 1 < argc) {
            switches = strtoull(argv[++i], &end, 10);
            if (end == NULL || *end != '\0' || switches < 2) {
                fprintf(stderr, "twin-bench-switch: --switches takes a count >= 2\n");
                return 2;
            }
        } else {
            fprintf(stderr, "usage: twin-bench-switch [--switches N]   (default %u)\n",
                    SWITCHES_DEFAULT);
            return 2;
        }
    }
    uint64_t baton_switches = switches < BATON_SWITCHES_MAX ? switches : BATON_SWITCHES_MAX;
    /* A warm-up pass of each, then the measured one. */
    (void)bench_fiber(switches / 10 + 2);
    double fiber_ns = bench_fiber(switches);
    (void)bench_ucontext(switches / 10 + 2);
    double ucontext_ns = bench_ucontext(switches);
    (void)bench_baton(baton_switches / 10 + 2);
    double baton_ns = bench_baton(baton_switches);

    printf("twin-bench-switch: %u CPUs, %" PRIu64 " switches (%" PRIu64 " for the baton)\n",
           (unsigned)sysconf(_SC_NPROCESSORS_ONLN), switches, baton_switches);
    printf("%-30s %12s %10s\n", "switch", "ns/switch", "vs fiber");
    printf("%-30s %12.1f %9.1fx\n", "twin fiber (" TW_BENCH_FIBER_KIND ")", fiber_ns, 1.0);
    printf("%-30s %12.1f %9.1fx\n", "ucontext swapcontext", ucontext_ns, ucontext_ns / fiber_ns);
    printf("%-30s %12.1f %9.1fx\n", "pthread futex baton", baton_ns, baton_ns / fiber_ns);
    printf("ratios: fiber is %.1fx faster than swapcontext and %.1fx faster than the baton\n",
           ucontext_ns / fiber_ns, baton_ns / fiber_ns);
    return 0;
}
