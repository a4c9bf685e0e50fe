/* twin: atomic value types and memory orders shared by both builds.
 *
 * Every atomic in backend-neutral code is one of these wrapper structs, so a plain
 * read or write of an atomic word does not compile: all access goes through the
 * operations in <twin/atomic.h>, which the sim build turns into scheduling points. */
#ifndef TWIN_ATOMIC_TYPES_H
#define TWIN_ATOMIC_TYPES_H

#include <stdint.h>

/* The values equal the C11 memory_order constants (checked where they are used). */
typedef enum tw_order {
    tw_relaxed = 0,
    tw_consume = 1,
    tw_acquire = 2,
    tw_release = 3,
    tw_acq_rel = 4,
    tw_seq_cst = 5,
} tw_order;

typedef struct tw_atomic_u8 { _Atomic uint8_t raw; } tw_atomic_u8;
typedef struct tw_atomic_u16 { _Atomic uint16_t raw; } tw_atomic_u16;
typedef struct tw_atomic_u32 { _Atomic uint32_t raw; } tw_atomic_u32;
typedef struct tw_atomic_u64 { _Atomic uint64_t raw; } tw_atomic_u64;
typedef struct tw_atomic_usize { _Atomic uintptr_t raw; } tw_atomic_usize;
typedef struct tw_atomic_ptr { void *_Atomic raw; } tw_atomic_ptr;

/* Static initialiser for any of the above. */
#define TW_ATOMIC_INIT(value) { .raw = (value) }

#endif
