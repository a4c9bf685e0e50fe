/* twin harness: a tw_server on its own thread and loop, for tests and workloads that talk
 * to it over TCP.
 *
 * tw_test_server_start spawns the thread and returns once the server listens (address is
 * set); tw_test_server_stop wakes the thread through a tw_async, the server stops and its
 * loop runs until done, then the thread is joined. stats and sessions are written by the
 * server thread after its loop ends: read them only after tw_test_server_stop. */
#ifndef TWIN_TEST_SERVER_THREAD_H
#define TWIN_TEST_SERVER_THREAD_H

#include <twin/atomic.h>
#include <twin/loop.h>
#include <twin/os.h>
#include <twin/server.h>

typedef struct tw_test_server {
    tw_server_options options;
    /* Optional, set before the start: told of every commit (tw_server_set_commit_observer). */
    tw_server_commit_fn commit_observer;
    void *commit_context;
    tw_address address; /* written before ready */
    tw_server_stats stats; /* after the stop */
    uint32_t sessions;     /* after the stop: sessions held when it stopped */
    /* private */
    tw_atomic_u32 ready; /* 1: listening; 2: failed to start (start_error) */
    tw_server_error start_error;
    tw_async stop;
    tw_completion c_stop;
    tw_loop *loop;
    tw_server *server;
    tw_thread thread;
} tw_test_server;

/* Listens on 127.0.0.1 (a port the system picks) with options; fails the run if the
 * options or the listen fail. */
void tw_test_server_start(tw_test_server *s, const tw_server_options *options);
/* The same, with a commit observer installed before the server accepts anything, and a
 * server that may fail to start (resource faults): returns tw_server_ok, or the named
 * error of the thread's spawn, the loop's init or tw_server_init (system_resources, or
 * listen_failed), with nothing left running or allocated. Stop only a started server. */
tw_server_error tw_test_server_start_observed(tw_test_server *s, const tw_server_options *options,
                                              tw_server_commit_fn observer, void *context);
void tw_test_server_stop(tw_test_server *s);

#endif
