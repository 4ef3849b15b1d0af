/* test_delayed.c - jobs that wait (issue 17): retries longer than the lease leave the
   group's pending list for the queue's delayed set and come back to that group only,
   with their fields and delivery count (max_deliveries holds across them); scheduled
   publishes reach every group once when due; the retry policy's backoff; moving due
   entries back happens once however many consumers race for it. Against a private
   redis-server; times are checked as "not before due, and within a generous bound". */
#define _DEFAULT_SOURCE 1
#include "t.h"
#include "server.h"
#include "../rsq.h"
#include <time.h>
#include <unistd.h>

static srv S;
static int have_server;

static long long ms_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void cl(rsq_client *c) {
    rsq_client_config cfg;
    rsq_client_config_init(&cfg);
    cfg.url = S.url;
    cfg.retry_base_ms = 10;
    REQUIRE(rsq_client_init(c, &cfg) == RSQ_OK);
}

static long long num(rsq_client *c, const char *cmd, const char *key) {
    const rsq_reply *r;
    if (rsq_command(c, &r, cmd, key, (char *)0) != RSQ_OK || r->type != RSQ_REPLY_INTEGER) return -1;
    return r->integer;
}

static long long pending(rsq_client *c, const char *stream, const char *group) {
    const rsq_reply *r;
    if (rsq_command(c, &r, "XPENDING", stream, group, (char *)0) != RSQ_OK || r->len < 1) return -1;
    return r->element[0].integer;
}

/* Publishes one message to queue (a producer of its own). */
static rsq_result publish_one(rsq_client *c, const char *queue, const char *payload) {
    rsq_producer p;
    rsq_producer_config pc;
    rsq_result rc;
    rsq_producer_config_init(&pc);
    pc.queue = queue;
    if ((rc = rsq_producer_init(&p, c, &pc)) != RSQ_OK) return rc;
    return rsq_publish(&p, payload, strlen(payload), NULL);
}

static void consumer(rsq_consumer *k, rsq_client *c, const char *queue, const char *group, const char *name, int vis,
                     int max_deliveries) {
    rsq_consumer_config cc;
    rsq_consumer_config_init(&cc);
    cc.queue = queue;
    cc.group = group;
    cc.name = name;
    cc.visibility_ms = vis;
    cc.due_check_ms = 100;
    cc.block_ms = 200;
    cc.max_deliveries = max_deliveries;
    REQUIRE(rsq_consumer_init(k, c, &cc) == RSQ_OK);
}

/* The next message within ms, or NULL. */
static const rsq_message *next_within(rsq_consumer *k, int ms) {
    const rsq_message *m = NULL;
    long long end = ms_now() + ms;
    while (ms_now() < end) {
        rsq_result rc = rsq_consumer_next(k, &m, 100);
        if (rc == RSQ_OK) return m;
        if (rc != RSQ_EMPTY) return NULL;
    }
    return NULL;
}

static const char *field(const rsq_message *m, const char *name) {
    static char v[128];
    size_t i;
    for (i = 0; i < m->field_count; i++)
        if (m->fields[i].name_len == strlen(name) && !memcmp(m->fields[i].name, name, m->fields[i].name_len)) {
            snprintf(v, sizeof v, "%.*s", (int)m->fields[i].value_len, m->fields[i].value);
            return v;
        }
    return NULL;
}

/* A retry of 2.5 s with a 1 s lease: out of the pending list while it waits (in the
   delayed set), back not before due and within one due check (plus margin), to the
   group's retry stream, with its fields, priority and a delivery count of 2; acked,
   it leaves the retry stream too. */
static void test_delayed_retry_longer_than_the_lease(void) {
    rsq_client c;
    rsq_producer p;
    rsq_producer_config pc;
    rsq_consumer k;
    rsq_consumer_stats st;
    const rsq_message *m;
    rsq_field h = { "trace", 5, "t-1", 3 };
    rsq_outgoing o;
    char first[RSQ_ID_STRLEN];
    long long t0, took;
    REQUIRE(have_server);
    cl(&c);
    rsq_producer_config_init(&pc);
    pc.queue = "dl:long";
    REQUIRE(rsq_producer_init(&p, &c, &pc) == RSQ_OK);
    memset(&o, 0, sizeof o);
    o.payload = "job";
    o.payload_len = 3;
    o.headers = &h;
    o.header_count = 1;
    CHECK_RC(rsq_publish_msg(&p, &o, NULL), RSQ_OK);
    consumer(&k, &c, "dl:long", "g", "c1", 1000, 10);
    m = next_within(&k, 3000);
    REQUIRE(m != NULL);
    CHECK_EQ_INT(m->deliveries, 1);
    snprintf(first, sizeof first, "%s", m->id_str);
    t0 = ms_now();
    CHECK_RC(rsq_nack(&k, m, 2500, NULL), RSQ_OK);
    CHECK_EQ_INT(pending(&c, "dl:long", "g"), 0);
    CHECK_EQ_INT(num(&c, "ZCARD", "{dl:long}:delayed"), 1);
    m = next_within(&k, 6000);
    took = ms_now() - t0;
    REQUIRE(m != NULL);
    CHECK(took >= 2400);
    CHECK(took <= 2500 + 100 + 1500);
    CHECK_EQ_INT(m->deliveries, 2);
    CHECK(m->payload_len == 3 && !memcmp(m->payload, "job", 3));
    CHECK(field(m, "trace") && !strcmp(field(m, "trace"), "t-1"));
    CHECK(field(m, "rsq-origin") && !strcmp(field(m, "rsq-origin"), first));
    CHECK(m->stream && !strcmp(m->stream, "{dl:long}:retry:g"));
    CHECK_EQ_INT(m->priority, 0);
    CHECK_EQ_INT(num(&c, "ZCARD", "{dl:long}:delayed"), 0);
    CHECK_RC(rsq_ack(&k, m), RSQ_OK);
    CHECK_RC(rsq_consumer_flush(&k), RSQ_OK);
    CHECK_EQ_INT(num(&c, "XLEN", "{dl:long}:retry:g"), 0);
    CHECK_EQ_INT(pending(&c, "{dl:long}:retry:g", "g"), 0);
    rsq_consumer_get_stats(&k, &st);
    CHECK_EQ_INT(st.delayed, 1);
    CHECK_EQ_INT(st.promoted, 1);
    rsq_consumer_free(&k);
    rsq_client_free(&c);
}

/* max_deliveries counts the deliveries before a long retry: with 3, the third
   delivery's nack dead-letters it, with count 3, its origin the queue's stream (a
   replay goes there), and nothing stays in the retry stream or the delayed set. */
static void test_delayed_max_deliveries_holds(void) {
    rsq_client c;
    rsq_consumer k;
    const rsq_message *m;
    const rsq_reply *r, *v;
    int i;
    REQUIRE(have_server);
    cl(&c);
    CHECK_RC(publish_one(&c, "dl:max", "poison"), RSQ_OK);
    consumer(&k, &c, "dl:max", "g", "c1", 300, 3);
    for (i = 1; i <= 3; i++) {
        m = next_within(&k, 4000);
        REQUIRE(m != NULL);
        CHECK_EQ_INT(m->deliveries, i);
        CHECK_RC(rsq_nack(&k, m, 600, "failed"), RSQ_OK);
    }
    CHECK(next_within(&k, 1500) == NULL);
    REQUIRE(rsq_command(&c, &r, "XRANGE", "{dl:max}:dlq", "-", "+", (char *)0) == RSQ_OK);
    CHECK_EQ_INT(r->len, 1);
    if (r->len == 1) {
        v = rsq_reply_get(&r->element[0].element[1], "dlq-deliveries");
        CHECK(v && v->str && !strcmp(v->str, "3"));
        v = rsq_reply_get(&r->element[0].element[1], "dlq-stream");
        CHECK(v && v->str && !strcmp(v->str, "dl:max"));
        v = rsq_reply_get(&r->element[0].element[1], "payload");
        CHECK(v && v->str && !strcmp(v->str, "poison"));
    }
    CHECK_EQ_INT(num(&c, "XLEN", "{dl:max}:retry:g"), 0);
    CHECK_EQ_INT(num(&c, "ZCARD", "{dl:max}:delayed"), 0);
    CHECK_EQ_INT(pending(&c, "dl:max", "g"), 0);
    rsq_consumer_free(&k);
    rsq_client_free(&c);
}

/* Fanout: group a retries later, group b acks; the retry comes back to a only. */
static void test_delayed_retry_is_the_groups_only(void) {
    rsq_client c;
    rsq_consumer a, b;
    const rsq_message *m;
    REQUIRE(have_server);
    cl(&c);
    CHECK_RC(publish_one(&c, "dl:fan", "event"), RSQ_OK);
    consumer(&a, &c, "dl:fan", "a", "ca", 500, 10);
    consumer(&b, &c, "dl:fan", "b", "cb", 500, 10);
    m = next_within(&a, 3000);
    REQUIRE(m != NULL);
    CHECK_RC(rsq_nack(&a, m, 1000, NULL), RSQ_OK);
    m = next_within(&b, 3000);
    REQUIRE(m != NULL);
    CHECK_RC(rsq_ack(&b, m), RSQ_OK);
    CHECK_RC(rsq_consumer_flush(&b), RSQ_OK);
    m = next_within(&a, 4000);
    REQUIRE(m != NULL);
    CHECK_EQ_INT(m->deliveries, 2);
    CHECK_RC(rsq_ack(&a, m), RSQ_OK);
    CHECK_RC(rsq_consumer_flush(&a), RSQ_OK);
    CHECK(next_within(&b, 1500) == NULL); /* b's housekeeping ran meanwhile: nothing for b */
    CHECK(next_within(&a, 500) == NULL);
    CHECK_EQ_INT(num(&c, "XLEN", "dl:fan"), 1);
    CHECK_EQ_INT(num(&c, "XLEN", "{dl:fan}:retry:b"), 0);
    rsq_consumer_free(&a);
    rsq_consumer_free(&b);
    rsq_client_free(&c);
}

/* Scheduled publishes (a delay, and an absolute time of the server's clock): the
   publish returns 0-0 and the message waits in the delayed set; when due, both groups
   get it once. */
static void test_delayed_scheduled_publish_reaches_every_group_once(void) {
    rsq_client c;
    rsq_producer p;
    rsq_producer_config pc;
    rsq_producer_stats ps;
    rsq_consumer a, b;
    rsq_outgoing o[2];
    rsq_id ids[2];
    const rsq_reply *r;
    long long t0, srv_ms;
    int got_a = 0, got_b = 0, i;
    REQUIRE(have_server);
    cl(&c);
    consumer(&a, &c, "dl:sched", "a", "ca", 5000, 10);
    consumer(&b, &c, "dl:sched", "b", "cb", 5000, 10);
    CHECK(next_within(&a, 300) == NULL); /* both groups exist before the publish */
    CHECK(next_within(&b, 300) == NULL);
    rsq_producer_config_init(&pc);
    pc.queue = "dl:sched";
    REQUIRE(rsq_producer_init(&p, &c, &pc) == RSQ_OK);
    REQUIRE(rsq_command(&c, &r, "TIME", (char *)0) == RSQ_OK && r->len == 2);
    srv_ms = atoll(r->element[0].str) * 1000 + atoll(r->element[1].str) / 1000;
    memset(o, 0, sizeof o);
    o[0].payload = "in";
    o[0].payload_len = 2;
    o[0].delay_ms = 1200;
    o[1].payload = "at";
    o[1].payload_len = 2;
    o[1].deliver_at_ms = srv_ms + 800;
    t0 = ms_now();
    CHECK_RC(rsq_publish_batch(&p, o, 2, ids, NULL), RSQ_OK);
    CHECK(ids[0].ms == 0 && ids[0].seq == 0 && ids[1].ms == 0);
    rsq_producer_get_stats(&p, &ps);
    CHECK_EQ_INT(ps.scheduled, 2);
    CHECK_EQ_INT(num(&c, "XLEN", "dl:sched"), 0);
    CHECK_EQ_INT(num(&c, "ZCARD", "{dl:sched}:delayed"), 2);
    for (i = 0; i < 40 && (got_a < 2 || got_b < 2); i++) {
        const rsq_message *m = next_within(&a, 100);
        if (m) {
            long long took = ms_now() - t0;
            got_a++;
            CHECK(took >= (m->payload[0] == 'i' ? 1100 : 700));
            CHECK_EQ_INT(m->deliveries, 1);
            CHECK(!strcmp(m->stream, "dl:sched"));
            rsq_ack(&a, m);
        }
        m = next_within(&b, 100);
        if (m) {
            got_b++;
            rsq_ack(&b, m);
        }
    }
    CHECK_EQ_INT(got_a, 2);
    CHECK_EQ_INT(got_b, 2);
    CHECK(next_within(&a, 800) == NULL);
    CHECK(next_within(&b, 300) == NULL);
    CHECK_EQ_INT(num(&c, "XLEN", "dl:sched"), 2);
    CHECK_EQ_INT(num(&c, "ZCARD", "{dl:sched}:delayed"), 0);
    o[0].id = "5-5"; /* a schedule with an explicit ID is refused */
    CHECK_RC(rsq_publish_msg(&p, &o[0], NULL), RSQ_ERR_ARG);
    rsq_consumer_free(&a);
    rsq_consumer_free(&b);
    rsq_client_free(&c);
}

/* The retry policy: base * factor^(deliveries-1), capped; jitter within its percent;
   the handler's own delay wins. */
static void test_delayed_backoff_policy(void) {
    rsq_client c;
    rsq_consumer k;
    rsq_consumer_config cc;
    rsq_message m;
    static const int want[6] = { 100, 200, 400, 800, 1000, 1000 };
    int i, j;
    REQUIRE(have_server);
    cl(&c);
    rsq_consumer_config_init(&cc);
    cc.queue = "dl:backoff";
    cc.group = "g";
    cc.retry_delay_ms = 100;
    cc.retry_max_ms = 1000;
    cc.retry_jitter_pct = -1;
    REQUIRE(rsq_consumer_init(&k, &c, &cc) == RSQ_OK);
    memset(&m, 0, sizeof m);
    for (i = 0; i < 6; i++) {
        m.deliveries = i + 1;
        CHECK_EQ_INT(rsq_consumer_backoff(&k, &m), want[i]);
    }
    rsq_consumer_free(&k);
    cc.retry_jitter_pct = 10;
    cc.retry_factor = 3.0;
    REQUIRE(rsq_consumer_init(&k, &c, &cc) == RSQ_OK);
    for (j = 0; j < 200; j++) {
        int d;
        m.deliveries = 3; /* 900 +- 90 */
        d = rsq_consumer_backoff(&k, &m);
        CHECK(d >= 810 && d <= 990);
    }
    rsq_consumer_free(&k);
    cc.retry_delay_ms = cc.retry_max_ms = 0x7fffffff; /* the largest: jitter stays under the cap */
    REQUIRE(rsq_consumer_init(&k, &c, &cc) == RSQ_OK);
    for (j = 0; j < 200; j++) {
        int d;
        m.deliveries = 1 + j % 40;
        d = rsq_consumer_backoff(&k, &m);
        CHECK(d >= 1 && d <= 0x7fffffff);
        CHECK(d >= 0x7fffffff / 10 * 8);
    }
    rsq_consumer_free(&k);
    cc.retry_jitter_pct = 101;
    CHECK_RC(rsq_consumer_init(&k, &c, &cc), RSQ_ERR_ARG);
    rsq_client_free(&c);
}

/* Several consumers race to move the same due entries: each goes back once. */
static void test_delayed_promote_once_under_a_race(void) {
    rsq_client c, c2, c3;
    rsq_producer p;
    rsq_producer_config pc;
    rsq_consumer k[3];
    rsq_outgoing o[20];
    int i, got = 0, rounds;
    REQUIRE(have_server);
    cl(&c);
    cl(&c2);
    cl(&c3);
    consumer(&k[0], &c, "dl:race", "g", "c1", 5000, 10);
    consumer(&k[1], &c2, "dl:race", "g", "c2", 5000, 10);
    consumer(&k[2], &c3, "dl:race", "g", "c3", 5000, 10);
    for (i = 0; i < 3; i++) CHECK(next_within(&k[i], 200) == NULL);
    rsq_producer_config_init(&pc);
    pc.queue = "dl:race";
    REQUIRE(rsq_producer_init(&p, &c, &pc) == RSQ_OK);
    memset(o, 0, sizeof o);
    for (i = 0; i < 20; i++) {
        o[i].payload = "r";
        o[i].payload_len = 1;
        o[i].delay_ms = 500;
    }
    CHECK_RC(rsq_publish_batch(&p, o, 20, NULL, NULL), RSQ_OK);
    for (rounds = 0; rounds < 60 && got < 20; rounds++)
        for (i = 0; i < 3; i++) {
            const rsq_message *m = next_within(&k[i], 50);
            if (m) {
                got++;
                rsq_ack(&k[i], m);
            }
        }
    for (i = 0; i < 3; i++) /* and nothing more */
        if (next_within(&k[i], 400)) got++;
    CHECK_EQ_INT(got, 20);
    CHECK_EQ_INT(num(&c, "XLEN", "dl:race"), 20);
    for (i = 0; i < 3; i++) rsq_consumer_free(&k[i]);
    rsq_client_free(&c);
    rsq_client_free(&c2);
    rsq_client_free(&c3);
}

/* A retry's count stays right through short nacks and a release: the server's count
   of the retry entry is written back, never the total with the earlier deliveries. */
static void test_delayed_retry_count_through_short_nacks(void) {
    rsq_client c;
    rsq_consumer k;
    const rsq_message *m;
    REQUIRE(have_server);
    cl(&c);
    CHECK_RC(publish_one(&c, "dl:count", "job"), RSQ_OK);
    consumer(&k, &c, "dl:count", "g", "c1", 1000, 20);
    m = next_within(&k, 3000);
    REQUIRE(m != NULL);
    CHECK_RC(rsq_nack(&k, m, 1500, NULL), RSQ_OK); /* long: carried 1 */
    m = next_within(&k, 5000);
    REQUIRE(m != NULL);
    CHECK_EQ_INT(m->deliveries, 2);
    CHECK_RC(rsq_nack(&k, m, 300, NULL), RSQ_OK); /* short: parked */
    m = next_within(&k, 4000);
    REQUIRE(m != NULL);
    CHECK_EQ_INT(m->deliveries, 3);
    CHECK_RC(rsq_nack(&k, m, 0, NULL), RSQ_OK); /* now */
    m = next_within(&k, 2000);
    REQUIRE(m != NULL);
    CHECK_EQ_INT(m->deliveries, 4);
    CHECK_RC(rsq_nack(&k, m, 1500, NULL), RSQ_OK); /* long again: carried 4 */
    m = next_within(&k, 5000);
    REQUIRE(m != NULL);
    CHECK_EQ_INT(m->deliveries, 5);
    CHECK_RC(rsq_consumer_release(&k), RSQ_OK); /* handed back unhandled... */
    rsq_consumer_free(&k);
    consumer(&k, &c, "dl:count", "g", "c2", 1000, 20);
    m = next_within(&k, 5000); /* ...taken by another consumer: counted once more */
    REQUIRE(m != NULL);
    CHECK(m->deliveries == 5 || m->deliveries == 6);
    CHECK_RC(rsq_ack(&k, m), RSQ_OK);
    CHECK_RC(rsq_consumer_flush(&k), RSQ_OK);
    rsq_consumer_free(&k);
    rsq_client_free(&c);
}

void suite_delayed(void);
void suite_delayed(void) {
    have_server = srv_start(&S, NULL) == 0;
    RUN(test_delayed_retry_longer_than_the_lease);
    RUN(test_delayed_max_deliveries_holds);
    RUN(test_delayed_retry_is_the_groups_only);
    RUN(test_delayed_scheduled_publish_reaches_every_group_once);
    RUN(test_delayed_retry_count_through_short_nacks);
    RUN(test_delayed_backoff_policy);
    RUN(test_delayed_promote_once_under_a_race);
    if (have_server) srv_stop(&S, 0);
}
