/* twin tests: packets a test submits to a tw_client, and waiting for them.
 *
 * Each tw_test_packet records what its completion brought (status, timestamp, a copy of
 * the result bytes) and counts its completions (a second one fails the run). A waiter
 * counts completions across packets; tw_test_wait sleeps on it and fails the run, naming
 * what it waited for, when no packet completes for TW_TEST_WAIT_NS (loop time: virtual in
 * the sim), so a lost packet is a named failure, not a hang. */
#ifndef TWIN_TEST_CLIENT_PACKETS_H
#define TWIN_TEST_CLIENT_PACKETS_H

#include <stdbool.h>
#include <stdint.h>

#include <twin/atomic.h>
#include <twin/client.h>

#define TW_TEST_PACKET_DATA_MAX 4096u
#define TW_TEST_WAIT_NS (60ull * 1000u * 1000u * 1000u)

typedef struct tw_test_waiter {
    tw_atomic_u32 completed;
} tw_test_waiter;

typedef struct tw_test_packet tw_test_packet;
struct tw_test_packet {
    tw_packet packet;
    tw_test_waiter *waiter;
    void (*on_complete)(tw_test_packet *packet); /* optional: runs in the callback, last */
    void *context;                               /* for on_complete */
    uint32_t number;                             /* for messages */
    uint8_t data[TW_TEST_PACKET_DATA_MAX];
    /* Written by the completion callback. */
    uint32_t completions;
    uint8_t status;
    uint64_t timestamp;
    bool result_null;
    uint32_t result_size;
    uint8_t result[TW_TEST_PACKET_DATA_MAX];
};

/* Fills the packet's public fields (data from its own buffer, data_size bytes). */
void tw_test_packet_init(tw_test_packet *p, tw_test_waiter *waiter, uint32_t number,
                         uint8_t operation, uint32_t data_size);
/* The tw_client_completion_fn for tw_test_packets. */
void tw_test_packet_completed(uintptr_t context, tw_packet *packet, uint64_t timestamp,
                              const uint8_t *result, uint32_t result_size);
/* Submits and asserts tw_client_ok. */
void tw_test_packet_submit(tw_client *client, tw_test_packet *p);
/* Waits until count packets of the waiter have completed. */
void tw_test_wait(tw_test_waiter *waiter, uint32_t count, const char *what);
/* Sleeps for duration_ns (virtual time in the sim: other fibers and timers run meanwhile). */
void tw_test_sleep(uint64_t duration_ns);
/* The packet completed once with status (and, unless ok, with no result). */
void tw_test_packet_expect(const tw_test_packet *p, tw_packet_status status, const char *what);

#endif
