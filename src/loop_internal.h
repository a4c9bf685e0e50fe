/* twin: what src/ modules above the loop need from its internals. */
#ifndef TWIN_LOOP_INTERNAL_H
#define TWIN_LOOP_INTERNAL_H

#include <twin/io.h>
#include <twin/loop.h>

/* The backend behind a loop, for synchronous set-up calls. */
tw_io *tw_loop_io(tw_loop *loop);

#endif
