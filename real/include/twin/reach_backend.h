/* twin real build: reachability markers compile to nothing. */
#ifndef TWIN_REACH_BACKEND_H
#define TWIN_REACH_BACKEND_H

#define TW_REACHED(marker) ((void)0)

#endif
