/* twin tests: packets submitted to a tw_client (see client_packets.h). */
#include <stdio.h>
#include <string.h>

#include <twin/assert.h>
#include <twin/os.h>

#include "client_packets.h"

static _Thread_local char problem[512]; /* tw_panic keeps the pointer; one per thread */

void tw_test_packet_init(tw_test_packet *p, tw_test_waiter *waiter, uint32_t number,
                         uint8_t operation, uint32_t data_size) {
    TW_ASSERT(p != NULL && data_size <= TW_TEST_PACKET_DATA_MAX);
    p->waiter = waiter;
    p->on_complete = NULL;
    p->context = NULL;
    p->number = number;
    p->completions = 0;
    p->status = 0xff;
    p->timestamp = 0;
    p->result_null = false;
    p->result_size = 0;
    p->packet = (tw_packet){.user_data = p, .data = p->data, .data_size = data_size,
                            .user_tag = (uint16_t)number, .operation = operation};
}

void tw_test_packet_completed(uintptr_t context, tw_packet *packet, uint64_t timestamp,
                              const uint8_t *result, uint32_t result_size) {
    (void)context;
    tw_test_packet *p = packet->user_data;
    TW_ASSERT(p != NULL && &p->packet == packet);
    p->completions++;
    if (p->completions > 1) {
        snprintf(problem, sizeof(problem), "packet %u completed %u times (status %s, then %s)",
                 p->number, p->completions, tw_packet_status_name((tw_packet_status)p->status),
                 tw_packet_status_name((tw_packet_status)packet->status));
        TW_ASSERT_MSG(false, problem);
    }
    TW_ASSERT_MSG(result_size <= TW_TEST_PACKET_DATA_MAX, "a result larger than any reply");
    p->status = packet->status;
    p->timestamp = timestamp;
    p->result_null = result == NULL;
    p->result_size = result_size;
    if (result != NULL && result_size > 0) memcpy(p->result, result, result_size);
    if (p->on_complete != NULL) p->on_complete(p);
    tw_test_waiter *waiter = p->waiter; /* p may be reused once the count moves */
    (void)tw_atomic_fetch_add_u32(&waiter->completed, 1, tw_release);
    (void)tw_futex_wake(&waiter->completed, TW_FUTEX_WAKE_ALL);
}

void tw_test_packet_submit(tw_client *client, tw_test_packet *p) {
    tw_client_status status = tw_client_submit(client, &p->packet);
    TW_ASSERT_MSG(status == tw_client_ok, tw_client_status_name(status));
}

void tw_test_wait(tw_test_waiter *waiter, uint32_t count, const char *what) {
    uint32_t seen = tw_atomic_load_u32(&waiter->completed, tw_acquire);
    uint64_t deadline_ns = tw_clock_monotonic_ns() + TW_TEST_WAIT_NS;
    while (seen < count) {
        uint64_t now_ns = tw_clock_monotonic_ns();
        if (now_ns >= deadline_ns) {
            snprintf(problem, sizeof(problem),
                     "%s: %u of %u packets completed; the others never completed (no completion "
                     "for %llu s)",
                     what, seen, count, (unsigned long long)(TW_TEST_WAIT_NS / 1000000000u));
            TW_ASSERT_MSG(false, problem);
        }
        (void)tw_futex_wait(&waiter->completed, seen, deadline_ns - now_ns);
        uint32_t now_seen = tw_atomic_load_u32(&waiter->completed, tw_acquire);
        if (now_seen != seen) deadline_ns = tw_clock_monotonic_ns() + TW_TEST_WAIT_NS;
        seen = now_seen;
    }
}

void tw_test_packet_expect(const tw_test_packet *p, tw_packet_status status, const char *what) {
    if (p->completions == 1 && p->status == status &&
        (status == tw_packet_ok ? !p->result_null && p->timestamp > 0
                                : p->result_null && p->result_size == 0 && p->timestamp == 0)) {
        return;
    }
    snprintf(problem, sizeof(problem),
             "%s: packet %u completed %u times with status %s (result %s, %u bytes, timestamp "
             "%llu); expected once with %s",
             what, p->number, p->completions, tw_packet_status_name((tw_packet_status)p->status),
             p->result_null ? "NULL" : "given", p->result_size, (unsigned long long)p->timestamp,
             tw_packet_status_name(status));
    TW_ASSERT_MSG(false, problem);
}

void tw_test_sleep(uint64_t duration_ns) {
    tw_atomic_u32 never = TW_ATOMIC_INIT(0); /* nobody wakes it: only the timeout ends a wait */
    uint64_t until_ns = tw_clock_monotonic_ns() + duration_ns;
    for (uint64_t now_ns = tw_clock_monotonic_ns(); now_ns < until_ns; now_ns = tw_clock_monotonic_ns()) {
        (void)tw_futex_wait(&never, 0, until_ns - now_ns);
    }
}
