/* test_step.c - event-loop use: a producer (rsq_publish_async/poll) and a consumer
   (rsq_consumer_step) in one thread, driven by poll() on their descriptors. */
#define _DEFAULT_SOURCE 1
#include "t.h"
#include "server.h"
#include "../rsq.h"
#include <poll.h>
#include <time.h>
#include <unistd.h>

static long long ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Confirmations outstanding from rsq_publish_async. */
static size_t inflight(const rsq_producer *p) {
    rsq_producer_stats st;
    rsq_producer_get_stats(p, &st);
    return st.inflight;
}

static void test_step_producer_and_consumer_in_one_poll_loop(void) {
    srv s;
    rsq_client pc, cc;
    rsq_client_config cfg;
    rsq_producer p;
    rsq_producer_config pcfg;
    rsq_consumer k;
    rsq_consumer_config kcfg;
    int sent = 0, confirmed = 0, received = 0, order_ok = 1, again = 0, longest = 0;
    long long t0, start;
    enum { N = 2000 };
    REQUIRE(srv_start(&s, NULL) == 0);
    rsq_client_config_init(&cfg);
    cfg.url = s.url;
    rsq_client_init(&pc, &cfg);
    rsq_client_init(&cc, &cfg);
    rsq_producer_config_init(&pcfg);
    pcfg.queue = "step:q";
    REQUIRE(rsq_producer_init(&p, &pc, &pcfg) == RSQ_OK);
    rsq_consumer_config_init(&kcfg);
    kcfg.queue = "step:q"; kcfg.group = "g"; kcfg.start = RSQ_START_ALL; kcfg.block_ms = 1000;
    REQUIRE(rsq_consumer_init(&k, &cc, &kcfg) == RSQ_OK);
    start = ms();
    while (received < N && ms() - start < 20000) {
        struct pollfd fds[2];
        int nf = 0;
        const rsq_message *m;
        rsq_result rc;
        /* produce in bursts of 50, at most 200 unconfirmed */
        if (sent < N && inflight(&p) < 200) {
            rsq_outgoing out[50];
            char body[50][16];
            int i, n = N - sent < 50 ? N - sent : 50;
            memset(out, 0, sizeof out);
            for (i = 0; i < n; i++) {
                snprintf(body[i], sizeof body[i], "%d", sent + i);
                out[i].payload = body[i];
                out[i].payload_len = strlen(body[i]);
            }
            CHECK_RC(rsq_publish_async(&p, out, (size_t)n), RSQ_OK);
            sent += n;
        }
        {
            rsq_result res[64];
            size_t got = 0, i;
            CHECK_RC(rsq_publish_poll(&p, NULL, res, 64, &got), RSQ_OK);
            for (i = 0; i < got; i++) confirmed += res[i] == RSQ_OK;
        }
        /* consume: never waits inside the call */
        t0 = ms();
        while ((rc = rsq_consumer_step(&k, &m)) == RSQ_OK) {
            order_ok &= atoi(m->payload) == received;
            received++;
            rsq_ack(&k, m);
        }
        if (ms() - t0 > longest) longest = (int)(ms() - t0);
        CHECK(rc == RSQ_AGAIN);
        if (rc != RSQ_AGAIN) break;
        again++;
        fds[nf].fd = rsq_client_fd(&cc);
        fds[nf].events = (short)(((rsq_client_wants(&cc) & RSQ_WANT_READ) ? POLLIN : 0) | ((rsq_client_wants(&cc) & RSQ_WANT_WRITE) ? POLLOUT : 0));
        nf++;
        if (rsq_client_wants(&pc)) {
            fds[nf].fd = rsq_client_fd(&pc);
            fds[nf].events = (short)(((rsq_client_wants(&pc) & RSQ_WANT_READ) ? POLLIN : 0) | ((rsq_client_wants(&pc) & RSQ_WANT_WRITE) ? POLLOUT : 0));
            nf++;
        }
        poll(fds, (nfds_t)nf, 100);
    }
    CHECK_EQ_INT(received, N);
    CHECK_EQ_INT(confirmed, N);
    CHECK(order_ok);
    CHECK(again > 0);
    CHECK(longest < 500); /* a step is request/reply work at most, never the 1 s BLOCK */
    /* with nothing to read, a step returns at once and the read stays in flight */
    {
        const rsq_message *m;
        t0 = ms();
        CHECK_RC(rsq_consumer_step(&k, &m), RSQ_AGAIN);
        CHECK_RC(rsq_consumer_step(&k, &m), RSQ_AGAIN);
        CHECK(ms() - t0 < 200);
        CHECK(rsq_client_wants(&cc) & RSQ_WANT_READ);
        rsq_consumer_stop(&k);
        CHECK_RC(rsq_consumer_step(&k, &m), RSQ_STOPPED);
    }
    {
        const rsq_reply *r;
        CHECK_RC(rsq_command(&pc, &r, "XPENDING", "step:q", "g", (char *)0), RSQ_OK);
        CHECK_EQ_INT(r->element[0].integer, 0);
    }
    rsq_consumer_free(&k);
    rsq_client_free(&pc);
    rsq_client_free(&cc);
    srv_stop(&s, 0);
}

/* An ack queued while a step's read is in flight goes out with the next write, for
   the right entry. */
static void test_step_ack_while_read_in_flight(void) {
    srv s;
    rsq_client c;
    rsq_client_config cfg;
    rsq_consumer k;
    rsq_consumer_config kc;
    const rsq_message *m, *held;
    const rsq_reply *r;
    char held_id[RSQ_ID_STRLEN];
    rsq_result rc;
    long long t0;
    int i;
    REQUIRE(srv_start(&s, NULL) == 0);
    rsq_client_config_init(&cfg);
    cfg.url = s.url;
    rsq_client_init(&c, &cfg);
    for (i = 0; i < 3; i++) rsq_command(&c, &r, "XADD", "step:acks", "*", "payload", i == 0 ? "a" : i == 1 ? "b" : "c", (char *)0);
    rsq_consumer_config_init(&kc);
    kc.queue = "step:acks"; kc.group = "g"; kc.start = RSQ_START_ALL; kc.count = 2; kc.block_ms = 200;
    REQUIRE(rsq_consumer_init(&k, &c, &kc) == RSQ_OK);
    t0 = ms();
    while ((rc = rsq_consumer_step(&k, &m)) == RSQ_AGAIN && ms() - t0 < 2000) usleep(1000);
    REQUIRE(rc == RSQ_OK && !strcmp(m->payload, "a"));
    CHECK_RC(rsq_ack(&k, m), RSQ_OK);
    REQUIRE(rsq_consumer_step(&k, &held) == RSQ_OK && !strcmp(held->payload, "b"));
    memcpy(held_id, held->id_str, sizeof held_id);
    /* the batch is empty: this step sends the ack of "a" with a read, and returns */
    CHECK_RC(rsq_consumer_step(&k, &m), RSQ_AGAIN);
    CHECK_RC(rsq_ack(&k, held), RSQ_OK); /* queued while the read is in flight */
    t0 = ms();
    while ((rc = rsq_consumer_step(&k, &m)) == RSQ_AGAIN && ms() - t0 < 2000) usleep(1000);
    REQUIRE(rc == RSQ_OK && !strcmp(m->payload, "c"));
    CHECK_RC(rsq_consumer_flush(&k), RSQ_OK);
    /* only "c" is still pending */
    CHECK_RC(rsq_command(&c, &r, "XPENDING", "step:acks", "g", "-", "+", "10", (char *)0), RSQ_OK);
    CHECK_EQ_INT(r->len, 1);
    CHECK(r->len == 1 && strcmp(r->element[0].element[0].str, held_id) != 0);
    rsq_consumer_free(&k);
    rsq_client_free(&c);
    srv_stop(&s, 0);
}

/* While a step's read is in flight the client owes its reply: a round trip of its own
   is refused (RSQ_ERR_STATE, documented), the next successful step clears the error
   text, and freeing the consumer then leaves the client usable. */
static void test_step_in_flight_then_free(void) {
    srv s;
    rsq_client c;
    rsq_client_config cfg;
    rsq_consumer k;
    rsq_consumer_config kc;
    const rsq_message *m;
    const rsq_reply *r;
    REQUIRE(srv_start(&s, NULL) == 0);
    rsq_client_config_init(&cfg);
    cfg.url = s.url;
    rsq_client_init(&c, &cfg);
    rsq_consumer_config_init(&kc);
    kc.queue = "step:free"; kc.group = "g"; kc.start = RSQ_START_ALL; kc.block_ms = 5000;
    REQUIRE(rsq_consumer_init(&k, &c, &kc) == RSQ_OK);
    while (rsq_consumer_step(&k, &m) != RSQ_AGAIN) usleep(1000); /* a 5 s read is out */
    CHECK_RC(rsq_command(&c, &r, "PING", (char *)0), RSQ_ERR_STATE);
    CHECK(strstr(rsq_errstr(&c), "unread") != NULL);
    CHECK_RC(rsq_consumer_step(&k, &m), RSQ_AGAIN);
    CHECK_STR(rsq_errstr(&c), "");
    rsq_consumer_free(&k); /* with the read still in flight */
    CHECK_RC(rsq_command(&c, &r, "PING", (char *)0), RSQ_OK);
    CHECK(rsq_reply_is(r, "PONG"));
    rsq_client_free(&c);
    srv_stop(&s, 0);
}

void suite_step(void) {
    RUN(test_step_producer_and_consumer_in_one_poll_loop);
    RUN(test_step_ack_while_read_in_flight);
    RUN(test_step_in_flight_then_free);
}
