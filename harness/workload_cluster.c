/* twin harness: the cluster workload, twin-sim's default world.
 *
 * From the seed alone (swarm testing: each option drawn unless given as a flag): one server
 * on its own thread, `clients` clients, and `users` users that run as tasks on a twin pool
 * of `pool_threads` threads. Each user owns one client (user % clients) and submits
 * `packets` packets through it, one at a time: it builds a packet (a pool task), submits
 * it, and the completion callback (on the client's IO thread) checks it and schedules the
 * user's next step on the pool. The operation mix, packet sizes, linked chains, invalid
 * packets, a client whose release the server refuses, a server with fewer sessions than
 * clients (so clients get evicted) and the network's faults are all drawn.
 *
 * Oracles, checked as the run goes (a failure names the client, request, packet and event):
 *   - the server's commits (tw_server_set_commit_observer): op numbers 1, 2, 3, ...; per
 *     client a register, then requests 1, 2, 3, ...; every reply body equal, byte for
 *     byte, to what an independent model of the ledger (model_ledger.c) answers for the same
 *     request at the same timestamp;
 *   - every packet completes exactly once, with the status the packet and its client call
 *     for: invalid_operation, invalid_data_size and too_much_data for invalid packets (the
 *     limits are known), the eviction status for an evicted client (release_too_low/high
 *     for the refused release, client_evicted only when clients outnumber sessions), and
 *     once a client is evicted, every packet submitted before with that status too;
 *     client_shutdown only from deinit, and never for a packet an eviction should have
 *     completed; once deinit returns, no packet of its client is outstanding;
 *   - an ok packet's results are those of its own events in the commit its timestamp names:
 *     the commit is of its client and operation, its events are found there exactly once
 *     and no other packet claimed them, its create results are the commit's for those
 *     events with indexes rebased, an echo gets its own bytes, a lookup the whole reply;
 *   - per client, ok replies arrive in request order (their commits' timestamps increase);
 *   - at the end: every committed event of a client that was not evicted reached a packet
 *     (exactly once, both ways), the server evicted nobody for a protocol violation, and
 *     the world's allocations balance (checked by twin-sim).
 * Liveness, in a drawn half of the seeds (--liveness 1): the faults last fault_phase_s of
 * simulated time, then the network heals (tw_sim_net_heal), and every packet must complete
 * within heal_time_max_s after that, else the run fails as a liveness failure (exit 3).
 * The other seeds check safety only, under faults that never stop: after time_max_ms the
 * clients are deinit'ed whatever is outstanding (and the oracle checks how that ends).
 *
 * The world is sim-only (it reads the seed's decisions to draw its shape); it uses only the
 * public API of the pool, the client and the server. */
#include "workload_cluster.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <twin/assert.h>
#include <twin/atomic.h>
#include <twin/client.h>
#include <twin/ledger.h>
#include <twin/locker.h>
#include <twin/pcg.h>
#include <twin/pool.h>
#include <twin/proto.h>
#include <twin/server.h>

#include "model_ledger.h"
#include "server_thread.h"

#define MS_NS (1000ull * 1000u)
#define S_NS (1000ull * MS_NS)
#define CLUSTER_CLIENTS_MAX 8u
#define CLUSTER_USERS_MAX 64u
#define CLUSTER_POOL_THREADS_MAX 8u
#define CLUSTER_PACKETS_MAX 100000u
#define CLUSTER_MESSAGE_SIZE_MIN 1024u
#define CLUSTER_MESSAGE_SIZE_MAX (64u * 1024u)
#define CLUSTER_EVENTS_MAX 8190u
#define CLUSTER_THINK_US_MAX 1000000u
#define CLUSTER_TIME_MAX_MS_DEFAULT 600000u
#define CLUSTER_TIME_MAX_MS_MAX 86400000u
#define CLUSTER_TIME_MAX_S_MAX 86400u
#define CLUSTER_FAULT_PHASE_S_MAX 3600u
#define CLUSTER_RATE_ONE_IN_MAX 1000000000u
/* Seeded resource faults (resource-faults 1), as "1 in N" per call. */
#define CLUSTER_ALLOCATION_FAIL_ONE_IN 150u
#define CLUSTER_SPAWN_FAIL_ONE_IN 40u
#define CLUSTER_SUBMIT_FULL_ONE_IN 200u
#define CLUSTER_ACCEPT_FAIL_ONE_IN 4u
#define CLUSTER_SOCKET_FAIL_ONE_IN 10u
#define CLUSTER_HEAL_TIME_MAX_S_DEFAULT 60u
#define CLUSTER_RELEASE_MIN 2u
#define CLUSTER_RELEASE_MAX 3u
#define CLUSTER_CLUSTER_ID 0x7477u
/* Longer than the sim's largest one-way latency (a spike, ~200 ms), so retries are the
 * exception they are on a real network. */
#define CLUSTER_REQUEST_TIMEOUT_NS (300ull * MS_NS)
/* Accounts a user may create, and ids a lookup or transfer may name: some never exist. */
#define CLUSTER_ACCOUNT_SEQ_SPAN 48u
#define CLUSTER_TRANSFER_SEQ_SPAN 64u
#define CLUSTER_ECHO_SIZE_MAX 512u
#define CLUSTER_ECHO_SIZE_MIN 8u /* the packet's serial */
#define CLUSTER_MESSAGE_TEXT_SIZE TW_WORKLOAD_MESSAGE_SIZE
/* The oracle's last events, printed with a failure (oldest first). */
#define CLUSTER_HISTORY_EVENTS 12u
#define CLUSTER_HISTORY_LINE_SIZE 160u
#define CLUSTER_FAILURE_SIZE 1024u
#define CLUSTER_LEDGER_CODES 3u
/* Scheduling points per packet, roughly, for PCT's change points. */
#define CLUSTER_STEPS_PER_PACKET 80u

/* ---- options ---- */

enum {
    opt_clients,
    opt_clients_max,
    opt_users,
    opt_pool_threads,
    opt_packets,
    opt_message_size,
    opt_events_max,
    opt_mix_create_accounts,
    opt_mix_create_transfers,
    opt_mix_lookup_accounts,
    opt_mix_lookup_transfers,
    opt_mix_echo,
    opt_invalid_percent,
    opt_linked_percent,
    opt_release_refused,
    opt_faults,
    opt_think_us,
    opt_time_max_ms,
    opt_liveness,
    opt_fault_phase_s,
    opt_heal_time_max_s,
    opt_resource_faults,
    opt_partial_send_one_in, /* the network's rates: 1 in N, 0 off (tw_sim_net_rates) */
    opt_partial_receive_one_in,
    opt_spike_one_in,
    opt_reset_one_in,
    opt_refuse_one_in,
    opt_connect_timeout_one_in,
    opt_partition_one_in,
    opt_half_dead_one_in,
    opt_corrupt_one_in,
    opt_large,
    opt_count,
};

/* faults: what the simulated network may do (each fault's rate is then drawn by the world). */
enum { faults_off = 0, faults_mild = 1, faults_all = 2, faults_corrupt = 3 };

static const tw_workload_option cluster_options[opt_count] = {
    [opt_clients] = {"clients", 1, CLUSTER_CLIENTS_MAX, "clients (drawn 1..4)"},
    [opt_clients_max] = {"clients-max", 1, CLUSTER_CLIENTS_MAX,
                         "the server's sessions; below clients, clients get evicted (drawn: "
                         "clients, or in 1 seed of 4 fewer)"},
    [opt_users] = {"users", 1, CLUSTER_USERS_MAX,
                   "users, each a pool task on one client (drawn 1..8; large: 4..16)"},
    [opt_pool_threads] = {"pool-threads", 1, CLUSTER_POOL_THREADS_MAX, "pool threads (drawn 1..3)"},
    [opt_packets] = {"packets", 1, CLUSTER_PACKETS_MAX, "packets per user (drawn 2..24; large: 1000..3000)"},
    [opt_message_size] = {"message-size", CLUSTER_MESSAGE_SIZE_MIN, CLUSTER_MESSAGE_SIZE_MAX,
                          "message_size_max of server and clients: the batch limit (drawn: "
                          "1024..4096, or 65536)"},
    [opt_events_max] = {"events-max", 1, CLUSTER_EVENTS_MAX,
                        "events in a valid packet at most (drawn 1..12)"},
    [opt_mix_create_accounts] = {"mix-create-accounts", 1, 100, "weight (drawn 1..10)"},
    [opt_mix_create_transfers] = {"mix-create-transfers", 0, 100, "weight (drawn 0..10)"},
    [opt_mix_lookup_accounts] = {"mix-lookup-accounts", 0, 100, "weight (drawn 0..10)"},
    [opt_mix_lookup_transfers] = {"mix-lookup-transfers", 0, 100, "weight (drawn 0..10)"},
    [opt_mix_echo] = {"mix-echo", 0, 100, "weight (drawn 0..10)"},
    [opt_invalid_percent] = {"invalid-percent", 0, 100,
                             "packets with a bad operation, size or event count (drawn: 0, or "
                             "1..15 in half the seeds)"},
    [opt_linked_percent] = {"linked-percent", 0, 100,
                            "create events flagged linked (drawn 0..40)"},
    [opt_release_refused] = {"release-refused", 0, 1,
                             "the last client's release is outside the server's (drawn: 1 in "
                             "1 seed of 8)"},
    [opt_faults] = {"faults", 0, 3,
                    "which network faults the seed may turn on (each rate below is then drawn): "
                    "0 none, 1 partial IO and latency, 2 every fault but bit flips, 3 with bit "
                    "flips (drawn 0: 1/8, 1: 1/4, 2: 1/2, 3: 1/8)"},
    [opt_think_us] = {"think-us", 0, CLUSTER_THINK_US_MAX,
                      "a user pauses up to this long before a packet (drawn 0..2000)"},
    [opt_time_max_ms] = {"time-max-ms", 1, CLUSTER_TIME_MAX_MS_MAX,
                         "safety-only runs (liveness 0) end after this much simulated time, "
                         "finished or not, deinit completing what is outstanding (drawn: "
                         "600000, or 1..100 in 1 seed of 4, which cuts most worlds short)"},
    [opt_liveness] = {"liveness", 0, 1,
                      "1: faults for fault-phase-s, then the network heals and every packet "
                      "must complete within heal-time-max-s; 0: faults never stop, safety "
                      "only (drawn: 1 in half the seeds)"},
    [opt_fault_phase_s] = {"fault-phase-s", 1, CLUSTER_FAULT_PHASE_S_MAX,
                           "liveness 1: how long the faults last (drawn 1..20)"},
    [opt_heal_time_max_s] = {"heal-time-max-s", 1, CLUSTER_TIME_MAX_S_MAX,
                             "liveness 1: the time allowed after the heal (default 60, not drawn)"},
    [opt_partial_send_one_in] = {"partial-send-one-in", 0, CLUSTER_RATE_ONE_IN_MAX,
                                 "a send takes part of its bytes, 1 in N sends; 0 off (drawn with "
                                 "faults >= 1: 0, 2, 4 or 16)"},
    [opt_partial_receive_one_in] = {"partial-receive-one-in", 0, CLUSTER_RATE_ONE_IN_MAX,
                                    "a receive gets part of what is there (drawn like partial "
                                    "sends)"},
    [opt_spike_one_in] = {"spike-one-in", 0, CLUSTER_RATE_ONE_IN_MAX,
                          "a segment's latency is 100 times longer (drawn with faults >= 1: 0, "
                          "2000 or 200)"},
    [opt_reset_one_in] = {"reset-one-in", 0, CLUSTER_RATE_ONE_IN_MAX,
                          "a send resets its connection (drawn with faults >= 2: 0, 2000 or 200)"},
    [opt_refuse_one_in] = {"refuse-one-in", 0, CLUSTER_RATE_ONE_IN_MAX,
                           "a connect is refused (drawn with faults >= 2: 0, 16, 32 or 128)"},
    [opt_connect_timeout_one_in] = {"connect-timeout-one-in", 0, CLUSTER_RATE_ONE_IN_MAX,
                                    "a connect times out (drawn like refused connects)"},
    [opt_partition_one_in] = {"partition-one-in", 0, CLUSTER_RATE_ONE_IN_MAX,
                              "a send cuts its two nodes apart for up to 0.5 s (drawn with "
                              "faults >= 2: 0, 2000 or 200)"},
    [opt_half_dead_one_in] = {"half-dead-one-in", 0, CLUSTER_RATE_ONE_IN_MAX,
                              "a send stops its connection delivering for 0.3..3 s (drawn with "
                              "faults >= 2: 0, 500, 100 or 25)"},
    [opt_corrupt_one_in] = {"corrupt-one-in", 0, CLUSTER_RATE_ONE_IN_MAX,
                            "a segment gets a bit flipped (drawn with faults 3: 1000)"},
    [opt_large] = {"large", 0, 1,
                   "1: a large world, users and packets drawn 4..16 and 1000..3000 (10,000 "
                   "requests and more); 0: 1..8 and 2..24 (drawn: 1 in 1 seed of 32)"},
    [opt_resource_faults] = {"resource-faults", 0, 1,
                             "1: allocations fail 1 in 150, thread spawns 1 in 40, IO submissions "
                             "find the queue full 1 in 200, accepts run out of descriptors 1 in "
                             "4, socket opens 1 in 10 (drawn: 1 in 1 seed of 4)"},
};

static uint64_t draw(uint64_t seed, uint32_t option, uint64_t min, uint64_t max) {
    return tw_workload_draw(seed, option, min, max);
}

static void cluster_draw(uint64_t seed, uint64_t *v, const bool *given) {
    TW_ASSERT(v != NULL && given != NULL);
    if (!given[opt_clients]) v[opt_clients] = draw(seed, opt_clients, 1, 4);
    if (!given[opt_clients_max]) {
        bool fewer = v[opt_clients] > 1 && draw(seed, opt_clients_max, 0, 3) == 0;
        v[opt_clients_max] = fewer ? draw(seed, opt_clients_max + 100, 1, v[opt_clients] - 1)
                                   : v[opt_clients];
    }
    /* Most worlds are small (many seeds a second); 1 in 32 is large. */
    if (!given[opt_large]) v[opt_large] = draw(seed, opt_large, 0, 31) == 0;
    bool large = v[opt_large] != 0;
    if (!given[opt_users]) v[opt_users] = large ? draw(seed, opt_users + 100, 4, 16) : draw(seed, opt_users, 1, 8);
    if (!given[opt_pool_threads]) v[opt_pool_threads] = draw(seed, opt_pool_threads, 1, 3);
    if (!given[opt_packets]) {
        v[opt_packets] = large ? draw(seed, opt_packets + 100, 1000, 3000) : draw(seed, opt_packets, 2, 24);
    }
    if (!given[opt_message_size]) {
        v[opt_message_size] = draw(seed, opt_message_size, 0, 1) == 0
                                  ? draw(seed, opt_message_size + 100, 1024, 4096)
                                  : CLUSTER_MESSAGE_SIZE_MAX;
    }
    if (!given[opt_events_max]) v[opt_events_max] = draw(seed, opt_events_max, 1, 12);
    if (!given[opt_mix_create_accounts]) v[opt_mix_create_accounts] = draw(seed, opt_mix_create_accounts, 1, 10);
    for (uint32_t o = opt_mix_create_transfers; o <= opt_mix_echo; o++) {
        if (!given[o]) v[o] = draw(seed, o, 0, 10);
    }
    if (!given[opt_invalid_percent]) {
        v[opt_invalid_percent] =
            draw(seed, opt_invalid_percent, 0, 1) == 0 ? 0 : draw(seed, opt_invalid_percent + 100, 1, 15);
    }
    if (!given[opt_linked_percent]) v[opt_linked_percent] = draw(seed, opt_linked_percent, 0, 40);
    if (!given[opt_release_refused]) v[opt_release_refused] = draw(seed, opt_release_refused, 0, 7) == 0;
    if (!given[opt_faults]) {
        uint64_t f = draw(seed, opt_faults, 0, 7);
        v[opt_faults] = f == 0 ? faults_off : f <= 2 ? faults_mild : f <= 6 ? faults_all : faults_corrupt;
    }
    if (!given[opt_think_us]) v[opt_think_us] = draw(seed, opt_think_us, 0, 2000);
    if (!given[opt_time_max_ms]) {
        v[opt_time_max_ms] = draw(seed, opt_time_max_ms, 0, 3) == 0
                                 ? draw(seed, opt_time_max_ms + 100, 1, 100)
                                 : CLUSTER_TIME_MAX_MS_DEFAULT;
    }
    if (!given[opt_liveness]) v[opt_liveness] = draw(seed, opt_liveness, 0, 1);
    if (!given[opt_fault_phase_s]) v[opt_fault_phase_s] = draw(seed, opt_fault_phase_s, 1, 20);
    if (!given[opt_heal_time_max_s]) v[opt_heal_time_max_s] = CLUSTER_HEAL_TIME_MAX_S_DEFAULT;
    if (!given[opt_resource_faults]) v[opt_resource_faults] = draw(seed, opt_resource_faults, 0, 3) == 0;
    /* Each fault's rate: some off, some high, as the class (faults) allows. */
    static const uint64_t often[] = {0, 2, 4, 16};
    static const uint64_t rare[] = {0, 0, 2000, 200};
    static const uint64_t half_dead[] = {0, 500, 100, 25};
    const struct {
        uint32_t option;
        const uint64_t *table;
        uint64_t factor;
        uint64_t faults_min; /* the class from which it is on */
    } rates[] = {
        {opt_partial_send_one_in, often, 1, faults_mild},    {opt_partial_receive_one_in, often, 1, faults_mild},
        {opt_spike_one_in, rare, 1, faults_mild},            {opt_reset_one_in, rare, 1, faults_all},
        {opt_refuse_one_in, often, 8, faults_all},           {opt_connect_timeout_one_in, often, 8, faults_all},
        {opt_partition_one_in, rare, 1, faults_all},         {opt_half_dead_one_in, half_dead, 1, faults_all},
    };
    for (size_t i = 0; i < sizeof(rates) / sizeof(rates[0]); i++) {
        uint32_t o = rates[i].option;
        if (given[o]) continue;
        uint64_t drawn = rates[i].table[draw(seed, o, 0, 3)] * rates[i].factor;
        v[o] = v[opt_faults] >= rates[i].faults_min ? drawn : 0;
    }
    if (!given[opt_corrupt_one_in]) v[opt_corrupt_one_in] = v[opt_faults] == faults_corrupt ? 1000 : 0;
}

/* ---- state ---- */

typedef struct cluster cluster;

/* A committed op, as the server reported it (bodies copied). */
typedef struct commit_record {
    uint64_t op;
    uint64_t timestamp;
    uint32_t client; /* index */
    uint64_t request;
    tw_operation operation;
    uint8_t *body; /* one malloc'd block holds body, reply and claimed */
    uint32_t body_size;
    uint8_t *reply;
    uint32_t reply_size;
    uint8_t *claimed; /* per event (byte for echo): a packet got it */
} commit_record;

typedef struct cluster_client {
    tw_client client;
    uint32_t index;
    uint32_t release;
    bool registered;        /* its register committed */
    uint64_t request_last;  /* its last request committed */
    uint8_t evicted_status; /* tw_packet_ok until a packet completed with an eviction status */
    uint64_t evicted_at_submit; /* the submit count when that first happened */
    bool shutting_down;
    bool absent; /* its init failed (resource faults): its users submit nothing */
    uint64_t reply_timestamp_last; /* of its last ok completion: replies come in request order */
} cluster_client;

typedef struct cluster_user {
    tw_pool_task task;
    cluster *cluster;
    uint32_t index;
    uint32_t client;
    uint32_t done; /* packets completed */
    tw_pcg32 random;
    uint32_t transfer_seq;
    uint32_t account_seq;
    /* The packet in flight and what is expected of it. */
    tw_packet packet;
    uint32_t serial; /* cluster-wide, from 1 */
    uint8_t expected;        /* a status, or tw_packet_ok for a valid packet */
    uint32_t completions;
    uint64_t submit_number;  /* cluster-wide, from 1, taken as it is submitted */
    bool outstanding;        /* submitted and not completed */
    bool finished;           /* counted in users_done */
    uint8_t *data;           /* message_size + one event */
    char message[CLUSTER_MESSAGE_TEXT_SIZE];
} cluster_user;


/* An oracle event (a commit, a completion), kept raw and formatted only when a failure
 * prints the last ones: formatting each as it happens cost a tenth of a run. */
typedef enum history_kind { history_commit = 1, history_completion } history_kind;
typedef struct history_event {
    history_kind kind;
    uint32_t client;
    uint32_t size;        /* commit: body bytes; completion: the packet's data bytes */
    uint32_t result_size; /* completion */
    uint32_t serial;      /* completion: the packet's */
    uint32_t user;        /* completion */
    uint8_t operation;
    uint8_t status;       /* completion: tw_packet_status */
    uint64_t op;          /* commit */
    uint64_t request;     /* commit */
    uint64_t timestamp;
} history_event;

struct cluster {
    uint64_t values[opt_count];
    tw_sim_net_rates rates; /* the world reads them: they live as long as the state */
    /* Reset by every run. */
    tw_locker oracle; /* guards everything below that the server and IO threads share */
    tw_model_ledger *model;
    commit_record *commits;
    uint64_t commits_count;
    uint64_t commits_capacity;
    uint8_t *model_reply;
    cluster_client clients[CLUSTER_CLIENTS_MAX];
    cluster_user users[CLUSTER_USERS_MAX];
    uint32_t serial_next;
    uint64_t submits;
    bool unfinished; /* safety-only: time ran out with work outstanding */
    bool server_failed; /* the server could not start (resource faults) */
    bool pool_failed;   /* the pool could not start (resource faults) */
    uint32_t clients_absent;
    bool healed;
    tw_atomic_u32 users_done;
    tw_pool pool;
    tw_test_server server;
    tw_workload_verdict verdict;
    char message[CLUSTER_MESSAGE_TEXT_SIZE];
    history_event history[CLUSTER_HISTORY_EVENTS];
    uint64_t history_count;
    /* What the run did, for its summary line. */
    uint64_t packets_ok;
    uint64_t packets_invalid;
    uint64_t packets_evicted;
    uint64_t packets_shutdown;
    uint64_t events_ok;
    uint64_t requests_batched; /* commits that carried more than one packet */
    uint64_t registers_again;  /* second registers of a client (see on_commit) */
    tw_server_stats stats;
};

/* The ledger's limits (server and model alike): room for what the users may create, up to
 * a cap beyond which too_many_accounts / too_many_transfers answer. */
#define CLUSTER_LEDGER_OBJECTS_MAX 65536u
static uint32_t accounts_max_of(const cluster *c) {
    uint64_t wanted = c->values[opt_users] * c->values[opt_packets] * c->values[opt_events_max] + 1;
    return wanted < CLUSTER_LEDGER_OBJECTS_MAX ? (uint32_t)wanted : CLUSTER_LEDGER_OBJECTS_MAX;
}

/* Notes an oracle event (a commit, a completion) in the history a failure prints. */
static void history_add(cluster *c, history_event event) {
    TW_ASSERT(c != NULL);
    TW_ASSERT(event.kind == history_commit || event.kind == history_completion);
    c->history[c->history_count % CLUSTER_HISTORY_EVENTS] = event;
    c->history_count++;
}

static void history_format(const history_event *e, char *line, size_t line_size) {
    TW_ASSERT(line != NULL && line_size > 0);
    if (e->kind == history_commit) {
        snprintf(line, line_size, "commit op %" PRIu64 " at %" PRIu64 " ns: client %u %s %" PRIu64 "%s%s, %u bytes",
                 e->op, e->timestamp, e->client, e->request == 0 ? "register" : "request", e->request,
                 e->request == 0 ? "" : " ", e->request == 0 ? "" : tw_operation_name((tw_operation)e->operation),
                 e->size);
        return;
    }
    TW_ASSERT(e->kind == history_completion);
    snprintf(line, line_size,
             "packet %u (user %u, client %u, operation %u, %u bytes) completed: %s, "
             "timestamp %" PRIu64 ", %u result bytes",
             e->serial, e->user, e->client, e->operation, e->size,
             tw_packet_status_name((tw_packet_status)e->status), e->timestamp, e->result_size);
}

/* Fails the run (a safety failure unless liveness), naming what happened and the oracle's
 * last events before it. */
static _Noreturn void cluster_fail(cluster *c, tw_workload_verdict verdict, const char *format, ...)
    __attribute__((format(printf, 3, 4)));
static _Noreturn void cluster_fail(cluster *c, tw_workload_verdict verdict, const char *format, ...) {
    char failure[CLUSTER_FAILURE_SIZE];
    va_list args;
    va_start(args, format);
    vsnprintf(failure, sizeof(failure), format, args);
    va_end(args);
    size_t used = (size_t)snprintf(c->message, sizeof(c->message), "%s", failure);
    uint64_t first = c->history_count > CLUSTER_HISTORY_EVENTS ? c->history_count - CLUSTER_HISTORY_EVENTS : 0;
    if (c->history_count > 0 && used < sizeof(c->message)) {
        used += (size_t)snprintf(c->message + used, sizeof(c->message) - used,
                                 "\n  the oracle's last events before it, oldest first:");
    }
    for (uint64_t i = first; i < c->history_count && used < sizeof(c->message); i++) {
        char line[CLUSTER_HISTORY_LINE_SIZE];
        history_format(&c->history[i % CLUSTER_HISTORY_EVENTS], line, sizeof(line));
        used += (size_t)snprintf(c->message + used, sizeof(c->message) - used, "\n    %s", line);
    }
    c->verdict = verdict;
    tw_sim_fail(c->message);
}

#define COMMIT_BLOCK_ALIGN 16u
static size_t commit_align(size_t size) {
    return (size + COMMIT_BLOCK_ALIGN - 1u) / COMMIT_BLOCK_ALIGN * COMMIT_BLOCK_ALIGN;
}

static void commits_free(cluster *c) {
    for (uint64_t i = 0; i < c->commits_count; i++) {
        free(c->commits[i].body); /* the block: reply and claimed are in it */
    }
    free(c->commits);
    c->commits = NULL;
    c->commits_count = 0;
    c->commits_capacity = 0;
}

static void run_state_free(cluster *c) {
    commits_free(c);
    if (c->model != NULL) tw_model_ledger_free(c->model);
    c->model = NULL;
    free(c->model_reply);
    c->model_reply = NULL;
    for (uint32_t u = 0; u < CLUSTER_USERS_MAX; u++) {
        free(c->users[u].data);
        c->users[u].data = NULL;
    }
}

static uint32_t client_of_id(const cluster *c, tw_u128 id) {
    /* Client ids are (index + 1, the cluster's tag): see cluster_run. */
    if (id.high != CLUSTER_CLUSTER_ID || id.low == 0 || id.low > c->values[opt_clients]) {
        return UINT32_MAX;
    }
    return (uint32_t)(id.low - 1);
}

static uint32_t events_of(tw_operation operation, uint32_t size) {
    uint32_t event_size = tw_operation_event_size(operation);
    return event_size == 0 ? size : size / event_size;
}

/* ---- the commit oracle (the server's thread) ---- */

static void on_commit(void *context, const tw_server_commit *commit) {
    cluster *c = context;
    TW_ASSERT(c != NULL && commit != NULL);
    tw_locker_lock(&c->oracle);
    if (commit->op != c->commits_count + 1) {
        cluster_fail(c, tw_workload_safety, "commit: op %" PRIu64 " after op %" PRIu64, commit->op,
                     c->commits_count);
    }
    uint32_t client = client_of_id(c, commit->client);
    if (client == UINT32_MAX) {
        cluster_fail(c, tw_workload_safety, "commit op %" PRIu64 ": a client id no client has",
                     commit->op);
    }
    cluster_client *cc = &c->clients[client];
    if (commit->request == 0) {
        /* A second register commits only once the server has evicted the client's session
         * and forgotten the eviction (its table holds clients_max), so only with fewer
         * sessions than clients: either the client's own retry when the first reply was
         * lost (it then uses the new session, from request 1), or a register that a
         * half-dead connection delivered late, after the client got its session: the new
         * session is one the client never uses, and its next request, carrying the old
         * session's number, is evicted as a protocol violation (where it would otherwise
         * hear too_many_clients; evicted either way). Requests start again from 1. */
        if (cc->registered && c->values[opt_clients_max] >= c->values[opt_clients]) {
            cluster_fail(c, tw_workload_safety, "commit op %" PRIu64 ": client %u registered twice",
                         commit->op, client);
        }
        if (cc->registered) c->registers_again++;
        cc->registered = true;
        cc->request_last = 0;
    } else if (!cc->registered || commit->request != cc->request_last + 1) {
        cluster_fail(c, tw_workload_safety,
                     "commit op %" PRIu64 ": client %u request %" PRIu64 " after request %" PRIu64
                     "%s (each request executes once, in order)",
                     commit->op, client, commit->request, cc->request_last,
                     cc->registered ? "" : " and no register");
    } else {
        cc->request_last = commit->request;
    }
    history_add(c, (history_event){.kind = history_commit, .op = commit->op, .timestamp = commit->timestamp,
                                   .client = client, .request = commit->request,
                                   .operation = (uint8_t)commit->operation, .size = commit->body_size});
    uint32_t expected_size = 0;
    if (commit->request != 0) {
        expected_size = tw_model_ledger_apply(c->model, commit->operation, commit->timestamp,
                                              commit->body, commit->body_size, c->model_reply,
                                              (uint32_t)c->values[opt_message_size]);
        if (expected_size != commit->reply_size ||
            memcmp(c->model_reply, commit->reply, expected_size) != 0) {
            uint32_t at = 0;
            while (at < expected_size && at < commit->reply_size &&
                   c->model_reply[at] == commit->reply[at]) {
                at++;
            }
            cluster_fail(c, tw_workload_safety,
                         "commit op %" PRIu64 " (client %u request %" PRIu64 ", %s, %u events): "
                         "the server replied %u bytes, the model %u; they part at byte %u",
                         commit->op, client, commit->request, tw_operation_name(commit->operation),
                         events_of(commit->operation, commit->body_size), commit->reply_size,
                         expected_size, at);
        }
    }
    if (c->commits_count == c->commits_capacity) {
        uint64_t capacity = c->commits_capacity == 0 ? 64 : c->commits_capacity * 2;
        commit_record *grown = realloc(c->commits, capacity * sizeof(*grown));
        TW_ASSERT_MSG(grown != NULL, "cluster: out of memory for commits");
        c->commits = grown;
        c->commits_capacity = capacity;
    }
    commit_record *r = &c->commits[c->commits_count++];
    uint32_t events = events_of(commit->operation, commit->body_size);
    /* One block per commit: body, reply and claimed flags, each 16-byte aligned. */
    size_t reply_at = commit_align(commit->body_size + 1u);
    size_t claimed_at = reply_at + commit_align(commit->reply_size + 1u);
    uint8_t *block = malloc(claimed_at + events + 1u);
    TW_ASSERT_MSG(block != NULL, "cluster: out of memory for a commit");
    memset(block + claimed_at, 0, events + 1u);
    *r = (commit_record){
        .op = commit->op,
        .timestamp = commit->timestamp,
        .client = client,
        .request = commit->request,
        .operation = commit->operation,
        .body = block,
        .body_size = commit->body_size,
        .reply = block + reply_at,
        .reply_size = commit->reply_size,
        .claimed = block + claimed_at,
    };
    if (commit->body_size > 0) memcpy(r->body, commit->body, commit->body_size);
    if (commit->reply_size > 0) memcpy(r->reply, commit->reply, commit->reply_size);
    tw_locker_unlock(&c->oracle);
}

/* The commit with this timestamp (timestamps increase with op), or NULL. */
static commit_record *commit_at(cluster *c, uint64_t timestamp) {
    uint64_t low = 0;
    uint64_t high = c->commits_count;
    while (low < high) {
        uint64_t mid = low + (high - low) / 2;
        if (c->commits[mid].timestamp < timestamp) low = mid + 1;
        else high = mid;
    }
    return low < c->commits_count && c->commits[low].timestamp == timestamp ? &c->commits[low] : NULL;
}

/* ---- packets ---- */

static tw_u128 account_id(uint32_t user, uint32_t seq) {
    return (tw_u128){.low = ((uint64_t)(user + 1) << 32) | seq, .high = CLUSTER_CLUSTER_ID};
}

static tw_u128 transfer_id(uint32_t user, uint32_t seq) {
    return (tw_u128){.low = ((uint64_t)(user + 1) << 32) | seq, .high = CLUSTER_CLUSTER_ID + 1};
}

static uint32_t pick(cluster_user *u, uint32_t bound) {
    TW_ASSERT(bound >= 1);
    return tw_pcg32_bounded(&u->random, bound);
}

static bool percent(cluster_user *u, uint64_t p) { return pick(u, 100) < p; }

static tw_operation pick_operation(cluster_user *u) {
    const uint64_t *v = u->cluster->values;
    uint64_t total = 0;
    for (uint32_t o = opt_mix_create_accounts; o <= opt_mix_echo; o++) total += v[o];
    TW_ASSERT(total >= 1);
    uint64_t x = pick(u, (uint32_t)total);
    for (uint32_t o = opt_mix_create_accounts; o <= opt_mix_echo; o++) {
        if (x < v[o]) return (tw_operation)(tw_operation_create_accounts + (o - opt_mix_create_accounts));
        x -= v[o];
    }
    TW_ASSERT(false);
    return tw_operation_echo;
}

/* Fills events 0..count-1. Event 0 always has a fresh id (so a packet's bytes are found in
 * exactly one place of a commit); later ones are sometimes repeated ids, zero ids or broken
 * rules, and linked. */
static void fill_accounts(cluster_user *u, tw_account *a, uint32_t count) {
    const uint64_t *v = u->cluster->values;
    for (uint32_t i = 0; i < count; i++) {
        uint32_t seq = ++u->account_seq;
        if (i > 0 && percent(u, 10)) seq = 1 + pick(u, CLUSTER_ACCOUNT_SEQ_SPAN); /* exists? */
        /* One draw per statement: the order of evaluation inside an initializer list or
         * an argument list is unspecified, and compilers differ (determinism). */
        uint16_t code = (uint16_t)(1 + pick(u, CLUSTER_LEDGER_CODES));
        a[i] = (tw_account){.id = account_id(u->index, seq), .ledger = 1, .code = code};
        uint32_t flags_pick = pick(u, 8);
        if (flags_pick == 1) a[i].flags = tw_account_debits_must_not_exceed_credits;
        if (flags_pick == 2) a[i].flags = tw_account_credits_must_not_exceed_debits;
        if (percent(u, v[opt_linked_percent])) a[i].flags |= tw_account_linked;
        if (percent(u, 5)) {
            switch (pick(u, 6)) {
            case 0: if (i > 0) a[i].id = (tw_u128){0, 0}; break;
            case 1: a[i].code = 0; break;
            case 2: a[i].ledger = 0; break;
            case 3: a[i].flags |= tw_account_debits_must_not_exceed_credits |
                                  tw_account_credits_must_not_exceed_debits; break;
            case 4: a[i].reserved[pick(u, sizeof(a[i].reserved))] = 1; break;
            default: a[i].ledger = 2; break;
            }
        }
    }
}

static void fill_transfers(cluster_user *u, tw_transfer *t, uint32_t count) {
    const uint64_t *v = u->cluster->values;
    uint32_t users = (uint32_t)v[opt_users];
    for (uint32_t i = 0; i < count; i++) {
        uint32_t seq = ++u->transfer_seq;
        if (i > 0 && percent(u, 10)) seq = 1 + pick(u, CLUSTER_TRANSFER_SEQ_SPAN);
        /* One draw per statement (see fill_accounts). */
        uint32_t debit_user = pick(u, users);
        uint32_t debit_seq = 1 + pick(u, CLUSTER_ACCOUNT_SEQ_SPAN);
        uint32_t credit_user = pick(u, users);
        uint32_t credit_seq = 1 + pick(u, CLUSTER_ACCOUNT_SEQ_SPAN);
        uint64_t amount = 1 + pick(u, 100);
        uint16_t code = (uint16_t)(1 + pick(u, CLUSTER_LEDGER_CODES));
        t[i] = (tw_transfer){
            .id = transfer_id(u->index, seq),
            .debit_account_id = account_id(debit_user, debit_seq),
            .credit_account_id = account_id(credit_user, credit_seq),
            .amount = amount,
            .ledger = 1,
            .code = code,
        };
        if (percent(u, v[opt_linked_percent])) t[i].flags |= tw_transfer_linked;
        if (percent(u, 5)) {
            switch (pick(u, 5)) {
            case 0: t[i].amount = UINT64_MAX - pick(u, 2); break; /* overflows */
            case 1: t[i].credit_account_id = t[i].debit_account_id; break;
            case 2: t[i].amount = 0; break;
            case 3: t[i].reserved = 1; break;
            default: t[i].ledger = 2; break;
            }
        }
    }
}

static void fill_lookups(cluster_user *u, tw_u128 *ids, uint32_t count, bool accounts) {
    uint32_t users = (uint32_t)u->cluster->values[opt_users];
    for (uint32_t i = 0; i < count; i++) {
        uint32_t user = pick(u, users); /* one draw per statement (see fill_accounts) */
        uint32_t seq = 1 + pick(u, accounts ? CLUSTER_ACCOUNT_SEQ_SPAN : CLUSTER_TRANSFER_SEQ_SPAN);
        ids[i] = accounts ? account_id(user, seq) : transfer_id(user, seq);
    }
}

/* Builds the user's next packet and what its status must be. */
static void packet_build(cluster_user *u) {
    cluster *c = u->cluster;
    const uint64_t *v = c->values;
    tw_operation operation = pick_operation(u);
    uint32_t event_size = tw_operation_event_size(operation);
    uint32_t limit = tw_operation_events_max(operation, (uint32_t)v[opt_message_size]);
    uint32_t events_max = (uint32_t)v[opt_events_max] < limit ? (uint32_t)v[opt_events_max] : limit;
    uint32_t events = operation == tw_operation_echo
                          ? CLUSTER_ECHO_SIZE_MIN + pick(u, CLUSTER_ECHO_SIZE_MAX - CLUSTER_ECHO_SIZE_MIN)
                          : 1 + pick(u, events_max);
    if (operation == tw_operation_echo && events > limit) events = limit;
    u->expected = tw_packet_ok;
    uint8_t op_byte = (uint8_t)operation;
    if (percent(u, v[opt_invalid_percent])) {
        switch (pick(u, 3)) {
        case 0:
            op_byte = pick(u, 2) == 0 ? 0 : (uint8_t)(tw_operation_echo + 1 + pick(u, 100));
            u->expected = tw_packet_invalid_operation;
            break;
        case 1:
            if (event_size > 1) {
                u->expected = tw_packet_invalid_data_size;
                break;
            }
            /* echo has no event size: too much data instead */
            /* fall through */
        default:
            events = limit + 1;
            u->expected = tw_packet_too_much_data;
            break;
        }
    }
    uint32_t size = event_size == 0 ? events : events * event_size;
    if (u->expected == tw_packet_invalid_data_size) size -= 1 + pick(u, event_size - 1);
    TW_ASSERT(size <= v[opt_message_size] + 2 * TW_HEADER_SIZE);
    switch (operation) {
    case tw_operation_create_accounts: fill_accounts(u, (tw_account *)(void *)u->data, events); break;
    case tw_operation_create_transfers: fill_transfers(u, (tw_transfer *)(void *)u->data, events); break;
    case tw_operation_lookup_accounts: fill_lookups(u, (tw_u128 *)(void *)u->data, events, true); break;
    case tw_operation_lookup_transfers: fill_lookups(u, (tw_u128 *)(void *)u->data, events, false); break;
    case tw_operation_echo:
        /* pick(u, 256) byte by byte, without its division: 2^32 is a multiple of 256, so
         * the bounded draw never rejects and is the next value mod 256 (same stream, same
         * bytes). */
        for (uint32_t i = 0; i < size; i++) u->data[i] = (uint8_t)tw_pcg32_next(&u->random);
        break;
    case tw_operation_none: TW_ASSERT(false); break;
    }
    u->serial = ++c->serial_next;
    if (operation == tw_operation_echo) memcpy(u->data, &u->serial, sizeof(u->serial));
    u->packet = (tw_packet){
        .user_data = u,
        .data = u->data,
        .data_size = size,
        .user_tag = (uint16_t)u->index,
        .operation = op_byte,
    };
    u->completions = 0;
}

/* ---- completions (a client's IO thread) ---- */

static bool status_is_eviction(uint8_t status) {
    return status == tw_packet_client_evicted || status == tw_packet_client_release_too_low ||
           status == tw_packet_client_release_too_high;
}

/* The eviction status client may get: release refused, or too many clients. */
static uint8_t eviction_expected(const cluster *c, const cluster_client *cc) {
    if (cc->release < CLUSTER_RELEASE_MIN) return tw_packet_client_release_too_low;
    if (cc->release > CLUSTER_RELEASE_MAX) return tw_packet_client_release_too_high;
    return c->values[opt_clients_max] < c->values[opt_clients] ? tw_packet_client_evicted : tw_packet_ok;
}

/* An ok packet: its results are its own events' in the commit its timestamp names. */
static void check_results(cluster *c, cluster_user *u, uint64_t timestamp, const uint8_t *result,
                          uint32_t result_size) {
    const tw_packet *p = &u->packet;
    tw_operation operation = (tw_operation)p->operation;
    commit_record *r = commit_at(c, timestamp);
    if (r == NULL || r->request == 0) {
        cluster_fail(c, tw_workload_safety, "packet %u (user %u, client %u, %s): its timestamp %" PRIu64
                     " is no request's commit", u->serial, u->index, u->client,
                     tw_operation_name(operation), timestamp);
    }
    if (r->client != u->client || r->operation != operation) {
        cluster_fail(c, tw_workload_safety, "packet %u (client %u, %s) got the reply of op %" PRIu64
                     " (client %u, %s)", u->serial, u->client, tw_operation_name(operation), r->op,
                     r->client, tw_operation_name(r->operation));
    }
    uint32_t event_size = tw_operation_event_size(operation);
    uint32_t unit = event_size == 0 ? 1 : event_size;
    uint32_t events = p->data_size / unit;
    if (events == 0) { /* an empty packet: nothing to find, nothing to get */
        if (result_size != 0) {
            cluster_fail(c, tw_workload_safety, "packet %u: empty, yet %u result bytes", u->serial, result_size);
        }
        return;
    }
    /* Where its events are in the commit's body: exactly one place (event 0's id is fresh;
     * an echo starts with the packet's serial). */
    uint32_t found = UINT32_MAX;
    uint32_t matches = 0;
    for (uint32_t at = 0; at + p->data_size <= r->body_size; at += unit) {
        if (memcmp(r->body + at, p->data, p->data_size) == 0) {
            found = at / unit;
            matches++;
        }
    }
    if (matches != 1) {
        cluster_fail(c, tw_workload_safety, "packet %u (client %u, %u %s events) is %s in op %" PRIu64
                     " (request %" PRIu64 ")", u->serial, u->client, events,
                     tw_operation_name(operation), matches == 0 ? "nowhere" : "twice", r->op, r->request);
    }
    for (uint32_t e = 0; e < events; e++) {
        if (r->claimed[found + e]) {
            cluster_fail(c, tw_workload_safety, "packet %u: event %u of op %" PRIu64
                         " already went to another packet", u->serial, found + e, r->op);
        }
        r->claimed[found + e] = 1;
    }
    switch (operation) {
    case tw_operation_create_accounts:
    case tw_operation_create_transfers: {
        /* The commit's results for [found, found + events), rebased. */
        const tw_create_result *all = (const tw_create_result *)(const void *)r->reply;
        uint32_t all_count = r->reply_size / (uint32_t)sizeof(tw_create_result);
        const tw_create_result *got = (const tw_create_result *)(const void *)result;
        uint32_t got_count = result_size / (uint32_t)sizeof(tw_create_result);
        uint32_t k = 0;
        for (uint32_t i = 0; i < all_count; i++) {
            if (all[i].index < found || all[i].index >= found + events) continue;
            if (k >= got_count || got[k].index != all[i].index - found || got[k].result != all[i].result) {
                cluster_fail(c, tw_workload_safety, "packet %u (client %u, %s at events %u..%u of op %"
                             PRIu64 "): result %u is {index %u, %u}, expected {index %u, %u}", u->serial,
                             u->client, tw_operation_name(operation), found, found + events - 1, r->op, k,
                             k < got_count ? got[k].index : UINT32_MAX, k < got_count ? got[k].result : 0,
                             all[i].index - found, all[i].result);
            }
            k++;
        }
        if (k != got_count || result_size % sizeof(tw_create_result) != 0) {
            cluster_fail(c, tw_workload_safety, "packet %u: %u results, expected %u", u->serial,
                         got_count, k);
        }
        break;
    }
    case tw_operation_lookup_accounts:
    case tw_operation_lookup_transfers:
        if (found != 0 || events != events_of(operation, r->body_size) ||
            result_size != r->reply_size || memcmp(result, r->reply, result_size) != 0) {
            cluster_fail(c, tw_workload_safety, "packet %u (lookup, client %u): its reply is not op %"
                         PRIu64 "'s whole reply", u->serial, u->client, r->op);
        }
        break;
    case tw_operation_echo:
        if (result_size != p->data_size || memcmp(result, p->data, result_size) != 0) {
            cluster_fail(c, tw_workload_safety, "packet %u (echo, client %u): %u bytes back, not its own %u",
                         u->serial, u->client, result_size, p->data_size);
        }
        break;
    case tw_operation_none: TW_ASSERT(false); break;
    }
    if (r->claimed[0] && found == 0 && events < events_of(operation, r->body_size)) c->requests_batched++;
    c->events_ok += events;
}

static void user_step(tw_pool_task *task);

static void on_complete(uintptr_t context, tw_packet *packet, uint64_t timestamp,
                        const uint8_t *result, uint32_t result_size) {
    cluster *c = (cluster *)context;
    cluster_user *u = packet->user_data;
    TW_ASSERT(c != NULL && u != NULL && packet == &u->packet);
    cluster_client *cc = &c->clients[u->client];
    tw_locker_lock(&c->oracle);
    u->completions++;
    history_add(c, (history_event){.kind = history_completion, .serial = u->serial, .user = u->index,
                                   .client = u->client, .operation = packet->operation,
                                   .size = packet->data_size, .status = packet->status,
                                   .timestamp = timestamp, .result_size = result_size});
    if (u->completions != 1) {
        cluster_fail(c, tw_workload_safety, "packet %u (user %u, client %u) completed %u times",
                     u->serial, u->index, u->client, u->completions);
    }
    uint8_t status = packet->status;
    uint8_t eviction = eviction_expected(c, cc);
    bool ok = false;
    if (status == tw_packet_client_shutdown) {
        /* Only deinit says so, and never for a packet submitted before an eviction: the
         * eviction completes those itself. */
        ok = cc->shutting_down &&
             (cc->evicted_status == tw_packet_ok || u->submit_number > cc->evicted_at_submit);
    } else if (cc->evicted_status != tw_packet_ok) {
        /* Evicted: invalid packets are still named first (A.5's order), then the eviction. */
        ok = status == cc->evicted_status || (status == u->expected && u->expected != tw_packet_ok);
    } else if (status_is_eviction(status)) {
        ok = status == eviction && (u->expected == tw_packet_ok || u->expected == tw_packet_too_much_data);
        if (ok) {
            cc->evicted_status = status;
            cc->evicted_at_submit = c->submits;
        }
    } else {
        ok = status == u->expected;
    }
    if (!ok && status == tw_packet_client_shutdown) {
        cluster_fail(c, tw_workload_safety,
                     "packet %u (user %u, client %u, operation %u, %u bytes) completed with "
                     "client_shutdown %s", u->serial, u->index, u->client, u->packet.operation,
                     u->packet.data_size,
                     cc->shutting_down ? "though it was submitted before its client's eviction (the "
                                         "eviction must complete it, with the eviction's status)"
                                       : "while its client was not being deinit'ed");
    }
    if (!ok) {
        cluster_fail(c, tw_workload_safety,
                     "packet %u (user %u, client %u, operation %u, %u bytes) completed with %s; "
                     "expected %s%s%s", u->serial, u->index, u->client, u->packet.operation,
                     u->packet.data_size, tw_packet_status_name((tw_packet_status)status),
                     tw_packet_status_name((tw_packet_status)(cc->evicted_status != tw_packet_ok
                                                                 ? cc->evicted_status
                                                                 : u->expected)),
                     eviction != tw_packet_ok ? " or " : "",
                     eviction != tw_packet_ok ? tw_packet_status_name((tw_packet_status)eviction) : "");
    }
    if (status == tw_packet_ok) {
        if (result == NULL || timestamp == 0) {
            cluster_fail(c, tw_workload_safety, "packet %u: ok without a result or timestamp", u->serial);
        }
        /* One request in flight per client, so its replies come in request (= commit) order;
         * a batch's packets share one timestamp. */
        if (timestamp < cc->reply_timestamp_last) {
            cluster_fail(c, tw_workload_safety, "packet %u (client %u): a reply of %" PRIu64
                         " ns after one of %" PRIu64 " ns: replies out of request order", u->serial,
                         u->client, timestamp, cc->reply_timestamp_last);
        }
        cc->reply_timestamp_last = timestamp;
        check_results(c, u, timestamp, result, result_size);
        c->packets_ok++;
    } else {
        if (result != NULL || result_size != 0 || timestamp != 0) {
            cluster_fail(c, tw_workload_safety, "packet %u: %s with a result", u->serial,
                         tw_packet_status_name((tw_packet_status)status));
        }
        if (status_is_eviction(status)) c->packets_evicted++;
        else if (status == tw_packet_client_shutdown) c->packets_shutdown++;
        else c->packets_invalid++;
    }
    u->done++;
    u->outstanding = false;
    bool more = u->done < c->values[opt_packets] && !cc->shutting_down;
    if (!more) u->finished = true;
    tw_locker_unlock(&c->oracle);
    if (more) {
        tw_pool_schedule(&c->pool, tw_pool_batch_of(&u->task));
    } else {
        (void)tw_atomic_fetch_add_u32(&c->users_done, 1, tw_release);
        (void)tw_futex_wake(&c->users_done, TW_FUTEX_WAKE_ALL);
    }
}

/* ---- users (pool tasks) ---- */

static void think(cluster_user *u) {
    uint64_t think_ns = u->cluster->values[opt_think_us] * 1000u;
    if (think_ns == 0) return;
    uint64_t pause_ns = tw_pcg32_bounded64(&u->random, think_ns + 1);
    if (pause_ns == 0) return;
    tw_atomic_u32 never = TW_ATOMIC_INIT(0);
    (void)tw_futex_wait(&never, 0, pause_ns); /* a pause in virtual time */
}

static void user_step(tw_pool_task *task) {
    cluster_user *u = TW_CONTAINER_OF(task, cluster_user, task);
    cluster *c = u->cluster;
    TW_ASSERT(u->done < c->values[opt_packets]);
    think(u);
    tw_locker_lock(&c->oracle);
    cluster_client *cc = &c->clients[u->client];
    if (cc->shutting_down) { /* time ran out (safety only): this user stops here */
        u->finished = true;
        tw_locker_unlock(&c->oracle);
        (void)tw_atomic_fetch_add_u32(&c->users_done, 1, tw_release);
        (void)tw_futex_wake(&c->users_done, TW_FUTEX_WAKE_ALL);
        return;
    }
    packet_build(u);
    /* Numbered and submitted under the oracle's lock, so that an eviction the oracle sees
     * falls cleanly before or after it. */
    u->submit_number = ++c->submits;
    u->outstanding = true;
    tw_client_status status = tw_client_submit(&cc->client, &u->packet);
    tw_locker_unlock(&c->oracle);
    if (status != tw_client_ok) {
        cluster_fail(c, tw_workload_safety, "user %u: submit returned %s", u->index,
                     tw_client_status_name(status));
    }
}

/* ---- the world ---- */

/* Waits until every user is done or deadline_ns; false at the deadline. */
static bool users_wait(cluster *c, uint64_t deadline_ns) {
    for (;;) {
        uint32_t done = tw_atomic_load_u32(&c->users_done, tw_acquire);
        if (done == c->values[opt_users]) return true;
        uint64_t now_ns = tw_clock_monotonic_ns();
        if (now_ns >= deadline_ns) return false;
        (void)tw_futex_wait(&c->users_done, done, deadline_ns - now_ns);
    }
}

static void cluster_run(void *arg) {
    cluster *c = arg;
    const uint64_t *v = c->values;
    TW_ASSERT(v[opt_clients] >= 1 && v[opt_users] >= 1);
    /* Reset what an earlier run of this seed left. */
    run_state_free(c);
    tw_locker_init(&c->oracle);
    c->commits_count = 0;
    c->serial_next = 0;
    c->verdict = tw_workload_passed;
    c->message[0] = '\0';
    c->packets_ok = c->packets_invalid = c->packets_evicted = c->events_ok = c->requests_batched = 0;
    c->registers_again = 0;
    c->submits = 0;
    c->unfinished = false;
    c->healed = false;
    c->packets_shutdown = 0;
    c->server_failed = false;
    c->pool_failed = false;
    c->clients_absent = 0;
    c->history_count = 0;
    tw_atomic_store_u32(&c->users_done, 0, tw_relaxed);
    c->model = tw_model_ledger_new(accounts_max_of(c), accounts_max_of(c));
    c->model_reply = malloc(v[opt_message_size]);
    TW_ASSERT_MSG(c->model != NULL && c->model_reply != NULL, "cluster: out of memory for the model");

    tw_server_options so = {
        .cluster = {.low = CLUSTER_CLUSTER_ID, .high = 0},
        .connections_max = (uint32_t)v[opt_clients] * 2u,
        .clients_max = (uint32_t)v[opt_clients_max],
        .message_size_max = (uint32_t)v[opt_message_size],
        .release_min = CLUSTER_RELEASE_MIN,
        .release_max = CLUSTER_RELEASE_MAX,
        .accounts_max = accounts_max_of(c),
        .transfers_max = accounts_max_of(c),
    };
    tw_server_error server_error = tw_test_server_start_observed(&c->server, &so, on_commit, c);
    if (server_error != tw_server_ok) {
        /* Under resource faults a server may not start; it must say why, with a name. */
        bool named = server_error == tw_server_system_resources || server_error == tw_server_listen_failed;
        if (v[opt_resource_faults] == 0 || !named) {
            cluster_fail(c, tw_workload_safety, "the server did not start: %s",
                         tw_server_error_name(server_error));
        }
        c->server_failed = true;
        return;
    }
    char address[TW_ADDRESS_TEXT_SIZE];
    tw_address_format(&c->server.address, address, sizeof(address));

    for (uint32_t i = 0; i < v[opt_clients]; i++) {
        cluster_client *cc = &c->clients[i];
        bool refused = v[opt_release_refused] != 0 && i == v[opt_clients] - 1;
        *cc = (cluster_client){
            .index = i,
            .release = refused ? (i % 2 == 0 ? CLUSTER_RELEASE_MIN - 1 : CLUSTER_RELEASE_MAX + 1)
                               : CLUSTER_RELEASE_MIN + i % (CLUSTER_RELEASE_MAX - CLUSTER_RELEASE_MIN + 1),
            .evicted_status = tw_packet_ok,
        };
        tw_client_options co = {
            .release = cc->release,
            .request_timeout_ns = CLUSTER_REQUEST_TIMEOUT_NS,
            .message_size_max = (uint32_t)v[opt_message_size],
            .id = {.low = i + 1u, .high = CLUSTER_CLUSTER_ID},
        };
        tw_client_init_status status =
            tw_client_init(&cc->client, so.cluster, address, (uintptr_t)c, on_complete, &co);
        bool resources_short = status == tw_client_init_out_of_memory ||
                               status == tw_client_init_system_resources;
        if (status != tw_client_init_ok && (v[opt_resource_faults] == 0 || !resources_short)) {
            cluster_fail(c, tw_workload_safety, "client %u: init returned %s", i,
                         tw_client_init_status_name(status));
        }
        if (status != tw_client_init_ok) { /* it said why: its users do without it */
            cc->absent = true;
            c->clients_absent++;
        }
    }

    if (tw_pool_init(&c->pool, &(tw_pool_options){.threads_max = (uint32_t)v[opt_pool_threads]}) !=
        tw_pool_ok) {
        /* Only resource faults make a pool fail to start: the users do without it. */
        if (v[opt_resource_faults] == 0) cluster_fail(c, tw_workload_safety, "tw_pool_init failed");
        c->pool_failed = true;
    }
    tw_pool_batch batch = {0};
    for (uint32_t i = 0; i < v[opt_users]; i++) {
        cluster_user *u = &c->users[i];
        *u = (cluster_user){.cluster = c, .index = i, .client = i % (uint32_t)v[opt_clients]};
        u->task.callback = user_step;
        /* From the world's "random" stream: recorded and replayed with the run's decisions. */
        tw_pcg32_seed(&u->random, tw_random_u64(), i + 1u);
        u->data = calloc(1, v[opt_message_size] + 2u * TW_HEADER_SIZE);
        TW_ASSERT_MSG(u->data != NULL, "cluster: out of memory for a user");
        if (c->clients[u->client].absent || c->pool_failed) {
            u->finished = true;
            (void)tw_atomic_fetch_add_u32(&c->users_done, 1, tw_release);
            continue;
        }
        tw_pool_batch_push(&batch, tw_pool_batch_of(&u->task));
    }
    if (batch.count > 0 && !c->pool_failed) tw_pool_schedule(&c->pool, batch);

    uint64_t start_ns = tw_clock_monotonic_ns();
    if (v[opt_liveness] != 0) {
        /* Faults for the fault phase; then the network heals and the work must finish. */
        if (!users_wait(c, start_ns + v[opt_fault_phase_s] * S_NS)) {
            tw_sim_net_heal();
            c->healed = true;
        }
        if (!users_wait(c, tw_clock_monotonic_ns() + v[opt_heal_time_max_s] * S_NS)) {
            uint32_t waiting = UINT32_MAX;
            for (uint32_t i = 0; i < v[opt_users] && waiting == UINT32_MAX; i++) {
                if (!c->users[i].finished) waiting = i;
            }
            cluster_fail(c, tw_workload_liveness,
                         "liveness: %u of %" PRIu64 " users unfinished %" PRIu64
                         " s after the network healed (at %" PRIu64 " s); user %u waits on "
                         "packet %u (client %u)",
                         (uint32_t)v[opt_users] - tw_atomic_load_u32(&c->users_done, tw_acquire),
                         v[opt_users], v[opt_heal_time_max_s], v[opt_fault_phase_s], waiting,
                         c->users[waiting].serial, c->users[waiting].client);
        }
    } else if (!users_wait(c, start_ns + v[opt_time_max_ms] * MS_NS)) {
        c->unfinished = true; /* safety only: deinit completes what is outstanding */
    }

    for (uint32_t i = 0; i < v[opt_clients]; i++) {
        if (c->clients[i].absent) continue;
        tw_locker_lock(&c->oracle);
        c->clients[i].shutting_down = true;
        tw_locker_unlock(&c->oracle);
        TW_ASSERT_MSG(tw_client_deinit(&c->clients[i].client) == tw_client_ok, "client deinit failed");
        /* Deinit completed every packet of this client. */
        for (uint32_t k = 0; k < v[opt_users]; k++) {
            if (c->users[k].client == i && c->users[k].outstanding) {
                cluster_fail(c, tw_workload_safety, "client %u: deinit returned with packet %u "
                             "(user %u) not completed", i, c->users[k].serial, k);
            }
        }
    }
    if (!c->pool_failed) {
        tw_pool_shutdown(&c->pool);
        tw_pool_deinit(&c->pool);
    }
    tw_test_server_stop(&c->server);
    c->stats = c->server.stats;

    /* Exactly once, the other way: every event a live client's requests committed reached a
     * packet. An evicted client's last request may have committed unseen. */
    for (uint64_t i = 0; i < c->commits_count && !c->unfinished; i++) {
        const commit_record *r = &c->commits[i];
        if (r->request == 0 || c->clients[r->client].evicted_status != tw_packet_ok) continue;
        uint32_t events = events_of(r->operation, r->body_size);
        for (uint32_t e = 0; e < events; e++) {
            if (!r->claimed[e]) {
                cluster_fail(c, tw_workload_safety, "op %" PRIu64 " (client %u request %" PRIu64
                             ", %s): event %u of %u reached no packet", r->op, r->client, r->request,
                             tw_operation_name(r->operation), e, events);
            }
        }
    }
    /* The clients follow the protocol: the only violation is a request carrying the session
     * that a late register replaced (see on_commit), at most one per second register. */
    if (c->stats.sessions_evicted[tw_eviction_protocol_violation] > c->registers_again) {
        cluster_fail(c, tw_workload_safety, "the server evicted %" PRIu64
                     " client(s) for a protocol violation (%" PRIu64 " second registers explain "
                     "at most as many)",
                     c->stats.sessions_evicted[tw_eviction_protocol_violation], c->registers_again);
    }
}

static void *cluster_create(const uint64_t *values, tw_sim_options *sim) {
    TW_ASSERT(values != NULL && sim != NULL);
    cluster *c = calloc(1, sizeof(*c));
    if (c == NULL) return NULL;
    memcpy(c->values, values, sizeof(c->values));
    /* The network's rates are options (drawn from the seed, printed, pinned by a repro). */
    c->rates = (tw_sim_net_rates){
        .partial_send_one_in = values[opt_partial_send_one_in],
        .partial_receive_one_in = values[opt_partial_receive_one_in],
        .spike_one_in = values[opt_spike_one_in],
        .reset_one_in = values[opt_reset_one_in],
        .refuse_one_in = values[opt_refuse_one_in],
        .connect_timeout_one_in = values[opt_connect_timeout_one_in],
        .partition_one_in = values[opt_partition_one_in],
        .half_dead_one_in = values[opt_half_dead_one_in],
        .corrupt_one_in = values[opt_corrupt_one_in],
    };
    sim->net.rates = &c->rates;
    if (values[opt_resource_faults] != 0) {
        sim->resources.allocation_fail_one_in = CLUSTER_ALLOCATION_FAIL_ONE_IN;
        sim->resources.spawn_fail_one_in = CLUSTER_SPAWN_FAIL_ONE_IN;
        sim->resources.submit_full_one_in = CLUSTER_SUBMIT_FULL_ONE_IN;
        sim->resources.accept_fail_one_in = CLUSTER_ACCEPT_FAIL_ONE_IN;
        sim->resources.socket_fail_one_in = CLUSTER_SOCKET_FAIL_ONE_IN;
    }
    if (sim->pct_steps_expected == 0) {
        sim->pct_steps_expected = values[opt_users] * values[opt_packets] * CLUSTER_STEPS_PER_PACKET;
    }
    return c;
}

static tw_workload_verdict cluster_check(void *state, const tw_sim_report *report, char *message,
                                         size_t message_size) {
    cluster *c = state;
    TW_ASSERT(c != NULL && report != NULL);
    if (report->outcome == tw_sim_passed) return tw_workload_passed;
    snprintf(message, message_size, "%s", c->verdict != tw_workload_passed ? c->message : report->message);
    return c->verdict == tw_workload_liveness ? tw_workload_liveness : tw_workload_safety;
}

static void cluster_describe(void *state, char *line, size_t line_size) {
    cluster *c = state;
    TW_ASSERT(c != NULL && line_size > 0);
    uint64_t evictions = 0;
    for (uint32_t r = 0; r < TW_EVICTION_REASON_COUNT; r++) evictions += c->stats.sessions_evicted[r];
    snprintf(line, line_size,
             "commits=%" PRIu64 " requests=%" PRIu64 " batched=%" PRIu64 " retries=%" PRIu64
             " packets_ok=%" PRIu64 " invalid=%" PRIu64 " evicted=%" PRIu64 " shutdown=%" PRIu64
             " events_ok=%" PRIu64 " evictions=%" PRIu64 "%s%s %s",
             c->commits_count, c->stats.requests_executed, c->requests_batched,
             c->stats.retries_answered, c->packets_ok, c->packets_invalid, c->packets_evicted,
             c->packets_shutdown, c->events_ok, evictions,
             c->server_failed ? " server_start_failed" : c->pool_failed ? " pool_start_failed" : "",
             c->clients_absent > 0 ? " clients_init_failed" : "",
             c->values[opt_liveness] == 0 ? (c->unfinished ? "safety-only: time ran out, deinit ended it"
                                                           : "safety-only: finished")
                                          : (c->healed ? "liveness: finished after the heal"
                                                       : "liveness: finished within the fault phase"));
}

static void cluster_counts(void *state, tw_workload_counts *counts) {
    cluster *c = state;
    TW_ASSERT(c != NULL && counts != NULL);
    uint64_t evictions = 0;
    for (uint32_t r = 0; r < TW_EVICTION_REASON_COUNT; r++) evictions += c->stats.sessions_evicted[r];
    *counts = (tw_workload_counts){.requests = c->stats.requests_executed, .events = c->events_ok,
                                   .evictions = evictions};
}

static void cluster_destroy(void *state) {
    cluster *c = state;
    if (c == NULL) return;
    run_state_free(c);
    free(c);
}

const tw_workload tw_workload_cluster = {
    .name = "cluster",
    .summary = "a server, clients and pool-task users from the seed; every reply checked "
               "against a reference ledger",
    .options = cluster_options,
    .options_count = opt_count,
    .draw = cluster_draw,
    .create = cluster_create,
    .run = cluster_run,
    .check = cluster_check,
    .describe = cluster_describe,
    .counts = cluster_counts,
    .destroy = cluster_destroy,
};
