/* A hang on purpose, for the real runner's watchdog (tests/support/watchdog_real.c):
 *
 *   hang_real futex    a thread named 'stuck-worker' waits on a futex nobody wakes; the main
 *                      thread joins it in phase "joining the stuck worker"
 *   hang_real client   a client whose server accepted nothing: its IO thread ('client-io')
 *                      waits in io_uring, the main thread waits on a futex for packet 1's
 *                      reply in phase "waiting for packet 1's reply"
 *
 * Never returns on its own: tests/robustness/hang_test.sh runs it with TWIN_TEST_HANG_S=1
 * and checks that the watchdog ends it with TW_TEST_EXIT_HANG, naming the phase and what each
 * thread waits on. */
#define _GNU_SOURCE
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <twin/assert.h>
#include <twin/atomic.h>
#include <twin/client.h>
#include <twin/os.h>

#include "twin_test.h"

#define HANG_LISTEN_BACKLOG 4

static tw_atomic_u32 never_woken;
static tw_atomic_u32 reply_arrived;

static void stuck_worker(void *unused) {
    (void)unused;
    for (;;) tw_futex_wait(&never_woken, 0, TW_TIMEOUT_NONE);
}

static void hang_futex(void) {
    tw_thread thread;
    tw_thread_options options = {.name = "stuck-worker"};
    TW_ASSERT(tw_thread_spawn(&thread, &options, stuck_worker, NULL) == tw_os_ok);
    tw_test_phase("joining the stuck worker");
    tw_thread_join(thread);
    TW_ASSERT_MSG(false, "the stuck worker returned");
}

static void on_completion(uintptr_t context, tw_packet *packet, uint64_t timestamp,
                          const uint8_t *result, uint32_t result_size) {
    (void)context, (void)packet, (void)timestamp, (void)result, (void)result_size;
    tw_atomic_store_u32(&reply_arrived, 1, tw_release);
    tw_futex_wake(&reply_arrived, 1);
}

static void hang_client(void) {
    /* A listener that never accepts: connections complete in its backlog, nothing answers. */
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    TW_ASSERT(listener >= 0);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    TW_ASSERT(bind(listener, (struct sockaddr *)&address, sizeof(address)) == 0);
    TW_ASSERT(listen(listener, HANG_LISTEN_BACKLOG) == 0);
    socklen_t length = sizeof(address);
    TW_ASSERT(getsockname(listener, (struct sockaddr *)&address, &length) == 0);
    char addresses[32];
    snprintf(addresses, sizeof(addresses), "127.0.0.1:%u", (unsigned)ntohs(address.sin_port));

    tw_client client;
    tw_u128 cluster = {0};
    tw_client_init_status status = tw_client_init(&client, cluster, addresses, 0, on_completion, NULL);
    TW_ASSERT_MSG(status == tw_client_init_ok, "the client could not start");
    static const char text[] = "hello";
    tw_packet packet = {.data = text, .data_size = sizeof(text) - 1, .operation = tw_operation_echo};
    TW_ASSERT(tw_client_submit(&client, &packet) == tw_client_ok);
    tw_test_phase("waiting for packet 1's reply");
    while (tw_atomic_load_u32(&reply_arrived, tw_acquire) == 0) tw_futex_wait(&reply_arrived, 0, TW_TIMEOUT_NONE);
    TW_ASSERT_MSG(false, "a reply arrived from a server that accepted nothing");
}

int main(int argc, char **argv) {
    if (argc != 2 || (strcmp(argv[1], "futex") != 0 && strcmp(argv[1], "client") != 0)) {
        fprintf(stderr, "usage: %s futex|client\n", argv[0]);
        return 2;
    }
    tw_test_watchdog_start("hang_real");
    if (strcmp(argv[1], "futex") == 0) hang_futex();
    else hang_client();
    return 1;
}
