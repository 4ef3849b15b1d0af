/* test_admin.c - administration and metrics at the edges, against private
   redis-servers: any number of groups and consumers (no silent caps), stats that tell
   the truth after XTRIM/XDEL and with explicit IDs, stats that never read entry bodies
   (a 20 MiB entry), the scripting-free fallback (Redis 5.0's missing exclusive ranges
   emulated), after-steps of a publish reported apart from its result, the keys of a
   queue in one cluster slot whatever its name, and rsq_errstr after success. */
#define _DEFAULT_SOURCE 1
#include "t.h"
#include "server.h"
#include "../rsq.h"
#include <unistd.h>


static srv S;         /* the default server */
static srv N;         /* the same without scripting (EVAL renamed away) */
static int have_server, have_noscript;
static long version;  /* of S: major*10000 + minor*100 + patch */

static void client_at(rsq_client *c, const char *url, int protocol) {
    rsq_client_config cfg;
    rsq_client_config_init(&cfg);
    cfg.url = url;
    cfg.protocol = protocol;
    cfg.retry_base_ms = 10;
    rsq_client_init(c, &cfg);
}

static void client(rsq_client *c) { client_at(c, S.url, 2); }

static rsq_id xadd(rsq_client *c, const char *key, const char *id, const char *val) {
    const rsq_reply *r;
    rsq_id out = { 0, 0 };
    if (rsq_command(c, &r, "XADD", key, id, "payload", val, (char *)0) == RSQ_OK) rsq_id_parse(r->str, r->len, &out);
    return out;
}

static long long read_group(rsq_client *c, const char *key, const char *group, const char *consumer, const char *count) {
    const rsq_reply *r;
    if (rsq_command(c, &r, "XREADGROUP", "GROUP", group, consumer, "COUNT", count, "STREAMS", key, ">", (char *)0) != RSQ_OK)
        return -1;
    if (r->type == RSQ_REPLY_MAP && r->len == 2) return (long long)r->element[1].len; /* RESP3 */
    if (r->type != RSQ_REPLY_ARRAY || r->len == 0) return 0;
    return (long long)r->element[0].element[1].len;
}

static void ack(rsq_client *c, const char *key, const char *group, rsq_id id) {
    const rsq_reply *r;
    char t[RSQ_ID_STRLEN];
    t[rsq_id_format(id, t)] = '\0';
    rsq_command(c, &r, "XACK", key, group, t, (char *)0);
}

/* The group named `name` in g[0..n), or NULL. */
static const rsq_group_info *find_group(const rsq_group_info *g, size_t n, const char *name) {
    size_t i;
    for (i = 0; i < n; i++)
        if (!strcmp(g[i].name, name)) return &g[i];
    return NULL;
}

/* ------------------------------------------------------------------------------------ */
/* No silent caps */

/* 45 consumers: the first 40 by name hold an entry each, the last 5 hold nothing
   (they acked theirs). */
static void test_admin_retire_idle_among_45_consumers(void) {
    rsq_client c;
    rsq_consumer_info ci[64];
    size_t n = 0, i;
    int retired = -1, busy_kept = 1;
    rsq_id ids[45];
    REQUIRE(have_server);
    client(&c);
    for (i = 0; i < 45; i++) ids[i] = xadd(&c, "adm:ret", "*", "x");
    CHECK_RC(rsq_group_create(&c, "adm:ret", "g", RSQ_START_ALL), RSQ_OK);
    for (i = 0; i < 45; i++) {
        char name[16];
        snprintf(name, sizeof name, "c%02u", (unsigned)i);
        CHECK_EQ_INT(read_group(&c, "adm:ret", "g", name, "1"), 1);
        if (i >= 40) ack(&c, "adm:ret", "g", ids[i]);
    }
    CHECK_RC(rsq_group_consumers(&c, "adm:ret", "g", NULL, 0, &n), RSQ_OK);
    CHECK_EQ_INT(n, 45); /* the count, with no array at all */
    CHECK_RC(rsq_group_consumers(&c, "adm:ret", "g", ci, 8, &n), RSQ_OK);
    CHECK_EQ_INT(n, 45); /* more than fit: said, not hidden */
    CHECK_STR(ci[7].name, "c07");
    usleep(60000);
    CHECK_RC(rsq_retire_idle_consumers(&c, "adm:ret", "g", 30, &retired), RSQ_OK);
    CHECK_EQ_INT(retired, 5);
    CHECK_RC(rsq_group_consumers(&c, "adm:ret", "g", ci, 64, &n), RSQ_OK);
    CHECK_EQ_INT(n, 40);
    for (i = 0; i < n && i < 64; i++) busy_kept &= ci[i].pending == 1 && !strncmp(ci[i].name, "c", 1) && atoi(ci[i].name + 1) < 40;
    CHECK(busy_kept);
    /* a missing group is the server's NOGROUP, as before */
    CHECK_RC(rsq_retire_idle_consumers(&c, "adm:ret", "nope", 0, &retired), RSQ_ERR_NOGROUP);
    rsq_client_free(&c);
}

/* 40 groups; the lowest bound comes from group 35 (oldest pending) */
static void make_40_groups(rsq_client *c, const char *key, rsq_id *ids) {
    int k, i;
    for (i = 0; i < 100; i++) ids[i] = xadd(c, key, "*", "x");
    for (k = 0; k < 40; k++) {
        char g[16], cnt[16];
        long long got;
        snprintf(g, sizeof g, "g%02d", k);
        rsq_group_create(c, key, g, RSQ_START_ALL);
        /* most groups read and ack 50+k entries: their bound is entry 50+k */
        snprintf(cnt, sizeof cnt, "%d", k == 35 ? 45 : k == 39 ? 30 : 50 + k);
        got = read_group(c, key, g, "w", cnt);
        for (i = 0; i < got; i++)
            if (k != 35 || i < 20) ack(c, key, g, ids[i]); /* g35 keeps 20..44 pending */
    }
}

static void test_admin_trim_safe_40_groups(void) {
    rsq_client c;
    rsq_producer p;
    rsq_producer_config pc;
    rsq_id ids[100], id = { 0, 0 };
    const char *text = NULL;
    uint64_t failures = 9;
    long long trimmed = -1, len = -1;
    const rsq_reply *r;
    REQUIRE(have_server);
    client(&c);
    make_40_groups(&c, "adm:trim", ids);
    if (version && version < 60200) {
        /* XTRIM MINID is 6.2+: a clear refusal naming the server, nothing trimmed */
        CHECK_RC(rsq_trim_safe(&c, "adm:trim", 1, &trimmed), RSQ_ERR_UNSUPPORTED);
        CHECK(strstr(rsq_errstr(&c), "6.2") != NULL);
        CHECK_EQ_INT(trimmed, 0);
    } else {
        CHECK_RC(rsq_trim_safe(&c, "adm:trim", 1, &trimmed), RSQ_OK);
        CHECK_EQ_INT(trimmed, 20); /* below g35's oldest pending entry, ids[20] */
    }
    rsq_stream_length(&c, "adm:trim", &len);
    CHECK_EQ_INT(len, version && version < 60200 ? 100 : 80);
    CHECK_RC(rsq_command(&c, &r, "XRANGE", "adm:trim", "-", "+", "COUNT", "1", (char *)0), RSQ_OK);
    CHECK(r->len == 1);
    /* a publish with safe_trim_every = 1: OK and its ID, the trim is an after-step */
    rsq_producer_config_init(&pc);
    pc.queue = "adm:trim";
    pc.safe_trim_every = 1;
    CHECK_RC(rsq_producer_init(&p, &c, &pc), RSQ_OK);
    CHECK_RC(rsq_publish(&p, "y", 1, &id), RSQ_OK);
    CHECK(rsq_id_cmp(id, ids[99]) > 0);
    if (version && version < 60200) {
        CHECK_RC(rsq_producer_after_step(&p, &text, &failures), RSQ_ERR_UNSUPPORTED);
        CHECK(strstr(text, "safe trim") != NULL);
        CHECK_EQ_INT(failures, 1);
    } else {
        CHECK_RC(rsq_producer_after_step(&p, &text, &failures), RSQ_OK);
        CHECK_STR(text, "");
        CHECK_EQ_INT(failures, 0);
    }
    rsq_stream_length(&c, "adm:trim", &len);
    CHECK_EQ_INT(len, version && version < 60200 ? 101 : 81);
    rsq_client_free(&c);
}

static int after_step_logged;
static void log_hook(void *user, rsq_log_level level, rsq_log_item item, const char *message) {
    (void)user;
    (void)message;
    if (item == RSQ_LOGI_AFTER_STEP && level == RSQ_LOG_WARN) after_step_logged++;
}

/* A failing after-step (here the safe trim of a level whose key holds a string) does
   not turn a written publish into an error: RSQ_OK with the ID, the failure apart. */
static void test_admin_publish_after_step_failure_is_apart(void) {
    rsq_client c;
    rsq_client_config cfg;
    rsq_producer p;
    rsq_producer_config pc;
    rsq_id id = { 0, 0 };
    const rsq_reply *r;
    const char *text = NULL;
    uint64_t failures = 0;
    long long len = 0;
    int old = version && version < 60200;
    REQUIRE(have_server);
    after_step_logged = 0;
    rsq_client_config_init(&cfg);
    cfg.url = S.url;
    cfg.logger.func = log_hook;
    cfg.logger.level = RSQ_LOG_WARN;
    rsq_client_init(&c, &cfg);
    CHECK_RC(rsq_command(&c, &r, "SET", "{adm:after}:p1", "not a stream", (char *)0), RSQ_OK);
    rsq_producer_config_init(&pc);
    pc.queue = "adm:after";
    pc.priority_levels = 2;
    pc.safe_trim_every = 1;
    CHECK_RC(rsq_producer_init(&p, &c, &pc), RSQ_OK);
    CHECK_RC(rsq_publish(&p, "m", 1, &id), RSQ_OK);
    CHECK(id.ms > 0);
    CHECK_STR(rsq_errstr(&c), ""); /* the call succeeded */
    rsq_stream_length(&c, "adm:after", &len);
    CHECK_EQ_INT(len, 1);
    /* (before 6.2 the trim itself is unsupported: that is the failure then) */
    CHECK_RC(rsq_producer_after_step(&p, &text, &failures), old ? RSQ_ERR_UNSUPPORTED : RSQ_ERR_WRONGTYPE);
    CHECK(text && strstr(text, "safe trim") && strstr(text, old ? "6.2" : "WRONGTYPE"));
    CHECK_EQ_INT(failures, 1);
    CHECK_EQ_INT(after_step_logged, 1);
    /* the next call starts afresh; the count goes on */
    rsq_command(&c, &r, "DEL", "{adm:after}:p1", (char *)0);
    CHECK_RC(rsq_publish(&p, "n", 1, &id), RSQ_OK);
    CHECK_RC(rsq_producer_after_step(&p, &text, &failures), old ? RSQ_ERR_UNSUPPORTED : RSQ_OK);
    CHECK_EQ_INT(failures, old ? 2 : 1);
    rsq_client_free(&c);
}

/* ------------------------------------------------------------------------------------ */
/* Stats tell the truth */

/* XTRIM MAXLEN 1 behind a group; then XDEL: lag is what the group has left to read. */
static void lag_after_deletions(const char *url, int protocol, const char *tag) {
    rsq_client c;
    rsq_stream_info si;
    rsq_group_info g[4];
    const rsq_group_info *a;
    size_t n = 0;
    rsq_id id[6];
    char key[64], t[RSQ_ID_STRLEN];
    const rsq_reply *r;
    int i;
    client_at(&c, url, protocol);
    snprintf(key, sizeof key, "adm:lag:%s:trim", tag);
    for (i = 0; i < 4; i++) id[i] = xadd(&c, key, "*", "x");
    rsq_group_create(&c, key, "g", RSQ_START_ALL);
    CHECK_EQ_INT(read_group(&c, key, "g", "w", "1"), 1);
    CHECK_RC(rsq_command(&c, &r, "XTRIM", key, "MAXLEN", "1", (char *)0), RSQ_OK);
    CHECK_RC(rsq_stream_stats(&c, key, &si, g, 4, &n), RSQ_OK);
    CHECK(n == 1 && si.length == 1 && si.ends_known);
    CHECK(rsq_id_cmp(si.first_id, id[3]) == 0 && rsq_id_cmp(si.last_id, id[3]) == 0);
    CHECK_EQ_INT(g[0].lag, 1); /* only the last entry is left unread (Redis 7.0 says 3) */
    CHECK(g[0].lag_exact);
    CHECK_EQ_INT(read_group(&c, key, "g", "w", "10"), 1);
    CHECK_RC(rsq_stream_stats(&c, key, &si, g, 4, &n), RSQ_OK);
    CHECK_EQ_INT(g[0].lag, 0); /* nothing left to read (Redis 7.0 says 2) */
    CHECK_EQ_INT(read_group(&c, key, "g", "w", "10"), 0);

    snprintf(key, sizeof key, "adm:lag:%s:del", tag);
    for (i = 0; i < 6; i++) id[i] = xadd(&c, key, "*", "x");
    rsq_group_create(&c, key, "two", RSQ_START_ALL);
    rsq_group_create(&c, key, "none", RSQ_START_ALL);
    rsq_group_create(&c, key, "late", RSQ_START_ALL);
    CHECK_EQ_INT(read_group(&c, key, "two", "w", "2"), 2);
    CHECK_EQ_INT(read_group(&c, key, "none", "w", "4"), 4);
    /* delete entries 2 and 4: "two" has 3 and 5 left, "none" has 5 left */
    t[rsq_id_format(id[2], t)] = '\0';
    rsq_command(&c, &r, "XDEL", key, t, (char *)0);
    t[rsq_id_format(id[4], t)] = '\0';
    rsq_command(&c, &r, "XDEL", key, t, (char *)0);
    CHECK_RC(rsq_stream_stats(&c, key, &si, g, 4, &n), RSQ_OK);
    CHECK_EQ_INT(n, 3);
    a = find_group(g, n, "two");
    CHECK(a && a->lag == 2 && a->lag_exact && a->pending == 2);
    a = find_group(g, n, "none");
    CHECK(a && a->lag == 1 && a->lag_exact);
    a = find_group(g, n, "late");
    CHECK(a && a->lag == 4 && a->lag_exact); /* never read: every entry left */
    /* delete the tail: "none" has nothing left to read */
    t[rsq_id_format(id[5], t)] = '\0';
    rsq_command(&c, &r, "XDEL", key, t, (char *)0);
    CHECK_RC(rsq_stream_stats(&c, key, &si, g, 4, &n), RSQ_OK);
    a = find_group(g, n, "none");
    CHECK(a && a->lag == 0 && a->lag_exact);
    CHECK_EQ_INT(read_group(&c, key, "none", "w", "10"), 0);
    a = find_group(g, n, "two");
    CHECK(a && a->lag == 1 && a->lag_exact); /* entry 3 */
    CHECK(rsq_id_cmp(si.last_id, id[3]) == 0 && rsq_id_cmp(si.last_generated_id, id[5]) == 0);
    rsq_client_free(&c);
}

static void test_admin_stats_lag_after_xtrim_and_xdel(void) {
    REQUIRE(have_server);
    lag_after_deletions(S.url, 2, "r2");
    if (version >= 60000) lag_after_deletions(S.url, 3, "r3");
}

/* Without scripting: the XRANGE count, whose start is the ID after last-delivered
   (Redis 5.0/6.0 have no exclusive "(id" ranges). */
static void test_admin_stats_lag_without_scripting(void) {
    REQUIRE(have_noscript);
    lag_after_deletions(N.url, 2, "noscript");
}

/* A lag past the counting cap is a lower bound, said so. */
/* Past 10000 the count stops (a lower bound, inexact), where the server's figure
   cannot be used (before Redis 7.0). */
static void test_admin_stats_lag_cap_is_inexact(void) {
    rsq_client c;
    rsq_producer p;
    rsq_producer_config pc;
    rsq_outgoing m[500];
    rsq_stream_info si;
    rsq_group_info g[1];
    size_t n = 0;
    int i;
    REQUIRE(have_server);
    client(&c);
    rsq_producer_config_init(&pc);
    pc.queue = "adm:biglag";
    rsq_producer_init(&p, &c, &pc);
    memset(m, 0, sizeof m);
    for (i = 0; i < 500; i++) { m[i].payload = "x"; m[i].payload_len = 1; }
    for (i = 0; i < 21; i++) CHECK_RC(rsq_publish_batch(&p, m, 500, NULL, NULL), RSQ_OK);
    rsq_group_create(&c, "adm:biglag", "g", RSQ_START_ALL);
    CHECK_EQ_INT(read_group(&c, "adm:biglag", "g", "w", "1"), 1);
    CHECK_RC(rsq_stream_stats(&c, "adm:biglag", &si, g, 1, &n), RSQ_OK);
    if (version >= 70000) /* the server's own count, exact (nothing deleted): no cap */
        CHECK(g[0].lag == 10499 && g[0].lag_exact);
    else
        CHECK(g[0].lag >= 10000 && g[0].lag <= 10499 && !g[0].lag_exact);
    rsq_client_free(&c);
}

/* The oldest pending age is an idle time from XPENDING, not the entry ID's time. */
static void test_admin_stats_oldest_pending_age_is_idle_time(void) {
    rsq_client c;
    rsq_stream_info si;
    rsq_group_info g[1];
    size_t n = 0;
    const rsq_reply *r;
    rsq_id one = { 1, 1 };
    int i;
    REQUIRE(have_server);
    client(&c);
    xadd(&c, "adm:age", "1-1", "old id");
    for (i = 0; i < 40; i++) {
        char id[16];
        snprintf(id, sizeof id, "2-%d", i);
        xadd(&c, "adm:age", id, "x");
    }
    rsq_group_create(&c, "adm:age", "g", RSQ_START_ALL);
    CHECK_EQ_INT(read_group(&c, "adm:age", "g", "w", "1"), 1); /* 1-1, pending from now */
    sleep(2);
    CHECK_RC(rsq_stream_stats(&c, "adm:age", &si, g, 1, &n), RSQ_OK);
    CHECK(n == 1 && g[0].pending == 1 && rsq_id_cmp(g[0].oldest_pending, one) == 0);
    CHECK(g[0].oldest_pending_age_ms >= 1000 && g[0].oldest_pending_age_ms <= 3000); /* 2 s, not 20786 days */
    CHECK(rsq_group_behind(&g[0], 0, 0, 1000) && !rsq_group_behind(&g[0], 0, 0, 3000));
    /* 33 more pending, fresh; one of them (2-9) made idle for 10 minutes: the figure
       is the longest idle time among the lowest-ID pending entries */
    CHECK_EQ_INT(read_group(&c, "adm:age", "g", "w", "33"), 33);
    CHECK_RC(rsq_command(&c, &r, "XCLAIM", "adm:age", "g", "w", "0", "2-9", "IDLE", "600000", "JUSTID", (char *)0), RSQ_OK);
    CHECK_RC(rsq_stream_stats(&c, "adm:age", &si, g, 1, &n), RSQ_OK);
    CHECK_EQ_INT(g[0].pending, 34);
    CHECK(g[0].oldest_pending_age_ms >= 600000 && g[0].oldest_pending_age_ms <= 602000);
    CHECK_EQ_INT(g[0].lag, 7);
    rsq_client_free(&c);
}

/* ------------------------------------------------------------------------------------ */
/* Stats never read whole entries */

/* Writes a 20 MiB entry with a client allowed replies that large. */
static int write_big(const char *url, const char *key) {
    rsq_client big;
    rsq_client_config cfg;
    const rsq_reply *r;
    const char *argv[5];
    size_t lens[5];
    char *body = (char *)malloc((size_t)20 << 20);
    rsq_result rc;
    if (!body) return 0;
    memset(body, 'B', (size_t)20 << 20);
    rsq_client_config_init(&cfg);
    cfg.url = url;
    cfg.limits.max_bulk = (size_t)64 << 20;
    cfg.limits.max_reply = (size_t)64 << 20;
    rsq_client_init(&big, &cfg);
    argv[0] = "XADD"; argv[1] = key; argv[2] = "*"; argv[3] = "payload"; argv[4] = body;
    lens[0] = 4; lens[1] = strlen(key); lens[2] = 1; lens[3] = 7; lens[4] = (size_t)20 << 20;
    rc = rsq_command_argv(&big, &r, 5, argv, lens);
    rsq_client_free(&big);
    free(body);
    return rc == RSQ_OK;
}

static void big_entry_stats(const char *url, int scripting, const char *tag) {
    rsq_client c;
    rsq_stream_info si;
    rsq_group_info g[4];
    const rsq_group_info *a;
    size_t n = 0;
    rsq_id first, last;
    char mid[64], tail[64];
    client_at(&c, url, 2); /* default limits: max_bulk 16 MiB */
    /* the big entry between two small ones */
    snprintf(mid, sizeof mid, "adm:big:%s:mid", tag);
    first = xadd(&c, mid, "*", "small 1");
    REQUIRE(write_big(url, mid));
    last = xadd(&c, mid, "*", "small 2");
    rsq_group_create(&c, mid, "fresh", RSQ_START_ALL);
    rsq_group_create(&c, mid, "one", RSQ_START_ALL);
    CHECK_EQ_INT(read_group(&c, mid, "one", "w", "1"), 1); /* small 1 */
    rsq_group_create(&c, mid, "done", RSQ_START_NEW);
    CHECK_RC(rsq_stream_stats(&c, mid, &si, g, 4, &n), RSQ_OK);
    CHECK(si.exists && si.length == 3 && si.groups == 3 && n == 3 && si.ends_known);
    CHECK(rsq_id_cmp(si.first_id, first) == 0 && rsq_id_cmp(si.last_id, last) == 0);
    a = find_group(g, n, "fresh");
    CHECK(a && a->lag == 3 && a->lag_exact);
    a = find_group(g, n, "done");
    CHECK(a && a->lag == 0 && a->lag_exact);
    a = find_group(g, n, "one");
    if (scripting) CHECK(a && a->lag == 2 && a->lag_exact && a->pending == 1);
    else /* the server's own figure where it has an exact one (Redis >= 7.0), or unknown: never wrong */
        CHECK(a && ((a->lag == 2 && a->lag_exact) || (a->lag == -1 && !a->lag_exact)) && a->pending == 1);
    /* the big entry last: XINFO STREAM would carry it */
    snprintf(tail, sizeof tail, "adm:big:%s:tail", tag);
    first = xadd(&c, tail, "*", "small");
    REQUIRE(write_big(url, tail));
    rsq_group_create(&c, tail, "g", RSQ_START_ALL);
    CHECK_RC(rsq_stream_stats(&c, tail, &si, g, 4, &n), RSQ_OK);
    CHECK(si.exists && si.length == 2 && si.groups == 1 && n == 1);
    if (scripting) {
        CHECK(si.ends_known && rsq_id_cmp(si.first_id, first) == 0 && rsq_id_cmp(si.last_id, si.last_generated_id) == 0);
        CHECK(si.last_id.ms > 0);
    } else {
        CHECK(!si.ends_known);
    }
    CHECK_EQ_INT(g[0].lag, scripting ? 2 : -1);
    /* the client is still usable */
    CHECK_RC(rsq_stream_stats(&c, mid, &si, g, 4, &n), RSQ_OK);
    CHECK_EQ_INT(si.length, 3);
    rsq_client_free(&c);
}

static void test_admin_stats_with_20mib_entry(void) {
    REQUIRE(have_server);
    big_entry_stats(S.url, 1, "s");
}

static void test_admin_stats_with_20mib_entry_without_scripting(void) {
    REQUIRE(have_noscript);
    big_entry_stats(N.url, 0, "n");
}

/* ------------------------------------------------------------------------------------ */
/* Keys of one queue share one slot, whatever the name */

/* Redis Cluster's key slot, written from its specification: CRC16-CCITT (XMODEM) of
   the hash tag (text between the first '{' and the first '}' after it, if not empty)
   or else of the whole key, modulo 16384. Independent of rsq's own code. */
static unsigned ref_crc16(const char *s, size_t n) {
    unsigned crc = 0;
    size_t i;
    int b;
    for (i = 0; i < n; i++) {
        crc ^= (unsigned)(unsigned char)s[i] << 8;
        for (b = 0; b < 8; b++) crc = ((crc << 1) ^ ((crc & 0x8000u) ? 0x1021u : 0u)) & 0xffffu;
    }
    return crc;
}

static int ref_tag(const char *k, size_t n, size_t *from, size_t *len) {
    const char *o = memchr(k, '{', n), *cl;
    if (!o) return 0;
    cl = memchr(o + 1, '}', n - (size_t)(o + 1 - k));
    if (!cl || cl == o + 1) return 0;
    *from = (size_t)(o + 1 - k);
    *len = (size_t)(cl - o - 1);
    return 1;
}

static int ref_slot(const char *k) {
    size_t n = strlen(k), from = 0, len = n;
    if (!ref_tag(k, n, &from, &len)) from = 0, len = n;
    return (int)(ref_crc16(k + from, len) % 16384u);
}

static uint64_t rng_state;
static unsigned rnd(unsigned below) {
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (unsigned)((rng_state >> 33) % below);
}

static void test_admin_key_slots_property(void) {
    static const char alphabet[] = "{{{{}}}}:::ab";
    const uint64_t seed = 20240607;
    const int shards[] = { 0, 1, 2, 9, 1023 };
    int t, bad = 0, refused = 0, accepted = 0;
    char k[RSQ_KEY_MAX];
    size_t from, len;
    /* the figures */
    CHECK_EQ_INT(ref_slot("{}x"), 10595);
    CHECK_EQ_INT(rsq_key_slot("{}x", 3), 10595);
    CHECK_EQ_INT(ref_slot("}{"), 12793);
    CHECK_EQ_INT(ref_slot("{}{}:p1"), 8788); /* what "}{"'s level 1 used to be */
    CHECK_EQ_INT(rsq_queue_key(k, sizeof k, "{}x", 0, 1, RSQ_KEY_STREAM), 0);
    CHECK_EQ_INT(rsq_queue_key(k, sizeof k, "}{", 0, 0, RSQ_KEY_DEAD_LETTER), 0);
    CHECK_EQ_INT(rsq_queue_key(k, sizeof k, "a{}b", 0, 1, RSQ_KEY_STREAM), 0);
    CHECK(rsq_queue_key(k, sizeof k, "a{b", 0, 1, RSQ_KEY_STREAM)); CHECK_STR(k, "{a{b}:p1");
    CHECK(rsq_queue_key(k, sizeof k, "}{a}", 0, 1, RSQ_KEY_STREAM)); CHECK_STR(k, "}{a}:p1");
    CHECK(rsq_queue_key(k, sizeof k, "}{a}", 3, 0, RSQ_KEY_DEAD_LETTER)); CHECK_STR(k, "}{a:s3}:dlq");
    CHECK(rsq_queue_key(k, sizeof k, "jobs", 0, 2, RSQ_KEY_STREAM)); CHECK_STR(k, "{jobs}:p2");
    CHECK(rsq_queue_key(k, sizeof k, "jobs", 3, 1, RSQ_KEY_STREAM)); CHECK_STR(k, "{jobs:s3}:p1");
    rng_state = seed;
    for (t = 0; t < 20000 && bad < 5; t++) {
        char name[16];
        size_t n = 1 + rnd(12), i;
        int impossible, si;
        for (i = 0; i < n; i++) name[i] = alphabet[rnd(sizeof alphabet - 1)];
        name[n] = '\0';
        impossible = !ref_tag(name, n, &from, &len) && memchr(name, '}', n) != NULL;
        if (impossible) {
            refused++;
            if (rsq_queue_key(k, sizeof k, name, 0, 0, RSQ_KEY_STREAM) || rsq_queue_key(k, sizeof k, name, 0, 1, RSQ_KEY_STREAM) ||
                rsq_queue_key(k, sizeof k, name, 0, 0, RSQ_KEY_DEAD_LETTER) || rsq_queue_key(k, sizeof k, name, 2, 0, RSQ_KEY_DELAYED)) {
                fprintf(stderr, "    seed %llu: \"%s\" has no tag and a '}' but was accepted\n", (unsigned long long)seed, name);
                bad++;
            }
            continue;
        }
        accepted++;
        for (si = 0; si < (int)(sizeof shards / sizeof shards[0]); si++) {
            int s = shards[si], level, slot, kind;
            if (!rsq_queue_key(k, sizeof k, name, s, 0, RSQ_KEY_STREAM)) {
                fprintf(stderr, "    seed %llu: \"%s\" shard %d refused\n", (unsigned long long)seed, name, s);
                bad++;
                break;
            }
            if (s == 0 && strcmp(k, name)) { bad++; fprintf(stderr, "    \"%s\": main key is \"%s\"\n", name, k); }
            if (s > 0) { /* a shard has a tag of its own */
                char shard_tag[32];
                size_t kn = strlen(k);
                snprintf(shard_tag, sizeof shard_tag, ":s%d", s);
                if (!ref_tag(k, kn, &from, &len) || len < strlen(shard_tag) ||
                    memcmp(k + from + len - strlen(shard_tag), shard_tag, strlen(shard_tag))) {
                    bad++;
                    fprintf(stderr, "    \"%s\": shard %d key \"%s\" lacks its own tag\n", name, s, k);
                }
            }
            slot = ref_slot(k);
            if (rsq_key_slot(k, strlen(k)) != slot) { bad++; fprintf(stderr, "    rsq_key_slot(\"%s\") differs\n", k); }
            for (level = 0; level < RSQ_MAX_PRIORITIES; level++)
                for (kind = 0; kind < 3; kind++) {
                    if (kind > 0 && level > 0) continue;
                    if (!rsq_queue_key(k, sizeof k, name, s, level, (rsq_key_kind)kind) || ref_slot(k) != slot) {
                        fprintf(stderr, "    seed %llu: \"%s\" shard %d level %d kind %d: \"%s\" slot %d, main %d\n",
                                (unsigned long long)seed, name, s, level, kind, k, ref_slot(k), slot);
                        bad++;
                    }
                }
        }
    }
    CHECK_EQ_INT(bad, 0);
    CHECK(refused > 1000 && accepted > 1000); /* the alphabet reaches both kinds */
}

/* The reference slot function agrees with a real server's CLUSTER KEYSLOT, on the
   derived keys of random names (so the property above is Redis's own rule). */
static void test_admin_key_slots_match_cluster_keyslot(void) {
    static const char alphabet[] = "{{{{}}}}:::ab";
    srv cs;
    rsq_client c;
    const rsq_reply *r;
    char keys[64][RSQ_KEY_MAX];
    int t, i, nk, bad = 0, checked = 0;
    REQUIRE(srv_start(&cs, "cluster-enabled yes\ncluster-config-file nodes.conf\n") == 0);
    client_at(&c, cs.url, 2);
    rng_state = 7;
    for (t = 0; t < 200; t++) {
        char name[16];
        size_t n = 1 + rnd(12), j;
        for (j = 0; j < n; j++) name[j] = alphabet[rnd(sizeof alphabet - 1)];
        name[n] = '\0';
        nk = 0;
        snprintf(keys[nk++], RSQ_KEY_MAX, "%s", name);
        snprintf(keys[nk++], RSQ_KEY_MAX, "{%s}:p1", name); /* the old derivation, right or wrong */
        if (rsq_queue_key(keys[nk], RSQ_KEY_MAX, name, 0, 3, RSQ_KEY_STREAM)) nk++;
        if (rsq_queue_key(keys[nk], RSQ_KEY_MAX, name, 0, 0, RSQ_KEY_DEAD_LETTER)) nk++;
        if (rsq_queue_key(keys[nk], RSQ_KEY_MAX, name, 5, 0, RSQ_KEY_STREAM)) nk++;
        if (rsq_queue_key(keys[nk], RSQ_KEY_MAX, name, 5, 2, RSQ_KEY_DELAYED)) nk++;
        for (i = 0; i < nk; i++) rsq_append(&c, "CLUSTER", "KEYSLOT", keys[i], (char *)0);
        for (i = 0; i < nk; i++) {
            if (rsq_read_reply(&c, &r, RSQ_TIMEOUT_DEFAULT) != RSQ_OK || r->type != RSQ_REPLY_INTEGER) { bad++; continue; }
            checked++;
            if (r->integer != ref_slot(keys[i]) || r->integer != rsq_key_slot(keys[i], strlen(keys[i]))) {
                fprintf(stderr, "    CLUSTER KEYSLOT %s = %lld, reference %d\n", keys[i], r->integer, ref_slot(keys[i]));
                bad++;
            }
        }
    }
    CHECK_EQ_INT(bad, 0);
    CHECK(checked > 800);
    rsq_client_free(&c);
    srv_stop(&cs, 0);
}

/* A refused name is an argument error naming the rule, at init. */
static void test_admin_queue_name_refused_at_init(void) {
    rsq_client c;
    rsq_producer p;
    rsq_producer_config pc;
    rsq_consumer k;
    rsq_consumer_config cc;
    rsq_client_init(&c, NULL); /* no I/O below */
    rsq_producer_config_init(&pc);
    pc.queue = "{}x";
    CHECK_RC(rsq_producer_init(&p, &c, &pc), RSQ_ERR_ARG);
    CHECK(strstr(rsq_errstr(&c), "hash tag") != NULL);
    pc.queue = "{x}";
    CHECK_RC(rsq_producer_init(&p, &c, &pc), RSQ_OK);
    rsq_consumer_config_init(&cc);
    cc.queue = "}{";
    cc.group = "g";
    memset(&k, 0, sizeof k);
    CHECK_RC(rsq_consumer_init(&k, &c, &cc), RSQ_ERR_ARG);
    CHECK(strstr(rsq_errstr(&c), "hash tag") != NULL);
    rsq_client_free(&c);
}

/* ------------------------------------------------------------------------------------ */
/* rsq_errstr after success */

static void test_admin_errstr_cleared_by_success(void) {
    rsq_client c;
    rsq_consumer k;
    rsq_consumer_config cc;
    const rsq_reply *r;
    const rsq_message *m;
    REQUIRE(have_server);
    client(&c);
    CHECK_RC(rsq_group_create(&c, "adm:err", "g", RSQ_START_ALL), RSQ_OK);
    CHECK_RC(rsq_group_create(&c, "adm:err", "g", RSQ_START_ALL), RSQ_OK); /* BUSYGROUP inside */
    CHECK_STR(rsq_errstr(&c), "");
    CHECK_RC(rsq_command(&c, &r, "XADD", "adm:err", "bad-id", "f", "v", (char *)0), RSQ_ERR_SERVER);
    CHECK(rsq_errstr(&c)[0] != '\0');
    CHECK_RC(rsq_command(&c, &r, "PING", (char *)0), RSQ_OK);
    CHECK_STR(rsq_errstr(&c), "");
    /* a pipeline keeps the error of its failing read */
    CHECK_RC(rsq_command(&c, &r, "SET", "adm:err:str", "abc", (char *)0), RSQ_OK);
    CHECK_RC(rsq_append(&c, "INCR", "adm:err:str", (char *)0), RSQ_OK);
    CHECK_RC(rsq_append(&c, "PING", (char *)0), RSQ_OK);
    CHECK_RC(rsq_read_reply(&c, &r, RSQ_TIMEOUT_DEFAULT), RSQ_ERR_SERVER);
    CHECK(strstr(rsq_errstr(&c), "not an integer") != NULL);
    CHECK_RC(rsq_read_reply(&c, &r, RSQ_TIMEOUT_DEFAULT), RSQ_OK);
    CHECK(strstr(rsq_errstr(&c), "not an integer") != NULL);
    /* a consumer's empty read after an error */
    rsq_command(&c, &r, "XADD", "adm:err", "bad-id", "f", "v", (char *)0);
    rsq_consumer_config_init(&cc);
    cc.queue = "adm:err";
    cc.group = "g";
    cc.name = "w";
    cc.block_ms = 50;
    CHECK_RC(rsq_consumer_init(&k, &c, &cc), RSQ_OK);
    CHECK_RC(rsq_consumer_next(&k, &m, 100), RSQ_EMPTY); /* creates the group: BUSYGROUP */
    CHECK_STR(rsq_errstr(&c), "");
    rsq_consumer_free(&k);
    rsq_client_free(&c);
}

void suite_admin(void) {
    have_server = srv_start(&S, NULL) == 0;
    have_noscript = srv_start(&N, "rename-command EVAL \"\"\nrename-command EVALSHA \"\"\n") == 0;
    if (have_server) {
        rsq_client c;
        client(&c);
        if (rsq_server_version(&c, &version) != RSQ_OK) version = 0;
        rsq_client_free(&c);
    }
    RUN(test_admin_retire_idle_among_45_consumers);
    RUN(test_admin_trim_safe_40_groups);
    RUN(test_admin_publish_after_step_failure_is_apart);
    RUN(test_admin_stats_lag_after_xtrim_and_xdel);
    RUN(test_admin_stats_lag_without_scripting);
    RUN(test_admin_stats_lag_cap_is_inexact);
    RUN(test_admin_stats_oldest_pending_age_is_idle_time);
    RUN(test_admin_stats_with_20mib_entry);
    RUN(test_admin_stats_with_20mib_entry_without_scripting);
    RUN(test_admin_key_slots_property);
    RUN(test_admin_key_slots_match_cluster_keyslot);
    RUN(test_admin_queue_name_refused_at_init);
    RUN(test_admin_errstr_cleared_by_success);
    if (have_noscript) srv_stop(&N, 0);
    if (have_server) srv_stop(&S, 0);
}
