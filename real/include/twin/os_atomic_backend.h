/* twin real build: atomics are plain inlined C11 atomics; no scheduling points. */
#ifndef TWIN_OS_ATOMIC_BACKEND_H
#define TWIN_OS_ATOMIC_BACKEND_H

#define TW_ATOMIC_POINT(kind, object) ((void)0)
#define TW_ATOMIC_CAS_WEAK_SPURIOUS() 0

/* A hint to the CPU inside a spin loop. */
static inline void tw_spin_hint(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

#endif
