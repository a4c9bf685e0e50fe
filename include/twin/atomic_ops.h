/* twin: the one definition of every atomic operation, instantiated by each build.
 *
 * Not included directly: <twin/atomic.h> includes the build's <twin/os_atomic_backend.h>,
 * which defines TW_ATOMIC_POINT(kind, object) (nothing in the real build; a scheduling point in
 * the sim build) and then includes this file. Each operation runs the point first and
 * then the C11 atomic, so in the sim the scheduler may switch fibers before any atomic. */
#ifndef TWIN_ATOMIC_OPS_H
#define TWIN_ATOMIC_OPS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <twin/atomic_types.h>

#ifndef TW_ATOMIC_POINT
#error "include <twin/atomic.h>, not <twin/atomic_ops.h>"
#endif
#ifndef TW_ATOMIC_CAS_WEAK_SPURIOUS
#error "the backend must define TW_ATOMIC_CAS_WEAK_SPURIOUS()"
#endif

_Static_assert((int)tw_relaxed == (int)memory_order_relaxed, "order values");
_Static_assert((int)tw_acquire == (int)memory_order_acquire, "order values");
_Static_assert((int)tw_release == (int)memory_order_release, "order values");
_Static_assert((int)tw_acq_rel == (int)memory_order_acq_rel, "order values");
_Static_assert((int)tw_seq_cst == (int)memory_order_seq_cst, "order values");

/* Kinds of scheduling point, folded into the sim's trace hash. */
typedef enum tw_atomic_kind {
    tw_atomic_kind_load = 1,
    tw_atomic_kind_store,
    tw_atomic_kind_exchange,
    tw_atomic_kind_cas,
    tw_atomic_kind_rmw,
    tw_atomic_kind_fence,
    tw_atomic_kind_spin,
} tw_atomic_kind;

#define TW_MO(order) ((memory_order)(order))

/* Operations common to every atomic type. */
#define TW_ATOMIC_DEFINE_BASE(name, T)                                                        \
    static inline T tw_atomic_load_##name(tw_atomic_##name *a, tw_order order) {              \
        TW_ATOMIC_POINT(tw_atomic_kind_load, a);                                                  \
        return atomic_load_explicit(&a->raw, TW_MO(order));                                    \
    }                                                                                          \
    static inline void tw_atomic_store_##name(tw_atomic_##name *a, T value, tw_order order) { \
        TW_ATOMIC_POINT(tw_atomic_kind_store, a);                                                 \
        atomic_store_explicit(&a->raw, value, TW_MO(order));                                   \
    }                                                                                          \
    static inline T tw_atomic_exchange_##name(tw_atomic_##name *a, T value, tw_order order) { \
        TW_ATOMIC_POINT(tw_atomic_kind_exchange, a);                                              \
        return atomic_exchange_explicit(&a->raw, value, TW_MO(order));                         \
    }                                                                                          \
    /* On failure *expected receives the current value, as in C11. */                        \
    static inline bool tw_atomic_cas_strong_##name(tw_atomic_##name *a, T *expected, T desired,\
                                                   tw_order success, tw_order failure) {      \
        TW_ATOMIC_POINT(tw_atomic_kind_cas, a);                                                   \
        return atomic_compare_exchange_strong_explicit(&a->raw, expected, desired,             \
                                                       TW_MO(success), TW_MO(failure));        \
    }                                                                                          \
    /* May fail spuriously (the sim injects such failures), so call it in a loop. */          \
    static inline bool tw_atomic_cas_weak_##name(tw_atomic_##name *a, T *expected, T desired,  \
                                                 tw_order success, tw_order failure) {        \
        TW_ATOMIC_POINT(tw_atomic_kind_cas, a);                                                   \
        if (TW_ATOMIC_CAS_WEAK_SPURIOUS()) {                                                   \
            *expected = atomic_load_explicit(&a->raw, TW_MO(failure));                         \
            return false;                                                                      \
        }                                                                                      \
        return atomic_compare_exchange_weak_explicit(&a->raw, expected, desired,               \
                                                     TW_MO(success), TW_MO(failure));          \
    }

/* Read-modify-write arithmetic, for the integer types. */
#define TW_ATOMIC_DEFINE_RMW(name, T, op)                                                     \
    static inline T tw_atomic_fetch_##op##_##name(tw_atomic_##name *a, T value,               \
                                                  tw_order order) {                           \
        TW_ATOMIC_POINT(tw_atomic_kind_rmw, a);                                                   \
        return atomic_fetch_##op##_explicit(&a->raw, value, TW_MO(order));                     \
    }

#define TW_ATOMIC_DEFINE_INT(name, T)                                                         \
    TW_ATOMIC_DEFINE_BASE(name, T)                                                             \
    TW_ATOMIC_DEFINE_RMW(name, T, add)                                                         \
    TW_ATOMIC_DEFINE_RMW(name, T, sub)                                                         \
    TW_ATOMIC_DEFINE_RMW(name, T, and)                                                         \
    TW_ATOMIC_DEFINE_RMW(name, T, or)

TW_ATOMIC_DEFINE_INT(u8, uint8_t)
TW_ATOMIC_DEFINE_INT(u16, uint16_t)
TW_ATOMIC_DEFINE_INT(u32, uint32_t)
TW_ATOMIC_DEFINE_INT(u64, uint64_t)
TW_ATOMIC_DEFINE_INT(usize, uintptr_t)
TW_ATOMIC_DEFINE_BASE(ptr, void *)

static inline void tw_atomic_fence(tw_order order) {
    TW_ATOMIC_POINT(tw_atomic_kind_fence, NULL);
    atomic_thread_fence(TW_MO(order));
}

#undef TW_MO
#endif
