/* twin: reachability markers for rare paths ("sometimes" assertions, after Antithesis).
 *
 * Product code marks a path that matters and that ordinary runs seldom take with
 * TW_REACHED(tw_reach_...). In the real build the macro is nothing; in the sim the world
 * counts each marker per run (tw_sim_report.reached), and a twin-sim sweep says how many
 * seeds reached each one and which none did. A marker no seed reaches is a missing
 * workload or fault, not a marker to delete: ctest's twin_sim_cluster asserts that the
 * default sweep (seeds 1..5000) reaches every one.
 *
 * The list is here, in one place, so that a sweep can name the markers it missed. */
#ifndef TWIN_REACH_H
#define TWIN_REACH_H

#include <stdint.h>

#define TW_REACH_LIST(X)                                                                       \
    X(locker_contended, "locker: a thread slept on a contended lock")                          \
    X(pool_thread_spawned_more, "pool: a second or later thread spawned for waiting work")      \
    X(pool_task_stolen, "pool: an idle thread stole tasks from another's ring")                 \
    X(pool_thread_slept, "pool: a thread found no work and slept")                              \
    X(pool_spawn_failed, "pool: a thread could not be spawned (the others carry on)")          \
    X(pool_init_failed, "pool: init could not start the first thread")                         \
    X(client_waits_for_register, "client: packets waited for the registration")               \
    X(client_packet_batched, "client: a packet joined a waiting request")                      \
    X(client_request_timeout, "client: a request timed out (the connection is dropped)")       \
    X(client_connect_failed, "client: a connect failed (refused, timed out, reset)")           \
    X(client_request_resent, "client: a request was sent again after a failure")               \
    X(client_evicted_inflight, "client: evicted with a request in flight")                     \
    X(client_evicted_pending, "client: evicted with packets waiting to be sent")               \
    X(client_backoff_canceled, "client: deinit or eviction stopped a backoff")                 \
    X(client_init_out_of_memory, "client: init found no memory for its context or buffers")   \
    X(client_init_loop_failed, "client: init could not make its loop")                         \
    X(client_init_spawn_failed, "client: init could not start its IO thread")                  \
    X(server_retry_answered, "server: a retry got the cached reply")                           \
    X(server_register_answered_again, "server: a repeated register got its reply again")      \
    X(server_evicted_lru, "server: the least recently used session made room")                 \
    X(server_evicted_release, "server: a client's release was refused")                        \
    X(server_eviction_repeated, "server: an evicted client that spoke again heard why")       \
    X(server_malformed_closed, "server: malformed input closed a connection")                  \
    X(server_request_older_ignored, "server: a request older than the session's last was ignored") \
    X(server_register_older_ignored, "server: a register that came after requests was ignored") \
    X(server_accept_failed, "server: an accept failed (out of descriptors); it tries again")    \
    X(server_init_out_of_memory, "server: init found no memory for its tables or ledger")      \
    X(server_connection_reclaimed, "server: an idle connection made room for a waiting one")    \
    X(loop_submit_deferred, "loop: the IO queue was full; the operation waited for the next turn") \
    X(loop_cancel_timer, "loop: a cancel removed an armed timer")                              \
    X(loop_timer_reset_armed, "loop: a timer was reset while armed")                           \
    X(client_socket_failed, "client: no socket for a connection (out of descriptors); it backs off")

typedef enum tw_reach {
#define TW_REACH_ENUM(name, description) tw_reach_##name,
    TW_REACH_LIST(TW_REACH_ENUM)
#undef TW_REACH_ENUM
    tw_reach_count,
} tw_reach;

const char *tw_reach_name(tw_reach reach);
const char *tw_reach_description(tw_reach reach);

/* TW_REACHED(marker): nothing in the real build, a count in the sim's world. */
#include <twin/reach_backend.h>

#endif
