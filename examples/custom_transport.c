/* custom_transport.c - plugging your own byte pipe under rsq, as a firmware port does.
   Build: cc examples/custom_transport.c -o custom_transport
   Run:   ./custom_transport unix:///path/to/redis.sock   (or redis://127.0.0.1:6379)

   This file is built with RSQ_NO_SOCKETS, like firmware: rsq.h then has no socket code
   and no clock of its own, and the client refuses to start without a transport. The
   transport below is deliberately the simplest kind: blocking calls, no wait(), no
   descriptor, its own clock. Here its calls are POSIX read()/write() on a socket; on a
   device they would be the TCP/IP stack's blocking socket calls, or a UART driver
   talking to a modem. Only the bodies of port_* change; the contract stays.

   THE CONTRACT (rsq_transport, see "// >>transport" in rsq.h)
   ==========================================================
   Call order, per connection:

       open --RSQ_OK--> { send | recv }* --> close       (wait() too, if you have one)

   - open(user, ep, timeout_ms, &handle, err, errlen)
       Called by rsq_connect, or by the first command, and again after a lost
       connection (with backoff between attempts). ep says where: ep->path for unix://,
       else ep->host and ep->port; ep->tls asks for TLS (refuse it if you cannot).
       Return RSQ_OK and set *handle to a NON-NULL pointer of your choice (your
       connection state; the client passes it back and calls close only when it is not
       NULL). On failure return RSQ_ERR_CONNECT / RSQ_ERR_TIMEOUT / RSQ_ERR_RESOLVE
       (the client retries these) or RSQ_ERR_UNSUPPORTED / RSQ_ERR_ARG (it does not),
       with one line in err: it becomes rsq_errstr(). Never put a password in it.
   - send(user, handle, buf, len) -> long
       Write up to len bytes. Return how many were taken (> 0; fewer than len is fine,
       the client calls again with the rest), 0 for "nothing moved yet, ask me again",
       or a negative rsq_result (RSQ_ERR_IO) when the link is gone.
   - recv(user, handle, buf, len) -> long
       Read up to len bytes: the count (> 0), 0 for "nothing yet", or RSQ_ERR_IO when
       the link is gone or the peer closed it. Never return 0 for a closed link.
   - close(user, handle)
       Exactly once per handle that open returned. Free everything; no I/O result.
   - wait(user, handle, events, timeout_ms): NULL here. With no wait, the client calls
       send/recv again at once after a 0; so a blocking port should block a short
       slice (100 ms below) and return 0 when it expires. The client checks its own
       deadlines between calls: that is how io_timeout_ms and the BLOCK time of a
       blocking read are kept, and why a call never blocks much past its deadline.
   - fd(user, handle): NULL here; rsq_client_fd() then returns -1. Without wait and fd
       there is no RSQ_TIMEOUT_NONBLOCK use: a "non-blocking" call blocks for a slice.
   - now_ms(user): REQUIRED with RSQ_NO_SOCKETS. A monotonic millisecond counter
       (a tick counter on a device); wrapping is not allowed: keep 64 bits.
   - sleep_ms(user, ms): backoff between reconnect attempts. NULL: no pause at all.
   All calls come from the thread that uses the client; one client per thread.
   Every function gets `user` (the transport's user pointer) as its first argument. */
#define _POSIX_C_SOURCE 200809L /* read/write/sockets/clock_gettime under -std=c99 */
#define RSQ_NO_SOCKETS
#define RSQ_IMPLEMENTATION
#include "../rsq.h"
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/un.h>

#define PORT_SLICE_MS 100 /* longest a single send/recv blocks before returning 0 */

/* The port's own settings and state; transport.user points to it. */
typedef struct port_ctx {
    unsigned opens, closes; /* for the demo's output */
} port_ctx;

/* One connection: what open puts in *handle. */
typedef struct port_link {
    int fd;
} port_link;

static uint64_t port_now_ms(void *user) {
    struct timespec ts; /* a device: its millisecond tick, widened to 64 bits */
    (void)user;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void port_sleep_ms(void *user, int ms) {
    struct timespec ts; /* a device: its delay function, or yield to the scheduler */
    (void)user;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (long)(ms % 1000) * 1000000L;
    nanosleep(&ts, NULL);
}

/* Bounds every blocking call on fd to `ms` (connect included, on most systems). */
static void port_set_slice(int fd, int ms) {
    struct timeval tv;
    tv.tv_sec = ms / 1000;
    tv.tv_usec = (ms % 1000) * 1000;
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

static rsq_result port_open(void *user, const rsq_endpoint *ep, int timeout_ms, void **handle, char *err, size_t errlen) {
    port_ctx *ctx = (port_ctx *)user;
    port_link *link;
    int fd = -1, e = 0;
    *handle = NULL;
    if (ep->tls) {
        snprintf(err, errlen, "this transport has no TLS");
        return RSQ_ERR_UNSUPPORTED;
    }
    if (ep->path) {
        struct sockaddr_un sun;
        size_t n = strlen(ep->path);
        if (n >= sizeof sun.sun_path) { snprintf(err, errlen, "socket path too long"); return RSQ_ERR_ARG; }
        memset(&sun, 0, sizeof sun);
        sun.sun_family = AF_UNIX;
        memcpy(sun.sun_path, ep->path, n + 1);
        fd = socket(AF_UNIX, SOCK_STREAM, 0);
        if (fd >= 0) port_set_slice(fd, timeout_ms);
        if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof sun) != 0) e = errno;
    } else {
        struct addrinfo hints, *res = NULL, *ai;
        char port[16];
        memset(&hints, 0, sizeof hints);
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        snprintf(port, sizeof port, "%d", ep->port);
        if (getaddrinfo(ep->host, port, &hints, &res) != 0 || !res) {
            snprintf(err, errlen, "cannot resolve %s", ep->host);
            return RSQ_ERR_RESOLVE;
        }
        e = ECONNREFUSED;
        for (ai = res; ai; ai = ai->ai_next) {
            fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
            if (fd < 0) { e = errno; continue; }
            port_set_slice(fd, timeout_ms); /* a blocking connect, bounded */
            if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) { e = 0; break; }
            e = errno;
            close(fd);
            fd = -1;
        }
        freeaddrinfo(res);
    }
    if (fd < 0 || e) {
        if (fd >= 0) close(fd);
        if (ep->path) snprintf(err, errlen, "connect to %s: %s", ep->path, strerror(e));
        else snprintf(err, errlen, "connect to %s:%d: %s", ep->host, ep->port, strerror(e));
        return (e == EAGAIN || e == EINPROGRESS || e == ETIMEDOUT) ? RSQ_ERR_TIMEOUT : RSQ_ERR_CONNECT;
    }
    port_set_slice(fd, PORT_SLICE_MS);
    link = (port_link *)malloc(sizeof *link); /* a device: a static pool of links */
    if (!link) { close(fd); snprintf(err, errlen, "out of memory"); return RSQ_ERR_NOMEM; }
    link->fd = fd;
    ctx->opens++;
    *handle = link; /* never NULL: close is only called for non-NULL handles */
    return RSQ_OK;
}

static long port_send(void *user, void *handle, const void *buf, size_t len) {
    port_link *link = (port_link *)handle;
    ssize_t n;
    (void)user;
    n = write(link->fd, buf, len); /* blocks up to one slice */
    if (n > 0) return (long)n;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return 0; /* slice over */
    return (long)RSQ_ERR_IO;
}

static long port_recv(void *user, void *handle, void *buf, size_t len) {
    port_link *link = (port_link *)handle;
    ssize_t n;
    (void)user;
    n = read(link->fd, buf, len); /* blocks up to one slice */
    if (n > 0) return (long)n;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return 0; /* slice over */
    return (long)RSQ_ERR_IO; /* n == 0: the server closed the connection */
}

static void port_close(void *user, void *handle) {
    port_ctx *ctx = (port_ctx *)user;
    port_link *link = (port_link *)handle;
    close(link->fd);
    free(link);
    ctx->closes++;
}

int main(int argc, char **argv) {
    port_ctx ctx;
    rsq_transport tp;
    rsq_client_config cfg;
    rsq_client c;
    const rsq_reply *r;
    const char *step = "config";
    int status = 1, i;
    if (argc != 2) {
        fprintf(stderr, "usage: custom_transport URL\n");
        return 2;
    }
    memset(&ctx, 0, sizeof ctx);
    memset(&tp, 0, sizeof tp); /* wait, fd: NULL */
    tp.open = port_open;
    tp.send = port_send;
    tp.recv = port_recv;
    tp.close = port_close;
    tp.now_ms = port_now_ms;
    tp.sleep_ms = port_sleep_ms;
    tp.user = &ctx;

    rsq_client_config_init(&cfg);
    cfg.url = argv[1];
    cfg.transport = &tp; /* the client copies the table: tp may go out of scope after init */
    cfg.connect_timeout_ms = 2000;
    cfg.io_timeout_ms = 3000;
    cfg.retry_attempts = 3;
    if (rsq_client_init(&c, &cfg) != RSQ_OK) goto done;

    step = "connect";
    if (rsq_connect(&c) != RSQ_OK) goto done;
    printf("connected; descriptor %d (this transport has none)\n", rsq_client_fd(&c));

    step = "PING";
    if (rsq_command(&c, &r, "PING", (char *)0) != RSQ_OK) goto done;
    printf("PING: %s\n", r->str);

    step = "DEL";
    if (rsq_command(&c, &r, "DEL", "custom:demo", (char *)0) != RSQ_OK) goto done;

    /* a pipeline: three XADDs written together, their replies read in order */
    step = "pipeline";
    for (i = 0; i < 3; i++) {
        char body[32];
        snprintf(body, sizeof body, "reading %d", i + 1);
        if (rsq_append(&c, "XADD", "custom:demo", "*", "payload", body, (char *)0) != RSQ_OK) goto done;
    }
    for (i = 0; i < 3; i++) {
        if (rsq_read_reply(&c, &r, RSQ_TIMEOUT_DEFAULT) != RSQ_OK) goto done;
        printf("added %s\n", r->str);
    }

    step = "XRANGE";
    if (rsq_command(&c, &r, "XRANGE", "custom:demo", "-", "+", (char *)0) != RSQ_OK) goto done;
    for (i = 0; i < (int)r->len; i++) {
        const rsq_reply *e = &r->element[i];
        printf("entry %s %s=%s\n", e->element[0].str, e->element[1].element[0].str, e->element[1].element[1].str);
    }

    /* A blocking read with nothing to read: the server answers nil after 300 ms. The
       client waits on recv slices (no wait()) and checks its deadline between them. */
    step = "XREAD BLOCK";
    if (rsq_command(&c, &r, "XREAD", "BLOCK", "300", "STREAMS", "custom:demo", "$", (char *)0) != RSQ_OK) goto done;
    printf("XREAD BLOCK 300: %s\n", r->type == RSQ_REPLY_NIL ? "nothing new" : "data");
    status = 0;
done:
    if (status) fprintf(stderr, "custom_transport: %s: %s\n", step, rsq_errstr(&c));
    rsq_client_free(&c);
    printf("transport: %u open, %u close\n", ctx.opens, ctx.closes);
    return status;
}
