#include "fiber.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <twin/assert.h>

#if defined(__SANITIZE_ADDRESS__)
#define TW_FIBER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TW_FIBER_ASAN 1
#endif
#endif

#if defined(TW_FIBER_ASAN)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

#if defined(TW_FIBER_ASAN)
/* The root's stack bounds are unknown until a fiber started from it reports them. */
static _Thread_local void *root_stack_bottom;
static _Thread_local size_t root_stack_size;
#endif

static size_t page_size(void) {
    long size = sysconf(_SC_PAGESIZE);
    TW_ASSERT(size > 0);
    return (size_t)size;
}

static void fiber_started(tw_fiber *fiber) {
#if defined(TW_FIBER_ASAN)
    const void *from_bottom = NULL;
    size_t from_size = 0;
    __sanitizer_finish_switch_fiber(NULL, &from_bottom, &from_size);
    if (root_stack_bottom == NULL) {
        root_stack_bottom = (void *)from_bottom;
        root_stack_size = from_size;
    }
#endif
    TW_ASSERT(fiber != NULL);
    TW_ASSERT(fiber->entry != NULL);
    fiber->entry(fiber->arg);
    tw_panic(__FILE__, __LINE__, "a fiber's entry function returned");
}

#if defined(TW_FIBER_UCONTEXT)

static _Thread_local tw_fiber *fiber_starting;

static void fiber_start_ucontext(void) { fiber_started(fiber_starting); }

static void switch_raw(tw_fiber *from, tw_fiber *to) {
    fiber_starting = to;
    int rc = swapcontext(&from->context, &to->context);
    TW_ASSERT(rc == 0);
}

static void prepare_stack(tw_fiber *fiber) {
    int rc = getcontext(&fiber->context);
    TW_ASSERT(rc == 0);
    fiber->context.uc_stack.ss_sp = fiber->stack_bottom;
    fiber->context.uc_stack.ss_size = fiber->stack_size;
    fiber->context.uc_link = NULL;
    makecontext(&fiber->context, fiber_start_ucontext, 0);
}

#else

void tw_fiber_switch_raw(void **from_stack_pointer, void *to_stack_pointer);
void tw_fiber_start_asm(void);

static void switch_raw(tw_fiber *from, tw_fiber *to) {
    tw_fiber_switch_raw(&from->stack_pointer, to->stack_pointer);
}

enum {
    frame_slots = 10, /* control words, r15 r14 r13 r12 rbx rbp, return address, 2 spare */
    mxcsr_default = 0x1F80,
    x87_control_default = 0x037F,
};

static void prepare_stack(tw_fiber *fiber) {
    uintptr_t top = ((uintptr_t)fiber->stack_bottom + fiber->stack_size) & ~(uintptr_t)15;
    uint64_t *frame = (uint64_t *)(top - frame_slots * sizeof(uint64_t));
    memset(frame, 0, frame_slots * sizeof(uint64_t));
    /* After the switch pops 7 slots and returns, rsp = top - 16: 16-byte aligned, as the
     * ABI requires just before tw_fiber_start_asm's call. */
    frame[0] = (uint64_t)mxcsr_default | ((uint64_t)x87_control_default << 32);
    frame[1] = 0;                                   /* r15 */
    frame[2] = 0;                                   /* r14 */
    frame[3] = (uint64_t)(uintptr_t)fiber_started;  /* r13 */
    frame[4] = (uint64_t)(uintptr_t)fiber;          /* r12 */
    frame[5] = 0;                                   /* rbx */
    frame[6] = 0;                                   /* rbp */
    frame[7] = (uint64_t)(uintptr_t)tw_fiber_start_asm;
    fiber->stack_pointer = frame;
    TW_ASSERT(((uintptr_t)&frame[8] & 15u) == 0);
}

#endif

void tw_fiber_init_root(tw_fiber *root) {
    TW_ASSERT(root != NULL);
    memset(root, 0, sizeof(*root));
}

/* Released stacks kept for reuse (per OS thread: a set of fibers belongs to one): mapping a
 * stack and its guard page is most of what a small world costs otherwise. A reused stack
 * keeps its old bytes, as a fresh thread's stack may hold anything: code that reads stack
 * memory it never wrote has a bug the sim does not promise to replay. */
#define TW_FIBER_STACKS_CACHED_MAX 64u

typedef struct stack_mapping {
    void *mapping;
    size_t mapping_size;
} stack_mapping;

static _Thread_local stack_mapping stacks_cached[TW_FIBER_STACKS_CACHED_MAX];
static _Thread_local uint32_t stacks_cached_count;

static void *stack_take(size_t mapping_size) {
    for (uint32_t i = stacks_cached_count; i > 0; i--) {
        if (stacks_cached[i - 1].mapping_size != mapping_size) continue;
        void *mapping = stacks_cached[i - 1].mapping;
        stacks_cached[i - 1] = stacks_cached[--stacks_cached_count];
        return mapping;
    }
    return NULL;
}

bool tw_fiber_init(tw_fiber *fiber, size_t stack_size, tw_fiber_entry entry, void *arg) {
    TW_ASSERT(fiber != NULL);
    TW_ASSERT(entry != NULL);
    memset(fiber, 0, sizeof(*fiber));
    size_t page = page_size();
    if (stack_size < TW_FIBER_STACK_SIZE_MIN) stack_size = TW_FIBER_STACK_SIZE_MIN;
    stack_size = (stack_size + page - 1) / page * page;

    size_t mapping_size = stack_size + page;
    void *mapping = stack_take(mapping_size);
    if (mapping == NULL) {
        mapping = mmap(NULL, mapping_size, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
        if (mapping == MAP_FAILED) return false;
        /* The guard page: a stack overflow faults instead of corrupting a neighbour. */
        if (mprotect(mapping, page, PROT_NONE) != 0) {
            munmap(mapping, mapping_size);
            return false;
        }
    }
    fiber->mapping = mapping;
    fiber->mapping_size = mapping_size;
    fiber->stack_bottom = (char *)mapping + page;
    fiber->stack_size = stack_size;
    fiber->entry = entry;
    fiber->arg = arg;
    prepare_stack(fiber);
    return true;
}

static void announce_switch(tw_fiber *to, void **fake_stack_save) {
#if defined(TW_FIBER_ASAN)
    const void *bottom = to->stack_bottom != NULL ? to->stack_bottom : root_stack_bottom;
    size_t size = to->stack_bottom != NULL ? to->stack_size : root_stack_size;
    __sanitizer_start_switch_fiber(fake_stack_save, bottom, size);
#else
    (void)to;
    (void)fake_stack_save;
#endif
}

void tw_fiber_switch(tw_fiber *from, tw_fiber *to) {
    TW_ASSERT(from != NULL && to != NULL);
    TW_ASSERT(from != to);
    void *fake_stack = NULL;
    announce_switch(to, &fake_stack);
    switch_raw(from, to);
#if defined(TW_FIBER_ASAN)
    __sanitizer_finish_switch_fiber(fake_stack, NULL, NULL);
#endif
}

_Noreturn void tw_fiber_switch_final(tw_fiber *from, tw_fiber *to) {
    TW_ASSERT(from != NULL && to != NULL);
    TW_ASSERT(from != to);
    announce_switch(to, NULL); /* NULL: ASan may drop this fiber's fake stack */
    switch_raw(from, to);
    tw_panic(__FILE__, __LINE__, "a finished fiber was resumed");
}

void tw_fiber_release(tw_fiber *fiber) {
    TW_ASSERT(fiber != NULL);
    if (fiber->mapping == NULL) return;
#if defined(TW_FIBER_ASAN)
    /* A fiber abandoned mid-run leaves its stack frames poisoned; the next mapping at
     * this address must not inherit that. */
    ASAN_UNPOISON_MEMORY_REGION(fiber->stack_bottom, fiber->stack_size);
#endif
    if (stacks_cached_count < TW_FIBER_STACKS_CACHED_MAX) {
        stacks_cached[stacks_cached_count++] = (stack_mapping){fiber->mapping, fiber->mapping_size};
    } else {
        int rc = munmap(fiber->mapping, fiber->mapping_size);
        TW_ASSERT(rc == 0);
    }
    fiber->mapping = NULL;
    fiber->stack_bottom = NULL;
}
