/* twin-load: a load generator for twin-server (real build) with a reference-model check.
 *
 *   twin-load ADDR [--clients N] [--packets P] [--inflight K] [--seed S] [--cluster N]
 *                  [--deadline-s T] [--check model|completions] [--quiet]
 *
 * N clients (a tw_client each, each with its own IO thread and a distinct client id) each
 * submit P packets drawn from a seeded PCG, keeping up to K in flight: create_accounts with
 * ids fresh to that client, create_transfers between that client's own accounts, lookups of
 * its own ids, echoes, and a few invalid events and packets on purpose (a duplicate id, a
 * transfer whose accounts do not exist, a zero amount, equal accounts, a data size that is
 * not whole events, an unknown operation), so error results are checked too. Clients never
 * share ledger objects, so one model per client (harness/model_ledger.c) is exact.
 *
 * --check model (default). Every ok reply is compared with the client's model. The model
 * takes the packets in the order the server applied them, which is the order their
 * completions run: a client has one request in flight, replies complete in request order,
 * and a batch's packets complete in the order they sit in the request (src/client_core.c).
 * So even with K > 1, where a create may join an earlier waiting request and pass a lookup
 * submitted before it, the model stays exact: it is fed in completion order, not
 * submission order. Creates must give exactly the model's sparse results; lookups the
 * model's objects, every field but the timestamp; an object's timestamp must lie in
 * [the model's, the lookup's commit timestamp) (the model cannot know a packet's offset in
 * a batch); echoes their own bytes. Invalid packets must complete with the status they
 * call for.
 *
 * Evictions. An evicted packet (client_evicted or a release status) may or may not have
 * been applied. When a client's packets have all completed after an eviction, the client
 * is deinit'ed and a new one (a new client id) registers; then each evicted create packet
 * is resolved in submission order: its ids are looked up on the server and in the model;
 * if the server has objects the model lacks, the packet was applied, so the model applies
 * it and the server's objects must equal the model's; else it was not (or only its failed
 * events were) and the model is left as it was. Each resolution is counted; evicted lookups
 * and echoes change nothing and need none.
 *
 * --check completions: only exactly-once, no-hang and the statuses of the invalid packets
 * (which the client decides before it looks at the server) are checked, for a server that
 * restarts and loses its ledger. Evicted clients are replaced the same way, unresolved.
 *
 * Every packet must complete exactly once (a second completion is a failure naming the
 * client and packet). A watchdog thread ends the run with exit 1 when no packet completes
 * for --deadline-s seconds, printing each client's outstanding packets.
 *
 * Output: progress on stderr at most once a second (not with --quiet), then one line on
 * stdout:
 *   twin-load: clients=N packets=T ok=.. evicted=.. too_much_data=.. ... resolved_evictions=..
 *              replies_checked=.. mismatches=0 elapsed_ms=.. packets_per_s=..
 * Exit 0 iff every packet completed exactly once and no reply mismatched; 1 otherwise, with
 * one line per problem (the first TWIN_LOAD_PROBLEMS_SHOWN) on stderr; 2 bad usage. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <twin/assert.h>
#include <twin/client.h>
#include <twin/ledger.h>
#include <twin/pcg.h>
#include <twin/proto.h>

#include "cli_parse.h"
#include "model_ledger.h"

#define TWIN_LOAD_CLIENTS_DEFAULT 4u
#define TWIN_LOAD_CLIENTS_MAX 256u
#define TWIN_LOAD_PACKETS_DEFAULT 1000u
#define TWIN_LOAD_PACKETS_MAX 10000000u
#define TWIN_LOAD_INFLIGHT_DEFAULT 1u
#define TWIN_LOAD_INFLIGHT_MAX 4096u
#define TWIN_LOAD_DEADLINE_S_DEFAULT 30u
#define TWIN_LOAD_DEADLINE_S_MAX 86400u
/* Events in one packet: 1..this. */
#define TWIN_LOAD_EVENTS_MAX 8u
/* Echo bytes in one packet: 1..this. */
#define TWIN_LOAD_ECHO_BYTES_MAX 256u
/* The largest packet body and the largest reply body (lookups of transfers). */
#define TWIN_LOAD_BODY_SIZE_MAX (TWIN_LOAD_EVENTS_MAX * 80u + TWIN_LOAD_ECHO_BYTES_MAX)
#define TWIN_LOAD_PROBLEMS_SHOWN 20u
#define TWIN_LOAD_PROBLEM_TEXT_SIZE 1024u
#define TWIN_LOAD_PROGRESS_INTERVAL_NS (1000u * 1000u * 1000u)
#define TWIN_LOAD_WATCHDOG_TICK_NS (100u * 1000u * 1000u)
/* Re-registrations one resolution lookup may need before the run gives up on it. */
#define TWIN_LOAD_RESOLVE_ATTEMPTS_MAX 1000u
/* Accounts a client creates on this ledger; 1 in TWIN_LOAD_OTHER_LEDGER_ONE_IN on ledger 2. */
#define TWIN_LOAD_LEDGER 1u
#define TWIN_LOAD_OTHER_LEDGER_ONE_IN 16u
#define TWIN_LOAD_AMOUNT_MAX 1000u
#define NS_PER_S 1000000000ull
#define NS_PER_MS 1000000ull

static const char usage[] =
    "usage: twin-load ADDR [--clients N] [--packets P] [--inflight K] [--seed S] [--cluster N]\n"
    "                 [--deadline-s T] [--check model|completions] [--quiet]\n";

static const char help[] =
    "Runs N clients against a twin-server at ADDR (the client's address list: IP:PORT,...),\n"
    "each submitting P seeded packets with up to K in flight, and checks every completion.\n"
    "\n"
    "  --clients N         clients, each with its own client id and IO thread, 1..256 (default 4)\n"
    "  --packets P         packets per client, 1..10000000 (default 1000)\n"
    "  --inflight K        packets one client keeps in flight, 1..4096 (default 1)\n"
    "  --seed S            the PCG seed: it draws every packet (ids also carry a per-run\n"
    "                      nonce, so runs sharing a server never reuse an id) (default 1)\n"
    "  --cluster N         the cluster id, decimal below 2^128 (default 0)\n"
    "  --deadline-s T      fail when no packet completes for T s, 1..86400 (default 30)\n"
    "  --check model       every ok reply against a per-client ledger model, evictions\n"
    "                      resolved by lookups (default)\n"
    "  --check completions only exactly-once completion and no hang (a server that restarts)\n"
    "  --quiet             no progress lines\n"
    "  --plant-wrong-model test only: corrupt the model's answer for one packet (must exit 1)\n"
    "  --help              this text\n"
    "\n"
    "Prints one 'twin-load: clients=...' line on stdout. Exit 0: every packet completed once\n"
    "and every reply matched; 1: a problem (listed on stderr); 2: bad usage.\n";

typedef enum check_mode {
    check_model = 0,
    check_completions = 1,
} check_mode;

typedef struct flags {
    const char *address;
    uint32_t clients;
    uint32_t packets;
    uint32_t inflight;
    uint64_t seed;
    tw_u128 cluster;
    uint32_t deadline_s;
    check_mode check;
    bool quiet;
    bool plant_wrong_model;
} flags;

typedef struct load_client load_client;

/* One packet of a client's run: the client's tw_packet and what twin-load knows of it. */
typedef struct load_packet {
    tw_packet packet;
    load_client *owner;
    uint32_t number;         /* 0..P-1 within its client; UINT32_MAX: the resolution lookup */
    uint32_t completions;    /* under owner->mutex */
    uint8_t expected_status; /* ok, or the invalid status the packet calls for */
    uint8_t operation;       /* as submitted (packet.operation may be a bad one on purpose) */
    bool awaiting_resolution;
    uint8_t *data;           /* malloc'ed; freed once the packet needs it no more */
} load_packet;

struct load_client {
    uint32_t index;
    const flags *flags;
    pthread_t worker;
    pthread_mutex_t mutex;
    pthread_cond_t changed;
    /* The tw_client now in use, its generation (one per registration), and whether it
     * was evicted (its later packets complete evicted too: it must be replaced). */
    tw_client client;
    bool client_live;
    uint32_t generation;
    bool evicted;
    const char *phase; /* what the worker is doing, for the watchdog */
    load_packet *packets;
    uint32_t submitted;
    uint32_t completed;
    uint32_t inflight;
    /* Evicted create packets waiting for resolution, in submission order. */
    uint32_t *unresolved;
    uint32_t unresolved_count;
    tw_model_ledger *model;
    uint64_t timestamp_last; /* the last ok reply's */
    tw_pcg32 rng;            /* the worker's */
    uint64_t account_next;   /* the next fresh account number (from 1) */
    uint64_t transfer_next;
    tw_u128 id_high;         /* this client's object ids: {number, id_high.high} */
    uint64_t client_id_high; /* its client ids: {(index + 1) << 32 | generation, this} */
    /* The resolution lookup: one packet, reused. */
    load_packet lookup;
    bool lookup_done;
    uint8_t lookup_status;
    uint8_t lookup_reply[TWIN_LOAD_BODY_SIZE_MAX];
    uint32_t lookup_reply_size;
    uint64_t lookup_timestamp;
    /* Counts, under mutex. */
    uint64_t statuses[TW_PACKET_STATUS_COUNT];
    uint64_t resolved_evictions;
    uint64_t resolved_applied; /* of those, found applied */
    uint64_t replies_checked;
    uint64_t mismatches;
};

/* ---- run-wide state ------------------------------------------------------------------- */

static _Atomic uint64_t progress_ns;    /* when a packet last completed */
static _Atomic uint64_t completed_all;  /* packets completed, every client */
static atomic_bool planted_used;        /* --plant-wrong-model corrupted one expectation */
static pthread_mutex_t problems_mutex = PTHREAD_MUTEX_INITIALIZER;
static char problems[TWIN_LOAD_PROBLEMS_SHOWN][TWIN_LOAD_PROBLEM_TEXT_SIZE];
static uint64_t problem_count;

static uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * NS_PER_S + (uint64_t)t.tv_nsec;
}

static void problem(const char *format, ...) __attribute__((format(printf, 1, 2)));

/* Records a problem: the run will exit 1, and the first few are printed. */
static void problem(const char *format, ...) {
    pthread_mutex_lock(&problems_mutex);
    if (problem_count < TWIN_LOAD_PROBLEMS_SHOWN) {
        va_list arguments;
        va_start(arguments, format);
        vsnprintf(problems[problem_count], TWIN_LOAD_PROBLEM_TEXT_SIZE, format, arguments);
        va_end(arguments);
    }
    problem_count++;
    pthread_mutex_unlock(&problems_mutex);
}

static uint64_t problems_counted(void) {
    pthread_mutex_lock(&problems_mutex);
    uint64_t count = problem_count;
    pthread_mutex_unlock(&problems_mutex);
    return count;
}

/* ---- flags ------------------------------------------------------------------------------ */

static const tw_cli cli = {.program = "twin-load", .usage = usage};
#define usage_error(...) tw_cli_usage_error(&cli, __VA_ARGS__)
#define parse_u32(...) tw_cli_parse_u32(&cli, __VA_ARGS__)

/* Returns -1 to go on, else the exit code (0 after --help). */
static int parse_flags(int argc, char **argv, flags *f) {
    *f = (flags){
        .clients = TWIN_LOAD_CLIENTS_DEFAULT,
        .packets = TWIN_LOAD_PACKETS_DEFAULT,
        .inflight = TWIN_LOAD_INFLIGHT_DEFAULT,
        .seed = 1,
        .deadline_s = TWIN_LOAD_DEADLINE_S_DEFAULT,
        .check = check_model,
    };
    int exit_code = 2;
    for (int i = 1; i < argc; i++) {
        const char *argument = argv[i];
        if (strcmp(argument, "--help") == 0 || strcmp(argument, "-h") == 0) {
            printf("%s\n%s", usage, help);
            return 0;
        }
        if (strcmp(argument, "--quiet") == 0) {
            f->quiet = true;
            continue;
        }
        if (strcmp(argument, "--plant-wrong-model") == 0) {
            f->plant_wrong_model = true;
            continue;
        }
        if (strncmp(argument, "-", 1) != 0) {
            if (f->address != NULL) {
                return usage_error("one ADDR only: '%s' is one too many", argument);
            }
            f->address = argument;
            continue;
        }
        /* "--flag value" or "--flag=value". */
        char flag[64];
        const char *value = NULL;
        const char *equals = strchr(argument, '=');
        size_t length = equals != NULL ? (size_t)(equals - argument) : strlen(argument);
        if (length >= sizeof(flag)) return usage_error("unknown flag '%s'", argument);
        memcpy(flag, argument, length);
        flag[length] = '\0';
        if (equals != NULL) value = equals + 1;
        bool known = strcmp(flag, "--clients") == 0 || strcmp(flag, "--packets") == 0 ||
                     strcmp(flag, "--inflight") == 0 || strcmp(flag, "--seed") == 0 ||
                     strcmp(flag, "--cluster") == 0 || strcmp(flag, "--deadline-s") == 0 ||
                     strcmp(flag, "--check") == 0;
        if (!known) return usage_error("unknown flag '%s'", flag);
        if (value == NULL) {
            if (i + 1 >= argc) return usage_error("%s needs a value", flag);
            value = argv[++i];
        }
        if (strcmp(flag, "--clients") == 0) {
            if (!parse_u32(flag, value, 1, TWIN_LOAD_CLIENTS_MAX, &f->clients, &exit_code)) {
                return exit_code;
            }
        } else if (strcmp(flag, "--packets") == 0) {
            if (!parse_u32(flag, value, 1, TWIN_LOAD_PACKETS_MAX, &f->packets, &exit_code)) {
                return exit_code;
            }
        } else if (strcmp(flag, "--inflight") == 0) {
            if (!parse_u32(flag, value, 1, TWIN_LOAD_INFLIGHT_MAX, &f->inflight, &exit_code)) {
                return exit_code;
            }
        } else if (strcmp(flag, "--seed") == 0) {
            if (!tw_cli_parse_u64(value, UINT64_MAX, &f->seed)) {
                return usage_error("--seed takes a decimal integer 0..2^64-1, not '%s'", value);
            }
        } else if (strcmp(flag, "--cluster") == 0) {
            if (!tw_cli_parse_u128(value, &f->cluster)) {
                return usage_error("--cluster takes a decimal integer 0..2^128-1, not '%s'", value);
            }
        } else if (strcmp(flag, "--deadline-s") == 0) {
            if (!parse_u32(flag, value, 1, TWIN_LOAD_DEADLINE_S_MAX, &f->deadline_s, &exit_code)) {
                return exit_code;
            }
        } else {
            TW_ASSERT(strcmp(flag, "--check") == 0);
            if (strcmp(value, "model") == 0) f->check = check_model;
            else if (strcmp(value, "completions") == 0) f->check = check_completions;
            else return usage_error("--check takes 'model' or 'completions', not '%s'", value);
        }
    }
    if (f->address == NULL) return usage_error("%s", "the server's ADDR is missing");
    tw_address addresses[TW_CLIENT_ADDRESSES_MAX];
    uint32_t count = 0;
    tw_client_init_status parsed = tw_client_addresses_parse(f->address, addresses, &count);
    if (parsed != tw_client_init_ok) {
        return usage_error("ADDR takes the client's address list (IP:PORT, IP, PORT or [IPV6]:PORT, "
                           "comma-separated, at most %u): '%s' is %s",
                           TW_CLIENT_ADDRESSES_MAX, f->address, tw_client_init_status_name(parsed));
    }
    if (f->plant_wrong_model && f->check != check_model) {
        return usage_error("%s", "--plant-wrong-model needs --check model");
    }
    return -1;
}

/* ---- packets ----------------------------------------------------------------------------- */

static uint64_t splitmix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static tw_u128 client_object_id(const load_client *c, uint64_t number) {
    return (tw_u128){.low = number, .high = c->id_high.high};
}

static bool one_in(tw_pcg32 *rng, uint32_t n) {
    return tw_pcg32_bounded(rng, n) == 0;
}

/* An account number of this client: mostly one it already asked for, sometimes one it
 * never will have (so "not found" results come up). */
static uint64_t pick_account(load_client *c) {
    if (c->account_next <= 1 || one_in(&c->rng, 32)) return c->account_next + 1000000u;
    return 1 + tw_pcg32_bounded64(&c->rng, c->account_next - 1);
}

/* The number of a new object: mostly the next fresh one (*next), 1 in 16 one this client
 * asked for before (it exists, or exists with other fields: an error result to check). */
static uint64_t pick_number(load_client *c, uint64_t *next) {
    TW_ASSERT(c != NULL && next != NULL && *next >= 1);
    if (*next > 1 && one_in(&c->rng, 16)) return 1 + tw_pcg32_bounded64(&c->rng, *next - 1);
    return (*next)++;
}

static uint32_t fill_accounts(load_client *c, uint8_t *data, uint32_t count) {
    for (uint32_t i = 0; i < count; i++) {
        tw_account a;
        memset(&a, 0, sizeof(a));
        uint64_t number = pick_number(c, &c->account_next);
        a.id = client_object_id(c, number);
        a.ledger = one_in(&c->rng, TWIN_LOAD_OTHER_LEDGER_ONE_IN) ? 2u : TWIN_LOAD_LEDGER;
        a.code = (uint16_t)(1 + tw_pcg32_bounded(&c->rng, 3));
        if (one_in(&c->rng, 8)) a.flags |= tw_account_debits_must_not_exceed_credits;
        if (one_in(&c->rng, 64)) a.ledger = 0;                  /* ledger_must_not_be_zero */
        if (i + 1 < count && one_in(&c->rng, 6)) a.flags |= tw_account_linked;
        memcpy(data + (size_t)i * sizeof(a), &a, sizeof(a));
    }
    return count * (uint32_t)sizeof(tw_account);
}

static uint32_t fill_transfers(load_client *c, uint8_t *data, uint32_t count) {
    for (uint32_t i = 0; i < count; i++) {
        tw_transfer t;
        memset(&t, 0, sizeof(t));
        uint64_t number = pick_number(c, &c->transfer_next);
        t.id = client_object_id(c, number);
        t.debit_account_id = client_object_id(c, pick_account(c));
        t.credit_account_id = client_object_id(c, pick_account(c));
        t.amount = 1 + tw_pcg32_bounded(&c->rng, TWIN_LOAD_AMOUNT_MAX);
        if (one_in(&c->rng, 64)) t.amount = 0;                  /* amount_must_not_be_zero */
        t.ledger = TWIN_LOAD_LEDGER;
        t.code = 1;
        if (i + 1 < count && one_in(&c->rng, 6)) t.flags |= tw_transfer_linked;
        memcpy(data + (size_t)i * sizeof(t), &t, sizeof(t));
    }
    return count * (uint32_t)sizeof(tw_transfer);
}

/* Ids of this client's objects, some never created. */
static uint32_t fill_ids(load_client *c, uint8_t *data, uint32_t count, bool accounts) {
    uint64_t next = accounts ? c->account_next : c->transfer_next;
    for (uint32_t i = 0; i < count; i++) {
        uint64_t number = 1 + tw_pcg32_bounded64(&c->rng, next + 1);
        tw_u128 id = client_object_id(c, number);
        memcpy(data + (size_t)i * sizeof(id), &id, sizeof(id));
    }
    return count * (uint32_t)sizeof(tw_u128);
}

/* Draws packet number's operation and data. */
static void packet_generate(load_client *c, load_packet *p, uint32_t number) {
    TW_ASSERT(number < c->flags->packets);
    TW_ASSERT(p->data == NULL);
    memset(p, 0, sizeof(*p));
    p->owner = c;
    p->number = number;
    p->expected_status = tw_packet_ok;
    p->data = malloc(TWIN_LOAD_BODY_SIZE_MAX);
    if (p->data == NULL) {
        fprintf(stderr, "twin-load: out of memory for a packet's %u bytes\n",
                TWIN_LOAD_BODY_SIZE_MAX);
        exit(1);
    }
    uint32_t events = 1 + tw_pcg32_bounded(&c->rng, TWIN_LOAD_EVENTS_MAX);
    uint32_t draw = tw_pcg32_bounded(&c->rng, 100);
    uint32_t size = 0;
    tw_operation operation;
    if (draw < 30) {
        operation = tw_operation_create_accounts;
        size = fill_accounts(c, p->data, events);
    } else if (draw < 65) {
        operation = tw_operation_create_transfers;
        size = fill_transfers(c, p->data, events);
    } else if (draw < 80) {
        operation = tw_operation_lookup_accounts;
        size = fill_ids(c, p->data, events, true);
    } else if (draw < 90) {
        operation = tw_operation_lookup_transfers;
        size = fill_ids(c, p->data, events, false);
    } else if (draw < 98) {
        operation = tw_operation_echo;
        size = 1 + tw_pcg32_bounded(&c->rng, TWIN_LOAD_ECHO_BYTES_MAX);
        for (uint32_t i = 0; i < size; i++) p->data[i] = (uint8_t)tw_pcg32_next(&c->rng);
    } else if (draw < 99) {
        /* Not a whole number of accounts. */
        operation = tw_operation_create_accounts;
        size = fill_accounts(c, p->data, events) - 1;
        p->expected_status = tw_packet_invalid_data_size;
    } else {
        operation = (tw_operation)(tw_operation_echo + 1 + tw_pcg32_bounded(&c->rng, 8));
        size = 16;
        memset(p->data, 0, size);
        p->expected_status = tw_packet_invalid_operation;
    }
    TW_ASSERT(size <= TWIN_LOAD_BODY_SIZE_MAX);
    p->operation = (uint8_t)operation;
    p->packet.user_data = p;
    p->packet.operation = (uint8_t)operation;
    p->packet.data = p->data;
    p->packet.data_size = size;
    p->packet.user_tag = (uint16_t)number;
}

static bool operation_creates(uint8_t operation) {
    return operation == tw_operation_create_accounts || operation == tw_operation_create_transfers;
}

/* ---- the check ---------------------------------------------------------------------------- */

/* Up to 8 "index:result" pairs of a sparse create result, for messages. */
static void describe_results(char *text, size_t size, const uint8_t *results, uint32_t bytes) {
    size_t used = 0;
    text[0] = '\0';
    uint32_t count = bytes / (uint32_t)sizeof(tw_create_result);
    used += (size_t)snprintf(text, size, "[");
    for (uint32_t i = 0; i < count && i < TWIN_LOAD_EVENTS_MAX && used < size; i++) {
        tw_create_result r;
        memcpy(&r, results + (size_t)i * sizeof(r), sizeof(r));
        used += (size_t)snprintf(text + used, size - used, "%s%" PRIu32 ":%" PRIu32,
                                 i == 0 ? "" : " ", r.index, r.result);
    }
    if (used < size) snprintf(text + used, size - used, "]");
}

static uint64_t object_timestamp(uint8_t operation, const uint8_t *object) {
    uint64_t timestamp = 0;
    size_t offset = operation == tw_operation_lookup_accounts ? offsetof(tw_account, timestamp)
                                                              : offsetof(tw_transfer, timestamp);
    memcpy(&timestamp, object + offset, sizeof(timestamp));
    return timestamp;
}

static void object_timestamp_clear(uint8_t operation, uint8_t *object) {
    uint64_t zero = 0;
    size_t offset = operation == tw_operation_lookup_accounts ? offsetof(tw_account, timestamp)
                                                              : offsetof(tw_transfer, timestamp);
    memcpy(object + offset, &zero, sizeof(zero));
}

/* Compares looked-up objects with the model's: every field but the timestamp, which must
 * lie in [the model's, before) (before 0: no upper bound). Returns false and says why. */
static bool objects_match(uint8_t operation, const uint8_t *expected, uint32_t expected_size,
                          const uint8_t *got, uint32_t got_size, uint64_t before, char *why,
                          size_t why_size) {
    uint32_t object_size = tw_operation_result_size((tw_operation)operation);
    TW_ASSERT(object_size == 64u || object_size == 80u);
    if (expected_size != got_size) {
        snprintf(why, why_size, "expected %" PRIu32 " objects, got %" PRIu32,
                 expected_size / object_size, got_size / object_size);
        return false;
    }
    for (uint32_t offset = 0; offset < got_size; offset += object_size) {
        uint8_t a[80], b[80];
        memcpy(a, expected + offset, object_size);
        memcpy(b, got + offset, object_size);
        uint64_t model_timestamp = object_timestamp(operation, a);
        uint64_t timestamp = object_timestamp(operation, b);
        object_timestamp_clear(operation, a);
        object_timestamp_clear(operation, b);
        tw_u128 id;
        memcpy(&id, b, sizeof(id));
        if (memcmp(a, b, object_size) != 0) {
            tw_u128 expected_id;
            memcpy(&expected_id, a, sizeof(expected_id));
            if (operation == tw_operation_lookup_accounts) {
                tw_account x, y;
                memcpy(&x, a, sizeof(x));
                memcpy(&y, b, sizeof(y));
                snprintf(why, why_size,
                         "object %" PRIu32 ": expected account id %" PRIu64 " debits %" PRIu64
                         " credits %" PRIu64 " ledger %" PRIu32 " code %u flags %u, got id %" PRIu64
                         " debits %" PRIu64 " credits %" PRIu64 " ledger %" PRIu32 " code %u flags %u",
                         offset / object_size, x.id.low, x.debits_posted, x.credits_posted, x.ledger,
                         x.code, x.flags, y.id.low, y.debits_posted, y.credits_posted, y.ledger,
                         y.code, y.flags);
            } else {
                tw_transfer x, y;
                memcpy(&x, a, sizeof(x));
                memcpy(&y, b, sizeof(y));
                snprintf(why, why_size,
                         "object %" PRIu32 ": expected transfer id %" PRIu64 " %" PRIu64 "->%" PRIu64
                         " amount %" PRIu64 " flags %u, got id %" PRIu64 " %" PRIu64 "->%" PRIu64
                         " amount %" PRIu64 " flags %u",
                         offset / object_size, x.id.low, x.debit_account_id.low,
                         x.credit_account_id.low, x.amount, x.flags, y.id.low,
                         y.debit_account_id.low, y.credit_account_id.low, y.amount, y.flags);
            }
            return false;
        }
        if (timestamp < model_timestamp || (before != 0 && timestamp >= before)) {
            snprintf(why, why_size,
                     "object %" PRIu32 " (id %" PRIu64 "): timestamp %" PRIu64
                     " outside [%" PRIu64 ", %" PRIu64 ")",
                     offset / object_size, id.low, timestamp, model_timestamp, before);
            return false;
        }
    }
    return true;
}

/* An ok reply of a packet, in the order the server applied it: applies it to the model and
 * compares. Under c->mutex. */
static void check_ok_reply(load_client *c, load_packet *p, uint64_t timestamp,
                           const uint8_t *result, uint32_t result_size) {
    TW_ASSERT(c->flags->check == check_model);
    TW_ASSERT(p->data != NULL);
    /* Packets of one batch share their request's timestamp; requests' timestamps rise. */
    if (timestamp < c->timestamp_last) {
        problem("client %" PRIu32 " packet %" PRIu32 ": reply timestamp %" PRIu64
                " is below the client's previous reply's, %" PRIu64,
                c->index, p->number, timestamp, c->timestamp_last);
    }
    c->timestamp_last = timestamp;
    uint8_t expected[TWIN_LOAD_BODY_SIZE_MAX];
    uint32_t expected_size =
        tw_model_ledger_apply(c->model, (tw_operation)p->operation, timestamp, p->data,
                              p->packet.data_size, expected, sizeof(expected));
    bool planted = c->flags->plant_wrong_model && p->operation != tw_operation_echo &&
                   !atomic_exchange(&planted_used, true);
    if (planted) {
        /* The test-only corruption: the model claims a failure for event 0 (or, with results
         * to compare already, one byte of them differs). */
        if (expected_size == 0) {
            tw_create_result fake = {.index = 0, .result = 1};
            if (operation_creates(p->operation)) {
                memcpy(expected, &fake, sizeof(fake));
                expected_size = sizeof(fake);
            } else {
                memset(expected, 0, sizeof(tw_transfer));
                expected_size = tw_operation_result_size((tw_operation)p->operation);
            }
        } else {
            expected[0] ^= 1u;
        }
    }
    c->replies_checked++;
    char why[TWIN_LOAD_PROBLEM_TEXT_SIZE / 2];
    bool match = true;
    if (operation_creates(p->operation)) {
        if (expected_size != result_size || memcmp(expected, result, result_size) != 0) {
            char want[160], got[160];
            describe_results(want, sizeof(want), expected, expected_size);
            describe_results(got, sizeof(got), result, result_size);
            snprintf(why, sizeof(why), "results expected %s got %s", want, got);
            match = false;
        }
    } else if (p->operation == tw_operation_echo) {
        if (expected_size != result_size || memcmp(expected, result, result_size) != 0) {
            snprintf(why, sizeof(why), "echo expected %" PRIu32 " bytes back, got %" PRIu32
                     " bytes that differ", expected_size, result_size);
            match = false;
        }
    } else {
        match = objects_match(p->operation, expected, expected_size, result, result_size,
                              timestamp, why, sizeof(why));
    }
    if (!match) {
        c->mismatches++;
        problem("mismatch: client %" PRIu32 " packet %" PRIu32 " %s (%" PRIu32 " bytes) at "
                "timestamp %" PRIu64 ": %s",
                c->index, p->number, tw_operation_name((tw_operation)p->operation),
                p->packet.data_size, timestamp, why);
    }
}

/* ---- completions --------------------------------------------------------------------------- */

static bool status_evicted(uint8_t status) {
    return status == tw_packet_client_evicted || status == tw_packet_client_release_too_low ||
           status == tw_packet_client_release_too_high;
}

/* On a client's IO thread. */
static void on_complete(uintptr_t context, tw_packet *packet, uint64_t timestamp,
                        const uint8_t *result, uint32_t result_size) {
    load_client *c = (load_client *)context;
    load_packet *p = (load_packet *)packet->user_data;
    TW_ASSERT(c != NULL && p != NULL && p->owner == c);
    TW_ASSERT(packet->status < TW_PACKET_STATUS_COUNT);
    uint8_t status = packet->status;
    atomic_store(&progress_ns, now_ns());
    pthread_mutex_lock(&c->mutex);
    if (p == &c->lookup) {
        /* The resolution lookup: the worker waits for it. */
        if (c->lookup_done) {
            problem("client %" PRIu32 ": its resolution lookup completed twice (now %s)", c->index,
                    tw_packet_status_name((tw_packet_status)status));
        }
        c->lookup_done = true;
        c->lookup_status = status;
        c->lookup_timestamp = timestamp;
        c->lookup_reply_size = 0;
        if (status == tw_packet_ok && result_size <= sizeof(c->lookup_reply)) {
            memcpy(c->lookup_reply, result, result_size);
            c->lookup_reply_size = result_size;
        } else if (status == tw_packet_ok) {
            problem("client %" PRIu32 ": resolution lookup reply of %" PRIu32 " bytes, above %zu",
                    c->index, result_size, sizeof(c->lookup_reply));
        }
        if (status_evicted(status)) c->evicted = true;
        pthread_cond_broadcast(&c->changed);
        pthread_mutex_unlock(&c->mutex);
        return;
    }
    p->completions++;
    if (p->completions > 1) {
        problem("client %" PRIu32 " packet %" PRIu32 " completed %" PRIu32 " times (this time %s)",
                c->index, p->number, p->completions, tw_packet_status_name((tw_packet_status)status));
        pthread_mutex_unlock(&c->mutex);
        return;
    }
    atomic_fetch_add(&completed_all, 1);
    c->statuses[status]++;
    c->completed++;
    TW_ASSERT(c->inflight > 0);
    c->inflight--;
    bool keep_data = false;
    if (status_evicted(status)) c->evicted = true;
    if (p->expected_status != tw_packet_ok) {
        if (status != p->expected_status) {
            c->mismatches++;
            problem("mismatch: client %" PRIu32 " packet %" PRIu32 " (operation %u, %" PRIu32
                    " bytes): expected status %s, got %s",
                    c->index, p->number, p->operation, p->packet.data_size,
                    tw_packet_status_name((tw_packet_status)p->expected_status),
                    tw_packet_status_name((tw_packet_status)status));
        }
    } else if (status == tw_packet_ok) {
        if (c->flags->check == check_model) check_ok_reply(c, p, timestamp, result, result_size);
    } else if (status_evicted(status)) {
        if (c->flags->check == check_model && operation_creates(p->operation)) {
            p->awaiting_resolution = true;
            c->unresolved[c->unresolved_count++] = p->number;
            keep_data = true;
        }
    } else if (c->flags->check == check_model) {
        c->mismatches++;
        problem("mismatch: client %" PRIu32 " packet %" PRIu32 " %s (%" PRIu32
                " bytes): expected status ok (or an eviction), got %s",
                c->index, p->number, tw_operation_name((tw_operation)p->operation),
                p->packet.data_size, tw_packet_status_name((tw_packet_status)status));
    }
    if (!keep_data) {
        free(p->data);
        p->data = NULL;
    }
    pthread_cond_broadcast(&c->changed);
    pthread_mutex_unlock(&c->mutex);
}

/* ---- the client's life --------------------------------------------------------------------- */

/* Starts a new tw_client (a new id) for c. Exits the run when init fails: nothing could go on. */
static void client_start(load_client *c) {
    TW_ASSERT(!c->client_live);
    pthread_mutex_lock(&c->mutex);
    c->generation++;
    uint32_t generation = c->generation;
    c->evicted = false;
    pthread_mutex_unlock(&c->mutex);
    tw_client_options options = {
        .id = {.low = ((uint64_t)(c->index + 1) << 32) | generation,
               .high = c->client_id_high},
    };
    tw_client_init_status status = tw_client_init(&c->client, c->flags->cluster, c->flags->address,
                                                  (uintptr_t)c, on_complete, &options);
    if (status != tw_client_init_ok) {
        fprintf(stderr, "twin-load: client %" PRIu32 " (generation %" PRIu32 "): tw_client_init "
                "failed: %s\n", c->index, generation, tw_client_init_status_name(status));
        exit(1);
    }
    c->client_live = true;
}

static void client_stop(load_client *c) {
    TW_ASSERT(c->client_live);
    tw_client_status status = tw_client_deinit(&c->client);
    TW_ASSERT_MSG(status == tw_client_ok, "tw_client_deinit from the worker thread");
    c->client_live = false;
}

/* Looks ids up on the server through the current client, re-registering after an eviction.
 * Returns false when it gave up (a problem was recorded). */
static bool server_lookup(load_client *c, uint8_t operation, const uint8_t *ids, uint32_t ids_size) {
    TW_ASSERT(operation == tw_operation_lookup_accounts || operation == tw_operation_lookup_transfers);
    TW_ASSERT(ids_size <= TWIN_LOAD_EVENTS_MAX * sizeof(tw_u128));
    for (uint32_t attempt = 0; attempt < TWIN_LOAD_RESOLVE_ATTEMPTS_MAX; attempt++) {
        memset(&c->lookup.packet, 0, sizeof(c->lookup.packet));
        c->lookup.owner = c;
        c->lookup.number = UINT32_MAX;
        c->lookup.packet.user_data = &c->lookup;
        c->lookup.packet.operation = operation;
        c->lookup.packet.data = ids;
        c->lookup.packet.data_size = ids_size;
        pthread_mutex_lock(&c->mutex);
        c->lookup_done = false;
        pthread_mutex_unlock(&c->mutex);
        tw_client_status submitted = tw_client_submit(&c->client, &c->lookup.packet);
        TW_ASSERT(submitted == tw_client_ok);
        pthread_mutex_lock(&c->mutex);
        while (!c->lookup_done) pthread_cond_wait(&c->changed, &c->mutex);
        uint8_t status = c->lookup_status;
        pthread_mutex_unlock(&c->mutex);
        if (status == tw_packet_ok) return true;
        if (!status_evicted(status)) {
            problem("client %" PRIu32 ": a resolution lookup completed %s", c->index,
                    tw_packet_status_name((tw_packet_status)status));
            return false;
        }
        client_stop(c);
        client_start(c);
    }
    problem("client %" PRIu32 ": a resolution lookup was evicted %u times in a row", c->index,
            TWIN_LOAD_RESOLVE_ATTEMPTS_MAX);
    return false;
}

/* Resolves one evicted create packet (see the top): applied or not, by its ids. */
static void resolve_one(load_client *c, load_packet *p, uint64_t evicted_after) {
    TW_ASSERT(p->awaiting_resolution && p->data != NULL);
    TW_ASSERT(operation_creates(p->operation));
    uint32_t event_size = tw_operation_event_size((tw_operation)p->operation);
    uint32_t count = p->packet.data_size / event_size;
    uint8_t operation = p->operation == tw_operation_create_accounts ? tw_operation_lookup_accounts
                                                                     : tw_operation_lookup_transfers;
    uint8_t ids[TWIN_LOAD_EVENTS_MAX * sizeof(tw_u128)];
    for (uint32_t i = 0; i < count; i++) {
        memcpy(ids + (size_t)i * sizeof(tw_u128), p->data + (size_t)i * event_size, sizeof(tw_u128));
    }
    uint32_t ids_size = count * (uint32_t)sizeof(tw_u128);
    if (!server_lookup(c, operation, ids, ids_size)) return;
    uint8_t before[TWIN_LOAD_BODY_SIZE_MAX];
    uint8_t after[TWIN_LOAD_BODY_SIZE_MAX];
    uint8_t ignored[TWIN_LOAD_BODY_SIZE_MAX];
    pthread_mutex_lock(&c->mutex);
    /* Lookups change nothing in the model. */
    uint32_t before_size = tw_model_ledger_apply(c->model, (tw_operation)operation, c->timestamp_last,
                                                 ids, ids_size, before, sizeof(before));
    const uint8_t *server = c->lookup_reply;
    uint32_t server_size = c->lookup_reply_size;
    char why[TWIN_LOAD_PROBLEM_TEXT_SIZE / 2];
    const char *verdict;
    bool match;
    if (server_size == before_size) {
        verdict = "not applied";
        match = objects_match(operation, before, before_size, server, server_size, 0, why,
                              sizeof(why));
    } else {
        verdict = "applied";
        /* Its commit came after every reply this client had before the eviction, and
         * before the lookup's. */
        uint64_t timestamp = evicted_after + 1;
        tw_model_ledger_apply(c->model, (tw_operation)p->operation, timestamp, p->data,
                              p->packet.data_size, ignored, sizeof(ignored));
        uint32_t after_size = tw_model_ledger_apply(c->model, (tw_operation)operation, timestamp,
                                                    ids, ids_size, after, sizeof(after));
        match = objects_match(operation, after, after_size, server, server_size,
                              c->lookup_timestamp, why, sizeof(why));
    }
    c->resolved_evictions++;
    if (server_size != before_size) c->resolved_applied++;
    if (!match) {
        c->mismatches++;
        problem("mismatch: client %" PRIu32 " packet %" PRIu32 " %s, evicted, resolved as %s: %s",
                c->index, p->number, tw_operation_name((tw_operation)p->operation), verdict, why);
    }
    if (c->lookup_timestamp > c->timestamp_last) c->timestamp_last = c->lookup_timestamp;
    p->awaiting_resolution = false;
    free(p->data);
    p->data = NULL;
    pthread_mutex_unlock(&c->mutex);
}

/* After an eviction, with nothing in flight: a new client, then the evicted creates resolved. */
static void replace_evicted_client(load_client *c) {
    TW_ASSERT(c->evicted && c->inflight == 0);
    client_stop(c);
    client_start(c);
    pthread_mutex_lock(&c->mutex);
    c->phase = "resolving evicted packets";
    uint32_t count = c->unresolved_count;
    uint64_t evicted_after = c->timestamp_last;
    pthread_mutex_unlock(&c->mutex);
    /* Nothing is in flight: only this thread touches unresolved now. */
    for (uint32_t i = 0; i < count; i++) {
        resolve_one(c, &c->packets[c->unresolved[i]], evicted_after);
    }
    pthread_mutex_lock(&c->mutex);
    TW_ASSERT(c->unresolved_count == count);
    c->unresolved_count = 0;
    pthread_mutex_unlock(&c->mutex);
}

static void *worker_main(void *argument) {
    load_client *c = argument;
    const flags *f = c->flags;
    client_start(c);
    pthread_mutex_lock(&c->mutex);
    while (c->completed < f->packets) {
        if (c->evicted) {
            if (c->inflight > 0) {
                c->phase = "evicted: waiting for its packets";
                pthread_cond_wait(&c->changed, &c->mutex);
                continue;
            }
            c->phase = "re-registering";
            pthread_mutex_unlock(&c->mutex);
            replace_evicted_client(c);
            pthread_mutex_lock(&c->mutex);
            continue;
        }
        if (c->submitted < f->packets && c->inflight < f->inflight) {
            c->phase = "submitting";
            uint32_t number = c->submitted++;
            c->inflight++;
            load_packet *p = &c->packets[number];
            packet_generate(c, p, number);
            pthread_mutex_unlock(&c->mutex);
            tw_client_status status = tw_client_submit(&c->client, &p->packet);
            TW_ASSERT(status == tw_client_ok);
            pthread_mutex_lock(&c->mutex);
            continue;
        }
        c->phase = c->submitted < f->packets ? "waiting: inflight full" : "waiting: all submitted";
        pthread_cond_wait(&c->changed, &c->mutex);
    }
    c->phase = "done";
    bool evicted_last = c->evicted;
    pthread_mutex_unlock(&c->mutex);
    /* Evicted creates at the very end still need resolving (the model must stay exact). */
    if (evicted_last && c->unresolved_count > 0) replace_evicted_client(c);
    client_stop(c);
    return NULL;
}

/* ---- watchdog and progress ------------------------------------------------------------------ */

typedef struct watchdog {
    load_client *clients;
    const flags *flags;
    uint64_t started_ns;
    atomic_bool stop;
    pthread_t thread;
} watchdog;

static void client_outstanding(load_client *c, FILE *out) {
    pthread_mutex_lock(&c->mutex);
    fprintf(out, "twin-load: client %" PRIu32 ": %s, generation %" PRIu32 ", submitted %" PRIu32
            "/%" PRIu32 ", completed %" PRIu32 ", outstanding %" PRIu32 " (evicted=%s, "
            "unresolved evictions %" PRIu32 ")\n",
            c->index, c->phase, c->generation, c->submitted, c->flags->packets, c->completed,
            c->inflight, c->evicted ? "yes" : "no", c->unresolved_count);
    uint32_t shown = 0;
    for (uint32_t i = 0; i < c->submitted && shown < TWIN_LOAD_PROBLEMS_SHOWN; i++) {
        load_packet *p = &c->packets[i];
        if (p->completions != 0) continue;
        fprintf(out, "twin-load:   packet %" PRIu32 " %s (%" PRIu32 " bytes): not completed\n",
                p->number, tw_operation_name((tw_operation)p->operation), p->packet.data_size);
        shown++;
    }
    pthread_mutex_unlock(&c->mutex);
}

static void *watchdog_main(void *argument) {
    watchdog *w = argument;
    uint64_t deadline_ns = (uint64_t)w->flags->deadline_s * NS_PER_S;
    uint64_t total = (uint64_t)w->flags->clients * w->flags->packets;
    uint64_t printed_ns = now_ns();
    uint64_t printed_completed = 0;
    while (!atomic_load(&w->stop)) {
        struct timespec tick = {.tv_sec = 0, .tv_nsec = TWIN_LOAD_WATCHDOG_TICK_NS};
        nanosleep(&tick, NULL);
        uint64_t now = now_ns();
        uint64_t completed = atomic_load(&completed_all);
        if (!w->flags->quiet && now - printed_ns >= TWIN_LOAD_PROGRESS_INTERVAL_NS) {
            double seconds = (double)(now - printed_ns) / (double)NS_PER_S;
            fprintf(stderr, "twin-load: progress %" PRIu64 "/%" PRIu64 " packets completed, %.0f/s, "
                    "%.1f s elapsed\n", completed, total,
                    (double)(completed - printed_completed) / seconds,
                    (double)(now - w->started_ns) / (double)NS_PER_S);
            printed_ns = now;
            printed_completed = completed;
        }
        uint64_t last = atomic_load(&progress_ns);
        if (now > last && now - last > deadline_ns) {
            fprintf(stderr, "twin-load: hang: no packet completed for %" PRIu32 " s (%" PRIu64 "/%"
                    PRIu64 " completed); outstanding per client:\n",
                    w->flags->deadline_s, completed, total);
            for (uint32_t i = 0; i < w->flags->clients; i++) client_outstanding(&w->clients[i], stderr);
            fflush(stderr);
            fflush(stdout);
            _exit(1);
        }
    }
    return NULL;
}

/* ---- main ------------------------------------------------------------------------------------- */

int main(int argc, char **argv) {
    flags f;
    int parsed = parse_flags(argc, argv, &f);
    if (parsed >= 0) return parsed;
    TW_ASSERT(f.clients >= 1 && f.packets >= 1 && f.inflight >= 1);

    load_client *clients = calloc(f.clients, sizeof(load_client));
    if (clients == NULL) {
        fprintf(stderr, "twin-load: out of memory for %" PRIu32 " clients\n", f.clients);
        return 1;
    }
    /* The seed draws every packet; a per-run nonce in the ids keeps them fresh when runs
     * share a server (a client id that still has a session there would have its register
     * ignored, and reused object ids would exist already). */
    uint64_t run_nonce = splitmix64(now_ns() ^ ((uint64_t)getpid() << 32));
    uint64_t id_seed = splitmix64(f.seed ^ run_nonce);
    for (uint32_t i = 0; i < f.clients; i++) {
        load_client *c = &clients[i];
        c->index = i;
        c->flags = &f;
        c->phase = "starting";
        pthread_mutex_init(&c->mutex, NULL);
        pthread_cond_init(&c->changed, NULL);
        c->packets = calloc(f.packets, sizeof(load_packet));
        c->unresolved = calloc(f.packets, sizeof(uint32_t));
        if (c->packets == NULL || c->unresolved == NULL) {
            fprintf(stderr, "twin-load: out of memory for %" PRIu32 " packets of client %" PRIu32 "\n",
                    f.packets, i);
            return 1;
        }
        if (f.check == check_model) {
            uint64_t objects = (uint64_t)f.packets * TWIN_LOAD_EVENTS_MAX;
            if (objects > UINT32_MAX) objects = UINT32_MAX;
            c->model = tw_model_ledger_new((uint32_t)objects, (uint32_t)objects);
            if (c->model == NULL) {
                fprintf(stderr, "twin-load: out of memory for client %" PRIu32 "'s model of %"
                        PRIu64 " objects\n", i, objects);
                return 1;
            }
        }
        tw_pcg32_seed(&c->rng, f.seed, i);
        c->account_next = 1;
        c->transfer_next = 1;
        /* Ids {number, high}: high differs per client and per seed, never 0 or all ones. */
        c->id_high.high = (id_seed & ~0xffffull) | (uint64_t)(i + 1);
        c->client_id_high = splitmix64(id_seed ^ 0x636c69656e74ull);
    }

    uint64_t started = now_ns();
    atomic_store(&progress_ns, started);
    watchdog w = {.clients = clients, .flags = &f, .started_ns = started};
    atomic_store(&w.stop, false);
    if (pthread_create(&w.thread, NULL, watchdog_main, &w) != 0) {
        fprintf(stderr, "twin-load: cannot start the watchdog thread\n");
        return 1;
    }
    for (uint32_t i = 0; i < f.clients; i++) {
        int error = pthread_create(&clients[i].worker, NULL, worker_main, &clients[i]);
        if (error != 0) {
            fprintf(stderr, "twin-load: cannot start client %" PRIu32 "'s thread: %s\n", i,
                    strerror(error));
            return 1;
        }
    }
    for (uint32_t i = 0; i < f.clients; i++) pthread_join(clients[i].worker, NULL);
    uint64_t elapsed_ns = now_ns() - started;
    atomic_store(&w.stop, true);
    pthread_join(w.thread, NULL);

    uint64_t statuses[TW_PACKET_STATUS_COUNT] = {0};
    uint64_t resolved = 0, resolved_applied = 0, checked = 0, mismatches = 0, total = 0;
    for (uint32_t i = 0; i < f.clients; i++) {
        load_client *c = &clients[i];
        for (uint32_t s = 0; s < TW_PACKET_STATUS_COUNT; s++) statuses[s] += c->statuses[s];
        resolved += c->resolved_evictions;
        resolved_applied += c->resolved_applied;
        checked += c->replies_checked;
        mismatches += c->mismatches;
        for (uint32_t n = 0; n < f.packets; n++) {
            if (c->packets[n].completions != 1) {
                problem("client %" PRIu32 " packet %" PRIu32 " completed %" PRIu32 " times, not once",
                        i, n, c->packets[n].completions);
            }
            total += c->packets[n].completions;
        }
    }
    if (f.plant_wrong_model && !atomic_load(&planted_used)) {
        problem("%s", "--plant-wrong-model: no ok reply came to corrupt the model's answer for");
    }
    double seconds = (double)elapsed_ns / (double)NS_PER_S;
    printf("twin-load: clients=%" PRIu32 " packets=%" PRIu64 " ok=%" PRIu64 " evicted=%" PRIu64,
           f.clients, (uint64_t)f.clients * f.packets, statuses[tw_packet_ok],
           statuses[tw_packet_client_evicted]);
    for (uint32_t s = 0; s < TW_PACKET_STATUS_COUNT; s++) {
        if (s == tw_packet_ok || s == tw_packet_client_evicted) continue;
        printf(" %s=%" PRIu64, tw_packet_status_name((tw_packet_status)s), statuses[s]);
    }
    printf(" resolved_evictions=%" PRIu64 " replies_checked=%" PRIu64 " mismatches=%" PRIu64
           " elapsed_ms=%" PRIu64 " packets_per_s=%.0f\n",
           resolved, checked, mismatches, (uint64_t)(elapsed_ns / NS_PER_MS),
           seconds > 0 ? (double)total / seconds : 0.0);
    fflush(stdout);
    if (!f.quiet && resolved > 0) {
        fprintf(stderr, "twin-load: evicted creates resolved: %" PRIu64 " applied, %" PRIu64
                " not applied\n", resolved_applied, resolved - resolved_applied);
    }

    uint64_t count = problems_counted();
    for (uint64_t i = 0; i < count && i < TWIN_LOAD_PROBLEMS_SHOWN; i++) {
        fprintf(stderr, "twin-load: %s\n", problems[i]);
    }
    if (count > TWIN_LOAD_PROBLEMS_SHOWN) {
        fprintf(stderr, "twin-load: ... and %" PRIu64 " more problems\n",
                count - TWIN_LOAD_PROBLEMS_SHOWN);
    }
    for (uint32_t i = 0; i < f.clients; i++) {
        if (clients[i].model != NULL) tw_model_ledger_free(clients[i].model);
        for (uint32_t n = 0; n < f.packets; n++) free(clients[i].packets[n].data);
        free(clients[i].packets);
        free(clients[i].unresolved);
        pthread_mutex_destroy(&clients[i].mutex);
        pthread_cond_destroy(&clients[i].changed);
    }
    free(clients);
    return count == 0 ? 0 : 1;
}
