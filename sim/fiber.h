/* twin sim: fibers, the simulated threads' execution contexts.
 *
 * A fiber is a stack (mmap'd, with a PROT_NONE guard page below it) and a saved stack
 * pointer. tw_fiber_switch saves the callee-saved registers of the running fiber and
 * restores those of another: a hand-written x86_64 switch (fiber_x86_64.S), or
 * swapcontext(3) where that is not available (CMake: -DTWIN_FIBER_BACKEND=ucontext).
 * Under ASan every switch is announced with __sanitizer_{start,finish}_switch_fiber.
 * Not thread-safe: a set of fibers belongs to one OS thread. */
#ifndef TWIN_SIM_FIBER_H
#define TWIN_SIM_FIBER_H

#include <stdbool.h>
#include <stddef.h>

#if defined(TW_FIBER_UCONTEXT)
#include <ucontext.h>
#endif

#define TW_FIBER_STACK_SIZE_MIN (16u * 1024u)

typedef void (*tw_fiber_entry)(void *arg);

typedef struct tw_fiber {
    void *stack_pointer; /* saved by the switch while the fiber is not running */
    void *stack_bottom;  /* lowest usable byte (just above the guard page); NULL for a root */
    size_t stack_size;
    void *mapping; /* guard page + stack, as mmap'd */
    size_t mapping_size;
    tw_fiber_entry entry;
    void *arg;
#if defined(TW_FIBER_UCONTEXT)
    ucontext_t context;
#endif
} tw_fiber;

/* The calling OS thread's own context, to switch back to. Allocates nothing. */
void tw_fiber_init_root(tw_fiber *root);

/* A new fiber that will run entry(arg) when first switched to. entry must never return:
 * it ends by tw_fiber_switch_final. Returns false when the stack cannot be mapped. */
bool tw_fiber_init(tw_fiber *fiber, size_t stack_size, tw_fiber_entry entry, void *arg);

/* Suspends from and runs to. Returns when something switches back to from. */
void tw_fiber_switch(tw_fiber *from, tw_fiber *to);

/* Leaves from for good (from is finished or abandoned); never returns. */
_Noreturn void tw_fiber_switch_final(tw_fiber *from, tw_fiber *to);

/* Gives back a fiber's stack (kept for the next tw_fiber_init of the same size, up to a
 * cache of 64 per OS thread; unmapped beyond). Never on the running fiber. Safe on a root
 * (does nothing). */
void tw_fiber_release(tw_fiber *fiber);

#endif
