/* test_producer.c - publishing, retention, priorities, fanout, administration and
   metrics against a private redis-server. */
#define _DEFAULT_SOURCE 1
#include "t.h"
#include "server.h"
#include "../rsq.h"
#include <unistd.h>

static srv S;
static int have_server;

static void client(rsq_client *c) {
    rsq_client_config cfg;
    rsq_client_config_init(&cfg);
    cfg.url = S.url;
    cfg.retry_base_ms = 10;
    rsq_client_init(c, &cfg);
}

static void producer(rsq_producer *p, rsq_client *c, const char *queue, int levels) {
    rsq_producer_config pc;
    rsq_producer_config_init(&pc);
    pc.queue = queue;
    pc.priority_levels = levels;
    rsq_producer_init(p, c, &pc);
}

/* The server's version (0: unknown, taken as new). */
static long ver(void) { return srv_version(&S); }
#define OLDER_THAN(v) (ver() && ver() < (v))

/* Confirmations outstanding from rsq_publish_async. */
static size_t inflight(const rsq_producer *p) {
    rsq_producer_stats st;
    rsq_producer_get_stats(p, &st);
    return st.inflight;
}

static long long xlen(rsq_client *c, const char *key) {
    long long n = -1;
    rsq_stream_length(c, key, &n);
    return n;
}

static void test_producer_keys(void) {
    char k[RSQ_KEY_MAX];
    CHECK(rsq_queue_key(k, sizeof k, "jobs", 0, 0, RSQ_KEY_STREAM)); CHECK_STR(k, "jobs");
    CHECK(rsq_queue_key(k, sizeof k, "jobs", 0, 2, RSQ_KEY_STREAM)); CHECK_STR(k, "{jobs}:p2");
    CHECK(rsq_queue_key(k, sizeof k, "jobs", 0, 0, RSQ_KEY_DEAD_LETTER)); CHECK_STR(k, "{jobs}:dlq");
    CHECK(rsq_queue_key(k, sizeof k, "jobs", 0, 0, RSQ_KEY_DELAYED)); CHECK_STR(k, "{jobs}:delayed");
    CHECK(rsq_queue_key(k, sizeof k, "jobs", 3, 0, RSQ_KEY_STREAM)); CHECK_STR(k, "{jobs:s3}");
    CHECK(rsq_queue_key(k, sizeof k, "jobs", 3, 1, RSQ_KEY_STREAM)); CHECK_STR(k, "{jobs:s3}:p1");
    CHECK(rsq_queue_key(k, sizeof k, "jobs", 3, 0, RSQ_KEY_DEAD_LETTER)); CHECK_STR(k, "{jobs:s3}:dlq");
    CHECK(rsq_queue_key(k, sizeof k, "{ord}.eu", 0, 1, RSQ_KEY_STREAM)); CHECK_STR(k, "{ord}.eu:p1");
    CHECK(rsq_queue_key(k, sizeof k, "{ord}.eu", 2, 0, RSQ_KEY_STREAM)); CHECK_STR(k, "{ord:s2}.eu");
    CHECK(rsq_queue_key(k, sizeof k, "{ord}.eu", 2, 0, RSQ_KEY_DEAD_LETTER)); CHECK_STR(k, "{ord:s2}.eu:dlq");
    CHECK_EQ_INT(rsq_queue_key(k, sizeof k, "a{}b", 0, 1, RSQ_KEY_STREAM), 0); /* no tag, holds '}': refused */
    CHECK(rsq_queue_key(k, 4, "jobs", 0, 1, RSQ_KEY_STREAM) == 0);
    CHECK(rsq_queue_key(k, sizeof k, "", 0, 0, RSQ_KEY_STREAM) == 0);
    CHECK(rsq_queue_key(k, sizeof k, "jobs", 0, RSQ_MAX_PRIORITIES, RSQ_KEY_STREAM) == 0);
    CHECK(rsq_queue_key(k, sizeof k, "jobs", -1, 0, RSQ_KEY_STREAM) == 0);
}

static void test_producer_ids(void) {
    rsq_id a, b;
    char buf[RSQ_ID_STRLEN];
    CHECK(rsq_id_parse("1700000000000-3", 15, &a) && a.ms == 1700000000000ULL && a.seq == 3);
    CHECK(rsq_id_parse("42", 2, &b) && b.ms == 42 && b.seq == 0);
    CHECK(rsq_id_cmp(a, b) > 0 && rsq_id_cmp(b, a) < 0 && rsq_id_cmp(a, a) == 0);
    CHECK(!rsq_id_parse("-1", 2, &a) && !rsq_id_parse("1-", 2, &a) && !rsq_id_parse("1-2-3", 5, &a) && !rsq_id_parse("x", 1, &a));
    CHECK(!rsq_id_parse("18446744073709551616-0", 22, &a));
    a.ms = 18446744073709551615ULL; a.seq = 18446744073709551615ULL;
    CHECK(rsq_id_format(a, buf) == 41); CHECK_STR(buf, "18446744073709551615-18446744073709551615");
}

static void test_producer_publish_and_interop(void) {
    rsq_client c;
    rsq_producer p;
    rsq_id id, id2;
    char out[512], idbuf[RSQ_ID_STRLEN];
    rsq_field h[2] = { { "trace", 0, "abc123", 0 }, { "content-type", 0, "text/plain", 0 } };
    rsq_outgoing m;
    REQUIRE(have_server);
    client(&c);
    producer(&p, &c, "pub:basic", 1);
    CHECK_RC(rsq_publish(&p, "hello world", 11, &id), RSQ_OK);
    CHECK(id.ms > 0);
    rsq_id_format(id, idbuf);
    /* what redis-cli sees: the body in the field "payload" */
    srv_cli(&S, out, sizeof out, "XRANGE pub:basic - +");
    CHECK(strstr(out, idbuf) != NULL);
    CHECK(strstr(out, "payload\nhello world") != NULL);
    memset(&m, 0, sizeof m);
    m.payload = "with headers";
    m.payload_len = 12;
    m.headers = h;
    m.header_count = 2;
    CHECK_RC(rsq_publish_msg(&p, &m, &id2), RSQ_OK);
    CHECK(rsq_id_cmp(id2, id) > 0);
    rsq_id_format(id2, idbuf); /* (Redis 6.2's exclusive "(id" is not on every server) */
    srv_cli(&S, out, sizeof out, "XRANGE pub:basic %s %s", idbuf, idbuf);
    CHECK(strstr(out, "payload\nwith headers\ntrace\nabc123\ncontent-type\ntext/plain") != NULL);
    /* explicit IDs */
    m.headers = NULL;
    m.header_count = 0;
    m.id = "9999999999999-7";
    CHECK_RC(rsq_publish_msg(&p, &m, &id), RSQ_OK);
    CHECK(id.ms == 9999999999999ULL && id.seq == 7);
    m.id = "9999999999999-*"; /* a given time, the server's sequence: Redis >= 7.0 */
    if (!OLDER_THAN(70000)) {
        CHECK_RC(rsq_publish_msg(&p, &m, &id), RSQ_OK);
        CHECK(id.ms == 9999999999999ULL && id.seq == 8);
    } else {
        /* no way around it before 7.0: refused before anything is sent, naming the
           server; in a batch, the whole batch; asynchronously, the same */
        rsq_outgoing two[2];
        rsq_result res[2] = { RSQ_OK, RSQ_OK };
        char v[16];
        long long before = xlen(&c, "pub:basic");
        srv_version_str(ver(), v, sizeof v);
        CHECK_RC(rsq_publish_msg(&p, &m, &id), RSQ_ERR_UNSUPPORTED);
        CHECK(strstr(rsq_errstr(&c), v) != NULL && strstr(rsq_errstr(&c), "ms-*") != NULL);
        memset(two, 0, sizeof two);
        two[0].payload = "plain"; two[0].payload_len = 5;
        two[1] = m;
        CHECK_RC(rsq_publish_batch(&p, two, 2, NULL, res), RSQ_ERR_UNSUPPORTED);
        CHECK(res[0] == RSQ_ERR_UNSUPPORTED && res[1] == RSQ_ERR_UNSUPPORTED);
        CHECK_RC(rsq_publish_async(&p, two, 2), RSQ_ERR_UNSUPPORTED);
        CHECK_EQ_INT(inflight(&p), 0);
        {   /* (had they gone out, collect their replies: the client stays in step) */
            int waited;
            for (waited = 0; inflight(&p) > 0 && waited < 200; waited++) {
                size_t got = 0;
                if (rsq_publish_poll(&p, NULL, NULL, 2, &got) != RSQ_OK) break;
                usleep(10000);
            }
        }
        CHECK_EQ_INT(xlen(&c, "pub:basic"), before);
    }
    m.id = "5-1"; /* below the top: the server's error, clearly */
    CHECK_RC(rsq_publish_msg(&p, &m, &id), RSQ_ERR_SERVER);
    CHECK(strstr(rsq_errstr(&c), "equal or smaller") != NULL);
    /* entries written by redis-cli, with any fields, come back whole */
    srv_cli(&S, out, sizeof out, "XADD pub:cli '*' payload from-cli color blue size 3");
    {
        const rsq_reply *r;
        CHECK_RC(rsq_command(&c, &r, "XREVRANGE", "pub:cli", "+", "-", "COUNT", "1", (char *)0), RSQ_OK);
        REQUIRE(r->len == 1);
        CHECK(r->element[0].element[1].len == 6);
        CHECK(rsq_reply_is(rsq_reply_get(&r->element[0].element[1], "color"), "blue"));
    }
    rsq_client_free(&c);
    t_need_version(ver(), 70000, "an explicit ms-* entry ID");
}

static void test_producer_validation_sends_nothing(void) {
    rsq_client c;
    rsq_producer p;
    rsq_producer_config pc;
    rsq_outgoing m[2];
    rsq_result res[2];
    rsq_field bad = { "payload", 0, "x", 0 }, empty = { "", 0, "x", 0 };
    static char big[2 * 1024 * 1024];
    rsq_client_stats before, after;
    REQUIRE(have_server);
    client(&c);
    rsq_producer_config_init(&pc);
    CHECK_RC(rsq_producer_init(&p, &c, &pc), RSQ_ERR_ARG); /* no queue */
    pc.queue = "";
    CHECK_RC(rsq_producer_init(&p, &c, &pc), RSQ_ERR_ARG);
    pc.queue = "pub:val";
    pc.priority_levels = 99;
    CHECK_RC(rsq_producer_init(&p, &c, &pc), RSQ_ERR_ARG);
    pc.priority_levels = 0;
    pc.max_payload = 1000;
    CHECK_RC(rsq_producer_init(&p, &c, &pc), RSQ_OK);
    rsq_client_get_stats(&c, &before);
    CHECK_RC(rsq_publish(&p, big, 1001, NULL), RSQ_ERR_TOO_LARGE);
    CHECK(strstr(rsq_errstr(&c), "max_payload") != NULL);
    CHECK_RC(rsq_publish(&p, NULL, 5, NULL), RSQ_ERR_ARG);
    memset(m, 0, sizeof m);
    m[0].payload = "ok"; m[0].payload_len = 2;
    m[1].payload = "bad header"; m[1].payload_len = 10; m[1].headers = &bad; m[1].header_count = 1;
    CHECK_RC(rsq_publish_batch(&p, m, 2, NULL, res), RSQ_ERR_ARG);
    CHECK(res[1] == RSQ_ERR_ARG);
    m[1].headers = &empty;
    CHECK_RC(rsq_publish_batch(&p, m, 2, NULL, NULL), RSQ_ERR_ARG);
    m[1].header_count = 0; m[1].priority = 1; /* only level 0 exists */
    CHECK_RC(rsq_publish_batch(&p, m, 2, NULL, NULL), RSQ_ERR_ARG);
    m[1].priority = 0; m[1].id = "12-x";
    CHECK_RC(rsq_publish_batch(&p, m, 2, NULL, NULL), RSQ_ERR_ARG);
    rsq_client_get_stats(&c, &after);
    CHECK_EQ_INT(after.commands, before.commands); /* nothing was sent */
    CHECK_EQ_INT(xlen(&c, "pub:val"), 0);
    /* the default limit is 1 MiB */
    pc.max_payload = 0;
    CHECK_RC(rsq_producer_init(&p, &c, &pc), RSQ_OK);
    CHECK_RC(rsq_publish(&p, big, sizeof big, NULL), RSQ_ERR_TOO_LARGE);
    CHECK_RC(rsq_publish(&p, big, 1 << 20, NULL), RSQ_OK);
    rsq_client_free(&c);
}

/* Counting allocator for the steady-state check. */
static long n_allocs;
static void *ca_malloc(size_t n, void *u) { (void)u; n_allocs++; return malloc(n); }
static void *ca_realloc(void *p, size_t n, void *u) { (void)u; n_allocs++; return realloc(p, n); }
static void ca_free(void *p, void *u) { (void)u; free(p); }

static void test_producer_batch_ids_errors_and_no_alloc(void) {
    rsq_client c;
    rsq_client_config cfg;
    rsq_producer p;
    rsq_outgoing m[200];
    rsq_id ids[200];
    rsq_result res[200];
    char bodies[200][16];
    int i, increasing = 1;
    long before;
    REQUIRE(have_server);
    rsq_client_config_init(&cfg);
    cfg.url = S.url;
    cfg.allocator.malloc_fn = ca_malloc;
    cfg.allocator.realloc_fn = ca_realloc;
    cfg.allocator.free_fn = ca_free;
    CHECK_RC(rsq_client_init(&c, &cfg), RSQ_OK);
    producer(&p, &c, "pub:batch", 1);
    memset(m, 0, sizeof m);
    for (i = 0; i < 200; i++) {
        snprintf(bodies[i], sizeof bodies[i], "msg-%d", i);
        m[i].payload = bodies[i];
        m[i].payload_len = strlen(bodies[i]);
    }
    CHECK_RC(rsq_publish_batch(&p, m, 200, ids, res), RSQ_OK);
    for (i = 1; i < 200; i++) increasing &= rsq_id_cmp(ids[i], ids[i - 1]) > 0;
    CHECK(increasing);
    CHECK_EQ_INT(xlen(&c, "pub:batch"), 200);
    /* warm: another batch allocates nothing */
    before = n_allocs;
    CHECK_RC(rsq_publish_batch(&p, m, 200, ids, res), RSQ_OK);
    for (i = 0; i < 1000; i++) rsq_publish(&p, "x", 1, NULL);
    CHECK_EQ_INT(n_allocs - before, 0);
    /* one bad message among good ones: only it fails */
    m[50].id = "1-1";
    CHECK_RC(rsq_publish_batch(&p, m, 200, ids, res), RSQ_ERR_SERVER);
    CHECK(res[50] == RSQ_ERR_SERVER && res[49] == RSQ_OK && res[51] == RSQ_OK && res[199] == RSQ_OK);
    CHECK_EQ_INT(xlen(&c, "pub:batch"), 400 + 1000 + 199);
    rsq_client_free(&c);
}

static void test_producer_lossy_caps(void) {
    rsq_client c;
    rsq_producer p;
    rsq_producer_config pc;
    rsq_id id;
    int i;
    long long trimmed = -1;
    REQUIRE(have_server);
    client(&c);
    rsq_producer_config_init(&pc);
    pc.queue = "pub:cap";
    pc.cap.mode = RSQ_TRIM_MAXLEN;
    pc.cap.maxlen = 10;
    pc.cap.exact = 1;
    CHECK_RC(rsq_producer_init(&p, &c, &pc), RSQ_OK);
    for (i = 0; i < 50; i++) rsq_publish(&p, "x", 1, &id);
    CHECK_EQ_INT(xlen(&c, "pub:cap"), 10);
    pc.cap.exact = 0; /* "~": trims whole nodes, never below maxlen */
    CHECK_RC(rsq_producer_init(&p, &c, &pc), RSQ_OK);
    for (i = 0; i < 300; i++) rsq_publish(&p, "x", 1, &id);
    CHECK(xlen(&c, "pub:cap") >= 10 && xlen(&c, "pub:cap") < 310);
    CHECK_RC(rsq_trim_maxlen(&c, "pub:cap", 5, 1, &trimmed), RSQ_OK);
    CHECK(trimmed > 0);
    CHECK_EQ_INT(xlen(&c, "pub:cap"), 5);
    if (OLDER_THAN(60200)) {
        /* no MINID before Redis 6.2, and no way around it: refused, naming the server */
        char v[16];
        CHECK_RC(rsq_trim_minid(&c, "pub:cap", id, 1, &trimmed), RSQ_ERR_UNSUPPORTED);
        CHECK(strstr(rsq_errstr(&c), srv_version_str(ver(), v, sizeof v)) != NULL);
        CHECK_EQ_INT(xlen(&c, "pub:cap"), 5);
        /* a LIMIT on a "~" cap (6.2): the same, before the XADD is sent */
        pc.cap.mode = RSQ_TRIM_MAXLEN;
        pc.cap.maxlen = 100;
        pc.cap.exact = 0;
        pc.cap.limit = 10;
        CHECK_RC(rsq_producer_init(&p, &c, &pc), RSQ_OK);
        CHECK_RC(rsq_publish(&p, "y", 1, NULL), RSQ_ERR_UNSUPPORTED);
        CHECK(strstr(rsq_errstr(&c), v) != NULL && strstr(rsq_errstr(&c), "LIMIT") != NULL);
        CHECK_EQ_INT(xlen(&c, "pub:cap"), 5);
        pc.cap.limit = 0;
        /* a MINID cap on publish: the same, before the XADD is sent */
        pc.cap.mode = RSQ_TRIM_MINID;
        pc.cap.minid = id;
        pc.cap.exact = 1;
        pc.cap.maxlen = 0;
        CHECK_RC(rsq_producer_init(&p, &c, &pc), RSQ_OK);
        CHECK_RC(rsq_publish(&p, "y", 1, NULL), RSQ_ERR_UNSUPPORTED);
        CHECK(strstr(rsq_errstr(&c), v) != NULL && strstr(rsq_errstr(&c), "MINID") != NULL);
        CHECK_EQ_INT(xlen(&c, "pub:cap"), 5);
        rsq_client_free(&c);
        t_need_version(ver(), 60200, "MINID");
        return;
    }
    CHECK_RC(rsq_trim_minid(&c, "pub:cap", id, 1, &trimmed), RSQ_OK);
    CHECK_EQ_INT(xlen(&c, "pub:cap"), 1);
    pc.cap.mode = RSQ_TRIM_MINID;
    pc.cap.minid = id;
    pc.cap.exact = 1;
    pc.cap.maxlen = 0;
    CHECK_RC(rsq_producer_init(&p, &c, &pc), RSQ_OK);
    CHECK_RC(rsq_publish(&p, "y", 1, NULL), RSQ_OK);
    CHECK_EQ_INT(xlen(&c, "pub:cap"), 2);
    rsq_client_free(&c);
}

/* One group keeps a backlog pending while another races ahead: the safe trim removes
   only entries every group has acknowledged. */
static void test_producer_safe_trim_keeps_pending_and_undelivered(void) {
    rsq_client c;
    rsq_producer p;
    rsq_id ids[100];
    const rsq_reply *r;
    long long trimmed = -1;
    int i, kept = 1;
    REQUIRE(have_server);
    client(&c);
    producer(&p, &c, "pub:safe", 1);
    /* no groups: nothing is known to be consumed, nothing is trimmed */
    for (i = 0; i < 100; i++) rsq_publish(&p, "x", 1, &ids[i]);
    if (OLDER_THAN(60200)) {
        /* the safe trim is an XTRIM MINID: refused before Redis 6.2, naming the server */
        char v[16];
        CHECK_RC(rsq_trim_safe(&c, "pub:safe", 1, &trimmed), RSQ_ERR_UNSUPPORTED);
        CHECK(strstr(rsq_errstr(&c), srv_version_str(ver(), v, sizeof v)) != NULL);
        CHECK_EQ_INT(trimmed, 0);
        CHECK_EQ_INT(xlen(&c, "pub:safe"), 100);
        rsq_client_free(&c);
        t_need_version(ver(), 60200, "the safe trim (XTRIM MINID)");
        return;
    }
    CHECK_RC(rsq_trim_safe(&c, "pub:safe", 1, &trimmed), RSQ_OK);
    CHECK_EQ_INT(trimmed, 0);
    CHECK_RC(rsq_group_create(&c, "pub:safe", "slow", RSQ_START_ALL), RSQ_OK);
    CHECK_RC(rsq_group_create(&c, "pub:safe", "fast", RSQ_START_ALL), RSQ_OK);
    CHECK_RC(rsq_group_create(&c, "pub:safe", "fast", RSQ_START_ALL), RSQ_OK); /* idempotent */
    /* a group that has never read holds everything */
    CHECK_RC(rsq_trim_safe(&c, "pub:safe", 1, &trimmed), RSQ_OK);
    CHECK_EQ_INT(trimmed, 0);
    /* fast reads and acks everything */
    CHECK_RC(rsq_command(&c, &r, "XREADGROUP", "GROUP", "fast", "f1", "COUNT", "1000", "STREAMS", "pub:safe", ">", (char *)0), RSQ_OK);
    for (i = 0; i < 100; i++) {
        char id[RSQ_ID_STRLEN];
        rsq_id_format(ids[i], id);
        rsq_command(&c, &r, "XACK", "pub:safe", "fast", id, (char *)0);
    }
    /* slow reads 30, acks the first 20 and entry 25: 21..24 and 26..29 stay pending */
    CHECK_RC(rsq_command(&c, &r, "XREADGROUP", "GROUP", "slow", "s1", "COUNT", "30", "STREAMS", "pub:safe", ">", (char *)0), RSQ_OK);
    for (i = 0; i < 30; i++) {
        char id[RSQ_ID_STRLEN];
        if (i > 20 && i != 25) continue;
        rsq_id_format(ids[i], id);
        rsq_command(&c, &r, "XACK", "pub:safe", "slow", id, (char *)0);
    }
    CHECK_RC(rsq_trim_safe(&c, "pub:safe", 1, &trimmed), RSQ_OK);
    CHECK_EQ_INT(trimmed, 21); /* entries 0..20, acked by both */
    /* every pending and every undelivered entry of "slow" is still there */
    for (i = 21; i < 100; i++) {
        char id[RSQ_ID_STRLEN];
        rsq_id_format(ids[i], id);
        if (rsq_command(&c, &r, "XRANGE", "pub:safe", id, id, (char *)0) != RSQ_OK || r->len != 1) kept = 0;
    }
    CHECK(kept);
    CHECK_EQ_INT(xlen(&c, "pub:safe"), 79);
    /* slow acks the rest of what it read: the bound moves to its next undelivered entry */
    for (i = 21; i < 30; i++) {
        char id[RSQ_ID_STRLEN];
        rsq_id_format(ids[i], id);
        rsq_command(&c, &r, "XACK", "pub:safe", "slow", id, (char *)0);
    }
    CHECK_RC(rsq_trim_safe(&c, "pub:safe", 1, &trimmed), RSQ_OK);
    CHECK_EQ_INT(trimmed, 9);
    CHECK_EQ_INT(xlen(&c, "pub:safe"), 70);
    rsq_client_free(&c);
}

static void test_producer_safe_trim_every_n(void) {
    rsq_client c;
    rsq_producer p;
    rsq_producer_config pc;
    const rsq_reply *r;
    int i;
    REQUIRE(have_server);
    client(&c);
    rsq_producer_config_init(&pc);
    pc.queue = "pub:every";
    pc.safe_trim_every = 50;
    CHECK_RC(rsq_producer_init(&p, &c, &pc), RSQ_OK);
    CHECK_RC(rsq_group_create(&c, "pub:every", "g", RSQ_START_NEW), RSQ_OK);
    for (i = 0; i < 1000; i++) {
        rsq_publish(&p, "x", 1, NULL);
        if (i % 100 == 99) {
            /* the group consumes and acks everything so far */
            rsq_command(&c, &r, "XREADGROUP", "GROUP", "g", "c", "COUNT", "1000", "STREAMS", "pub:every", ">", (char *)0);
            if (r && r->type == RSQ_REPLY_ARRAY) {
                size_t k;
                const rsq_reply *ents = &r->element[0].element[1];
                char idb[100][RSQ_ID_STRLEN];
                const char *argv[103];
                argv[0] = "XACK"; argv[1] = "pub:every"; argv[2] = "g";
                for (k = 0; k < ents->len && k < 100; k++) {
                    memcpy(idb[k], ents->element[k].element[0].str, ents->element[k].element[0].len + 1);
                    argv[3 + k] = idb[k];
                }
                rsq_command_argv(&c, &r, (int)(3 + k), argv, NULL);
            }
        }
    }
    if (OLDER_THAN(60200)) {
        /* each after-step trim is refused (no MINID before 6.2); the publishes are fine */
        const char *text = NULL;
        uint64_t failures = 0;
        char v[16];
        CHECK_RC(rsq_producer_after_step(&p, &text, &failures), RSQ_ERR_UNSUPPORTED);
        CHECK(text && strstr(text, srv_version_str(ver(), v, sizeof v)) != NULL);
        CHECK_EQ_INT(failures, 20);
        CHECK_EQ_INT(xlen(&c, "pub:every"), 1000);
        rsq_client_free(&c);
        t_need_version(ver(), 60200, "the safe trim (XTRIM MINID)");
        return;
    }
    /* approximate trims run every 50 publishes: most of the acked history is gone */
    CHECK(xlen(&c, "pub:every") < 500);
    rsq_client_free(&c);
}

/* Publishes msgs asynchronously and polls until every confirmation is in (at most
   about 5 s); returns how many were confirmed with RSQ_OK. */
static size_t publish_async_all(rsq_producer *p, const rsq_outgoing *msgs, size_t n) {
    size_t ok = 0, seen = 0;
    int waited;
    if (rsq_publish_async(p, msgs, n) != RSQ_OK) return 0;
    for (waited = 0; seen < n && waited < 5000; waited++) {
        rsq_result res[128];
        size_t got = 0, k;
        if (rsq_publish_poll(p, NULL, res, 128, &got) != RSQ_OK) break;
        for (k = 0; k < got; k++) ok += res[k] == RSQ_OK;
        seen += got;
        if (!got) usleep(1000);
    }
    return ok;
}

/* Reads and acks every entry of `stream` that group g has not read yet. */
static void consume_all(rsq_client *c, const char *stream) {
    for (;;) {
        const rsq_reply *r = NULL;
        const rsq_reply *ents;
        char idb[100][RSQ_ID_STRLEN];
        const char *argv[103];
        size_t k;
        if (rsq_command(c, &r, "XREADGROUP", "GROUP", "g", "c", "COUNT", "100", "STREAMS", stream, ">", (char *)0) !=
                RSQ_OK || !r || r->type != RSQ_REPLY_ARRAY || r->len == 0)
            return;
        ents = &r->element[0].element[1];
        if (ents->len == 0) return;
        argv[0] = "XACK"; argv[1] = stream; argv[2] = "g";
        for (k = 0; k < ents->len && k < 100; k++) {
            memcpy(idb[k], ents->element[k].element[0].str, ents->element[k].element[0].len + 1);
            argv[3 + k] = idb[k];
        }
        rsq_command_argv(c, &r, (int)(3 + k), argv, NULL);
    }
}

/* rsq_publish_async + rsq_publish_poll run the after-steps as rsq_publish_batch does:
   once the poll has collected the last confirmation outstanding, a safe trim every
   safe_trim_every messages, and WAIT for wait_replicas (its failure reported by
   rsq_producer_after_step, the publishes confirmed RSQ_OK all the same). */
static void test_producer_async_after_steps(void) {
    rsq_client c;
    rsq_producer p;
    rsq_producer_config pc;
    rsq_outgoing msgs[100];
    const char *text = NULL;
    uint64_t failures = 0;
    int i;
    REQUIRE(have_server);
    client(&c);
    memset(msgs, 0, sizeof msgs);
    for (i = 0; i < 100; i++) {
        msgs[i].payload = "x";
        msgs[i].payload_len = 1;
    }
    /* safe trim every 100 messages: 1000 published in rounds of 100, each round read
       and acked by the only group before the next */
    rsq_producer_config_init(&pc);
    pc.queue = "pub:async-every";
    pc.safe_trim_every = 100;
    CHECK_RC(rsq_producer_init(&p, &c, &pc), RSQ_OK);
    CHECK_RC(rsq_group_create(&c, "pub:async-every", "g", RSQ_START_NEW), RSQ_OK);
    for (i = 0; i < 10; i++) {
        CHECK_EQ_INT(publish_async_all(&p, msgs, 100), 100);
        consume_all(&c, "pub:async-every");
    }
    if (OLDER_THAN(60200)) {
        /* each after-step trim is refused (no MINID before 6.2); the publishes are fine */
        char v[16];
        CHECK_RC(rsq_producer_after_step(&p, &text, &failures), RSQ_ERR_UNSUPPORTED);
        CHECK(text && strstr(text, srv_version_str(ver(), v, sizeof v)) != NULL);
        CHECK_EQ_INT(failures, 10);
        CHECK_EQ_INT(xlen(&c, "pub:async-every"), 1000);
    } else {
        CHECK_RC(rsq_producer_after_step(&p, &text, &failures), RSQ_OK);
        CHECK_EQ_INT(failures, 0);
        /* approximate trims ran: most of the acked history is gone */
        CHECK(xlen(&c, "pub:async-every") < 500);
    }
    /* WAIT for a replica that this server does not have: the confirmations are RSQ_OK,
       the after-step says RSQ_ERR_REPLICAS */
    rsq_producer_config_init(&pc);
    pc.queue = "pub:async-wait";
    pc.wait_replicas = 1;
    pc.wait_timeout_ms = 50;
    CHECK_RC(rsq_producer_init(&p, &c, &pc), RSQ_OK);
    CHECK_EQ_INT(publish_async_all(&p, msgs, 3), 3);
    CHECK_RC(rsq_producer_after_step(&p, &text, &failures), RSQ_ERR_REPLICAS);
    CHECK(text && strstr(text, "WAIT") != NULL);
    CHECK_EQ_INT(failures, 1);
    CHECK_EQ_INT(xlen(&c, "pub:async-wait"), 3);
    CHECK_EQ_INT(rsq_pending_replies(&c), 0);
    rsq_client_free(&c);
    t_need_version(ver(), 60200, "the safe trim (XTRIM MINID)");
}

static void test_producer_priorities_share_a_tag(void) {
    rsq_client c;
    rsq_producer p;
    rsq_outgoing m;
    char out[256];
    int lvl;
    REQUIRE(have_server);
    client(&c);
    producer(&p, &c, "pub:prio", 3);
    memset(&m, 0, sizeof m);
    for (lvl = 0; lvl < 3; lvl++) {
        char body[16];
        snprintf(body, sizeof body, "L%d", lvl);
        m.payload = body;
        m.payload_len = 2;
        m.priority = lvl;
        CHECK_RC(rsq_publish_msg(&p, &m, NULL), RSQ_OK);
    }
    CHECK_EQ_INT(xlen(&c, "pub:prio"), 1);
    CHECK_EQ_INT(xlen(&c, "{pub:prio}:p1"), 1);
    CHECK_EQ_INT(xlen(&c, "{pub:prio}:p2"), 1);
    srv_cli(&S, out, sizeof out, "XRANGE {pub:prio}:p2 - +");
    CHECK(strstr(out, "payload\nL2") != NULL);
    /* the same cluster slot for all of them */
    {
        char a[32], b[32];
        srv_cli(&S, a, sizeof a, "CLUSTER KEYSLOT pub:prio");
        srv_cli(&S, b, sizeof b, "CLUSTER KEYSLOT {pub:prio}:p2");
        CHECK_STR(a, b);
    }
    rsq_client_free(&c);
}

static void test_producer_fanout_groups(void) {
    rsq_client c;
    rsq_producer p;
    rsq_id first, second;
    char idb[RSQ_ID_STRLEN];
    const rsq_reply *r;
    REQUIRE(have_server);
    client(&c);
    producer(&p, &c, "pub:fan", 1);
    CHECK_RC(rsq_publish(&p, "one", 3, &first), RSQ_OK);
    CHECK_RC(rsq_publish(&p, "two", 3, &second), RSQ_OK);
    rsq_id_format(first, idb);
    CHECK_RC(rsq_group_create(&c, "pub:fan", "new", RSQ_START_NEW), RSQ_OK);
    CHECK_RC(rsq_group_create(&c, "pub:fan", "all", RSQ_START_ALL), RSQ_OK);
    CHECK_RC(rsq_group_create(&c, "pub:fan", "after-first", idb), RSQ_OK);
    CHECK_RC(rsq_group_create(&c, "pub:fan", "bad", "yesterday"), RSQ_ERR_ARG);
    CHECK_RC(rsq_publish(&p, "three", 5, NULL), RSQ_OK);
    CHECK_RC(rsq_command(&c, &r, "XREADGROUP", "GROUP", "new", "c", "COUNT", "10", "STREAMS", "pub:fan", ">", (char *)0), RSQ_OK);
    CHECK(r->type == RSQ_REPLY_ARRAY && r->element[0].element[1].len == 1);
    CHECK_RC(rsq_command(&c, &r, "XREADGROUP", "GROUP", "all", "c", "COUNT", "10", "STREAMS", "pub:fan", ">", (char *)0), RSQ_OK);
    CHECK(r->type == RSQ_REPLY_ARRAY && r->element[0].element[1].len == 3);
    CHECK_RC(rsq_command(&c, &r, "XREADGROUP", "GROUP", "after-first", "c", "COUNT", "10", "STREAMS", "pub:fan", ">", (char *)0), RSQ_OK);
    CHECK(r->type == RSQ_REPLY_ARRAY && r->element[0].element[1].len == 2);
    rsq_client_free(&c);
}

static void test_producer_admin(void) {
    rsq_client c;
    rsq_producer p;
    int exists = -1, existed = -1, retired = -1;
    rsq_consumer_info ci[8];
    size_t n = 0;
    const rsq_reply *r;
    REQUIRE(have_server);
    client(&c);
    CHECK_RC(rsq_stream_exists(&c, "adm:s", &exists), RSQ_OK); CHECK_EQ_INT(exists, 0);
    CHECK_RC(rsq_stream_create(&c, "adm:s"), RSQ_OK);
    CHECK_RC(rsq_stream_create(&c, "adm:s"), RSQ_OK);
    CHECK_RC(rsq_stream_exists(&c, "adm:s", &exists), RSQ_OK); CHECK_EQ_INT(exists, 1);
    CHECK_EQ_INT(xlen(&c, "adm:s"), 0);
    producer(&p, &c, "adm:s", 1);
    rsq_publish(&p, "a", 1, NULL);
    rsq_publish(&p, "b", 1, NULL);
    CHECK_RC(rsq_group_create(&c, "adm:s", "g", RSQ_START_ALL), RSQ_OK);
    CHECK_RC(rsq_trim_maxlen(&c, "adm:s", 0, 1, NULL), RSQ_OK); /* empties it, keeping its groups */
    CHECK_EQ_INT(xlen(&c, "adm:s"), 0);
    rsq_publish(&p, "c", 1, NULL);
    rsq_publish(&p, "d", 1, NULL);
    /* consumer "busy" holds an entry; "idle" holds none */
    if (OLDER_THAN(60200)) { /* no XGROUP CREATECONSUMER: "idle" reads "c" and acks it */
        rsq_command(&c, &r, "XREADGROUP", "GROUP", "g", "idle", "COUNT", "1", "STREAMS", "adm:s", ">", (char *)0);
        if (r && r->type == RSQ_REPLY_ARRAY && r->len == 1 && r->element[0].element[1].len == 1) {
            char id[RSQ_ID_STRLEN];
            snprintf(id, sizeof id, "%s", r->element[0].element[1].element[0].element[0].str);
            rsq_command(&c, &r, "XACK", "adm:s", "g", id, (char *)0);
        }
        rsq_command(&c, &r, "XREADGROUP", "GROUP", "g", "busy", "COUNT", "1", "STREAMS", "adm:s", ">", (char *)0);
    } else {
        rsq_command(&c, &r, "XREADGROUP", "GROUP", "g", "busy", "COUNT", "1", "STREAMS", "adm:s", ">", (char *)0);
        rsq_command(&c, &r, "XGROUP", "CREATECONSUMER", "adm:s", "g", "idle", (char *)0);
    }
    CHECK_RC(rsq_group_consumers(&c, "adm:s", "g", ci, 8, &n), RSQ_OK);
    CHECK_EQ_INT(n, 2);
    usleep(30000);
    CHECK_RC(rsq_retire_idle_consumers(&c, "adm:s", "g", 10, &retired), RSQ_OK);
    CHECK_EQ_INT(retired, 1);
    CHECK_RC(rsq_group_consumers(&c, "adm:s", "g", ci, 8, &n), RSQ_OK);
    CHECK(n == 1 && !strcmp(ci[0].name, "busy") && ci[0].pending == 1);
    CHECK_RC(rsq_group_destroy(&c, "adm:s", "g", &existed), RSQ_OK); CHECK_EQ_INT(existed, 1);
    CHECK_RC(rsq_group_destroy(&c, "adm:s", "g", &existed), RSQ_OK); CHECK_EQ_INT(existed, 0);
    CHECK_RC(rsq_stream_delete(&c, "adm:s"), RSQ_OK);
    CHECK_RC(rsq_stream_exists(&c, "adm:s", &exists), RSQ_OK); CHECK_EQ_INT(exists, 0);
    CHECK_RC(rsq_stream_create(&c, ""), RSQ_ERR_ARG);
    CHECK_RC(rsq_stream_length(&c, NULL, NULL), RSQ_ERR_ARG);
    rsq_command(&c, &r, "SET", "adm:str", "x", (char *)0);
    CHECK_RC(rsq_stream_exists(&c, "adm:str", &exists), RSQ_ERR_WRONGTYPE);
    rsq_client_free(&c);
}

static void test_producer_metrics(void) {
    rsq_client c;
    rsq_producer p;
    rsq_stream_info si;
    rsq_group_info g[4];
    size_t n = 0, i;
    rsq_id ids[10];
    const rsq_reply *r;
    char idb[RSQ_ID_STRLEN];
    REQUIRE(have_server);
    client(&c);
    CHECK_RC(rsq_stream_stats(&c, "met:none", &si, g, 4, &n), RSQ_OK);
    CHECK(!si.exists && n == 0);
    producer(&p, &c, "met:s", 1);
    for (i = 0; i < 10; i++) rsq_publish(&p, "x", 1, &ids[i]);
    rsq_group_create(&c, "met:s", "a", RSQ_START_ALL);
    rsq_group_create(&c, "met:s", "b", RSQ_START_ALL);
    rsq_command(&c, &r, "XREADGROUP", "GROUP", "a", "c1", "COUNT", "4", "STREAMS", "met:s", ">", (char *)0);
    usleep(20000);
    CHECK_RC(rsq_stream_stats(&c, "met:s", &si, g, 4, &n), RSQ_OK);
    CHECK(si.exists && si.length == 10 && si.groups == 2 && n == 2);
    CHECK(rsq_id_cmp(si.first_id, ids[0]) == 0 && rsq_id_cmp(si.last_id, ids[9]) == 0);
    CHECK_STR(g[0].name, "a");
    CHECK(g[0].pending == 4 && g[0].lag == 6 && g[0].consumers == 1);
    CHECK(rsq_id_cmp(g[0].oldest_pending, ids[0]) == 0);
    CHECK(g[0].oldest_pending_age_ms >= 10);
    CHECK(g[1].pending == 0 && g[1].lag == 10 && g[1].consumers == 0 && g[1].oldest_pending_age_ms == 0);
    CHECK(rsq_group_behind(&g[0], 3, 0, 0) && !rsq_group_behind(&g[0], 10, 10, 0) && rsq_group_behind(&g[1], 0, 5, 0));
    CHECK(!rsq_group_behind(&g[1], 0, 0, 0));
    /* deleting an entry in the undelivered range makes the server's lag unknown:
       rsq counts it instead */
    rsq_id_format(ids[7], idb);
    rsq_command(&c, &r, "XDEL", "met:s", idb, (char *)0);
    CHECK_RC(rsq_stream_stats(&c, "met:s", &si, g, 4, &n), RSQ_OK);
    CHECK_EQ_INT(g[0].lag, 5);
    CHECK(g[0].lag_exact);
    rsq_client_free(&c);
}

/* A connection killed between publishes: the next publish reconnects and the message
   lands exactly once (nothing reached the server before the cut). */
static void test_producer_resend_after_cut(void) {
    rsq_client c, admin;
    rsq_producer p;
    const rsq_reply *r;
    long long id = 0;
    rsq_client_stats st;
    REQUIRE(have_server);
    client(&c);
    client(&admin);
    producer(&p, &c, "pub:cut", 1);
    CHECK_RC(rsq_publish(&p, "before", 6, NULL), RSQ_OK);
    CHECK_RC(rsq_command(&c, &r, "CLIENT", "ID", (char *)0), RSQ_OK);
    id = r->integer;
    {
        char ids[24];
        snprintf(ids, sizeof ids, "%lld", id);
        CHECK_RC(rsq_command(&admin, &r, "CLIENT", "KILL", "ID", ids, (char *)0), RSQ_OK);
    }
    usleep(20000);
    CHECK_RC(rsq_publish(&p, "after", 5, NULL), RSQ_OK);
    CHECK_EQ_INT(xlen(&c, "pub:cut"), 2);
    rsq_client_get_stats(&c, &st);
    CHECK_EQ_INT(st.reconnects, 1);
    rsq_client_free(&c);
    rsq_client_free(&admin);
}

/* Shards: round robin without a key; with a shard key, equal keys share one shard in
   publish order. */
static void test_producer_shards_and_shard_keys(void) {
    rsq_client c;
    rsq_producer p;
    rsq_producer_config pc;
    rsq_outgoing m;
    const rsq_reply *r;
    int i, s, holding = 0, in_order = 1;
    REQUIRE(have_server);
    client(&c);
    rsq_producer_config_init(&pc);
    pc.queue = "pub:shard";
    pc.shards = 4;
    CHECK_RC(rsq_producer_init(&p, &c, &pc), RSQ_OK);
    for (i = 0; i < 40; i++) CHECK_RC(rsq_publish(&p, "rr", 2, NULL), RSQ_OK);
    for (s = 0; s < 4; s++) {
        char k[RSQ_KEY_MAX];
        rsq_queue_key(k, sizeof k, "pub:shard", s, 0, RSQ_KEY_STREAM);
        CHECK_EQ_INT(xlen(&c, k), 10);
    }
    memset(&m, 0, sizeof m);
    m.shard_key = "customer-42";
    for (i = 0; i < 20; i++) {
        char body[16];
        snprintf(body, sizeof body, "%d", i);
        m.payload = body;
        m.payload_len = strlen(body);
        CHECK_RC(rsq_publish_msg(&p, &m, NULL), RSQ_OK);
    }
    for (s = 0; s < 4; s++) {
        char k[RSQ_KEY_MAX];
        size_t j;
        rsq_queue_key(k, sizeof k, "pub:shard", s, 0, RSQ_KEY_STREAM);
        if (xlen(&c, k) != 30) continue;
        holding++;
        CHECK_RC(rsq_command(&c, &r, "XRANGE", k, "-", "+", (char *)0), RSQ_OK);
        for (j = 10; j < r->len; j++) in_order &= atoi(r->element[j].element[1].element[1].str) == (int)j - 10;
    }
    CHECK_EQ_INT(holding, 1);
    CHECK(in_order);
    rsq_client_free(&c);
}

void suite_producer(void) {
    have_server = srv_start(&S, NULL) == 0;
    RUN(test_producer_keys);
    RUN(test_producer_ids);
    RUN(test_producer_publish_and_interop);
    RUN(test_producer_validation_sends_nothing);
    RUN(test_producer_batch_ids_errors_and_no_alloc);
    RUN(test_producer_lossy_caps);
    RUN(test_producer_safe_trim_keeps_pending_and_undelivered);
    RUN(test_producer_safe_trim_every_n);
    RUN(test_producer_async_after_steps);
    RUN(test_producer_priorities_share_a_tag);
    RUN(test_producer_fanout_groups);
    RUN(test_producer_admin);
    RUN(test_producer_metrics);
    RUN(test_producer_resend_after_cut);
    RUN(test_producer_shards_and_shard_keys);
    if (have_server) srv_stop(&S, 0);
}
