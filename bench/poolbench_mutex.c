/* twin-poolbench-mutex: the two poolbench tests (see poolbench_common.h) on a plain pool:
 * ncpu pthreads sharing one mutex + one condvar and an intrusive singly-linked FIFO of task
 * structs. Idle workers wait on the condvar; schedule locks, appends, signals one waiter if
 * any are waiting, unlocks. Shutdown: a flag + broadcast, then join every thread. */
#include <pthread.h>
#include <stdbool.h>

#include "poolbench_common.h"

struct mpool {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    pb_task *head; /* FIFO: pop at head, append at tail */
    pb_task *tail;
    unsigned waiters; /* workers blocked in pthread_cond_wait */
    bool stop;
    unsigned nthreads;
    pthread_t *threads;
};

static struct mpool pool;

static void mpool_schedule(struct mpool *p, pb_task *t) {
    t->next = NULL;
    BENCH_CHECK_ERRNUM(pthread_mutex_lock(&p->lock), "pthread_mutex_lock");
    if (p->tail != NULL) {
        p->tail->next = t;
    } else {
        p->head = t;
    }
    p->tail = t;
    if (p->waiters > 0) BENCH_CHECK_ERRNUM(pthread_cond_signal(&p->cond), "pthread_cond_signal");
    BENCH_CHECK_ERRNUM(pthread_mutex_unlock(&p->lock), "pthread_mutex_unlock");
}

static void *mpool_worker(void *arg) {
    struct mpool *p = arg;
    BENCH_CHECK_ERRNUM(pthread_mutex_lock(&p->lock), "pthread_mutex_lock");
    for (;;) {
        while (p->head == NULL && !p->stop) {
            p->waiters++;
            BENCH_CHECK_ERRNUM(pthread_cond_wait(&p->cond, &p->lock), "pthread_cond_wait");
            p->waiters--;
        }
        if (p->head == NULL) break; /* stopping and nothing left to run */
        pb_task *t = p->head;
        p->head = t->next;
        if (p->head == NULL) p->tail = NULL;
        BENCH_CHECK_ERRNUM(pthread_mutex_unlock(&p->lock), "pthread_mutex_unlock");
        t->fn(t); /* t may be reused or freed once fn has returned: not touched again */
        BENCH_CHECK_ERRNUM(pthread_mutex_lock(&p->lock), "pthread_mutex_lock");
    }
    BENCH_CHECK_ERRNUM(pthread_mutex_unlock(&p->lock), "pthread_mutex_unlock");
    return NULL;
}

static void mpool_init(struct mpool *p, unsigned nthreads) {
    BENCH_CHECK_ERRNUM(pthread_mutex_init(&p->lock, NULL), "pthread_mutex_init");
    BENCH_CHECK_ERRNUM(pthread_cond_init(&p->cond, NULL), "pthread_cond_init");
    p->head = p->tail = NULL;
    p->waiters = 0;
    p->stop = false;
    p->nthreads = nthreads;
    p->threads = calloc(nthreads, sizeof(pthread_t));
    BENCH_CHECK(p->threads != NULL);
    for (unsigned i = 0; i < nthreads; i++)
        BENCH_CHECK_ERRNUM(pthread_create(&p->threads[i], NULL, mpool_worker, p), "pthread_create");
}

static void mpool_shutdown(struct mpool *p) {
    BENCH_CHECK_ERRNUM(pthread_mutex_lock(&p->lock), "pthread_mutex_lock");
    p->stop = true;
    BENCH_CHECK_ERRNUM(pthread_cond_broadcast(&p->cond), "pthread_cond_broadcast");
    BENCH_CHECK_ERRNUM(pthread_mutex_unlock(&p->lock), "pthread_mutex_unlock");
    for (unsigned i = 0; i < p->nthreads; i++)
        BENCH_CHECK_ERRNUM(pthread_join(p->threads[i], NULL), "pthread_join");
    free(p->threads);
    BENCH_CHECK(p->head == NULL);
    BENCH_CHECK_ERRNUM(pthread_cond_destroy(&p->cond), "pthread_cond_destroy");
    BENCH_CHECK_ERRNUM(pthread_mutex_destroy(&p->lock), "pthread_mutex_destroy");
}

static void schedule(pb_task *t) { mpool_schedule(&pool, t); }

int main(int argc, char **argv) {
    bench_prog = "twin-poolbench-mutex";
    struct pb_opts o = pb_parse_args(argc, argv);
    mpool_init(&pool, pb_ncpu());
    pb_schedule = schedule;
    if (o.tests & PB_TEST_OUTSIDE) pb_run_outside_test("mutex", o.tasks);
    if (o.tests & PB_TEST_FANOUT) pb_run_fanout_test("mutex", o.depth);
    mpool_shutdown(&pool);
    pb_tasks_free();
    return 0;
}
