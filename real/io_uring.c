/* twin real build: the IO backend over io_uring, through liburing.
 *
 * Sockets are blocking (SOCK_CLOEXEC): io_uring polls them internally, and a blocking
 * socket never completes with EAGAIN. Sends use MSG_NOSIGNAL (EPIPE, not SIGPIPE).
 * When the submission queue is full, tw_io_submit submits what is queued and retries once;
 * if the ring is still full it returns false and the loop keeps the completion on its
 * overflow list until after the next wait. Completions are reaped in batches of
 * TW_IO_CQE_BATCH. tw_io_wake writes an eventfd that has a read always pending in the
 * ring. Timers are not here: the loop keeps them and passes the next deadline as the
 * wait's timeout (see src/loop.c for why). */
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <twin/assert.h>
#include <twin/io.h>
#include <twin/real_waits.h>

#define TW_IO_CQE_BATCH 128u
#define TW_IO_ENTRIES_MAX 4096u

struct tw_io {
    struct io_uring ring;
    bool enabled;          /* R_DISABLED rings are enabled by the first thread that runs them */
    int event_fd;
    uint64_t event_value;  /* the eventfd read's buffer */
    bool event_read_armed;
    uint32_t submitted;    /* operations the kernel owns (not counting the eventfd read) */
};

/* user_data of internal operations: never a completion's address. */
#define TW_IO_EVENT_TAG ((uint64_t)1)  /* the eventfd read */
#define TW_IO_IGNORE_TAG ((uint64_t)2) /* the cancel before a close */

_Static_assert(sizeof(struct sockaddr_in6) + sizeof(socklen_t) <= TW_COMPLETION_BACKEND_SIZE,
               "a completion's backend area holds a socket address and its length");

typedef struct address_space {
    struct sockaddr_in6 address; /* large enough for IPv4 too */
    socklen_t length;
} address_space;

static address_space *address_space_of(tw_completion *completion) {
    return (address_space *)(void *)completion->backend;
}

/* A recv's backend area remembers whether its last recv left the socket empty (the kernel
 * says so: no IORING_CQE_F_SOCK_NONEMPTY). Then the next recv on that socket is submitted
 * with IORING_RECVSEND_POLL_FIRST: it waits for data at once instead of first trying a
 * recv that fails with EAGAIN and then waiting. In the two-thread ping-pong that is 2 of
 * the 4 socket reads per round trip (sock:sock_recv_length 4.00 -> 2.00, as with blocking
 * sockets). A completion whose area holds anything else (a fresh one, or one last used for
 * another operation) gets the plain recv: the hint only picks between two correct ways. */
typedef struct recv_hint {
    uint32_t magic;  /* TW_IO_RECV_DRAINED, or anything else: no hint */
    tw_fd socket;    /* the socket the last recv read */
} recv_hint;

#define TW_IO_RECV_DRAINED UINT32_C(0x72656376) /* the last recv left the socket empty */

_Static_assert(sizeof(recv_hint) <= TW_COMPLETION_BACKEND_SIZE, "a completion's backend area holds a recv hint");

static recv_hint *recv_hint_of(tw_completion *completion) {
    TW_ASSERT(completion->op == tw_op_recv);
    return (recv_hint *)(void *)completion->backend;
}

static socklen_t to_sockaddr(const tw_address *address, struct sockaddr_in6 *storage) {
    memset(storage, 0, sizeof(*storage));
    if (address->family == 4) {
        struct sockaddr_in *v4 = (struct sockaddr_in *)(void *)storage;
        v4->sin_family = AF_INET;
        v4->sin_port = htons(address->port);
        memcpy(&v4->sin_addr, address->ip, 4);
        return sizeof(*v4);
    }
    storage->sin6_family = AF_INET6;
    storage->sin6_port = htons(address->port);
    memcpy(&storage->sin6_addr, address->ip, 16);
    return sizeof(*storage);
}

static void from_sockaddr(const struct sockaddr_in6 *storage, tw_address *address) {
    memset(address, 0, sizeof(*address));
    if (storage->sin6_family == AF_INET) {
        const struct sockaddr_in *v4 = (const struct sockaddr_in *)(const void *)storage;
        address->family = 4;
        address->port = ntohs(v4->sin_port);
        memcpy(address->ip, &v4->sin_addr, 4);
    } else {
        address->family = 6;
        address->port = ntohs(storage->sin6_port);
        memcpy(address->ip, &storage->sin6_addr, 16);
    }
}

static tw_loop_error error_of(int errno_value) {
    switch (errno_value) {
    case ECANCELED: return tw_loop_canceled;
    case ECONNRESET: return tw_loop_reset;
    case ECONNREFUSED: return tw_loop_refused;
    case ETIMEDOUT: return tw_loop_timed_out;
    case EPIPE: return tw_loop_broken_pipe;
    case ENOTCONN: return tw_loop_not_connected;
    case EBADF:
    case ENOTSOCK: return tw_loop_bad_socket;
    case EADDRINUSE: return tw_loop_address_in_use;
    case EADDRNOTAVAIL:
    case EAFNOSUPPORT:
    case EINVAL: return tw_loop_address_invalid;
    case ENETUNREACH:
    case EHOSTUNREACH: return tw_loop_unreachable;
    case ENOENT: return tw_loop_not_found;
    case EALREADY: return tw_loop_in_progress;
    case EMFILE:
    case ENFILE:
    case ENOMEM:
    case ENOBUFS: return tw_loop_system_resources;
    default: return tw_loop_unexpected;
    }
}

static tw_result result_of_errno(int errno_value) {
    return (tw_result){.error = error_of(errno_value), .os_error = errno_value, .value = 0};
}

/* Why io_uring_setup refused: ENOSYS (no io_uring in this kernel, or a seccomp filter
 * that says so) and EPERM (the io_uring_disabled sysctl, or seccomp) mean the loop cannot
 * work here at all; the rest of the documented errors are resources running out. */
static tw_loop_error init_error_of(int errno_value) {
    switch (errno_value) {
    case ENOSYS:
    case EPERM: return tw_loop_unsupported;
    case EMFILE:
    case ENFILE:
    case ENOMEM:
    case EAGAIN: return tw_loop_system_resources;
    default: return tw_loop_unexpected;
    }
}

tw_loop_error tw_io_init(tw_io **io_out, uint32_t entries) {
    TW_ASSERT(io_out != NULL);
    *io_out = NULL;
    if (entries == 0 || entries > TW_IO_ENTRIES_MAX) return tw_loop_system_resources;
    tw_io *io = tw_allocate(sizeof(*io));
    if (io == NULL) return tw_loop_system_resources;
    /* One thread runs a loop, so the ring can be single-issuer with deferred task work:
     * completions are processed when that thread asks for events, not by interrupting it.
     * A loop may be made on one thread and run on another, so the ring starts disabled and
     * the first thread to submit enables it (and becomes its issuer). Kernels before 6.1
     * refuse these flags: then the ring is a plain one. */
    unsigned flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_R_DISABLED;
    int rc = io_uring_queue_init(entries, &io->ring, flags);
    if (rc == -EINVAL) {
        rc = io_uring_queue_init(entries, &io->ring, 0);
        io->enabled = true;
    }
    if (rc < 0) {
        tw_free(io);
        return init_error_of(-rc);
    }
    io->event_fd = eventfd(0, EFD_CLOEXEC);
    if (io->event_fd < 0) {
        io_uring_queue_exit(&io->ring);
        tw_free(io);
        return tw_loop_system_resources;
    }
    *io_out = io;
    return tw_loop_ok;
}

void tw_io_deinit(tw_io *io) {
    TW_ASSERT(io != NULL);
    io_uring_queue_exit(&io->ring);
    close(io->event_fd);
    tw_free(io);
}

static void enable(tw_io *io) {
    if (io->enabled) return;
    /* io_uring_enable_rings() is declared by Debian 12's liburing 2.3 but not exported
     * (it came in 2.4), so this is its one register call, made directly. */
    long rc = syscall(__NR_io_uring_register, io->ring.ring_fd, IORING_REGISTER_ENABLE_RINGS, NULL, 0);
    TW_ASSERT_MSG(rc == 0, "io_uring: cannot enable the ring");
    io->enabled = true;
}

static struct io_uring_sqe *get_sqe(tw_io *io) {
    enable(io);
    struct io_uring_sqe *sqe = io_uring_get_sqe(&io->ring);
    if (sqe != NULL) return sqe;
    /* Full: hand the kernel what is queued, then try once more. */
    int rc;
    do rc = io_uring_submit(&io->ring);
    while (rc == -EINTR);
    return io_uring_get_sqe(&io->ring);
}

/* A close cancels every operation this ring has pending on the socket first (they
 * complete with canceled), as in the sim: IORING_OP_CLOSE alone would leave a pending recv
 * holding the file open, so the peer would never see the close. The cancel is hard-linked,
 * so the close runs even when there is nothing to cancel. */
static bool submit_close(tw_io *io, tw_completion *completion) {
    enable(io);
    if (io_uring_sq_space_left(&io->ring) < 2) {
        int rc;
        do rc = io_uring_submit(&io->ring);
        while (rc == -EINTR);
        if (io_uring_sq_space_left(&io->ring) < 2) return false;
    }
    struct io_uring_sqe *cancel = io_uring_get_sqe(&io->ring);
    struct io_uring_sqe *close_sqe = io_uring_get_sqe(&io->ring);
    TW_ASSERT(cancel != NULL && close_sqe != NULL);
    io_uring_prep_cancel_fd(cancel, completion->args.close.socket, IORING_ASYNC_CANCEL_ALL);
    io_uring_sqe_set_flags(cancel, IOSQE_IO_HARDLINK);
    io_uring_sqe_set_data64(cancel, TW_IO_IGNORE_TAG);
    io_uring_prep_close(close_sqe, completion->args.close.socket);
    io_uring_sqe_set_data64(close_sqe, (uint64_t)(uintptr_t)completion);
    io->submitted++;
    return true;
}

bool tw_io_submit(tw_io *io, tw_completion *completion) {
    TW_ASSERT(io != NULL && completion != NULL);
    if (completion->op == tw_op_close) return submit_close(io, completion);
    struct io_uring_sqe *sqe = get_sqe(io);
    if (sqe == NULL) return false;
    address_space *space = address_space_of(completion);
    switch (completion->op) {
    case tw_op_accept:
        space->length = sizeof(space->address);
        io_uring_prep_accept(sqe, completion->args.accept.socket,
                             (struct sockaddr *)&space->address, &space->length, SOCK_CLOEXEC);
        break;
    case tw_op_connect:
        space->length = to_sockaddr(&completion->args.connect.address, &space->address);
        io_uring_prep_connect(sqe, completion->args.connect.socket,
                              (struct sockaddr *)&space->address, space->length);
        break;
    case tw_op_recv:
        io_uring_prep_recv(sqe, completion->args.recv.socket, completion->args.recv.buffer,
                           completion->args.recv.size, 0);
        if (recv_hint_of(completion)->magic == TW_IO_RECV_DRAINED &&
            recv_hint_of(completion)->socket == completion->args.recv.socket) {
            sqe->ioprio |= IORING_RECVSEND_POLL_FIRST;
        }
        break;
    case tw_op_send:
        io_uring_prep_send(sqe, completion->args.send.socket, completion->args.send.buffer,
                           completion->args.send.size, MSG_NOSIGNAL);
        break;
    case tw_op_shutdown:
        io_uring_prep_shutdown(sqe, completion->args.shutdown.socket, SHUT_WR);
        break;
    case tw_op_close: /* submit_close */
    case tw_op_cancel:
        io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)completion->args.cancel.target, 0);
        break;
    case tw_op_noop:
    case tw_op_timer:
    case tw_op_async_wait:
        tw_panic(__FILE__, __LINE__, "tw_io_submit: not an IO operation");
    }
    io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)completion);
    io->submitted++;
    return true;
}

static void arm_event_read(tw_io *io) {
    if (io->event_read_armed) return;
    struct io_uring_sqe *sqe = get_sqe(io);
    if (sqe == NULL) return; /* the ring is full of work: a wake is not needed to make progress */
    io_uring_prep_read(sqe, io->event_fd, &io->event_value, sizeof(io->event_value), 0);
    io_uring_sqe_set_data64(sqe, TW_IO_EVENT_TAG);
    io->event_read_armed = true;
}

/* Turns a CQE into a result, or returns false when the operation must simply be resubmitted
 * (EINTR on send or recv). */
static bool cqe_result(tw_completion *completion, int32_t res, tw_result *result) {
    if (res >= 0) {
        *result = (tw_result){.error = tw_loop_ok, .os_error = 0, .value = (uint64_t)res};
        return true;
    }
    if (res == -EINTR && (completion->op == tw_op_send || completion->op == tw_op_recv)) {
        return false;
    }
    *result = result_of_errno(-res);
    return true;
}

uint32_t tw_io_wait(tw_io *io, uint64_t timeout_ns, tw_io_complete_fn complete, void *context) {
    TW_ASSERT(io != NULL && complete != NULL);
    arm_event_read(io);
    int rc;
    enable(io);
    if (timeout_ns == 0) {
        do rc = io_uring_submit_and_get_events(&io->ring);
        while (rc == -EINTR);
    } else {
        struct io_uring_cqe *cqe = NULL;
        struct __kernel_timespec timeout = {.tv_sec = (long long)(timeout_ns / 1000000000u),
                                            .tv_nsec = (long long)(timeout_ns % 1000000000u)};
        tw_real_wait_begin("io_uring wait", io, "timeout_ns", timeout_ns);
        rc = io_uring_submit_and_wait_timeout(&io->ring, &cqe, 1,
                                              timeout_ns == TW_TIMEOUT_NONE ? NULL : &timeout, NULL);
        tw_real_wait_end();
        /* -ETIME: the timeout passed; -EINTR: a signal. Either way, reap what is there. */
        TW_ASSERT_MSG(rc >= 0 || rc == -ETIME || rc == -EINTR, "io_uring wait failed");
    }

    uint32_t reported = 0;
    struct io_uring_cqe *cqes[TW_IO_CQE_BATCH];
    for (;;) {
        unsigned count = io_uring_peek_batch_cqe(&io->ring, cqes, TW_IO_CQE_BATCH);
        if (count == 0) break;
        for (unsigned i = 0; i < count; i++) {
            uint64_t data = io_uring_cqe_get_data64(cqes[i]);
            int32_t res = cqes[i]->res;
            uint32_t flags = cqes[i]->flags;
            if (data == TW_IO_EVENT_TAG) {
                io->event_read_armed = false;
                continue;
            }
            if (data == TW_IO_IGNORE_TAG) continue;
            tw_completion *completion = (tw_completion *)(uintptr_t)data;
            TW_ASSERT(completion != NULL && io->submitted > 0);
            io->submitted--;
            if (completion->op == tw_op_recv) {
                bool drained = res > 0 && (flags & IORING_CQE_F_SOCK_NONEMPTY) == 0;
                *recv_hint_of(completion) = (recv_hint){
                    .magic = drained ? TW_IO_RECV_DRAINED : 0, .socket = completion->args.recv.socket};
            }
            tw_result result;
            if (!cqe_result(completion, res, &result)) {
                bool resubmitted = tw_io_submit(io, completion);
                TW_ASSERT(resubmitted); /* a slot was freed by this very completion's SQE */
                continue;
            }
            complete(context, completion, result);
            reported++;
        }
        io_uring_cq_advance(&io->ring, count);
        if (count < TW_IO_CQE_BATCH) break;
    }
    return reported;
}

void tw_io_wake(tw_io *io) {
    TW_ASSERT(io != NULL);
    uint64_t one = 1;
    ssize_t written;
    do written = write(io->event_fd, &one, sizeof(one));
    while (written < 0 && errno == EINTR);
    /* EAGAIN means the counter is saturated: a wake is pending anyway. */
    TW_ASSERT(written == sizeof(one) || (written < 0 && errno == EAGAIN));
}

/* ---- synchronous set-up ---- */

tw_loop_error tw_io_socket(tw_io *io, uint8_t family, tw_fd *fd) {
    TW_ASSERT(io != NULL && fd != NULL);
    if (family != 4 && family != 6) return tw_loop_address_invalid;
    int s = socket(family == 4 ? AF_INET : AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_TCP);
    if (s < 0) return error_of(errno);
    *fd = s;
    return tw_loop_ok;
}

tw_loop_error tw_io_bind(tw_io *io, tw_fd fd, const tw_address *address) {
    TW_ASSERT(io != NULL && address != NULL);
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0) return error_of(errno);
    struct sockaddr_in6 storage;
    socklen_t length = to_sockaddr(address, &storage);
    if (bind(fd, (struct sockaddr *)&storage, length) != 0) return error_of(errno);
    return tw_loop_ok;
}

tw_loop_error tw_io_listen(tw_io *io, tw_fd fd, uint32_t backlog) {
    TW_ASSERT(io != NULL);
    if (listen(fd, backlog > INT32_MAX ? INT32_MAX : (int)backlog) != 0) return error_of(errno);
    return tw_loop_ok;
}

tw_loop_error tw_io_local_address(tw_io *io, tw_fd fd, tw_address *address) {
    TW_ASSERT(io != NULL && address != NULL);
    struct sockaddr_in6 storage;
    socklen_t length = sizeof(storage);
    memset(&storage, 0, sizeof(storage));
    if (getsockname(fd, (struct sockaddr *)&storage, &length) != 0) return error_of(errno);
    from_sockaddr(&storage, address);
    return tw_loop_ok;
}

tw_loop_error tw_io_set_send_buffer(tw_io *io, tw_fd fd, uint32_t size_bytes) {
    TW_ASSERT(io != NULL);
    int size = size_bytes > INT32_MAX ? INT32_MAX : (int)size_bytes;
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size)) != 0) return error_of(errno);
    return tw_loop_ok;
}

tw_loop_error tw_io_set_no_delay(tw_io *io, tw_fd fd, bool no_delay) {
    TW_ASSERT(io != NULL);
    int value = no_delay ? 1 : 0;
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &value, sizeof(value)) != 0) return error_of(errno);
    return tw_loop_ok;
}
