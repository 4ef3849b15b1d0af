/* test_acl.c - least privilege and restricted servers (issue 20), each case with its
   right value against real redis-servers: ACL users made with ACL SETUSER on a private
   server (Redis >= 6.0; older servers skip, listed in tests/skips.txt) and a server
   started with CLIENT, INFO, EVAL, EVALSHA and SCRIPT renamed away (rename-command
   ... ""), as managed providers do.
     1. an ack the server refuses is reported (never OK), the entry stays pending;
     2. a feature whose command is denied fails at start naming it, never a wrong
        figure (delivery counts, dead-letter counts);
     3. dead letters and replays move all or nothing, the error names the step;
     4. optional commands are optional: CLIENT SETNAME (denied or renamed) is skipped
        and said once, INFO and TIME are not needed;
     5. without scripting, publish, consume, reclaim, stats, dead letters and replay
        work, and what needs scripting (rsq_extend, rsq_retire_idle_consumers) says so;
     9. errors name the key that was denied.
   And the minimum ACL per role that README.md documents (its `ACL SETUSER` lines are
   read from README.md): each role runs with exactly those rights, through the library
   and the `rsq` tool. The TLS case of item 9 (a server that requires a client
   certificate) is in tests/tls_test.sh, where the TLS transport lives. */
#define _DEFAULT_SOURCE 1
#include "t.h"
#include "server.h"
#include "../rsq.h"
#include <ctype.h>
#include <stdarg.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static srv S;             /* a plain server: ACL users are made on it */
static srv R;             /* CLIENT, INFO, EVAL, EVALSHA, SCRIPT renamed away */
static int have_s, have_r, have_acl;
static char errfile[512]; /* the rsq tool's stderr */

#define NO_ACL "no ACL users on this server (Redis < 6.0)"

/* ---- helpers ---- */

static long long acl_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Case-insensitive strstr. */
static const char *ci_str(const char *hay, const char *needle) {
    size_t n = strlen(needle), i;
    if (!hay) return NULL;
    for (; *hay; hay++) {
        for (i = 0; i < n && hay[i] && tolower((unsigned char)hay[i]) == tolower((unsigned char)needle[i]); i++) {}
        if (i == n) return hay;
    }
    return NULL;
}

/* Makes (or remakes) ACL user NAME with password "pw" and the given rules (each one
   shell-quoted by the caller where it needs it). 0 on success. */
static int acl_user(const char *name, const char *rules) {
    char out[512];
    if (srv_cli(&S, out, sizeof out, "ACL SETUSER %s reset on '>pw' %s", name, rules) != 0) return -1;
    if (strcmp(out, "OK")) {
        fprintf(stderr, "    ACL SETUSER %s %s: %s\n", name, rules, out);
        return -1;
    }
    return 0;
}

static void user_url(char *url, size_t cap, const srv *s, const char *user) {
    snprintf(url, cap, "unix://%s:pw@%s", user, s->sock);
}

/* What the log hook received, one message per line. */
static char log_buf[16384];
static size_t log_len;

static void logger(void *user, rsq_log_level level, rsq_log_item item, const char *message) {
    int n;
    (void)user;
    (void)level;
    n = snprintf(log_buf + log_len, sizeof log_buf - log_len, "%s: %s\n", rsq_log_item_str(item), message);
    if (n > 0 && log_len + (size_t)n < sizeof log_buf) log_len += (size_t)n;
}

static int log_lines_with(const char *needle) {
    const char *p = log_buf;
    int n = 0;
    while ((p = ci_str(p, needle)) != NULL) {
        n++;
        p = strchr(p, '\n');
        if (!p) break;
    }
    return n;
}

static rsq_result client(rsq_client *c, const char *url, const char *name) {
    rsq_client_config cfg;
    rsq_client_config_init(&cfg);
    cfg.url = url;
    cfg.name = name;
    cfg.retry_base_ms = 10;
    cfg.retry_max_ms = 50;
    cfg.retry_attempts = 3;
    cfg.logger.func = logger;
    cfg.logger.level = RSQ_LOG_DEBUG;
    log_len = 0;
    log_buf[0] = '\0';
    return rsq_client_init(c, &cfg);
}

static int cons_count; /* the consumers' prefetch count; 0: the default */

static rsq_result consumer(rsq_consumer *k, rsq_client *c, const char *queue, const char *name, int vis_ms, int max_del) {
    rsq_consumer_config cc;
    rsq_consumer_config_init(&cc);
    cc.count = cons_count;
    cc.queue = queue;
    cc.group = "g";
    cc.name = name;
    cc.block_ms = 100;
    cc.visibility_ms = vis_ms;
    cc.reclaim_interval_ms = vis_ms > 1000 ? 0 : 100;
    cc.max_deliveries = max_del;
    cc.start = RSQ_START_ALL;
    return rsq_consumer_init(k, c, &cc);
}

/* Publishes payloads (NULL-terminated) to queue on server s as the default user. */
static int publish(const srv *s, const char *queue, ...) {
    rsq_client c;
    rsq_producer p;
    rsq_producer_config pc;
    const char *body;
    va_list ap;
    int ok = 1;
    if (client(&c, s->unix_url, NULL) != RSQ_OK) return 0;
    rsq_producer_config_init(&pc);
    pc.queue = queue;
    if (rsq_producer_init(&p, &c, &pc) != RSQ_OK) ok = 0;
    va_start(ap, queue);
    while (ok && (body = va_arg(ap, const char *)) != NULL) ok = rsq_publish(&p, body, strlen(body), NULL) == RSQ_OK;
    va_end(ap);
    rsq_client_free(&c);
    return ok;
}

/* An integer answer of redis-cli, or -1. */
static long long cli_int(const srv *s, const char *fmt, const char *a, const char *b) {
    char out[512];
    if (srv_cli(s, out, sizeof out, fmt, a, b) != 0 || !out[0]) return -1;
    return strtoll(out, NULL, 10);
}

static long long xlen(const srv *s, const char *key) { return cli_int(s, "XLEN '%s'%s", key, ""); }
/* The number of entries pending in group g of stream key. */
static long long pending(const srv *s, const char *key) { return cli_int(s, "XPENDING '%s' g%s", key, ""); }
/* The server's delivery count of the first pending entry of group g, or -1. */
static long long first_deliveries(const srv *s, const char *key) {
    char out[512];
    const char *p;
    int line = 0;
    if (srv_cli(s, out, sizeof out, "XPENDING '%s' g - + 1", key) != 0) return -1;
    for (p = out; *p && line < 3; p++) line += *p == '\n';
    return line == 3 && *p ? strtoll(p, NULL, 10) : -1;
}

/* Reads one message of queue as consumer `name` of group g without acking it (it stays
   pending on that consumer), with the default user. 1 on success. */
static int take_without_ack(const srv *s, const char *queue, const char *name) {
    rsq_client c;
    rsq_consumer k;
    const rsq_message *m = NULL;
    int ok;
    if (client(&c, s->unix_url, NULL) != RSQ_OK) return 0;
    cons_count = 1; /* this one entry only */
    ok = consumer(&k, &c, queue, name, 60000, 10) == RSQ_OK && rsq_consumer_next(&k, &m, 2000) == RSQ_OK && m;
    cons_count = 0;
    rsq_consumer_free(&k);
    rsq_client_free(&c);
    return ok;
}

/* ---- the rsq tool ---- */
static size_t out_len;

/* Runs a shell command line with RSQ_URL=url; stdout into out, stderr into errfile;
   the exit status. */
static int run_at(const char *url, char *out, size_t cap, const char *fmt, ...) {
    char cmd[5200], body[3500];
    va_list ap;
    FILE *p;
    int st;
    va_start(ap, fmt);
    vsnprintf(body, sizeof body, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "export RSQ_URL='%s'; ( %s ) 2>%s", url, body, errfile);
    out_len = 0;
    if (out && cap) out[0] = '\0';
    p = popen(cmd, "r");
    if (!p) return -1;
    if (out && cap) {
        out_len = fread(out, 1, cap - 1, p);
        out[out_len] = '\0';
    } else {
        char sink[512];
        while (fread(sink, 1, sizeof sink, p) > 0) {}
    }
    st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The tool's stderr (NUL-terminated) and its number of lines. */
static int err_text(char *buf, size_t cap) {
    FILE *f = fopen(errfile, "r");
    size_t n;
    int lines = 0;
    buf[0] = '\0';
    if (!f) return -1;
    n = fread(buf, 1, cap - 1, f);
    buf[n] = '\0';
    fclose(f);
    for (n = 0; buf[n]; n++) lines += buf[n] == '\n';
    return lines;
}

static int have_tool(void) { return access("./rsq", X_OK) == 0; }

/* ==== 1. acks the server refuses are reported ==== */

/* A consumer without +xack: rsq_consumer_flush and rsq_consumer_next return
   RSQ_ERR_NOPERM (never OK) with XACK named, and the entry stays pending. */
static void test_acl_ack_refused_is_reported(void) {
    rsq_client c;
    rsq_consumer k;
    const rsq_message *m = NULL;
    char url[600];
    rsq_result rc = RSQ_OK;
    long long t0;
    REQUIRE(have_s);
    if (!have_acl) { t_skip(NO_ACL); return; }
    REQUIRE(acl_user("a-noack", "'~*' '+@all' '-xack'") == 0);
    REQUIRE(publish(&S, "a:ack", "m1", "m2", (char *)NULL));
    user_url(url, sizeof url, &S, "a-noack");
    REQUIRE(client(&c, url, NULL) == RSQ_OK);
    REQUIRE(consumer(&k, &c, "a:ack", "w", 60000, 10) == RSQ_OK);
    CHECK_RC(rsq_consumer_next(&k, &m, 2000), RSQ_OK);
    REQUIRE(m != NULL);
    CHECK_STR(m->payload, "m1");
    CHECK_RC(rsq_ack(&k, m), RSQ_OK); /* queued */
    CHECK_RC(rsq_consumer_flush(&k), RSQ_ERR_NOPERM);
    CHECK(strstr(rsq_errstr(&c), "XACK") != NULL && strstr(rsq_errstr(&c), "NOPERM") != NULL);
    /* the ack stays queued: sent with the next read, refused again, reported by next */
    t0 = acl_now_ms();
    while (acl_now_ms() - t0 < 5000) {
        rc = rsq_consumer_next(&k, &m, 500);
        if (rc != RSQ_OK && rc != RSQ_EMPTY) break;
    }
    CHECK_RC(rc, RSQ_ERR_NOPERM);
    CHECK(strstr(rsq_errstr(&c), "XACK") != NULL);
    CHECK_EQ_INT(pending(&S, "a:ack"), 2); /* m1 was never acknowledged; m2 delivered */
    rsq_consumer_free(&k);
    rsq_client_free(&c);
}

/* ==== 2. a denied feature fails at start, naming the command; never a wrong figure ==== */

/* Without +xpending the consumer cannot know delivery counts: its first call fails
   with XPENDING named (a fresh consumer too, with nothing pending), hands nothing
   out, and the failed attempts count no delivery on the server. */
static void test_acl_no_xpending_fails_at_start(void) {
    rsq_client c;
    rsq_consumer k;
    const rsq_message *m = NULL;
    char url[600];
    int i;
    REQUIRE(have_s);
    if (!have_acl) { t_skip(NO_ACL); return; }
    REQUIRE(acl_user("a-nopend", "'~*' '+@all' '-xpending'") == 0);
    REQUIRE(publish(&S, "a:pend", "p1", (char *)NULL));
    REQUIRE(take_without_ack(&S, "a:pend", "w")); /* p1 pending on w, delivered once */
    CHECK_EQ_INT(first_deliveries(&S, "a:pend"), 1);
    user_url(url, sizeof url, &S, "a-nopend");
    for (i = 0; i < 3; i++) { /* three restarts of consumer w */
        REQUIRE(client(&c, url, NULL) == RSQ_OK);
        REQUIRE(consumer(&k, &c, "a:pend", "w", 60000, 3) == RSQ_OK);
        m = NULL;
        CHECK_RC(rsq_consumer_next(&k, &m, 1000), RSQ_ERR_NOPERM);
        CHECK(m == NULL);
        CHECK(ci_str(rsq_errstr(&c), "xpending") != NULL);
        rsq_consumer_free(&k);
        rsq_client_free(&c);
    }
    CHECK_EQ_INT(first_deliveries(&S, "a:pend"), 1); /* the server counted no delivery */
    CHECK_EQ_INT(xlen(&S, "{a:pend}:dlq"), 0);
    /* a fresh consumer with nothing pending fails at start just the same */
    REQUIRE(client(&c, url, NULL) == RSQ_OK);
    REQUIRE(consumer(&k, &c, "a:pend", "fresh", 60000, 3) == RSQ_OK);
    CHECK_RC(rsq_consumer_next(&k, &m, 1000), RSQ_ERR_NOPERM);
    CHECK(ci_str(rsq_errstr(&c), "xpending") != NULL);
    rsq_consumer_free(&k);
    rsq_client_free(&c);
}

/* `rsq stats` without a right to the dead-letter stream shows the dead-letter count as
   unknown, never 0 (without +xlen it reads the right figure: the dead letters are a
   stream of the queue, read like the others); without +xinfo it fails (exit 1)
   naming XINFO instead of printing zeros. */
static void test_acl_stats_never_a_wrong_figure(void) {
    char url[600], out[4096], err[2048];
    REQUIRE(have_s && have_tool());
    if (!have_acl) { t_skip(NO_ACL); return; }
    REQUIRE(publish(&S, "a:st", "s1", (char *)NULL));
    REQUIRE(srv_cli(&S, NULL, 0, "XADD '{a:st}:dlq' '*' payload x dlq-stream a:st") == 0);
    REQUIRE(acl_user("a-noxlen", "'~*' '+@all' '-xlen'") == 0);
    REQUIRE(acl_user("a-nodlq", "'~a:st' '+@all'") == 0);
    REQUIRE(acl_user("a-noxinfo", "'~*' '+@all' '-xinfo'") == 0);
    user_url(url, sizeof url, &S, "a-nodlq");
    CHECK_EQ_INT(run_at(url, out, sizeof out, "./rsq stats a:st"), 0);
    CHECK(strstr(out, "length 1") != NULL && strstr(out, "dead-letters unknown") != NULL);
    CHECK(strstr(out, "dead-letters 0") == NULL);
    user_url(url, sizeof url, &S, "a-noxlen");
    CHECK_EQ_INT(run_at(url, out, sizeof out, "./rsq stats a:st"), 0);
    CHECK(strstr(out, "length 1") != NULL && strstr(out, "dead-letters 1") != NULL);
    user_url(url, sizeof url, &S, "a-noxinfo");
    CHECK_EQ_INT(run_at(url, out, sizeof out, "./rsq stats a:st"), 1);
    CHECK_STR(out, "");
    CHECK_EQ_INT(err_text(err, sizeof err), 1);
    CHECK(ci_str(err, "xinfo") != NULL && strstr(err, "NOPERM") != NULL);
}

/* ==== 3. dead letters and replays: all or nothing, the step named ==== */

/* A dead letter by a user lacking one of its rights moves nothing, however often it
   is tried: the dead-letter stream stays empty, the entry stays pending, and the error
   names the refused step. Each user lacks one or two rights. */
static void test_acl_dead_letter_all_or_nothing(void) {
    static const struct { const char *user, *rules, *names; } cases[] = {
        { "d-noxack", "'~*' '+@all' '-xack'", "xack" },
        { "d-noxack-nomulti", "'~*' '+@all' '-xack' '-multi'", "multi" },
        { "d-nomulti", "'~*' '+@all' '-multi'", "multi" },
        { "d-noexec", "'~*' '+@all' '-exec'", "exec" },
        { "d-noxadd", "'~*' '+@all' '-xadd'", "xadd" },
        { "d-dlqkey", "'~d:*' '+@all'", "{d:" }, /* no right on the dead-letter key */
    };
    size_t i;
    REQUIRE(have_s);
    if (!have_acl) { t_skip(NO_ACL); return; }
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rsq_client c;
        rsq_consumer k;
        const rsq_message *m = NULL;
        char url[600], queue[64], dlq[80];
        int attempt;
        snprintf(queue, sizeof queue, "d:%s", cases[i].user + 2);
        snprintf(dlq, sizeof dlq, "{%s}:dlq", queue);
        REQUIRE(acl_user(cases[i].user, cases[i].rules) == 0);
        REQUIRE(publish(&S, queue, "poison", (char *)NULL));
        user_url(url, sizeof url, &S, cases[i].user);
        REQUIRE(client(&c, url, NULL) == RSQ_OK);
        REQUIRE(consumer(&k, &c, queue, "w", 60000, 10) == RSQ_OK);
        CHECK_RC(rsq_consumer_next(&k, &m, 2000), RSQ_OK);
        REQUIRE(m != NULL);
        for (attempt = 0; attempt < 3; attempt++) {
            rsq_result rc = rsq_dead_letter(&k, m, "poison");
            CHECK(rc == RSQ_ERR_NOPERM);
            if (rc != RSQ_ERR_NOPERM || !ci_str(rsq_errstr(&c), cases[i].names) || !strstr(rsq_errstr(&c), "dead letter"))
                fprintf(stderr, "    %s: %s: %s\n", cases[i].user, rsq_result_name(rc), rsq_errstr(&c));
            CHECK(ci_str(rsq_errstr(&c), cases[i].names) != NULL);
            CHECK(strstr(rsq_errstr(&c), "dead letter") != NULL); /* the step */
            CHECK_EQ_INT(xlen(&S, dlq), 0);
            CHECK_EQ_INT(pending(&S, queue), 1);
        }
        rsq_consumer_free(&k);
        rsq_client_free(&c);
    }
}

/* The same through the consumer's own path: max_deliveries reached on redelivery,
   the dead letter refused (no +xack): next fails with the step named, every time,
   and nothing is copied. */
static void test_acl_dead_letter_on_redelivery_refused(void) {
    rsq_client c;
    rsq_consumer k;
    const rsq_message *m = NULL;
    char url[600];
    int i;
    REQUIRE(have_s);
    if (!have_acl) { t_skip(NO_ACL); return; }
    REQUIRE(acl_user("d-redeliver", "'~*' '+@all' '-xack'") == 0);
    REQUIRE(publish(&S, "d:redeliver", "poison", (char *)NULL));
    REQUIRE(take_without_ack(&S, "d:redeliver", "w"));
    user_url(url, sizeof url, &S, "d-redeliver");
    for (i = 0; i < 3; i++) { /* a worker restarted three times */
        REQUIRE(client(&c, url, NULL) == RSQ_OK);
        REQUIRE(consumer(&k, &c, "d:redeliver", "w", 60000, 1) == RSQ_OK);
        m = NULL;
        CHECK_RC(rsq_consumer_next(&k, &m, 1000), RSQ_ERR_NOPERM);
        CHECK(m == NULL);
        CHECK(strstr(rsq_errstr(&c), "dead letter") != NULL && ci_str(rsq_errstr(&c), "xack") != NULL);
        rsq_consumer_free(&k);
        rsq_client_free(&c);
    }
    CHECK_EQ_INT(xlen(&S, "{d:redeliver}:dlq"), 0);
    CHECK_EQ_INT(pending(&S, "d:redeliver"), 1);
}

/* A replay by a user lacking a right moves nothing: the dead letter stays, the queue
   gets no copy, the step is named. */
static void test_acl_replay_all_or_nothing(void) {
    static const struct { const char *user, *rules, *names; } cases[] = {
        { "r-noxdel", "'~*' '+@all' '-xdel'", "xdel" },
        { "r-nomulti", "'~*' '+@all' '-multi'", "multi" },
        { "r-noxadd", "'~*' '+@all' '-xadd'", "xadd" },
    };
    size_t i;
    REQUIRE(have_s);
    if (!have_acl) { t_skip(NO_ACL); return; }
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rsq_client c;
        char url[600], queue[64], dlq[80];
        size_t replayed = 99;
        rsq_result rc;
        snprintf(queue, sizeof queue, "r:%s", cases[i].user + 2);
        snprintf(dlq, sizeof dlq, "{%s}:dlq", queue);
        REQUIRE(srv_cli(&S, NULL, 0, "XADD '%s' '*' payload back dlq-stream '%s' dlq-id 1-1", dlq, queue) == 0);
        REQUIRE(acl_user(cases[i].user, cases[i].rules) == 0);
        user_url(url, sizeof url, &S, cases[i].user);
        REQUIRE(client(&c, url, NULL) == RSQ_OK);
        rc = rsq_dead_letter_replay(&c, dlq, 0, &replayed);
        CHECK_RC(rc, RSQ_ERR_NOPERM);
        CHECK_EQ_INT(replayed, 0);
        if (!ci_str(rsq_errstr(&c), cases[i].names)) fprintf(stderr, "    %s: %s\n", cases[i].user, rsq_errstr(&c));
        CHECK(ci_str(rsq_errstr(&c), cases[i].names) != NULL && strstr(rsq_errstr(&c), "replay") != NULL);
        CHECK_EQ_INT(xlen(&S, dlq), 1);
        CHECK_EQ_INT(xlen(&S, queue), 0);
        rsq_client_free(&c);
    }
}

/* ==== 4. optional commands are optional ==== */

/* CLIENT SETNAME is cosmetic: with CLIENT denied (ACL) a client with a name still
   works, over reconnects, and says so once through the log hook. With RESP3 the name
   goes with HELLO, which needs no CLIENT right: it is set. */
static void test_acl_client_denied_name_skipped(void) {
    rsq_client c;
    rsq_producer p;
    rsq_producer_config pc;
    const rsq_reply *r;
    char url[600], out[4096];
    int i;
    REQUIRE(have_s);
    if (!have_acl) { t_skip(NO_ACL); return; }
    REQUIRE(acl_user("o-noclient", "'~*' '+@all' '-client'") == 0);
    user_url(url, sizeof url, &S, "o-noclient");
    REQUIRE(client(&c, url, "named-worker") == RSQ_OK);
    for (i = 0; i < 3; i++) {
        if (i) rsq_disconnect(&c);
        CHECK_RC(rsq_command(&c, &r, "PING", (char *)0), RSQ_OK);
    }
    if (log_lines_with("SETNAME") != 1) fprintf(stderr, "    log:\n%s", log_buf);
    CHECK_EQ_INT(log_lines_with("SETNAME"), 1);
    rsq_producer_config_init(&pc);
    pc.queue = "o:name";
    CHECK_RC(rsq_producer_init(&p, &c, &pc), RSQ_OK);
    CHECK_RC(rsq_publish(&p, "x", 1, NULL), RSQ_OK);
    CHECK_EQ_INT(xlen(&S, "o:name"), 1);
    rsq_client_free(&c);
    /* RESP3: HELLO 3 ... SETNAME sets it without a CLIENT right */
    {
        rsq_client_config cfg;
        rsq_client_config_init(&cfg);
        cfg.url = url;
        cfg.name = "hello-named";
        cfg.protocol = 3;
        REQUIRE(rsq_client_init(&c, &cfg) == RSQ_OK);
        CHECK_RC(rsq_command(&c, &r, "PING", (char *)0), RSQ_OK);
        srv_cli(&S, out, sizeof out, "CLIENT LIST");
        CHECK(strstr(out, "name=hello-named") != NULL);
        rsq_client_free(&c);
    }
}

/* The same with CLIENT renamed away on the server (rename-command CLIENT ""). */
static void test_acl_client_renamed_name_skipped(void) {
    rsq_client c;
    rsq_consumer k;
    const rsq_reply *r;
    const rsq_message *m = NULL;
    int i;
    REQUIRE(have_r);
    REQUIRE(client(&c, R.unix_url, "named-worker") == RSQ_OK);
    for (i = 0; i < 3; i++) {
        if (i) rsq_disconnect(&c);
        CHECK_RC(rsq_command(&c, &r, "PING", (char *)0), RSQ_OK);
    }
    if (log_lines_with("SETNAME") != 1) fprintf(stderr, "    log:\n%s", log_buf);
    CHECK_EQ_INT(log_lines_with("SETNAME"), 1);
    REQUIRE(publish(&R, "o:renamed", "r1", (char *)NULL));
    REQUIRE(consumer(&k, &c, "o:renamed", "w", 60000, 10) == RSQ_OK);
    CHECK_RC(rsq_consumer_next(&k, &m, 2000), RSQ_OK);
    CHECK(m && !strcmp(m->payload, "r1"));
    rsq_consumer_free(&k);
    rsq_client_free(&c);
}

/* Without INFO (and HELLO) the server version is unknown: consumers still work,
   reclaim included (XAUTOCLAIM is tried; before 6.2 its absence leads to XPENDING +
   XCLAIM). The entry idle on a dead consumer comes to the live one with the server's
   count, 2. */
static void test_acl_info_denied_consumers_work(void) {
    rsq_client c;
    rsq_consumer k;
    const rsq_message *m = NULL;
    char url[600];
    long long t0;
    REQUIRE(have_s);
    if (!have_acl) { t_skip(NO_ACL); return; }
    REQUIRE(acl_user("o-noinfo", "'~*' '+@all' '-info' '-hello'") == 0);
    REQUIRE(publish(&S, "o:info", "i1", (char *)NULL));
    REQUIRE(take_without_ack(&S, "o:info", "dead"));
    user_url(url, sizeof url, &S, "o-noinfo");
    REQUIRE(client(&c, url, NULL) == RSQ_OK);
    REQUIRE(consumer(&k, &c, "o:info", "live", 300, 10) == RSQ_OK);
    usleep(400000); /* i1 idles past the visibility timeout on "dead" */
    t0 = acl_now_ms();
    while (!m && acl_now_ms() - t0 < 5000) {
        rsq_result rc = rsq_consumer_next(&k, &m, 500);
        if (rc != RSQ_OK && rc != RSQ_EMPTY) {
            CHECK_RC(rc, RSQ_OK);
            fprintf(stderr, "    %s\n", rsq_errstr(&c));
            break;
        }
    }
    CHECK(m != NULL);
    if (m) {
        CHECK_STR(m->payload, "i1");
        CHECK_EQ_INT(m->deliveries, 2);
        CHECK_RC(rsq_ack(&k, m), RSQ_OK);
        CHECK_RC(rsq_consumer_flush(&k), RSQ_OK);
    }
    CHECK_EQ_INT(pending(&S, "o:info"), 0);
    rsq_consumer_free(&k);
    rsq_client_free(&c);
}

/* Stats need no TIME (and no INFO): the figures are right without them. */
static void test_acl_stats_without_time(void) {
    rsq_client c;
    rsq_stream_info si;
    rsq_group_info g[4];
    size_t n = 0;
    char url[600];
    REQUIRE(have_s);
    if (!have_acl) { t_skip(NO_ACL); return; }
    REQUIRE(acl_user("o-notime", "'~*' '+@all' '-time' '-info'") == 0);
    REQUIRE(publish(&S, "o:time", "t1", "t2", "t3", (char *)NULL));
    REQUIRE(take_without_ack(&S, "o:time", "w")); /* one read: one pending, two left */
    user_url(url, sizeof url, &S, "o-notime");
    REQUIRE(client(&c, url, NULL) == RSQ_OK);
    CHECK_RC(rsq_stream_stats(&c, "o:time", &si, g, 4, &n), RSQ_OK);
    CHECK_EQ_INT(si.length, 3);
    CHECK_EQ_INT(n, 1);
    if (n == 1) {
        CHECK_EQ_INT(g[0].pending, 1);
        CHECK_EQ_INT(g[0].lag, 2);
    }
    rsq_client_free(&c);
}

/* The tool with INFO and CLIENT renamed away: pub, work and stats work (the tool's
   client name is skipped). */
static void test_acl_tool_on_restricted_server(void) {
    char out[4096], err[2048];
    REQUIRE(have_r && have_tool());
    CHECK_EQ_INT(run_at(R.unix_url, out, sizeof out, "printf 'w1\\nw2\\n' | ./rsq pub o:tool >/dev/null"), 0);
    CHECK_EQ_INT(run_at(R.unix_url, out, sizeof out, "./rsq work o:tool -g g --idle-exit 1"), 0);
    CHECK_STR(out, "w1\nw2\n");
    if (err_text(err, sizeof err) != 0) fprintf(stderr, "    stderr: %s", err);
    CHECK_EQ_INT(run_at(R.unix_url, out, sizeof out, "./rsq stats o:tool"), 0);
    CHECK(strstr(out, "length 2") != NULL);
}

/* ==== 5. a server without scripting ==== */

/* EVAL, EVALSHA and SCRIPT renamed away: publish, consume, reclaim, stats, dead
   letters and replay work with their right values; rsq_extend and
   rsq_retire_idle_consumers fail with an error naming scripting. */
static void test_acl_no_scripting_library(void) {
    rsq_client c;
    rsq_consumer k;
    const rsq_message *m = NULL;
    rsq_stream_info si;
    rsq_group_info g[4];
    size_t n = 0, replayed = 0;
    int retired = -1, seen_dead = 0;
    long long t0;
    rsq_result rc;
    REQUIRE(have_r);
    REQUIRE(publish(&R, "n:q", "n1", "n2", "n3", (char *)NULL));
    REQUIRE(take_without_ack(&R, "n:q", "dead")); /* n1 held by a dead consumer */
    REQUIRE(client(&c, R.unix_url, NULL) == RSQ_OK);
    /* stats: 3 entries, n1 pending, 2 not yet read */
    CHECK_RC(rsq_stream_stats(&c, "n:q", &si, g, 4, &n), RSQ_OK);
    CHECK_EQ_INT(si.length, 3);
    CHECK_EQ_INT(n, 1);
    if (n == 1) {
        CHECK_EQ_INT(g[0].pending, 1);
        CHECK_EQ_INT(g[0].lag, 2);
        CHECK(g[0].lag_exact);
    }
    REQUIRE(consumer(&k, &c, "n:q", "live", 300, 2) == RSQ_OK);
    usleep(400000);
    /* n2, n3 (new) and n1 (reclaimed, delivered twice): n1 is nacked on its second
       delivery, which reaches max_deliveries 2: a dead letter */
    t0 = acl_now_ms();
    while (acl_now_ms() - t0 < 6000 && !seen_dead) {
        rc = rsq_consumer_next(&k, &m, 300);
        if (rc == RSQ_EMPTY) continue;
        if (rc != RSQ_OK) {
            CHECK_RC(rc, RSQ_OK);
            fprintf(stderr, "    %s\n", rsq_errstr(&c));
            break;
        }
        if (!strcmp(m->payload, "n1")) {
            CHECK_EQ_INT(m->deliveries, 2);
            CHECK_RC(rsq_extend(&k, m), RSQ_ERR_UNSUPPORTED);
            if (!ci_str(rsq_errstr(&c), "scripting")) fprintf(stderr, "    extend: %s\n", rsq_errstr(&c));
            CHECK(ci_str(rsq_errstr(&c), "scripting") != NULL);
            rc = rsq_nack(&k, m, 0, "bad n1");
            CHECK_RC(rc, RSQ_OK);
            if (rc != RSQ_OK) fprintf(stderr, "    nack: %s\n", rsq_errstr(&c));
            seen_dead = 1;
        } else {
            CHECK_RC(rsq_ack(&k, m), RSQ_OK);
        }
    }
    CHECK(seen_dead);
    CHECK_RC(rsq_consumer_flush(&k), RSQ_OK);
    CHECK_EQ_INT(xlen(&R, "{n:q}:dlq"), 1);
    CHECK_EQ_INT(pending(&R, "n:q"), 0);
    CHECK_RC(rsq_retire_idle_consumers(&c, "n:q", "g", 0, &retired), RSQ_ERR_UNSUPPORTED);
    CHECK(ci_str(rsq_errstr(&c), "scripting") != NULL);
    /* replay: back to n:q, gone from the dead letters */
    CHECK_RC(rsq_dead_letter_replay(&c, "{n:q}:dlq", 0, &replayed), RSQ_OK);
    CHECK_EQ_INT(replayed, 1);
    CHECK_EQ_INT(xlen(&R, "{n:q}:dlq"), 0);
    CHECK_EQ_INT(xlen(&R, "n:q"), 4);
    rsq_consumer_free(&k);
    rsq_client_free(&c);
}

/* The tool on that server: work --exec dead-letters a failing message, dlq list shows
   it, dlq replay puts it back, stats are right. */
static void test_acl_no_scripting_tool(void) {
    char out[4096], err[2048];
    REQUIRE(have_r && have_tool());
    CHECK_EQ_INT(run_at(R.unix_url, NULL, 0, "printf 'good\\nbad\\n' | ./rsq pub n:tool >/dev/null"), 0);
    CHECK_EQ_INT(run_at(R.unix_url, out, sizeof out,
                        "./rsq work n:tool -g g --max-deliveries 2 --retry-delay 100 --idle-exit 2 --exec 'test \"$(cat)\" = good'"), 0);
    if (err_text(err, sizeof err) != 0) fprintf(stderr, "    work stderr: %s", err);
    CHECK_EQ_INT(xlen(&R, "{n:tool}:dlq"), 1);
    CHECK_EQ_INT(pending(&R, "n:tool"), 0);
    CHECK_EQ_INT(run_at(R.unix_url, out, sizeof out, "./rsq dlq n:tool list"), 0);
    CHECK(strstr(out, "payload=bad") != NULL);
    CHECK_EQ_INT(run_at(R.unix_url, out, sizeof out, "./rsq dlq n:tool replay"), 0);
    CHECK_STR(out, "replayed 1\n");
    if (err_text(err, sizeof err) != 0) fprintf(stderr, "    replay stderr: %s", err);
    CHECK_EQ_INT(xlen(&R, "{n:tool}:dlq"), 0);
    CHECK_EQ_INT(xlen(&R, "n:tool"), 3);
    CHECK_EQ_INT(run_at(R.unix_url, out, sizeof out, "./rsq stats n:tool"), 0);
    CHECK(strstr(out, "length 3") != NULL && strstr(out, "dead-letters 0") != NULL);
}

/* ==== 9. errors name the key ==== */

/* A user with rights on the queue's own keys but not its shards' ({q:s1}): the
   server's NOPERM text names no key; rsq's error does, for publish and for the
   consumer's group setup. */
static void test_acl_noperm_names_the_key(void) {
    rsq_client c;
    rsq_producer p;
    rsq_producer_config pc;
    rsq_consumer k;
    rsq_consumer_config cc;
    const rsq_message *m = NULL;
    char url[600];
    rsq_result rc;
    REQUIRE(have_s);
    if (!have_acl) { t_skip(NO_ACL); return; }
    REQUIRE(acl_user("k-noshard", "'~k:q' '~{k:q}:*' '+@all'") == 0);
    user_url(url, sizeof url, &S, "k-noshard");
    REQUIRE(client(&c, url, NULL) == RSQ_OK);
    rsq_producer_config_init(&pc);
    pc.queue = "k:q";
    pc.shards = 2;
    REQUIRE(rsq_producer_init(&p, &c, &pc) == RSQ_OK);
    CHECK_RC(rsq_publish(&p, "s0", 2, NULL), RSQ_OK); /* shard 0: k:q */
    rc = rsq_publish(&p, "s1", 2, NULL);              /* shard 1: {k:q:s1} */
    CHECK_RC(rc, RSQ_ERR_NOPERM);
    if (!strstr(rsq_errstr(&c), "{k:q:s1}")) fprintf(stderr, "    publish: %s\n", rsq_errstr(&c));
    CHECK(strstr(rsq_errstr(&c), "{k:q:s1}") != NULL && strstr(rsq_errstr(&c), "NOPERM") != NULL);
    rsq_consumer_config_init(&cc);
    cc.queue = "k:q";
    cc.group = "g";
    cc.shards = 2;
    cc.block_ms = 100;
    REQUIRE(rsq_consumer_init(&k, &c, &cc) == RSQ_OK);
    CHECK_RC(rsq_consumer_next(&k, &m, 1000), RSQ_ERR_NOPERM);
    if (!strstr(rsq_errstr(&c), "{k:q:s1}")) fprintf(stderr, "    consumer: %s\n", rsq_errstr(&c));
    CHECK(strstr(rsq_errstr(&c), "{k:q:s1}") != NULL);
    rsq_consumer_free(&k);
    /* a generic command names its key too */
    {
        const rsq_reply *r;
        CHECK_RC(rsq_command(&c, &r, "XLEN", "other:key", (char *)0), RSQ_ERR_NOPERM);
        CHECK(strstr(rsq_errstr(&c), "other:key") != NULL);
    }
    rsq_client_free(&c);
}

/* ==== the minimum ACL per role, as README.md documents it ==== */

/* The `ACL SETUSER USER ...` line of README.md for user, with >PASSWORD replaced by
   >pw and each rule shell-quoted, into rules. 0 when README.md has no such line. */
static int readme_acl(const char *user, char *rules, size_t cap) {
    char line[1024], want[128];
    FILE *f = fopen("README.md", "r");
    int found = 0;
    if (!f) return 0;
    snprintf(want, sizeof want, "ACL SETUSER %s ", user);
    while (!found && fgets(line, sizeof line, f)) {
        char *p = strstr(line, want), *tok, *save = NULL;
        size_t w = 0;
        if (!p) continue;
        p += strlen(want);
        p[strcspn(p, "\r\n`")] = '\0';
        rules[0] = '\0';
        for (tok = strtok_r(p, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
            int n = !strcmp(tok, ">PASSWORD") ? snprintf(rules + w, cap - w, "'>pw' ")
                                              : snprintf(rules + w, cap - w, "'%s' ", tok);
            if (n < 0 || (size_t)n >= cap - w) break;
            w += (size_t)n;
        }
        found = 1;
    }
    fclose(f);
    return found;
}

/* Makes the README's user; on Redis 6.0 (no XAUTOCLAIM) without +xautoclaim, as the
   README says. */
static int readme_user(const char *user) {
    char rules[1024], out[512], *x;
    if (!readme_acl(user, rules, sizeof rules)) {
        fprintf(stderr, "    README.md has no line \"ACL SETUSER %s ...\"\n", user);
        return -1;
    }
    srv_cli(&S, NULL, 0, "ACL DELUSER %s", user);
    if (srv_cli(&S, out, sizeof out, "ACL SETUSER %s %s", user, rules) == 0 && !strcmp(out, "OK")) return 0;
    x = strstr(rules, "'+xautoclaim' ");
    if (!x || !ci_str(out, "xautoclaim")) {
        fprintf(stderr, "    ACL SETUSER %s %s: %s\n", user, rules, out);
        return -1;
    }
    memmove(x, x + 14, strlen(x + 14) + 1);
    if (srv_cli(&S, out, sizeof out, "ACL SETUSER %s %s", user, rules) == 0 && !strcmp(out, "OK")) return 0;
    fprintf(stderr, "    ACL SETUSER %s %s: %s\n", user, rules, out);
    return -1;
}

/* The producer's rights: publish (the library, every shard and priority level) and
   `rsq pub`; nothing else (reading is refused). */
static void test_acl_role_producer(void) {
    rsq_client c;
    rsq_producer p;
    rsq_producer_config pc;
    rsq_outgoing msg;
    const rsq_reply *r;
    char url[600], out[4096], err[2048];
    REQUIRE(have_s && have_tool());
    if (!have_acl) { t_skip(NO_ACL); return; }
    REQUIRE(readme_user("jobs-producer") == 0);
    srv_cli(&S, NULL, 0, "DEL jobs '{jobs}:p1' '{jobs:s1}' '{jobs:s1}:p1' '{jobs}:dlq'");
    user_url(url, sizeof url, &S, "jobs-producer");
    REQUIRE(client(&c, url, "producer-1") == RSQ_OK);
    rsq_producer_config_init(&pc);
    pc.queue = "jobs";
    pc.priority_levels = 2;
    pc.shards = 2;
    REQUIRE(rsq_producer_init(&p, &c, &pc) == RSQ_OK);
    memset(&msg, 0, sizeof msg);
    msg.payload = "a";
    msg.payload_len = 1;
    CHECK_RC(rsq_publish_msg(&p, &msg, NULL), RSQ_OK); /* jobs */
    CHECK_RC(rsq_publish_msg(&p, &msg, NULL), RSQ_OK); /* {jobs:s1} */
    msg.priority = 1;
    CHECK_RC(rsq_publish_msg(&p, &msg, NULL), RSQ_OK); /* {jobs}:p1 */
    CHECK_RC(rsq_publish_msg(&p, &msg, NULL), RSQ_OK); /* {jobs:s1}:p1 */
    if (rsq_errstr(&c)[0]) fprintf(stderr, "    %s\n", rsq_errstr(&c));
    CHECK_EQ_INT(xlen(&S, "jobs") + xlen(&S, "{jobs:s1}") + xlen(&S, "{jobs}:p1") + xlen(&S, "{jobs:s1}:p1"), 4);
    CHECK_RC(rsq_command(&c, &r, "XRANGE", "jobs", "-", "+", (char *)0), RSQ_ERR_NOPERM); /* no more than that */
    rsq_client_free(&c);
    CHECK_EQ_INT(run_at(url, out, sizeof out, "printf 'l1\\nl2\\n' | ./rsq pub jobs"), 0);
    if (err_text(err, sizeof err) != 0) fprintf(stderr, "    pub: %s", err);
    CHECK_EQ_INT(run_at(url, out, sizeof out, "./rsq pub jobs one --priority 1 --shards 2 -H k=v"), 0);
    CHECK_EQ_INT(xlen(&S, "jobs"), 3);
    CHECK_EQ_INT(xlen(&S, "{jobs}:p1"), 2);
}

/* The consumer's rights: consume, ack, nack, reclaim of a dead consumer's entry,
   dead letters (library) and `rsq work` (stdout and --exec with dead letters). */
static void test_acl_role_consumer(void) {
    rsq_client c;
    rsq_consumer k;
    const rsq_message *m = NULL;
    char url[600], out[4096], err[2048];
    int got = 0, dead = 0;
    long long t0;
    REQUIRE(have_s && have_tool());
    if (!have_acl) { t_skip(NO_ACL); return; }
    REQUIRE(readme_user("jobs-worker") == 0);
    srv_cli(&S, NULL, 0, "DEL jobs '{jobs}:p1' '{jobs:s1}' '{jobs:s1}:p1' '{jobs}:dlq'");
    REQUIRE(publish(&S, "jobs", "c1", "c2", "c3", (char *)NULL));
    REQUIRE(take_without_ack(&S, "jobs", "dead")); /* c1 on a dead consumer */
    user_url(url, sizeof url, &S, "jobs-worker");
    REQUIRE(client(&c, url, "worker-1") == RSQ_OK);
    REQUIRE(consumer(&k, &c, "jobs", "live", 300, 2) == RSQ_OK);
    usleep(400000);
    /* c2, c3 acked; c1 reclaimed (2nd delivery), nacked: max_deliveries 2, dead letter;
       c2 is nacked once first (retry now), then acked */
    t0 = acl_now_ms();
    while (acl_now_ms() - t0 < 6000 && (got < 2 || !dead)) {
        rsq_result rc = rsq_consumer_next(&k, &m, 300);
        if (rc == RSQ_EMPTY) continue;
        if (rc != RSQ_OK) {
            CHECK_RC(rc, RSQ_OK);
            fprintf(stderr, "    %s\n", rsq_errstr(&c));
            break;
        }
        if (!strcmp(m->payload, "c1")) {
            CHECK_RC(rsq_nack(&k, m, 0, "fails"), RSQ_OK);
            dead = 1;
        } else if (!strcmp(m->payload, "c2") && m->deliveries == 1) {
            CHECK_RC(rsq_nack(&k, m, 0, "once"), RSQ_OK);
        } else {
            CHECK_RC(rsq_ack(&k, m), RSQ_OK);
            got++;
        }
    }
    CHECK_EQ_INT(got, 2);
    CHECK(dead);
    CHECK_RC(rsq_consumer_release(&k), RSQ_OK);
    CHECK_EQ_INT(xlen(&S, "{jobs}:dlq"), 1);
    CHECK_EQ_INT(pending(&S, "jobs"), 0);
    rsq_consumer_free(&k);
    rsq_client_free(&c);
    /* the tool: a new group on the queue, one message dead-lettered by --exec */
    REQUIRE(publish(&S, "jobs", "bad", (char *)NULL));
    CHECK_EQ_INT(run_at(url, out, sizeof out, "./rsq work jobs -g tool -n t --max 3"), 0);
    CHECK_STR(out, "c1\nc2\nc3\n");
    if (err_text(err, sizeof err) != 0) fprintf(stderr, "    work: %s", err);
    CHECK_EQ_INT(run_at(url, out, sizeof out,
                        "./rsq work jobs -g tool -n t --max-deliveries 1 --idle-exit 2 --exec 'test \"$(cat)\" != bad'"), 0);
    if (err_text(err, sizeof err) != 0) fprintf(stderr, "    work --exec: %s", err);
    CHECK_EQ_INT(xlen(&S, "{jobs}:dlq"), 2);
    CHECK_EQ_INT(cli_int(&S, "XPENDING jobs tool%s%s", "", ""), 0);
}

/* The operator's rights: `rsq stats`, `rsq dlq list`, `rsq dlq replay`, with right
   figures; consuming is refused. */
static void test_acl_role_operator(void) {
    char url[600], out[4096], err[2048];
    REQUIRE(have_s && have_tool());
    if (!have_acl) { t_skip(NO_ACL); return; }
    REQUIRE(readme_user("jobs-operator") == 0);
    srv_cli(&S, NULL, 0, "DEL jobs '{jobs}:p1' '{jobs:s1}' '{jobs:s1}:p1' '{jobs}:dlq'");
    REQUIRE(publish(&S, "jobs", "o1", "o2", (char *)NULL));
    REQUIRE(take_without_ack(&S, "jobs", "w"));
    REQUIRE(srv_cli(&S, NULL, 0, "XADD '{jobs}:dlq' '*' payload back dlq-stream jobs dlq-id 1-1 dlq-deliveries 3 "
                                 "dlq-error e") == 0);
    user_url(url, sizeof url, &S, "jobs-operator");
    CHECK_EQ_INT(run_at(url, out, sizeof out, "./rsq stats jobs"), 0);
    if (err_text(err, sizeof err) != 0) fprintf(stderr, "    stats: %s", err);
    CHECK(strstr(out, "length 2") != NULL && strstr(out, "dead-letters 1") != NULL);
    CHECK(strstr(out, "\ng ") != NULL); /* the group's row */
    {
        long long pend = -1, lag = -1, cons = -1;
        const char *row = strstr(out, "\ng ");
        if (row) sscanf(row + 3, "%lld %lld %lld", &pend, &lag, &cons);
        CHECK_EQ_INT(pend, 1);
        CHECK_EQ_INT(lag, 1);
        CHECK_EQ_INT(cons, 1);
    }
    CHECK_EQ_INT(run_at(url, out, sizeof out, "./rsq dlq jobs list"), 0);
    CHECK(strstr(out, "payload=back") != NULL && strstr(out, "deliveries=3") != NULL);
    CHECK_EQ_INT(run_at(url, out, sizeof out, "./rsq dlq jobs replay"), 0);
    if (err_text(err, sizeof err) != 0) fprintf(stderr, "    replay: %s", err);
    CHECK_STR(out, "replayed 1\n");
    CHECK_EQ_INT(xlen(&S, "{jobs}:dlq"), 0);
    CHECK_EQ_INT(xlen(&S, "jobs"), 3);
    CHECK_EQ_INT(run_at(url, out, sizeof out, "./rsq work jobs -g ops --idle-exit 1"), 1); /* not a worker */
    CHECK(err_text(err, sizeof err) == 1 && strstr(err, "NOPERM") != NULL);
}

/* The next message within ms (polls of 300 ms): RSQ_EMPTY when none came. */
static rsq_result acl_next(rsq_consumer *k, const rsq_message **m, long long ms) {
    long long t0 = acl_now_ms();
    rsq_result rc = RSQ_EMPTY;
    while (acl_now_ms() - t0 < ms && (rc = rsq_consumer_next(k, m, 300)) == RSQ_EMPTY) {}
    return rc;
}

/* The worker's rights cover a retry longer than the lease (the delay script) and
   moving it back when due (the promote script): it comes back, counted 2. */
static void test_acl_role_consumer_long_retry(void) {
    rsq_client c;
    rsq_consumer k;
    const rsq_message *m = NULL;
    char url[600];
    rsq_result rc;
    REQUIRE(have_s);
    if (!have_acl) { t_skip(NO_ACL); return; }
    REQUIRE(readme_user("jobs-worker") == 0);
    srv_cli(&S, NULL, 0, "DEL jobs '{jobs}:p1' '{jobs:s1}' '{jobs:s1}:p1' '{jobs}:dlq' '{jobs}:delayed' '{jobs}:retry:g'");
    REQUIRE(publish(&S, "jobs", "later", (char *)NULL));
    user_url(url, sizeof url, &S, "jobs-worker");
    REQUIRE(client(&c, url, "worker-2") == RSQ_OK);
    REQUIRE(consumer(&k, &c, "jobs", "w2", 300, 5) == RSQ_OK);
    rc = acl_next(&k, &m, 3000);
    REQUIRE(rc == RSQ_OK);
    CHECK_RC(rsq_nack(&k, m, 800, NULL), RSQ_OK); /* longer than visibility 300 */
    if (rsq_errstr(&c)[0]) fprintf(stderr, "    nack: %s\n", rsq_errstr(&c));
    rc = acl_next(&k, &m, 5000);
    CHECK_RC(rc, RSQ_OK);
    if (rc == RSQ_OK) {
        CHECK_EQ_INT(m->deliveries, 2);
        CHECK(!strcmp(m->stream, "{jobs}:retry:g"));
        CHECK_RC(rsq_ack(&k, m), RSQ_OK);
        CHECK_RC(rsq_consumer_flush(&k), RSQ_OK);
    }
    rsq_consumer_free(&k);
    rsq_client_free(&c);
}

/* An ACL that names the queue's stream and dead letters only (not its retry streams):
   the consumer still works; a retry longer than the lease is cut to visibility_ms. */
static void test_acl_long_retry_without_retry_stream_rights(void) {
    rsq_client c;
    rsq_consumer k;
    const rsq_message *m = NULL;
    char url[600];
    rsq_result rc;
    REQUIRE(have_s);
    if (!have_acl) { t_skip(NO_ACL); return; }
    REQUIRE(acl_user("nr-user", "'~nr:q' '~{nr:q}:dlq' '+@all'") == 0);
    REQUIRE(publish(&S, "nr:q", "x", (char *)NULL));
    user_url(url, sizeof url, &S, "nr-user");
    REQUIRE(client(&c, url, NULL) == RSQ_OK);
    REQUIRE(consumer(&k, &c, "nr:q", "w", 300, 5) == RSQ_OK);
    rc = acl_next(&k, &m, 3000);
    CHECK_RC(rc, RSQ_OK);
    REQUIRE(m != NULL);
    CHECK_RC(rsq_nack(&k, m, 60000, NULL), RSQ_OK);
    rc = acl_next(&k, &m, 4000);
    CHECK_RC(rc, RSQ_OK); /* back after visibility_ms, not a minute */
    if (rc == RSQ_OK) CHECK_EQ_INT(m->deliveries, 2);
    rsq_consumer_free(&k);
    rsq_client_free(&c);
}

void suite_acl(void) {
    char out[256];
    have_s = srv_start(&S, NULL) == 0;
    have_r = srv_start(&R, "rename-command CLIENT \"\"\nrename-command INFO \"\"\nrename-command EVAL \"\"\n"
                           "rename-command EVALSHA \"\"\nrename-command SCRIPT \"\"") == 0;
    if (have_s) {
        snprintf(errfile, sizeof errfile, "%s/stderr.txt", S.dir);
        have_acl = srv_cli(&S, out, sizeof out, "ACL WHOAMI") == 0 && !strcmp(out, "default");
    }
    RUN(test_acl_ack_refused_is_reported);
    RUN(test_acl_no_xpending_fails_at_start);
    RUN(test_acl_stats_never_a_wrong_figure);
    RUN(test_acl_dead_letter_all_or_nothing);
    RUN(test_acl_dead_letter_on_redelivery_refused);
    RUN(test_acl_replay_all_or_nothing);
    RUN(test_acl_client_denied_name_skipped);
    RUN(test_acl_client_renamed_name_skipped);
    RUN(test_acl_info_denied_consumers_work);
    RUN(test_acl_stats_without_time);
    RUN(test_acl_tool_on_restricted_server);
    RUN(test_acl_no_scripting_library);
    RUN(test_acl_no_scripting_tool);
    RUN(test_acl_noperm_names_the_key);
    RUN(test_acl_role_producer);
    RUN(test_acl_role_consumer);
    RUN(test_acl_role_consumer_long_retry);
    RUN(test_acl_long_retry_without_retry_stream_rights);
    RUN(test_acl_role_operator);
    if (have_s) srv_stop(&S, 0);
    if (have_r) srv_stop(&R, 0);
}
