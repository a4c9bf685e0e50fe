/* twin harness: a tw_server on its own thread (see server_thread.h). */
#include <stdio.h>
#include <string.h>

#include <twin/assert.h>

#include "server_thread.h"

#define SERVER_THREAD_PROBLEM_SIZE 256u

static char problem[SERVER_THREAD_PROBLEM_SIZE];

static tw_action server_stop_cb(void *userdata, tw_loop *loop, tw_completion *c, tw_result result) {
    (void)loop;
    (void)c;
    tw_test_server *s = userdata;
    TW_ASSERT(result.error == tw_loop_ok);
    tw_server_stop(s->server);
    return tw_disarm;
}

/* The server thread could not start: say so and leave (nothing is left allocated). */
static void server_start_failed(tw_test_server *s, tw_server_error error) {
    TW_ASSERT(error != tw_server_ok);
    s->start_error = error;
    tw_atomic_store_u32(&s->ready, 2, tw_release);
    (void)tw_futex_wake(&s->ready, TW_FUTEX_WAKE_ALL);
}

static void server_main(void *arg) {
    tw_test_server *s = arg;
    tw_loop_error loop_error = tw_loop_init(&s->loop, NULL);
    if (loop_error != tw_loop_ok) {
        server_start_failed(s, tw_server_system_resources);
        return;
    }
    tw_address listen;
    TW_ASSERT(tw_address_parse("127.0.0.1:0", &listen) == tw_loop_ok);
    tw_loop_error listen_error = tw_loop_ok;
    tw_server_error error = tw_server_init(&s->server, s->loop, &listen, &s->options, &listen_error);
    if (error != tw_server_ok) {
        (void)snprintf(problem, sizeof(problem), "tw_server_init: %s (%s)", tw_server_error_name(error),
                       tw_loop_error_name(listen_error));
        tw_loop_deinit(s->loop);
        server_start_failed(s, error);
        return;
    }
    if (s->commit_observer != NULL) {
        tw_server_set_commit_observer(s->server, s->commit_observer, s->commit_context);
    }
    s->address = tw_server_address(s->server);
    tw_async_init(s->loop, &s->stop);
    tw_async_wait(s->loop, &s->stop, &s->c_stop, s, server_stop_cb);
    tw_atomic_store_u32(&s->ready, 1, tw_release);
    (void)tw_futex_wake(&s->ready, TW_FUTEX_WAKE_ALL);
    TW_ASSERT(tw_loop_run(s->loop, tw_run_until_done) == tw_loop_ok);
    s->stats = *tw_server_stats_get(s->server);
    s->sessions = tw_server_sessions(s->server);
    tw_server_deinit(s->server);
    tw_async_deinit(&s->stop); /* the stopping thread's notify may still be returning */
    tw_loop_deinit(s->loop);
}

void tw_test_server_start(tw_test_server *s, const tw_server_options *options) {
    tw_server_error error = tw_test_server_start_observed(s, options, NULL, NULL);
    TW_ASSERT_MSG(error == tw_server_ok, problem[0] != '\0' ? problem : tw_server_error_name(error));
}

tw_server_error tw_test_server_start_observed(tw_test_server *s, const tw_server_options *options,
                                              tw_server_commit_fn observer, void *context) {
    TW_ASSERT(s != NULL && options != NULL);
    const char *options_problem = tw_server_options_check(options);
    TW_ASSERT_MSG(options_problem == NULL, options_problem);
    memset(s, 0, sizeof(*s));
    s->options = *options;
    s->commit_observer = observer;
    s->commit_context = context;
    problem[0] = '\0';
    tw_thread_options thread_options = {.name = "server"};
    if (tw_thread_spawn(&s->thread, &thread_options, server_main, s) != tw_os_ok) {
        return tw_server_system_resources;
    }
    while (tw_atomic_load_u32(&s->ready, tw_acquire) == 0) {
        (void)tw_futex_wait(&s->ready, 0, TW_TIMEOUT_NONE);
    }
    if (tw_atomic_load_u32(&s->ready, tw_acquire) == 2) {
        TW_ASSERT(tw_thread_join(s->thread) == tw_os_ok);
        return s->start_error;
    }
    return tw_server_ok;
}

void tw_test_server_stop(tw_test_server *s) {
    TW_ASSERT(s != NULL && tw_atomic_load_u32(&s->ready, tw_acquire) == 1);
    tw_async_notify(&s->stop);
    TW_ASSERT(tw_thread_join(s->thread) == tw_os_ok);
}
