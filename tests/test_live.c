/* test_live.c - the client against a real redis-server that this suite starts itself
   (private port and unix socket in a temp dir) and stops by its pid. */
#define _DEFAULT_SOURCE 1
#include "t.h"
#include "server.h"
#include "../rsq.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <poll.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>

static srv S;
static int have_server;

static rsq_result open_client(rsq_client *c, const char *url, int protocol) {
    rsq_client_config cfg;
    rsq_client_config_init(&cfg);
    cfg.url = url;
    cfg.protocol = protocol;
    cfg.retry_attempts = 3;
    cfg.retry_base_ms = 10;
    return rsq_client_init(c, &cfg);
}

static long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void test_live_tcp_and_unix_ping(void) {
    rsq_client c;
    const rsq_reply *r;
    REQUIRE(have_server);
    CHECK_RC(open_client(&c, S.url, 2), RSQ_OK);
    CHECK_RC(rsq_command(&c, &r, "PING", (char *)0), RSQ_OK);
    CHECK(rsq_reply_is(r, "PONG"));
    CHECK(rsq_is_connected(&c));
    CHECK(rsq_client_fd(&c) >= 0);
    rsq_client_free(&c);
    CHECK_RC(open_client(&c, S.unix_url, 2), RSQ_OK);
    CHECK_RC(rsq_command(&c, &r, "ECHO", "over unix", (char *)0), RSQ_OK);
    CHECK(rsq_reply_is(r, "over unix"));
    rsq_client_free(&c);
}

static void test_live_ipv6_loopback(void) {
    rsq_client c;
    const rsq_reply *r;
    char url[64];
    int fd = socket(AF_INET6, SOCK_STREAM, 0);
    struct sockaddr_in6 a;
    REQUIRE(have_server);
    memset(&a, 0, sizeof a);
    a.sin6_family = AF_INET6;
    a.sin6_addr = in6addr_loopback;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        if (fd >= 0) close(fd);
        t_skip("no IPv6 loopback on this machine");
        return;
    }
    close(fd);
    snprintf(url, sizeof url, "redis://[::1]:%d", S.port);
    CHECK_RC(open_client(&c, url, 2), RSQ_OK);
    CHECK_RC(rsq_command(&c, &r, "PING", (char *)0), RSQ_OK);
    rsq_client_free(&c);
}

/* Before Redis 6.0 (no ACL users, no HELLO): the password alone, with plain AUTH. */
static void live_plain_auth(void) {
    srv P;
    rsq_client c;
    const rsq_reply *r;
    char url[512];
    REQUIRE(srv_start(&P, "requirepass wonderland\n") == 0);
    snprintf(url, sizeof url, "redis://:wonderland@127.0.0.1:%d", P.port);
    CHECK_RC(open_client(&c, url, 2), RSQ_OK);
    CHECK_RC(rsq_command(&c, &r, "SET", "alice:k", "v", (char *)0), RSQ_OK);
    CHECK_RC(rsq_command(&c, &r, "GET", "alice:k", (char *)0), RSQ_OK);
    CHECK(rsq_reply_is(r, "v"));
    rsq_client_free(&c);
    snprintf(url, sizeof url, "redis://:looking-glass@127.0.0.1:%d", P.port);
    CHECK_RC(open_client(&c, url, 2), RSQ_OK);
    CHECK_RC(rsq_connect(&c), RSQ_ERR_AUTH);
    CHECK(strstr(rsq_errstr(&c), "AUTH") != NULL);
    CHECK(strstr(rsq_errstr(&c), "looking-glass") == NULL);
    CHECK_RC(rsq_command(&c, &r, "PING", (char *)0), RSQ_ERR_AUTH);
    rsq_client_free(&c);
    /* a user name other than "default" needs ACL users: said as such, naming 6.0 */
    snprintf(url, sizeof url, "redis://alice:wonderland@127.0.0.1:%d", P.port);
    CHECK_RC(open_client(&c, url, 2), RSQ_OK);
    CHECK_RC(rsq_connect(&c), RSQ_ERR_UNSUPPORTED);
    CHECK(strstr(rsq_errstr(&c), "6.0") != NULL && strstr(rsq_errstr(&c), "wonderland") == NULL);
    rsq_client_free(&c);
    /* no password given, and a client name (the first step): the error says so */
    {
        rsq_client_config cfg;
        snprintf(url, sizeof url, "redis://127.0.0.1:%d", P.port);
        rsq_client_config_init(&cfg);
        cfg.url = url;
        cfg.name = "named";
        cfg.retry_attempts = 1;
        CHECK_RC(rsq_client_init(&c, &cfg), RSQ_OK);
    }
    CHECK_RC(rsq_connect(&c), RSQ_ERR_AUTH);
    CHECK(strstr(rsq_errstr(&c), "requires a password") != NULL);
    rsq_client_free(&c);
    srv_stop(&P, 0);
}

static void test_live_acl_user_and_wrong_password(void) {
    rsq_client admin, c;
    const rsq_reply *r;
    char url[512];
    REQUIRE(have_server);
    if (srv_version(&S) && srv_version(&S) < 60000) live_plain_auth(); /* the path such servers take */
    if (!t_need_version(srv_version(&S), 60000, "ACL users")) return;
    CHECK_RC(open_client(&admin, S.unix_url, 2), RSQ_OK);
    CHECK_RC(rsq_command(&admin, &r, "ACL", "SETUSER", "alice", "on", ">wonderland", "~alice:*", "+@all", (char *)0), RSQ_OK);
    snprintf(url, sizeof url, "redis://alice:wonderland@127.0.0.1:%d", S.port);
    CHECK_RC(open_client(&c, url, 2), RSQ_OK);
    CHECK_RC(rsq_command(&c, &r, "ACL", "WHOAMI", (char *)0), RSQ_OK);
    CHECK(rsq_reply_is(r, "alice"));
    CHECK_RC(rsq_command(&c, &r, "SET", "alice:k", "v", (char *)0), RSQ_OK);
    /* a key outside the user's pattern: NOPERM, clearly */
    CHECK_RC(rsq_command(&c, &r, "SET", "bob:k", "v", (char *)0), RSQ_ERR_NOPERM);
    CHECK(strncmp(rsq_errstr(&c), "NOPERM", 6) == 0);
    CHECK(rsq_is_connected(&c));
    rsq_client_free(&c);
    snprintf(url, sizeof url, "redis://alice:looking-glass@127.0.0.1:%d", S.port);
    CHECK_RC(open_client(&c, url, 2), RSQ_OK);
    CHECK_RC(rsq_connect(&c), RSQ_ERR_AUTH);
    CHECK(strstr(rsq_errstr(&c), "WRONGPASS") != NULL);
    CHECK(strstr(rsq_errstr(&c), "looking-glass") == NULL);
    CHECK_RC(rsq_command(&c, &r, "PING", (char *)0), RSQ_ERR_AUTH);
    rsq_client_free(&c);
    /* the same over RESP3 (HELLO 3 AUTH ...) */
    snprintf(url, sizeof url, "redis://alice:wonderland@127.0.0.1:%d", S.port);
    CHECK_RC(open_client(&c, url, 3), RSQ_OK);
    CHECK_RC(rsq_command(&c, &r, "ACL", "WHOAMI", (char *)0), RSQ_OK);
    CHECK(rsq_reply_is(r, "alice"));
    rsq_client_free(&c);
    CHECK_RC(rsq_command(&admin, &r, "ACL", "DELUSER", "alice", (char *)0), RSQ_OK);
    rsq_client_free(&admin);
}

static void test_live_select_and_setname(void) {
    rsq_client c;
    rsq_client_config cfg;
    const rsq_reply *r;
    char url[512], out[64];
    REQUIRE(have_server);
    snprintf(url, sizeof url, "%s/3", S.url);
    rsq_client_config_init(&cfg);
    cfg.url = url;
    cfg.name = "rsq-test-client";
    CHECK_RC(rsq_client_init(&c, &cfg), RSQ_OK);
    CHECK_RC(rsq_command(&c, &r, "SET", "select-probe", "in-db-3", (char *)0), RSQ_OK);
    CHECK_RC(rsq_command(&c, &r, "CLIENT", "GETNAME", (char *)0), RSQ_OK);
    CHECK(rsq_reply_is(r, "rsq-test-client"));
    srv_cli(&S, out, sizeof out, "-n 3 GET select-probe");
    CHECK_STR(out, "in-db-3");
    srv_cli(&S, out, sizeof out, "-n 0 EXISTS select-probe");
    CHECK_STR(out, "0");
    rsq_client_free(&c);
}

static void test_live_pipeline_10k(void) {
    rsq_client c;
    const rsq_reply *r;
    int i, ok = 1;
    rsq_client_stats st;
    REQUIRE(have_server);
    CHECK_RC(open_client(&c, S.url, 2), RSQ_OK);
    CHECK_RC(rsq_command(&c, &r, "DEL", "pipe:counter", (char *)0), RSQ_OK);
    for (i = 0; i < 10000; i++) {
        if (rsq_append(&c, "INCR", "pipe:counter", (char *)0) != RSQ_OK) { ok = 0; break; }
    }
    CHECK(ok);
    CHECK_EQ_INT(rsq_pending_replies(&c), 10000);
    CHECK_RC(rsq_flush(&c, RSQ_TIMEOUT_DEFAULT), RSQ_OK);
    for (i = 0; i < 10000 && ok; i++) {
        if (rsq_read_reply(&c, &r, RSQ_TIMEOUT_DEFAULT) != RSQ_OK || r->type != RSQ_REPLY_INTEGER || r->integer != i + 1) ok = 0;
    }
    CHECK(ok);
    CHECK_EQ_INT(rsq_pending_replies(&c), 0);
    CHECK_RC(rsq_read_reply(&c, &r, RSQ_TIMEOUT_DEFAULT), RSQ_ERR_STATE);
    rsq_client_get_stats(&c, &st);
    CHECK(st.commands >= 10000 && st.replies >= 10000);
    /* a server error in the middle of a pipeline does not disturb the rest */
    rsq_append(&c, "SET", "pipe:s", "x", (char *)0);
    rsq_append(&c, "INCR", "pipe:s", (char *)0);
    rsq_append(&c, "GET", "pipe:s", (char *)0);
    CHECK_RC(rsq_read_reply(&c, &r, RSQ_TIMEOUT_DEFAULT), RSQ_OK);
    CHECK_RC(rsq_read_reply(&c, &r, RSQ_TIMEOUT_DEFAULT), RSQ_ERR_SERVER);
    CHECK(r && r->type == RSQ_REPLY_ERROR);
    CHECK_RC(rsq_read_reply(&c, &r, RSQ_TIMEOUT_DEFAULT), RSQ_OK);
    CHECK(rsq_reply_is(r, "x"));
    rsq_client_free(&c);
}

static void test_live_binary_payloads(void) {
    rsq_client c;
    const rsq_reply *r;
    char payload[300];
    const char *argv[5];
    size_t lens[5];
    int i;
    REQUIRE(have_server);
    for (i = 0; i < (int)sizeof payload; i++) payload[i] = (char)i;
    memcpy(payload + 10, "\r\n\0\r\n$3\r\n*", 11);
    CHECK_RC(open_client(&c, S.url, 2), RSQ_OK);
    argv[0] = "SET"; lens[0] = 3;
    argv[1] = "bin\0key"; lens[1] = 7;
    argv[2] = payload; lens[2] = sizeof payload;
    CHECK_RC(rsq_command_argv(&c, &r, 3, argv, lens), RSQ_OK);
    argv[0] = "GET"; lens[0] = 3;
    CHECK_RC(rsq_command_argv(&c, &r, 2, argv, lens), RSQ_OK);
    CHECK(r->type == RSQ_REPLY_STRING && r->len == sizeof payload && memcmp(r->str, payload, sizeof payload) == 0);
    argv[0] = "XADD"; lens[0] = 4;
    argv[1] = "bin:stream"; lens[1] = 10;
    argv[2] = "*"; lens[2] = 1;
    argv[3] = "payload"; lens[3] = 7;
    argv[4] = payload; lens[4] = sizeof payload;
    CHECK_RC(rsq_command_argv(&c, &r, 5, argv, lens), RSQ_OK);
    CHECK_RC(rsq_command(&c, &r, "XRANGE", "bin:stream", "-", "+", (char *)0), RSQ_OK);
    REQUIRE(r->type == RSQ_REPLY_ARRAY && r->len == 1);
    {
        const rsq_reply *fields = &r->element[0].element[1];
        CHECK(fields->len == 2);
        CHECK(rsq_reply_is(&fields->element[0], "payload"));
        CHECK(fields->element[1].len == sizeof payload && memcmp(fields->element[1].str, payload, sizeof payload) == 0);
    }
    rsq_client_free(&c);
}

static void test_live_resp3(void) {
    rsq_client c;
    const rsq_reply *r;
    REQUIRE(have_server);
    CHECK_RC(open_client(&c, S.url, 3), RSQ_OK);
    if (srv_version(&S) && srv_version(&S) < 60000) {
        /* no HELLO: protocol 3 fails clearly, every call, with nothing half-done */
        CHECK_RC(rsq_command(&c, &r, "PING", (char *)0), RSQ_ERR_UNSUPPORTED);
        CHECK(strstr(rsq_errstr(&c), "HELLO") != NULL && strstr(rsq_errstr(&c), "6.0") != NULL);
        CHECK(!rsq_is_connected(&c));
        rsq_client_free(&c);
        t_need_version(srv_version(&S), 60000, "RESP3");
        return;
    }
    CHECK_RC(rsq_command(&c, &r, "DEL", "r3:h", "r3:z", (char *)0), RSQ_OK);
    CHECK_RC(rsq_command(&c, &r, "HSET", "r3:h", "a", "1", "b", "2", (char *)0), RSQ_OK);
    REQUIRE(rsq_command(&c, &r, "HGETALL", "r3:h", (char *)0) == RSQ_OK);
    CHECK(r->type == RSQ_REPLY_MAP && r->len == 4);
    CHECK(rsq_reply_is(rsq_reply_get(r, "b"), "2"));
    CHECK_RC(rsq_command(&c, &r, "ZADD", "r3:z", "1.5", "m", (char *)0), RSQ_OK);
    CHECK(rsq_command(&c, &r, "ZSCORE", "r3:z", "m", (char *)0) == RSQ_OK && r->type == RSQ_REPLY_DOUBLE && r->dbl == 1.5);
    CHECK(rsq_command(&c, &r, "GET", "r3:none", (char *)0) == RSQ_OK && r->type == RSQ_REPLY_NIL);
    CHECK_RC(rsq_command(&c, &r, "XADD", "r3:s", "*", "payload", "p", (char *)0), RSQ_OK);
    REQUIRE(rsq_command(&c, &r, "XINFO", "STREAM", "r3:s", (char *)0) == RSQ_OK);
    CHECK(r->type == RSQ_REPLY_MAP && rsq_reply_get(r, "length") != NULL);
    rsq_client_free(&c);
}

static void test_live_server_error_text(void) {
    rsq_client c;
    const rsq_reply *r;
    REQUIRE(have_server);
    CHECK_RC(open_client(&c, S.url, 2), RSQ_OK);
    CHECK_RC(rsq_command(&c, &r, "SET", "wt:k", "v", (char *)0), RSQ_OK);
    CHECK_RC(rsq_command(&c, &r, "XADD", "wt:k", "*", "a", "b", (char *)0), RSQ_ERR_WRONGTYPE);
    CHECK(strncmp(rsq_errstr(&c), "WRONGTYPE", 9) == 0);
    CHECK_RC(rsq_command(&c, &r, "XREADGROUP", "GROUP", "nog", "me", "STREAMS", "wt:nostream", ">", (char *)0), RSQ_ERR_NOGROUP);
    CHECK_RC(rsq_command(&c, &r, "NOSUCHCOMMAND", (char *)0), RSQ_ERR_SERVER);
    CHECK(strstr(rsq_errstr(&c), "unknown command") != NULL);
    CHECK_RC(rsq_command(&c, &r, "PING", (char *)0), RSQ_OK);
    rsq_client_free(&c);
}

/* A blocking command read with its own deadline (BLOCK time + margin) does not trip
   the shorter io timeout; non-blocking reads return RSQ_AGAIN until the reply is in. */
static void test_live_blocking_and_nonblocking_reads(void) {
    rsq_client c;
    rsq_client_config cfg;
    const rsq_reply *r;
    long long t0;
    rsq_result rc;
    /* BLPOP takes fractions of a second from Redis 6.0 on; whole seconds before */
    int frac = !srv_version(&S) || srv_version(&S) >= 60000;
    REQUIRE(have_server);
    rsq_client_config_init(&cfg);
    cfg.url = S.url;
    cfg.io_timeout_ms = 200;
    CHECK_RC(rsq_client_init(&c, &cfg), RSQ_OK);
    CHECK_RC(rsq_append(&c, "BLPOP", "nb:list", frac ? "0.6" : "1", (char *)0), RSQ_OK);
    t0 = now_ms();
    REQUIRE(rsq_read_reply(&c, &r, (frac ? 600 : 1000) + 2000) == RSQ_OK);
    CHECK(r->type == RSQ_REPLY_NIL);
    CHECK(now_ms() - t0 >= (frac ? 500 : 900));
    CHECK_RC(rsq_append(&c, "BLPOP", "nb:list", frac ? "0.3" : "1", (char *)0), RSQ_OK);
    CHECK_RC(rsq_flush(&c, RSQ_TIMEOUT_NONBLOCK), RSQ_OK);
    CHECK_RC(rsq_read_reply(&c, &r, RSQ_TIMEOUT_NONBLOCK), RSQ_AGAIN);
    CHECK(rsq_client_wants(&c) & RSQ_WANT_READ);
    t0 = now_ms();
    do {
        struct pollfd p;
        p.fd = rsq_client_fd(&c);
        p.events = POLLIN;
        poll(&p, 1, 100);
        rc = rsq_read_reply(&c, &r, RSQ_TIMEOUT_NONBLOCK);
    } while (rc == RSQ_AGAIN && now_ms() - t0 < 3000);
    CHECK_RC(rc, RSQ_OK);
    /* the plain command path uses io_timeout_ms: a longer BLPOP times out and closes */
    CHECK_RC(rsq_command(&c, &r, "BLPOP", "nb:list", "1", (char *)0), RSQ_ERR_TIMEOUT);
    CHECK(!rsq_is_connected(&c));
    CHECK_RC(rsq_command(&c, &r, "PING", (char *)0), RSQ_OK); /* reconnects */
    rsq_client_free(&c);
}

/* A server killed while a call waits: a clean RSQ_ERR_IO, then reconnect after restart. */
static void test_live_server_killed_mid_call(void) {
    srv s2;
    rsq_client c;
    rsq_client_config cfg;
    const rsq_reply *r;
    pid_t killer;
    rsq_client_stats st;
    REQUIRE(srv_start(&s2, NULL) == 0);
    rsq_client_config_init(&cfg);
    cfg.url = s2.url;
    cfg.retry_attempts = 2;
    cfg.retry_base_ms = 10;
    CHECK_RC(rsq_client_init(&c, &cfg), RSQ_OK);
    CHECK_RC(rsq_command(&c, &r, "PING", (char *)0), RSQ_OK);
    killer = fork();
    if (killer == 0) { usleep(200000); kill(s2.pid, SIGKILL); _exit(0); }
    CHECK_RC(rsq_command(&c, &r, "BLPOP", "k:list", "3", (char *)0), RSQ_ERR_IO);
    CHECK(strlen(rsq_errstr(&c)) > 0);
    waitpid(killer, NULL, 0);
    srv_kill(&s2); /* reap */
    CHECK(!rsq_is_connected(&c));
    CHECK_RC(rsq_command(&c, &r, "PING", (char *)0), RSQ_ERR_CONNECT);
    REQUIRE(srv_restart(&s2) == 0);
    CHECK_RC(rsq_command(&c, &r, "PING", (char *)0), RSQ_OK);
    rsq_client_get_stats(&c, &st);
    CHECK_EQ_INT(st.reconnects, 1);
    rsq_client_free(&c);
    srv_stop(&s2, 0);
}

/* Connect timeout: a listener whose backlog is full never completes the handshake. */
static void test_live_connect_timeout(void) {
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    int lfd = socket(AF_INET, SOCK_STREAM, 0), fillers[8], nf = 0, i;
    rsq_client c;
    rsq_client_config cfg;
    const rsq_reply *r;
    char url[64];
    long long t0, el;
    rsq_result rc;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(lfd >= 0 && bind(lfd, (struct sockaddr *)&a, sizeof a) == 0 && listen(lfd, 0) == 0);
    getsockname(lfd, (struct sockaddr *)&a, &len);
    /* fill the accept queue: later SYNs are dropped */
    for (i = 0; i < 8; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        int fl = fcntl(fd, F_GETFL, 0);
        fcntl(fd, F_SETFL, fl | O_NONBLOCK);
        connect(fd, (struct sockaddr *)&a, sizeof a);
        fillers[nf++] = fd;
    }
    usleep(50000);
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", ntohs(a.sin_port));
    rsq_client_config_init(&cfg);
    cfg.url = url;
    cfg.connect_timeout_ms = 300;
    cfg.io_timeout_ms = 300;
    cfg.retry_attempts = 1;
    CHECK_RC(rsq_client_init(&c, &cfg), RSQ_OK);
    t0 = now_ms();
    rc = rsq_command(&c, &r, "PING", (char *)0);
    el = now_ms() - t0;
    /* depending on the kernel the connect or the first read times out */
    CHECK(rc == RSQ_ERR_TIMEOUT);
    CHECK(el >= 250 && el < 2000);
    rsq_client_free(&c);
    for (i = 0; i < nf; i++) close(fillers[i]);
    close(lfd);
}

/* A listener that accepts but never answers: the command times out cleanly. */
static void test_live_silent_server_times_out(void) {
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    rsq_client c;
    rsq_client_config cfg;
    const rsq_reply *r;
    char url[64];
    long long t0;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(lfd >= 0 && bind(lfd, (struct sockaddr *)&a, sizeof a) == 0 && listen(lfd, 16) == 0);
    getsockname(lfd, (struct sockaddr *)&a, &len);
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", ntohs(a.sin_port));
    rsq_client_config_init(&cfg);
    cfg.url = url;
    cfg.io_timeout_ms = 250;
    cfg.retry_attempts = 1;
    CHECK_RC(rsq_client_init(&c, &cfg), RSQ_OK);
    t0 = now_ms();
    CHECK_RC(rsq_command(&c, &r, "PING", (char *)0), RSQ_ERR_TIMEOUT);
    CHECK(now_ms() - t0 >= 200);
    CHECK(!rsq_is_connected(&c));
    rsq_client_free(&c);
    close(lfd);
}

static void test_live_refused_and_bad_args(void) {
    rsq_client c;
    rsq_client_config cfg;
    const rsq_reply *r;
    char url[64];
    const char *argv[2] = { "GET", NULL };
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", srv_free_port());
    rsq_client_config_init(&cfg);
    cfg.url = url;
    cfg.retry_attempts = 2;
    cfg.retry_base_ms = 5;
    CHECK_RC(rsq_client_init(&c, &cfg), RSQ_OK);
    CHECK_RC(rsq_command(&c, &r, "PING", (char *)0), RSQ_ERR_CONNECT);
    CHECK(strstr(rsq_errstr(&c), "refused") != NULL);
    CHECK_RC(rsq_command_argv(&c, &r, 2, argv, NULL), RSQ_ERR_ARG);
    CHECK_RC(rsq_command_argv(&c, &r, 0, argv, NULL), RSQ_ERR_ARG);
    rsq_client_free(&c);
    cfg.url = "redis://no-such-host.invalid:6379";
    CHECK_RC(rsq_client_init(&c, &cfg), RSQ_OK);
    CHECK_RC(rsq_command(&c, &r, "PING", (char *)0), RSQ_ERR_RESOLVE);
    rsq_client_free(&c);
    cfg.url = "rediss://127.0.0.1:6379";
    CHECK_RC(rsq_client_init(&c, &cfg), RSQ_OK);
    CHECK_RC(rsq_command(&c, &r, "PING", (char *)0), RSQ_ERR_UNSUPPORTED);
    CHECK(strstr(rsq_errstr(&c), "TLS") != NULL);
    rsq_client_free(&c);
}

/* redis_version from an INFO text: 70204 for "redis_version:7.2.4", 0 when absent. */
static long info_version(const char *info) {
    const char *p = strstr(info, "redis_version:");
    long part[3] = { 0, 0, 0 };
    int k = 0;
    if (!p) return 0;
    for (p += 14; *p && k < 3; p++) {
        if (*p >= '0' && *p <= '9') part[k] = part[k] * 10 + (*p - '0');
        else if (*p == '.') k++;
        else break;
    }
    return part[0] * 10000 + part[1] * 100 + part[2];
}

/* The server's version as rsq_server_version reads it: INFO's redis_version (Valkey
   gives the Redis release it is compatible with there: 7.2.4 for Valkey 9, new enough
   for every feature rsq uses); where INFO is refused, HELLO's version (Redis >= 6.0;
   Valkey's own there); a server with neither says so clearly, and stays usable. */
static void test_live_server_version(void) {
    srv N;
    rsq_client c;
    const rsq_reply *r;
    long v = -1, bin = srv_version(&S), compat = 0;
    int valkey = 0;
    REQUIRE(have_server);
    CHECK_RC(open_client(&c, S.url, 2), RSQ_OK);
    REQUIRE(rsq_command(&c, &r, "INFO", "server", (char *)0) == RSQ_OK && r->str);
    valkey = strstr(r->str, "valkey_version:") != NULL || strstr(r->str, "server_name:valkey") != NULL;
    compat = info_version(r->str);
    CHECK_RC(rsq_server_version(&c, &v), RSQ_OK);
    CHECK_EQ_INT(v, compat);
    if (valkey) CHECK(v >= 70000); /* XAUTOCLAIM, MINID and ms-* IDs are all there */
    else if (bin) CHECK_EQ_INT(v, bin);
    rsq_client_free(&c);
    REQUIRE(srv_start(&N, "rename-command INFO \"\"\n") == 0);
    CHECK_RC(open_client(&c, N.url, 2), RSQ_OK);
    if (bin && bin < 60000) {
        CHECK_RC(rsq_server_version(&c, &v), RSQ_ERR_UNSUPPORTED); /* no HELLO before 6.0 */
        CHECK(strstr(rsq_errstr(&c), "version unknown") != NULL);
    } else {
        CHECK_RC(rsq_server_version(&c, &v), RSQ_OK);
        if (bin) CHECK_EQ_INT(v, bin);
    }
    CHECK_RC(rsq_command(&c, &r, "PING", (char *)0), RSQ_OK);
    rsq_client_free(&c);
    srv_stop(&N, 0);
}

void suite_live(void) {
    have_server = srv_start(&S, NULL) == 0;
    RUN(test_live_tcp_and_unix_ping);
    RUN(test_live_ipv6_loopback);
    RUN(test_live_acl_user_and_wrong_password);
    RUN(test_live_select_and_setname);
    RUN(test_live_pipeline_10k);
    RUN(test_live_binary_payloads);
    RUN(test_live_resp3);
    RUN(test_live_server_error_text);
    RUN(test_live_blocking_and_nonblocking_reads);
    RUN(test_live_server_killed_mid_call);
    RUN(test_live_connect_timeout);
    RUN(test_live_silent_server_times_out);
    RUN(test_live_refused_and_bad_args);
    RUN(test_live_server_version);
    if (have_server) srv_stop(&S, 0);
}
