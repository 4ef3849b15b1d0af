/* test_proxy.c - the fault-injecting proxy (tests/proxy.c) checked against a real
   redis-server before other tests rely on it: added latency, blackhole (a silent,
   half-open peer that keeps its sockets), reset (RST to both sides), idle close (as a
   server's `timeout`), and its control channel. Each mode is seen from a raw socket or
   an rsq client going through the proxy, and from the server's side. A missing proxy
   binary is a failure: `make test` builds it. */
#define _DEFAULT_SOURCE 1
#include "t.h"
#include "server.h"
#include "../rsq.h"
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static srv S;
static int have_server;

static long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms) { usleep((useconds_t)ms * 1000); }

/* Starts the proxy in front of S with `opts`, its log in the server's directory. */
static int start(srv_proxy *p, const char *const *opts) {
    char log[400];
    if (!srv_proxy_bin()) {
        fprintf(stderr, "    no proxy binary: set RSQ_PROXY_BIN or make build/proxy (make test does)\n");
        return -1;
    }
    snprintf(log, sizeof log, "%s/proxy.log", S.dir);
    return srv_proxy_start(p, S.port, log, opts);
}

/* A blocking TCP connection to 127.0.0.1:port, or -1. */
static int raw_connect(int port) {
    struct sockaddr_in a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) { close(fd); return -1; }
    return fd;
}

static int raw_send(int fd, const char *s) { return write(fd, s, strlen(s)) == (ssize_t)strlen(s) ? 0 : -1; }

/* Waits up to timeout_ms for fd to become readable (data, end or error): 1, or 0. */
static int raw_ready(int fd, int timeout_ms) {
    struct pollfd pf;
    pf.fd = fd;
    pf.events = POLLIN;
    pf.revents = 0;
    return poll(&pf, 1, timeout_ms) > 0;
}

/* Reads one reply line (up to its \n) within timeout_ms into buf. Returns its length;
   0 at the connection's end; -1 on an error (errno kept) or -2 on a timeout. */
static int raw_line(int fd, char *buf, size_t cap, int timeout_ms) {
    size_t n = 0;
    long long end = now_ms() + timeout_ms;
    buf[0] = '\0';
    while (n + 1 < cap) {
        long long left = end - now_ms();
        ssize_t r;
        if (left <= 0 || !raw_ready(fd, (int)left)) return -2;
        r = recv(fd, buf + n, 1, 0);
        if (r < 0) return errno == EINTR ? (int)n : -1;
        if (r == 0) return 0;
        if (buf[n++] == '\n') break;
    }
    buf[n] = '\0';
    return (int)n;
}

/* Sends PING on a raw connection and expects +PONG within timeout_ms. */
static int raw_ping(int fd, int timeout_ms) {
    char line[64];
    if (raw_send(fd, "PING\r\n") != 0) return 0;
    return raw_line(fd, line, sizeof line, timeout_ms) > 0 && !strcmp(line, "+PONG\r\n");
}

/* The server's count of connected clients (INFO clients), or -1. */
static long connected_clients(rsq_client *admin) {
    const rsq_reply *r;
    const char *p;
    if (rsq_command(admin, &r, "INFO", "clients", (char *)0) != RSQ_OK || !r || !r->str) return -1;
    p = strstr(r->str, "connected_clients:");
    return p ? strtol(p + 18, NULL, 10) : -1;
}

/* Waits up to 3 s for the server to count `want` clients; returns the last count. */
static long wait_clients(rsq_client *admin, long want) {
    long n = -1;
    int i;
    for (i = 0; i < 150; i++) {
        if ((n = connected_clients(admin)) == want) break;
        sleep_ms(20);
    }
    return n;
}

static rsq_result open_client(rsq_client *c, const char *url, int io_timeout_ms) {
    rsq_client_config cfg;
    rsq_client_config_init(&cfg);
    cfg.url = url;
    cfg.retry_attempts = 1; /* one try: a fault shows as it is */
    cfg.connect_timeout_ms = 2000;
    cfg.io_timeout_ms = io_timeout_ms;
    return rsq_client_init(c, &cfg);
}

/* Milliseconds one PING took through c, or -1 when it failed. */
static long long ping_ms(rsq_client *c) {
    const rsq_reply *r;
    long long t0 = now_ms();
    if (rsq_command(c, &r, "PING", (char *)0) != RSQ_OK || !rsq_reply_is(r, "PONG")) return -1;
    return now_ms() - t0;
}

static void test_proxy_delay(void) {
    static const char *const opts[] = { "--delay-ms", "150", NULL };
    srv_proxy p;
    rsq_client c;
    long long t, best = -1;
    int i;
    REQUIRE(have_server);
    REQUIRE(start(&p, opts) == 0);
    CHECK_RC(open_client(&c, p.url, 10000), RSQ_OK);
    CHECK_RC(rsq_connect(&c), RSQ_OK);
    /* --delay-ms 150: each way held 150 ms, so a PING takes 300 ms or more */
    t = ping_ms(&c);
    CHECK(t >= 290);
    CHECK(t < 300 + 3000);
    /* delay 0 at run time: back to loopback speed (best of three, for a loaded machine) */
    CHECK(srv_proxy_ctl(&p, "delay 0") == 0);
    CHECK_STR(p.answer, "ok delay 0");
    for (i = 0; i < 3; i++) {
        t = ping_ms(&c);
        CHECK(t >= 0);
        if (t >= 0 && (best < 0 || t < best)) best = t;
    }
    CHECK(best >= 0 && best < 100);
    CHECK(srv_proxy_ctl(&p, "delay 250") == 0);
    t = ping_ms(&c);
    CHECK(t >= 490);
    CHECK(t < 500 + 3000);
    CHECK(srv_proxy_ctl(&p, "status") == 0);
    CHECK(strstr(p.answer, " delay=250") != NULL);
    if (t_cur_failed) fprintf(stderr, "    last PING %lld ms, best undelayed %lld ms\n", t, best);
    rsq_client_free(&c);
    CHECK_EQ_INT(srv_proxy_stop(&p), 0);
}

static void test_proxy_blackhole_half_open(void) {
    srv_proxy p;
    rsq_client c, admin;
    const rsq_reply *r;
    rsq_result rc;
    char line[64];
    long before, during;
    long long t0, el;
    int a = -1, b = -1;
    REQUIRE(have_server);
    REQUIRE(start(&p, NULL) == 0);
    CHECK_RC(open_client(&admin, S.unix_url, 5000), RSQ_OK);
    CHECK_RC(rsq_command(&admin, &r, "DEL", "proxy:bh", (char *)0), RSQ_OK);
    CHECK_RC(open_client(&c, p.url, 300), RSQ_OK);
    CHECK(ping_ms(&c) >= 0); /* connected through the proxy before the blackhole */
    a = raw_connect(p.port);
    CHECK(a >= 0 && raw_ping(a, 3000));
    before = wait_clients(&admin, 3); /* admin, c, a */
    CHECK_EQ_INT(before, 3);

    CHECK(srv_proxy_ctl(&p, "blackhole on") == 0);
    CHECK_STR(p.answer, "ok blackhole on");
    /* the rsq client: its PING meets silence and times out after io_timeout_ms */
    t0 = now_ms();
    rc = rsq_command(&c, &r, "PING", (char *)0);
    el = now_ms() - t0;
    CHECK_RC(rc, RSQ_ERR_TIMEOUT);
    CHECK(el >= 290);
    CHECK(el < 300 + 2000);
    /* a raw connection: its command is not forwarded, and nothing comes back, no
       end and no reset either (poll sees nothing) */
    CHECK(a >= 0 && raw_send(a, "INCR proxy:bh\r\n") == 0);
    CHECK(a >= 0 && !raw_ready(a, 500));
    /* a new connection is accepted but gets no answer either */
    b = raw_connect(p.port);
    CHECK(b >= 0);
    CHECK(b >= 0 && raw_send(b, "PING\r\n") == 0);
    CHECK(b >= 0 && !raw_ready(b, 300));
    /* the server ran nothing and closed nothing: the proxy kept every socket open
       (and connected b's) */
    CHECK_RC(rsq_command(&admin, &r, "GET", "proxy:bh", (char *)0), RSQ_OK);
    CHECK(r && r->type == RSQ_REPLY_NIL);
    during = wait_clients(&admin, before + 1);
    CHECK_EQ_INT(during, before + 1);

    CHECK(srv_proxy_ctl(&p, "blackhole off") == 0);
    CHECK_STR(p.answer, "ok blackhole off");
    /* what waited flows: a's INCR runs once, b's PING is answered */
    CHECK(a >= 0 && raw_line(a, line, sizeof line, 3000) > 0 && !strcmp(line, ":1\r\n"));
    CHECK(b >= 0 && raw_line(b, line, sizeof line, 3000) > 0 && !strcmp(line, "+PONG\r\n"));
    CHECK_RC(rsq_command(&admin, &r, "GET", "proxy:bh", (char *)0), RSQ_OK);
    CHECK(r && rsq_reply_is(r, "1"));
    /* the rsq client dropped its timed-out connection; the next command reconnects */
    CHECK(ping_ms(&c) >= 0);
    if (a >= 0) close(a);
    if (b >= 0) close(b);
    rsq_client_free(&c);
    rsq_client_free(&admin);
    CHECK_EQ_INT(srv_proxy_stop(&p), 0);
}

static void test_proxy_reset(void) {
    srv_proxy p;
    rsq_client admin;
    char line[64];
    long before;
    int a = -1, b = -1, n, i, fds[2];
    REQUIRE(have_server);
    REQUIRE(start(&p, NULL) == 0);
    CHECK_RC(open_client(&admin, S.unix_url, 5000), RSQ_OK);
    a = raw_connect(p.port);
    b = raw_connect(p.port);
    CHECK(a >= 0 && raw_ping(a, 3000));
    CHECK(b >= 0 && raw_ping(b, 3000));
    before = wait_clients(&admin, 3); /* admin, a, b */
    CHECK_EQ_INT(before, 3);

    CHECK(srv_proxy_ctl(&p, "reset") == 0);
    CHECK_STR(p.answer, "ok reset 2");
    /* each client sees a reset (ECONNRESET), not a clean end */
    fds[0] = a;
    fds[1] = b;
    for (i = 0; i < 2; i++) {
        errno = 0;
        n = fds[i] >= 0 ? raw_line(fds[i], line, sizeof line, 3000) : -3;
        if (n != -1 || errno != ECONNRESET)
            fprintf(stderr, "    connection %d: read returned %d (%s), expected a reset\n", i, n, strerror(errno));
        CHECK(n == -1 && errno == ECONNRESET);
    }
    /* and so does the server: both connections are gone there */
    CHECK_EQ_INT(wait_clients(&admin, before - 2), before - 2);
    CHECK(srv_proxy_ctl(&p, "status") == 0);
    CHECK(strstr(p.answer, "ok open=0 ") != NULL);
    CHECK(strstr(p.answer, " resets=2 ") != NULL);
    /* the proxy itself goes on: a new connection works */
    if (a >= 0) close(a);
    a = raw_connect(p.port);
    CHECK(a >= 0 && raw_ping(a, 3000));
    if (a >= 0) close(a);
    if (b >= 0) close(b);
    rsq_client_free(&admin);
    CHECK_EQ_INT(srv_proxy_stop(&p), 0);
}

static void test_proxy_idle_close(void) {
    srv_proxy p;
    rsq_client admin;
    char line[64];
    long before;
    long long last_a, closed_at = -1, end;
    int a = -1, b = -1, n = -3, b_ok = 1;
    REQUIRE(have_server);
    REQUIRE(start(&p, NULL) == 0);
    CHECK_RC(open_client(&admin, S.unix_url, 5000), RSQ_OK);
    a = raw_connect(p.port);
    b = raw_connect(p.port);
    REQUIRE(a >= 0 && b >= 0);
    CHECK(raw_ping(b, 3000));
    CHECK(srv_proxy_ctl(&p, "idle 600") == 0);
    CHECK_STR(p.answer, "ok idle 600");
    CHECK(raw_ping(a, 3000));
    last_a = now_ms();
    before = wait_clients(&admin, 3); /* admin, a, b */
    CHECK_EQ_INT(before, 3);
    /* b stays busy (a PING every 100 ms), a stays idle: only a is closed, after 600 ms */
    end = last_a + 2000;
    while (now_ms() < end) {
        if (!raw_ping(b, 3000)) b_ok = 0;
        if (closed_at < 0 && raw_ready(a, 0)) {
            closed_at = now_ms();
            errno = 0;
            n = raw_line(a, line, sizeof line, 1000);
        }
        sleep_ms(100);
    }
    if (closed_at < 0 && raw_ready(a, 3000)) { /* a loaded machine: later, but closed */
        closed_at = now_ms();
        n = raw_line(a, line, sizeof line, 1000);
    }
    CHECK(b_ok);
    CHECK(closed_at >= 0);
    CHECK_EQ_INT(n, 0); /* a clean end (FIN), as a server's timeout gives */
    CHECK(closed_at - last_a >= 550);
    CHECK_EQ_INT(wait_clients(&admin, before - 1), before - 1); /* the server's side closed too */
    /* idle 0: no more closing */
    CHECK(srv_proxy_ctl(&p, "idle 0") == 0);
    sleep_ms(1000);
    CHECK(raw_ping(b, 3000));
    CHECK(srv_proxy_ctl(&p, "status") == 0);
    CHECK(strstr(p.answer, " idle_closes=1 ") != NULL);
    CHECK(strstr(p.answer, "ok open=1 ") != NULL);
    if (t_cur_failed) fprintf(stderr, "    a closed %lld ms after its last reply\n", closed_at - last_a);
    close(a);
    close(b);
    rsq_client_free(&admin);
    CHECK_EQ_INT(srv_proxy_stop(&p), 0);
}

static void test_proxy_control(void) {
    static const char *const opts[] = { "--blackhole", "--idle-close-ms", "100", NULL };
    srv_proxy p;
    char line[64];
    int a;
    REQUIRE(have_server);
    REQUIRE(start(&p, opts) == 0);
    /* bad commands are answered with an error and change nothing */
    CHECK(srv_proxy_ctl(&p, "teleport") == -1);
    CHECK_STR(p.answer, "error unknown command: teleport");
    CHECK(srv_proxy_ctl(&p, "delay soon") == -1);
    CHECK(strncmp(p.answer, "error ", 6) == 0);
    CHECK(srv_proxy_ctl(&p, "blackhole maybe") == -1);
    CHECK(strncmp(p.answer, "error ", 6) == 0);
    CHECK(srv_proxy_ctl(&p, "reset now") == -1);
    CHECK(srv_proxy_ctl(&p, "status") == 0);
    CHECK_STR(p.answer, "ok open=0 conns=0 cuts=0 resets=0 closes=0 idle_closes=0 blackhole=1 delay=0 idle=100");
    /* --blackhole from the start: accepted, silent, and not idle-closed while silent */
    a = raw_connect(p.port);
    CHECK(a >= 0 && raw_send(a, "PING\r\n") == 0);
    CHECK(a >= 0 && !raw_ready(a, 400));
    CHECK(srv_proxy_ctl(&p, "idle 0") == 0);
    CHECK(srv_proxy_ctl(&p, "blackhole off") == 0);
    CHECK(a >= 0 && raw_line(a, line, sizeof line, 3000) > 0 && !strcmp(line, "+PONG\r\n"));
    /* close: a clean end for every open connection */
    CHECK(srv_proxy_ctl(&p, "close") == 0);
    CHECK_STR(p.answer, "ok close 1");
    CHECK(a >= 0 && raw_line(a, line, sizeof line, 3000) == 0);
    if (a >= 0) close(a);
    /* the end of its control input stops the proxy, cleanly */
    CHECK_EQ_INT(srv_proxy_close_control(&p, 3000), 0);
}

void suite_proxy(void) {
    static const char *const names[] = { "test_proxy_delay", "test_proxy_blackhole_half_open", "test_proxy_reset",
                                         "test_proxy_idle_close", "test_proxy_control" };
    size_t i;
    int any = !t_filter;
    for (i = 0; i < sizeof names / sizeof names[0]; i++) any |= strstr(names[i], t_filter ? t_filter : "") != NULL;
    if (!any) return; /* no server for a run that selects none of these */
    have_server = srv_start(&S, NULL) == 0;
    RUN(test_proxy_delay);
    RUN(test_proxy_blackhole_half_open);
    RUN(test_proxy_reset);
    RUN(test_proxy_idle_close);
    RUN(test_proxy_control);
    if (have_server) srv_stop(&S, 0);
}
