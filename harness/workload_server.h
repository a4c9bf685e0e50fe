/* twin harness: the server under network faults, and its oracle (moved from
 * tests/server_faults_test.c, which now runs it; workload_server.c says what it checks).
 * Backend-neutral: the same code runs on pthreads and real sockets, and on simulated fibers
 * over the simulated network.
 *
 * A server thread runs a tw_server; config.clients client threads, each with its own loop,
 * register and send requests 1..config.requests one at a time (create_accounts and echo,
 * alternating), reconnecting and retrying the same bytes whenever a connection fails;
 * then one more client looks up every account created. Every reply is checked as it
 * comes, and the server's counters against what the clients saw after it stops.
 *
 * The state is `struct tw_workload_server` (no typedef: the name tw_workload_server is the
 * twin-sim workload below). Set config, call tw_workload_server_init outside any simulated
 * run (its storage outlives the runs), then run tw_workload_server_run as a thread's (or
 * the world's main fiber's) body, once per run: it resets what a run uses. */
#ifndef TWIN_HARNESS_WORKLOAD_SERVER_H
#define TWIN_HARNESS_WORKLOAD_SERVER_H

#include <stdbool.h>
#include <stdint.h>

#include <twin/proto.h>

#define TW_WORKLOAD_SERVER_CLIENTS_MAX 4u
#define TW_WORKLOAD_SERVER_REQUESTS_MAX 500u
/* No reply within this long fails the connection: the client reconnects and retries. */
#define TW_WORKLOAD_SERVER_REQUEST_TIMEOUT_SIM_NS (300u * 1000u * 1000u)
#define TW_WORKLOAD_SERVER_REQUEST_TIMEOUT_REAL_NS (3000u * 1000u * 1000u)
/* Ways a client's connection fails (tw_workload_server_failure_name names them). */
#define TW_WORKLOAD_SERVER_FAILURE_KINDS 8u

typedef struct tw_workload_server_config {
    uint32_t clients;            /* 1..TW_WORKLOAD_SERVER_CLIENTS_MAX, besides the lookup client */
    uint32_t requests;           /* per client, 1..TW_WORKLOAD_SERVER_REQUESTS_MAX */
    uint64_t request_timeout_ns; /* one of the two above, or longer */
    bool corruption_possible;    /* the network may flip bits: malformed input is then allowed */
} tw_workload_server_config;

/* What the clients saw, summed over clients (and runs, in totals). */
typedef struct tw_workload_server_client_counts {
    uint64_t connections;                                  /* connects that succeeded */
    uint64_t reconnects;                                   /* failed connections (connects included) */
    uint64_t failures[TW_WORKLOAD_SERVER_FAILURE_KINDS];   /* the same, by kind */
    uint64_t retries;                                      /* a message sent again on a new connection */
    uint64_t stale_replies;                                /* replies to an older request, ignored */
    uint64_t malformed[tw_proto_error_count];              /* replies the frame reader rejected */
    uint64_t gave_up;
} tw_workload_server_client_counts;

/* One run (last), or the sum of every run (totals): the clients' counts and the server's. */
typedef struct tw_workload_server_counts {
    uint64_t runs;
    uint64_t lookups;  /* the lookup client's requests */
    uint64_t accounts; /* accounts the lookup client looked for */
    uint64_t requests_executed;
    uint64_t registrations;
    tw_workload_server_client_counts clients;
    uint64_t server_malformed[tw_proto_error_count];
    uint64_t sends_dropped;
    uint64_t retries_answered;
    uint64_t requests_ignored;
    uint64_t connections_accepted;
} tw_workload_server_counts;

struct tw_workload_server_world; /* private: the server, the clients, the accounts expected */

struct tw_workload_server {
    tw_workload_server_config config;
    /* Optional: called at the end of each run, once the server stopped and its counts are in
     * last and totals, before the final checks (so a failing run's counts can be printed). */
    void (*run_ended)(const struct tw_workload_server *workload);
    /* Counts, added by each run once its server stopped (last is zeroed when a run starts,
     * so a run that failed before then leaves last.runs == 0). */
    tw_workload_server_counts last;   /* the run */
    tw_workload_server_counts totals; /* every run so far, summed */
    struct tw_workload_server_world *world;
};

/* Checks the config and allocates the run's storage with tw_allocate (call it outside any
 * simulated run, so that it outlives the runs); false when memory is short. */
bool tw_workload_server_init(struct tw_workload_server *workload,
                             const tw_workload_server_config *config);
void tw_workload_server_free(struct tw_workload_server *workload);
/* A tw_thread_fn taking the struct tw_workload_server: one run; checks with TW_ASSERT. One
 * run at a time per process. */
void tw_workload_server_run(void *workload);
/* Scheduling points one run takes, roughly (PCT's change-point range). */
uint64_t tw_workload_server_steps_expected(const struct tw_workload_server *workload);
/* "refused", "connect_timed_out", "reset", "eof", "read_error", "write_error", "malformed",
 * "timeout", for 0..TW_WORKLOAD_SERVER_FAILURE_KINDS-1. */
const char *tw_workload_server_failure_name(uint32_t kind);

/* The server under faults as a twin-sim workload (harness/workload_server_spec.c, sim build
 * only). */
struct tw_workload;
extern const struct tw_workload tw_workload_server;

#endif
