/* twin sim build: every atomic operation is first a scheduling point of the world.
 *
 * Outside a running world (no fiber is current) the points do nothing, so sim-built
 * code can still be called from a plain test main. */
#ifndef TWIN_OS_ATOMIC_BACKEND_H
#define TWIN_OS_ATOMIC_BACKEND_H

#include <stdbool.h>

/* Defined in sim/world.c. kind is a tw_atomic_kind; object is the atomic word the operation
 * is about to touch (NULL for a fence): the POS strategy tells racing operations by it,
 * comparing addresses only for equality, never ordering by them. */
void tw_sim_atomic_point(int kind, const void *object);
/* True when the world injects a spurious failure of a weak compare-exchange. */
bool tw_sim_cas_weak_spurious(void);
/* A spin-loop iteration: the world lowers this fiber's priority and lets others run,
 * so a spinning fiber cannot starve the one it waits for (PCT would otherwise livelock). */
void tw_sim_spin_point(void);

#define TW_ATOMIC_POINT(kind, object) tw_sim_atomic_point((kind), (const void *)(object))
#define TW_ATOMIC_CAS_WEAK_SPURIOUS() tw_sim_cas_weak_spurious()

static inline void tw_spin_hint(void) { tw_sim_spin_point(); }

#endif
