/* twin sim build: a reachability marker counts in the running world's report (not a
 * scheduling point: marking a path does not change the run). */
#ifndef TWIN_REACH_BACKEND_H
#define TWIN_REACH_BACKEND_H

#include <stdint.h>

void tw_sim_reached(uint32_t marker);
#define TW_REACHED(marker) tw_sim_reached((uint32_t)(marker))

#endif
