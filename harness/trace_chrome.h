/* twin harness: a run's trace as Chrome trace-event JSON, the format Perfetto
 * (ui.perfetto.dev) opens; scripts/view-trace loads it in speedscope, offline.
 *
 * Tracks: a process "fibers" with a thread per fiber (its running slices, spawns, exits,
 * futex waits and wakes, and the resource faults that struck it, with the source line that
 * drew them), "connections" with a thread per simulated connection (deliveries, resets,
 * bit flips, half-dead periods), "nodes" with a thread per loop (partitions), and "world"
 * (the virtual clock, the network's heal, connects and closes). The time axis is the run's
 * order, 1 µs per scheduling step; each event's args carry the virtual time in ns. */
#ifndef TWIN_HARNESS_TRACE_CHROME_H
#define TWIN_HARNESS_TRACE_CHROME_H

#include <stdbool.h>
#include <stddef.h>

#include <twin/sim.h>

/* Writes trace to path; false (and why in error) when it cannot. A trace cut short
 * (tw_sim_trace.count_max) is written as far as it goes, and error says so. */
bool tw_trace_chrome_write(const tw_sim_trace *trace, const char *path, const char *title,
                           char *error, size_t error_size);

#endif
