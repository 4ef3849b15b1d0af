/* test_client.c - the client layer against failures other Redis clients got wrong
   (issue 13, items 1-6), each with its right value, on a private redis-server:
   a script's own error is never a retry signal; a connection the server closed while
   idle is noticed before writing; READONLY/MASTERDOWN (the node changed role) mean
   close, reconnect and retry; "max number of clients reached" is a connection
   failure; RESP3 doubles as servers send them (-nan); calls with a timeout return
   within their documented bound against a frozen (SIGSTOPped) server. */
#define _DEFAULT_SOURCE 1
#include "t.h"
#include "server.h"
#include "../rsq.h"
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long cl_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void cl_config(rsq_client_config *cfg, const char *url) {
    rsq_client_config_init(cfg);
    cfg->url = url;
    cfg->retry_base_ms = 20;
    cfg->retry_max_ms = 200;
    cfg->retry_attempts = 10;
}

/* The value of "field:" in an INFO text, or -1. */
static long long cl_info_field(const char *info, const char *field) {
    size_t n = strlen(field);
    const char *p = info;
    while ((p = strstr(p, field)) != NULL) {
        if ((p == info || p[-1] == '\n') && p[n] == ':') return atoll(p + n + 1);
        p += n;
    }
    return -1;
}

/* errorstat_WORD:count=N from INFO errorstats (Redis >= 6.2), 0 when absent, -1 when
   the server has no error statistics. */
static long long cl_errorstat(const srv *s, const char *word) {
    char out[4096], key[64];
    const char *p;
    if (srv_cli(s, out, sizeof out, "INFO errorstats") != 0 || !strstr(out, "# Errorstats")) return -1;
    snprintf(key, sizeof key, "errorstat_%s:count=", word);
    p = strstr(out, key);
    return p ? atoll(p + strlen(key)) : 0;
}

/* A raw unix-socket connection (to hold a client slot, or to ask a full server). */
static int cl_unix_connect(const char *path) {
    struct sockaddr_un a;
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    snprintf(a.sun_path, sizeof a.sun_path, "%.100s", path);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) { close(fd); return -1; }
    return fd;
}

/* Sends an inline command and reads one reply (a line, or a whole bulk) into out. */
static int cl_raw(int fd, const char *req, char *out, size_t cap) {
    size_t n = 0;
    long long want = -1, t0 = cl_now_ms();
    if (write(fd, req, strlen(req)) != (ssize_t)strlen(req)) return -1;
    while (n + 1 < cap && cl_now_ms() - t0 < 3000) {
        struct pollfd p;
        ssize_t k;
        p.fd = fd;
        p.events = POLLIN;
        p.revents = 0;
        if (poll(&p, 1, 100) <= 0) continue;
        k = read(fd, out + n, cap - 1 - n);
        if (k <= 0) return -1;
        n += (size_t)k;
        out[n] = '\0';
        if (want < 0 && strstr(out, "\r\n")) {
            if (out[0] != '$') return 0;
            want = atoll(out + 1) + (long long)(strstr(out, "\r\n") - out) + 4;
        }
        if (want >= 0 && (long long)n >= want) return 0;
    }
    return -1;
}

/* ------------------------------------------------------------------------------------
   Item 1: a script's own error is not a retry signal. */

static void test_client_script_error_is_final(void) {
    static const char *words[] = { "LOADING", "BUSY", "TRYAGAIN", "READONLY", "MASTERDOWN" };
    static const char script[] = "redis.call('INCR', KEYS[1]) return redis.error_reply(ARGV[1])";
    srv s;
    rsq_client c;
    rsq_client_config cfg;
    const rsq_reply *r;
    rsq_client_stats st;
    char out[256], sha[64], msg[64];
    size_t i;
    long version = 0;
    REQUIRE(srv_start(&s, NULL) == 0);
    cl_config(&cfg, s.url);
    cfg.retry_base_ms = 2;
    cfg.retry_max_ms = 10;
    REQUIRE(rsq_client_init(&c, &cfg) == RSQ_OK);
    REQUIRE(rsq_command(&c, &r, "SCRIPT", "LOAD", script, (char *)0) == RSQ_OK && r->str && r->len < sizeof sha);
    memcpy(sha, r->str, r->len + 1);
    for (i = 0; i < sizeof words / sizeof words[0]; i++) {
        snprintf(msg, sizeof msg, "%s app says no", words[i]);
        /* EVAL: the script ran once; its error is the caller's, final, never resent */
        CHECK_RC(rsq_command(&c, &r, "EVAL", script, "1", "counter", msg, (char *)0), RSQ_ERR_SERVER);
        CHECK_STR(rsq_errstr(&c), msg);
        CHECK(r && r->type == RSQ_REPLY_ERROR);
        CHECK_EQ_INT(srv_cli(&s, out, sizeof out, "GET counter"), 0);
        CHECK_STR(out, "1");
        srv_cli(&s, NULL, 0, "DEL counter");
        /* EVALSHA: the same */
        CHECK_RC(rsq_command(&c, &r, "EVALSHA", sha, "1", "counter", msg, (char *)0), RSQ_ERR_SERVER);
        CHECK_STR(rsq_errstr(&c), msg);
        CHECK_EQ_INT(srv_cli(&s, out, sizeof out, "GET counter"), 0);
        CHECK_STR(out, "1");
        srv_cli(&s, NULL, 0, "DEL counter");
    }
    rsq_client_get_stats(&c, &st);
    CHECK_EQ_INT(st.server_retries, 0);
    CHECK(rsq_is_connected(&c)); /* an error reply: the connection is fine */
    /* FCALL (Redis >= 7.0): a function's error reply is final as well */
    if (rsq_server_version(&c, &version) == RSQ_OK && version >= 70000) {
        static const char lib[] =
            "#!lua name=rsqtest\n"
            "redis.register_function('incr_then_fail', function(keys, args) "
            "redis.call('INCR', keys[1]) return redis.error_reply(args[1]) end)";
        CHECK_RC(rsq_command(&c, &r, "FUNCTION", "LOAD", "REPLACE", lib, (char *)0), RSQ_OK);
        for (i = 0; i < sizeof words / sizeof words[0]; i++) {
            snprintf(msg, sizeof msg, "%s app says no", words[i]);
            CHECK_RC(rsq_command(&c, &r, "FCALL", "incr_then_fail", "1", "counter", msg, (char *)0), RSQ_ERR_SERVER);
            CHECK_STR(rsq_errstr(&c), msg);
            CHECK_EQ_INT(srv_cli(&s, out, sizeof out, "GET counter"), 0);
            CHECK_STR(out, "1");
            srv_cli(&s, NULL, 0, "DEL counter");
        }
        rsq_client_get_stats(&c, &st);
        CHECK_EQ_INT(st.server_retries, 0);
    }
    rsq_client_free(&c);
    srv_stop(&s, 0);
    t_need_version(srv_version(&s), 70000, "FCALL");
}

/* ------------------------------------------------------------------------------------
   Item 2: a connection the server closed while idle is noticed before writing. */

static void test_client_idle_close_noticed_before_write(void) {
    srv s;
    rsq_client c;
    rsq_client_config cfg;
    const rsq_reply *r;
    rsq_client_stats st;
    char out[256];
    long long id = 0;
    REQUIRE(srv_start(&s, "timeout 1\n") == 0);
    cl_config(&cfg, s.url);
    REQUIRE(rsq_client_init(&c, &cfg) == RSQ_OK);
    /* the server's idle timeout closes the connection between two commands */
    CHECK_RC(rsq_command(&c, &r, "SET", "k", "v", (char *)0), RSQ_OK);
    sleep(3);
    CHECK_RC(rsq_command(&c, &r, "INCR", "n", (char *)0), RSQ_OK);
    CHECK(r && r->type == RSQ_REPLY_INTEGER && r->integer == 1);
    CHECK_EQ_INT(srv_cli(&s, out, sizeof out, "GET n"), 0);
    CHECK_STR(out, "1");
    rsq_client_get_stats(&c, &st);
    CHECK_EQ_INT(st.reconnects, 1);
    /* CLIENT KILL between two commands: the same */
    CHECK_RC(rsq_command(&c, &r, "CLIENT", "ID", (char *)0), RSQ_OK);
    if (r) id = r->integer;
    CHECK_EQ_INT(srv_cli(&s, out, sizeof out, "CLIENT KILL ID %lld", id), 0);
    CHECK_STR(out, "1");
    usleep(100000);
    CHECK_RC(rsq_command(&c, &r, "INCR", "n2", (char *)0), RSQ_OK);
    CHECK(r && r->type == RSQ_REPLY_INTEGER && r->integer == 1);
    CHECK_EQ_INT(srv_cli(&s, out, sizeof out, "GET n2"), 0);
    CHECK_STR(out, "1");
    rsq_client_get_stats(&c, &st);
    CHECK_EQ_INT(st.reconnects, 2);
    rsq_client_free(&c);
    srv_stop(&s, 0);
}

/* ------------------------------------------------------------------------------------
   Item 3: READONLY / MASTERDOWN mean the node changed role: close, reconnect (the
   address is looked up again), retry. The "name" here is a unix socket path, a
   symbolic link the test points at the current primary, as DNS or a proxy would. */

static int cl_relink(const char *link, const char *target) {
    char tmp[400];
    snprintf(tmp, sizeof tmp, "%s.new", link);
    unlink(tmp);
    if (symlink(target, tmp) != 0) return -1;
    return rename(tmp, link);
}

static void test_client_readonly_follows_the_address(void) {
    srv a, b;
    char dir[] = "/tmp/rsq-link-XXXXXX", link[128], url[160], out[256];
    rsq_client c;
    rsq_client_config cfg;
    rsq_producer p;
    rsq_producer_config pc;
    const rsq_reply *r;
    rsq_client_stats st;
    rsq_id id;
    long long ro;
    REQUIRE(srv_start(&a, NULL) == 0);
    if (srv_start(&b, NULL) != 0) { srv_stop(&a, 0); REQUIRE(0); }
    if (!mkdtemp(dir)) { srv_stop(&a, 0); srv_stop(&b, 0); REQUIRE(0); }
    snprintf(link, sizeof link, "%s/redis.sock", dir);
    snprintf(url, sizeof url, "unix://%s", link);
    REQUIRE(cl_relink(link, a.sock) == 0);
    cl_config(&cfg, url);
    REQUIRE(rsq_client_init(&c, &cfg) == RSQ_OK);
    CHECK_RC(rsq_command(&c, &r, "SET", "k1", "on-a", (char *)0), RSQ_OK);
    /* failover: the name now leads to B, the primary; A becomes B's replica */
    CHECK(cl_relink(link, b.sock) == 0);
    CHECK_EQ_INT(srv_cli(&a, out, sizeof out, "REPLICAOF 127.0.0.1 %d", b.port), 0);
    CHECK_RC(rsq_command(&c, &r, "SET", "k2", "after-failover", (char *)0), RSQ_OK);
    CHECK_EQ_INT(srv_cli(&b, out, sizeof out, "GET k2"), 0);
    CHECK_STR(out, "after-failover");
    rsq_client_get_stats(&c, &st);
    CHECK_EQ_INT(st.reconnects, 1);
    ro = cl_errorstat(&a, "READONLY");
    if (ro >= 0) CHECK_EQ_INT(ro, 1); /* asked the stale node once, not retry_attempts times */
    /* and back: A is promoted, B becomes its replica; a publish follows the address */
    CHECK(cl_relink(link, a.sock) == 0);
    CHECK_EQ_INT(srv_cli(&a, out, sizeof out, "REPLICAOF NO ONE"), 0);
    CHECK_EQ_INT(srv_cli(&b, out, sizeof out, "REPLICAOF 127.0.0.1 %d", a.port), 0);
    rsq_producer_config_init(&pc);
    pc.queue = "failover-q";
    REQUIRE(rsq_producer_init(&p, &c, &pc) == RSQ_OK);
    CHECK_RC(rsq_publish(&p, "m1", 2, &id), RSQ_OK);
    CHECK_EQ_INT(srv_cli(&a, out, sizeof out, "XLEN failover-q"), 0);
    CHECK_STR(out, "1");
    rsq_client_get_stats(&c, &st);
    CHECK_EQ_INT(st.reconnects, 2);
    ro = cl_errorstat(&b, "READONLY");
    if (ro >= 0) CHECK_EQ_INT(ro, 1);
    rsq_client_free(&c);
    unlink(link);
    rmdir(dir);
    srv_stop(&b, 0);
    srv_stop(&a, 0);
}

/* The node at the address is a replica for a moment and then primary again: every
   READONLY answer is followed by a fresh connection, and the write lands. */
static void test_client_readonly_node_promoted_again(void) {
    srv a, b;
    rsq_client c;
    rsq_client_config cfg;
    const rsq_reply *r;
    rsq_client_stats st;
    char out[256];
    pid_t promoter;
    long long ro;
    REQUIRE(srv_start(&a, NULL) == 0);
    if (srv_start(&b, NULL) != 0) { srv_stop(&a, 0); REQUIRE(0); }
    cl_config(&cfg, a.url);
    cfg.retry_base_ms = 50;
    cfg.retry_max_ms = 200;
    cfg.retry_attempts = 40; /* room for a slow promoter on a busy machine */
    REQUIRE(rsq_client_init(&c, &cfg) == RSQ_OK);
    CHECK_RC(rsq_command(&c, &r, "PING", (char *)0), RSQ_OK);
    CHECK_EQ_INT(srv_cli(&a, out, sizeof out, "REPLICAOF 127.0.0.1 %d", b.port), 0);
    promoter = fork();
    if (promoter == 0) {
        usleep(400000);
        _exit(srv_cli(&a, NULL, 0, "REPLICAOF NO ONE") == 0 ? 0 : 1);
    }
    CHECK_RC(rsq_command(&c, &r, "SET", "k", "v", (char *)0), RSQ_OK);
    waitpid(promoter, NULL, 0);
    CHECK_EQ_INT(srv_cli(&a, out, sizeof out, "GET k"), 0);
    CHECK_STR(out, "v");
    rsq_client_get_stats(&c, &st);
    ro = cl_errorstat(&a, "READONLY");
    CHECK(st.reconnects >= 1);
    if (ro >= 0) {
        CHECK(ro >= 1 && ro < 40); /* backoff between attempts (100..200 ms once grown) */
        CHECK_EQ_INT(st.reconnects, ro); /* never asked the same connection twice */
    }
    rsq_client_free(&c);
    srv_stop(&b, 0);
    srv_stop(&a, 0);
}

/* MASTERDOWN (a replica that lost its primary and serves no stale data): the same. */
static void test_client_masterdown_follows_the_address(void) {
    srv a, b;
    char dir[] = "/tmp/rsq-link-XXXXXX", link[128], url[160], out[256];
    rsq_client c;
    rsq_client_config cfg;
    const rsq_reply *r;
    rsq_client_stats st;
    REQUIRE(srv_start(&a, NULL) == 0);
    if (srv_start(&b, NULL) != 0) { srv_stop(&a, 0); REQUIRE(0); }
    if (!mkdtemp(dir)) { srv_stop(&a, 0); srv_stop(&b, 0); REQUIRE(0); }
    snprintf(link, sizeof link, "%s/redis.sock", dir);
    snprintf(url, sizeof url, "unix://%s", link);
    REQUIRE(cl_relink(link, a.sock) == 0);
    CHECK_EQ_INT(srv_cli(&b, out, sizeof out, "SET k from-b"), 0);
    cl_config(&cfg, url);
    REQUIRE(rsq_client_init(&c, &cfg) == RSQ_OK);
    CHECK_RC(rsq_connect(&c), RSQ_OK);
    /* A becomes a replica of a primary that is not there, serving no stale data */
    CHECK_EQ_INT(srv_cli(&a, out, sizeof out, "CONFIG SET replica-serve-stale-data no"), 0);
    CHECK_EQ_INT(srv_cli(&a, out, sizeof out, "REPLICAOF 127.0.0.1 %d", srv_free_port()), 0);
    CHECK(cl_relink(link, b.sock) == 0);
    CHECK_RC(rsq_command(&c, &r, "GET", "k", (char *)0), RSQ_OK);
    CHECK(rsq_reply_is(r, "from-b"));
    rsq_client_get_stats(&c, &st);
    CHECK_EQ_INT(st.reconnects, 1);
    rsq_client_free(&c);
    unlink(link);
    rmdir(dir);
    srv_stop(&b, 0);
    srv_stop(&a, 0);
}

/* ------------------------------------------------------------------------------------
   Item 4: "ERR max number of clients reached" is a connection failure, whenever it
   comes (the server sends it on accept, then closes): close, back off, reconnect. */

static long long cl_rejected(int holder) {
    char out[8192];
    if (cl_raw(holder, "INFO stats\r\n", out, sizeof out) != 0) return -1;
    return cl_info_field(out, "rejected_connections");
}

static void test_client_max_clients_is_a_connection_failure(void) {
    srv s;
    rsq_client c;
    rsq_client_config cfg;
    const rsq_reply *r;
    char out[256], url[512];
    int holder = -1, resp3, tries;
    long long before, after;
    rsq_result rc;
    REQUIRE(srv_start(&s, "maxclients 1\n") == 0);
    resp3 = !srv_version(&s) || srv_version(&s) >= 60000;
    /* takes the only client slot (once the server has let go of srv_start's probe) */
    for (tries = 0; tries < 100; tries++) {
        holder = cl_unix_connect(s.sock);
        if (holder >= 0 && cl_raw(holder, "PING\r\n", out, sizeof out) == 0 && !strncmp(out, "+PONG", 5)) break;
        if (holder >= 0) close(holder);
        holder = -1;
        usleep(20000);
    }
    if (holder < 0) {
        srv_stop(&s, 0);
        REQUIRE(0);
    }
    /* during HELLO 3 (Redis >= 6.0; older servers have no HELLO, and RESP2 is the way) */
    if (resp3) {
        cl_config(&cfg, s.url);
        cfg.protocol = 3;
        cfg.retry_attempts = 3;
        cfg.retry_base_ms = 10;
        cfg.retry_max_ms = 40;
        REQUIRE(rsq_client_init(&c, &cfg) == RSQ_OK);
        before = cl_rejected(holder);
        rc = rsq_connect(&c);
        after = cl_rejected(holder);
        CHECK_RC(rc, RSQ_ERR_CONNECT);
        CHECK(strstr(rsq_errstr(&c), "max number of clients reached") != NULL);
        CHECK(!rsq_is_connected(&c));
        CHECK_EQ_INT(after - before, 3); /* one connection per attempt: it retried */
        rsq_client_free(&c);
    }
    /* during SELECT */
    snprintf(url, sizeof url, "%s/1", s.url);
    cl_config(&cfg, url);
    cfg.retry_attempts = 3;
    cfg.retry_base_ms = 10;
    cfg.retry_max_ms = 40;
    REQUIRE(rsq_client_init(&c, &cfg) == RSQ_OK);
    before = cl_rejected(holder);
    rc = rsq_connect(&c);
    after = cl_rejected(holder);
    CHECK_RC(rc, RSQ_ERR_CONNECT);
    CHECK(strstr(rsq_errstr(&c), "max number of clients reached") != NULL);
    CHECK(!rsq_is_connected(&c));
    CHECK_EQ_INT(after - before, 3);
    rsq_client_free(&c);
    /* as the reply to a plain command (RESP2, no handshake round trip) */
    cl_config(&cfg, s.url);
    cfg.retry_attempts = 3;
    cfg.retry_base_ms = 10;
    cfg.retry_max_ms = 40;
    REQUIRE(rsq_client_init(&c, &cfg) == RSQ_OK);
    before = cl_rejected(holder);
    rc = rsq_command(&c, &r, "PING", (char *)0);
    after = cl_rejected(holder);
    CHECK_RC(rc, RSQ_ERR_CONNECT);
    CHECK(strstr(rsq_errstr(&c), "max number of clients reached") != NULL);
    CHECK(!rsq_is_connected(&c));
    CHECK_EQ_INT(after - before, 3);
    rsq_client_free(&c);
    close(holder);
    /* a slot that frees up during the backoff: the call succeeds */
    {
        int pfd[2];
        pid_t child;
        char b = 0;
        REQUIRE(pipe(pfd) == 0);
        child = fork();
        if (child == 0) { /* takes the slot (once the server has let go of the one
                             above), holds it for half a second */
            int fd = -1, i;
            close(pfd[0]);
            for (i = 0; i < 100 && !b; i++) {
                fd = cl_unix_connect(s.sock);
                if (fd >= 0 && cl_raw(fd, "PING\r\n", out, sizeof out) == 0 && !strncmp(out, "+PONG", 5)) b = 1;
                else { if (fd >= 0) close(fd); usleep(20000); }
            }
            if (write(pfd[1], &b, 1) != 1) _exit(1);
            usleep(500000);
            _exit(0);
        }
        close(pfd[1]);
        if (read(pfd[0], &b, 1) != 1) b = 0;
        close(pfd[0]);
        CHECK(b == 1);
        cl_config(&cfg, s.url);
        cfg.protocol = resp3 ? 3 : 2;
        cfg.retry_attempts = 20;
        cfg.retry_base_ms = 50;
        cfg.retry_max_ms = 200;
        REQUIRE(rsq_client_init(&c, &cfg) == RSQ_OK);
        CHECK_RC(rsq_command(&c, &r, "PING", (char *)0), RSQ_OK);
        CHECK(rsq_reply_is(r, "PONG"));
        rsq_client_free(&c);
        waitpid(child, NULL, 0);
    }
    srv_stop(&s, 0);
    if (!resp3) t_need_version(srv_version(&s), 60000, "HELLO 3");
}

/* ------------------------------------------------------------------------------------
   Item 5: RESP3 doubles as servers send them. */

static void test_client_resp3_double_text(void) {
    static const struct { const char *in; int kind; double v; } ok[] = {
        { ",-nan\r\n", 2, 0 }, { ",nan\r\n", 2, 0 }, { ",NaN\r\n", 2, 0 }, { ",NAN\r\n", 2, 0 },
        { ",-NaN\r\n", 2, 0 }, { ",inf\r\n", 1, 1 }, { ",-inf\r\n", 1, -1 }, { ",INF\r\n", 1, 1 },
        { ",-Inf\r\n", 1, -1 }, { ",Inf\r\n", 1, 1 }, { ",1.5\r\n", 0, 1.5 }, { ",-2e3\r\n", 0, -2000 },
        { ",1E-2\r\n", 0, 0.01 }, { ",0\r\n", 0, 0 }, { ",-0.25\r\n", 0, -0.25 }
    };
    static const char *bad[] = {
        ",-\r\n", ",+\r\n", ",.\r\n", ",e\r\n", ",e5\r\n", ",1e\r\n", ",1e+\r\n", ",1.2.3\r\n", ",--1\r\n",
        ",1-2\r\n", ",nanx\r\n", ",-na\r\n", ",infinity\r\n", ",+-inf\r\n", ",1e5e5\r\n", ",-.\r\n"
    };
    size_t i;
    for (i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        rsq_reader rd;
        const rsq_reply *r = NULL;
        rsq_result rc;
        rsq_reader_init(&rd, NULL, NULL);
        rsq_reader_feed(&rd, ok[i].in, strlen(ok[i].in));
        rc = rsq_reader_next(&rd, &r);
        if (rc != RSQ_OK || !r || r->type != RSQ_REPLY_DOUBLE ||
            (ok[i].kind == 2 && !isnan(r->dbl)) ||
            (ok[i].kind == 1 && !(isinf(r->dbl) && (r->dbl > 0) == (ok[i].v > 0))) ||
            (ok[i].kind == 0 && fabs(r->dbl - ok[i].v) > 1e-12)) {
            t_cur_failed++;
            fprintf(stderr, "    %.*s: %s (%s)\n", (int)strlen(ok[i].in) - 2, ok[i].in, rsq_result_name(rc),
                    rsq_reader_errstr(&rd));
        }
        rsq_reader_free(&rd);
    }
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rsq_reader rd;
        const rsq_reply *r = NULL;
        rsq_result rc;
        rsq_reader_init(&rd, NULL, NULL);
        rsq_reader_feed(&rd, bad[i], strlen(bad[i]));
        rc = rsq_reader_next(&rd, &r);
        if (rc != RSQ_ERR_PROTOCOL) {
            t_cur_failed++;
            fprintf(stderr, "    %.*s: %s, expected RSQ_ERR_PROTOCOL\n", (int)strlen(bad[i]) - 2, bad[i], rsq_result_name(rc));
        }
        rsq_reader_free(&rd);
    }
}

static void test_client_resp3_double_live(void) {
    static const struct { const char *expr; int kind; } cases[] = {
        { "0/0", 2 }, { "-(0/0)", 2 }, { "1/0", 1 }, { "-1/0", -1 }, { "2.5", 0 }
    };
    srv s;
    rsq_client c;
    rsq_client_config cfg;
    const rsq_reply *r;
    long version = 0;
    size_t i;
    REQUIRE(srv_start(&s, NULL) == 0);
    cl_config(&cfg, s.url);
    cfg.protocol = 3;
    REQUIRE(rsq_client_init(&c, &cfg) == RSQ_OK);
    if (!t_need_version(srv_version(&s), 70000, "Lua doubles in RESP3")) {
        rsq_client_free(&c);
        srv_stop(&s, 0);
        return;
    }
    CHECK_RC(rsq_server_version(&c, &version), RSQ_OK);
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char script[128];
        rsq_result rc;
        snprintf(script, sizeof script, "redis.setresp(3) return {double=%s}", cases[i].expr);
        rc = rsq_command(&c, &r, "EVAL", script, "0", (char *)0);
        CHECK_RC(rc, RSQ_OK);
        if (rc != RSQ_OK) { fprintf(stderr, "    {double=%s}: %s\n", cases[i].expr, rsq_errstr(&c)); continue; }
        CHECK(r->type == RSQ_REPLY_DOUBLE);
        if (cases[i].kind == 2) CHECK(isnan(r->dbl));
        if (cases[i].kind == 1) CHECK(isinf(r->dbl) && r->dbl > 0);
        if (cases[i].kind == -1) CHECK(isinf(r->dbl) && r->dbl < 0);
        if (cases[i].kind == 0) CHECK(r->dbl == 2.5);
    }
    CHECK(rsq_is_connected(&c));
    rsq_client_free(&c);
    srv_stop(&s, 0);
}

/* ------------------------------------------------------------------------------------
   Item 6: calls with a timeout return within their documented bound, frozen server
   included (SIGSTOP: the kernel still accepts connections, nobody answers). */

#define CL_SLACK_MS 1000 /* scheduling on a busy shared machine */

static void cl_freeze(srv *s) { kill(s->pid, SIGSTOP); }
static void cl_thaw(srv *s) { kill(s->pid, SIGCONT); }

static void test_client_timeouts_frozen_server(void) {
    srv s;
    rsq_client c;
    rsq_client_config cfg;
    const rsq_reply *r;
    long long t0, ms;
    rsq_result rc;
    REQUIRE(srv_start(&s, NULL) == 0);
    /* rsq_command, connected: io_timeout_ms */
    cl_config(&cfg, s.url);
    cfg.io_timeout_ms = 500;
    cfg.connect_timeout_ms = 400;
    cfg.retry_attempts = 4;
    cfg.retry_base_ms = 50;
    cfg.retry_max_ms = 100;
    REQUIRE(rsq_client_init(&c, &cfg) == RSQ_OK);
    CHECK_RC(rsq_command(&c, &r, "PING", (char *)0), RSQ_OK);
    cl_freeze(&s);
    t0 = cl_now_ms();
    rc = rsq_command(&c, &r, "INCR", "n", (char *)0);
    ms = cl_now_ms() - t0;
    CHECK_RC(rc, RSQ_ERR_TIMEOUT);
    CHECK(ms >= 450 && ms <= 500 + CL_SLACK_MS);
    /* rsq_read_reply with its own timeout */
    CHECK_RC(rsq_append(&c, "PING", (char *)0), RSQ_OK);
    t0 = cl_now_ms();
    rc = rsq_read_reply(&c, &r, 700);
    ms = cl_now_ms() - t0;
    CHECK_RC(rc, RSQ_ERR_TIMEOUT);
    CHECK(ms >= 650 && ms <= 700 + CL_SLACK_MS);
    /* calls that have to connect (RESP3: the handshake waits for HELLO's reply): at
       most retry_attempts connect attempts, each within 2 * connect_timeout_ms (the
       TCP connect, the handshake), with backoffs of at most retry_max_ms between them;
       an idempotent call (rsq_server_version) does not start them over */
    rsq_client_free(&c);
    cfg.protocol = 3;
    REQUIRE(rsq_client_init(&c, &cfg) == RSQ_OK);
    t0 = cl_now_ms();
    rc = rsq_connect(&c);
    ms = cl_now_ms() - t0;
    CHECK_RC(rc, RSQ_ERR_TIMEOUT);
    CHECK(ms <= 4 * (2 * 400 + 100) + CL_SLACK_MS);
    {
        long v = 0;
        t0 = cl_now_ms();
        rc = rsq_server_version(&c, &v);
        ms = cl_now_ms() - t0;
        CHECK_RC(rc, RSQ_ERR_TIMEOUT);
        CHECK(ms <= 4 * (2 * 400 + 100) + CL_SLACK_MS);
        if (ms > 4 * (2 * 400 + 100) + CL_SLACK_MS) fprintf(stderr, "    rsq_server_version took %lld ms\n", ms);
    }
    rsq_client_free(&c);
    cl_thaw(&s);
    srv_stop(&s, 0);
}

static void test_client_timeouts_frozen_server_consumer(void) {
    srv s;
    rsq_client c;
    rsq_client_config cfg;
    rsq_producer p;
    rsq_producer_config pc;
    rsq_consumer k;
    rsq_consumer_config kc;
    const rsq_message *m;
    long long t0, ms;
    rsq_result rc;
    REQUIRE(srv_start(&s, NULL) == 0);
    cl_config(&cfg, s.url);
    cfg.io_timeout_ms = 3000;
    cfg.connect_timeout_ms = 3000;
    cfg.block_margin_ms = 500;
    cfg.retry_attempts = 4;
    cfg.retry_base_ms = 50;
    cfg.retry_max_ms = 200;
    REQUIRE(rsq_client_init(&c, &cfg) == RSQ_OK);
    rsq_producer_config_init(&pc);
    pc.queue = "frozen";
    REQUIRE(rsq_producer_init(&p, &c, &pc) == RSQ_OK);
    rsq_consumer_config_init(&kc);
    kc.queue = "frozen";
    kc.group = "g";
    kc.name = "c1";
    kc.start = RSQ_START_ALL;
    REQUIRE(rsq_consumer_init(&k, &c, &kc) == RSQ_OK);
    CHECK_RC(rsq_publish(&p, "m1", 2, NULL), RSQ_OK);
    CHECK_RC(rsq_consumer_next(&k, &m, 2000), RSQ_OK);
    if (m) CHECK_RC(rsq_ack(&k, m), RSQ_OK);
    CHECK_RC(rsq_consumer_flush(&k), RSQ_OK);
    cl_freeze(&s);
    /* consumer_next(T): within T + block_margin_ms */
    t0 = cl_now_ms();
    rc = rsq_consumer_next(&k, &m, 1500);
    ms = cl_now_ms() - t0;
    CHECK_RC(rc, RSQ_ERR_TIMEOUT);
    CHECK(ms <= 1500 + 500 + CL_SLACK_MS);
    if (ms > 1500 + 500 + CL_SLACK_MS) fprintf(stderr, "    rsq_consumer_next(1500) took %lld ms\n", ms);
    cl_thaw(&s);
    /* and it carries on once the server is back */
    CHECK_RC(rsq_publish(&p, "m2", 2, NULL), RSQ_OK);
    rc = rsq_consumer_next(&k, &m, 3000);
    CHECK_RC(rc, RSQ_OK);
    if (rc == RSQ_OK) CHECK(m->payload_len == 2 && !memcmp(m->payload, "m2", 2));
    rsq_consumer_free(&k);
    rsq_client_free(&c);
    srv_stop(&s, 0);
}

void suite_client(void) {
    RUN(test_client_script_error_is_final);
    RUN(test_client_idle_close_noticed_before_write);
    RUN(test_client_readonly_follows_the_address);
    RUN(test_client_readonly_node_promoted_again);
    RUN(test_client_masterdown_follows_the_address);
    RUN(test_client_max_clients_is_a_connection_failure);
    RUN(test_client_resp3_double_text);
    RUN(test_client_resp3_double_live);
    RUN(test_client_timeouts_frozen_server);
    RUN(test_client_timeouts_frozen_server_consumer);
}
