/* twin: atomics for backend-neutral code.
 *
 *   tw_atomic_{load,store,exchange,cas_strong,cas_weak}_{u8,u16,u32,u64,usize,ptr}
 *   tw_atomic_fetch_{add,sub,and,or}_{u8,u16,u32,u64,usize}
 *   tw_atomic_fence(order), tw_spin_hint()
 *
 * The build picks the backend by include path: real/include gives inlined C11 atomics,
 * sim/include makes every operation a scheduling point of the simulated world. */
#ifndef TWIN_ATOMIC_H
#define TWIN_ATOMIC_H

#include <twin/os_atomic_backend.h>
#include <twin/atomic_ops.h>

#endif
