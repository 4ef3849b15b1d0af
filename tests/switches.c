/* switches.c - rsq built with the switches that leave parts out (RSQ_NO_CLUSTER,
   RSQ_NO_ADMIN, RSQ_SHORT_ERRORS; the Makefile builds it so, with sockets), run by
   test_switches.c against a private redis-server and a fake server that answers MOVED.
   usage: switches REDIS_URL MOVED_URL. Prints one line per check; exit 0 when all hold. */
#define RSQ_IMPLEMENTATION
#include "../rsq.h"
#include <stdio.h>
#include <string.h>

static int failed;
#define EXPECT(cond, what) do { int ok_ = (cond); printf("%s %s\n", ok_ ? "ok  " : "FAIL", what); failed += !ok_; } while (0)

static rsq_action handle(void *user, rsq_consumer *k, const rsq_message *m) {
    int *seen = (int *)user;
    (void)k;
    (*seen)++;
    return m->payload_len == 4 && !memcmp(m->payload, "bad!", 4) ? RSQ_ACTION_DEAD_LETTER : RSQ_ACTION_ACK;
}

int main(int argc, char **argv) {
    static rsq_client c, m;
    rsq_client_config cfg;
    rsq_producer p;
    rsq_producer_config pc;
    rsq_consumer k;
    rsq_consumer_config cc;
    const rsq_reply *r;
    const rsq_message *msg;
    char dlq[RSQ_KEY_MAX];
    rsq_result rc;
    int i, seen = 0;
    if (argc != 3) { fprintf(stderr, "usage: switches REDIS_URL MOVED_URL\n"); return 2; }
    rsq_client_config_init(&cfg);
    cfg.url = argv[1];
    if (rsq_client_init(&c, &cfg) != RSQ_OK) { fprintf(stderr, "client: %s\n", rsq_errstr(&c)); return 1; }

    /* RSQ_NO_ADMIN: the producer's safe trim is refused, with the short text */
    rsq_producer_config_init(&pc);
    pc.queue = "sw";
    pc.safe_trim_every = 10;
    EXPECT(rsq_producer_init(&p, &c, &pc) == RSQ_ERR_UNSUPPORTED, "safe_trim_every refused (RSQ_NO_ADMIN)");
    EXPECT(!strcmp(rsq_errstr(&c), rsq_result_str(RSQ_ERR_UNSUPPORTED)), "its error text is the result's (RSQ_SHORT_ERRORS)");

    /* the queue itself works: 5 published, 4 acked, 1 dead-lettered */
    pc.safe_trim_every = 0;
    EXPECT(rsq_producer_init(&p, &c, &pc) == RSQ_OK, "producer without the safe trim");
    for (i = 0; i < 5; i++)
        EXPECT(rsq_publish(&p, i == 2 ? "bad!" : "good", 4, NULL) == RSQ_OK, "publish");
    EXPECT(rsq_publish(&p, NULL, 3, NULL) == RSQ_ERR_ARG, "NULL payload of length 3 refused");
    EXPECT(!strcmp(rsq_errstr(&c), rsq_result_str(RSQ_ERR_ARG)), "its error text is the result's");
    rsq_consumer_config_init(&cc);
    cc.queue = "sw";
    cc.group = "g";
    EXPECT(rsq_consumer_init(&k, &c, &cc) == RSQ_OK, "consumer");
    while (seen < 5 && rsq_consumer_next(&k, &msg, 2000) == RSQ_OK) {
        rsq_action a = handle(&seen, &k, msg);
        if (a == RSQ_ACTION_ACK) EXPECT(rsq_ack(&k, msg) == RSQ_OK, "ack");
        else EXPECT(rsq_dead_letter(&k, msg, "bad payload") == RSQ_OK, "dead letter");
    }
    EXPECT(seen == 5, "5 messages handled");
    EXPECT(rsq_consumer_flush(&k) == RSQ_OK, "acks flushed");
    EXPECT(rsq_command(&c, &r, "XPENDING", "sw", "g", (char *)0) == RSQ_OK && r->len >= 1 && r->element[0].integer == 0,
           "nothing pending on the server");
    rsq_queue_key(dlq, sizeof dlq, "sw", 0, 0, RSQ_KEY_DEAD_LETTER);
    EXPECT(rsq_command(&c, &r, "XLEN", dlq, (char *)0) == RSQ_OK && r->integer == 1, "one dead letter on the server");
    rsq_consumer_free(&k);
    rsq_client_free(&c);

    /* RSQ_NO_CLUSTER: the fake answers MOVED to everything, the connection's handshake
       (CLIENT SETNAME) included: from then on commands get RSQ_ERR_UNSUPPORTED */
    cfg.url = argv[2];
    if (rsq_client_init(&m, &cfg) != RSQ_OK) { fprintf(stderr, "client: %s\n", rsq_errstr(&m)); return 1; }
    for (i = 0; i < 2; i++) {
        rc = rsq_command(&m, &r, "GET", "k", (char *)0);
        if (rc != RSQ_ERR_UNSUPPORTED) printf("     got %s: %s\n", rsq_result_name(rc), rsq_errstr(&m));
        EXPECT(rc == RSQ_ERR_UNSUPPORTED, "a command to a cluster node: RSQ_ERR_UNSUPPORTED (RSQ_NO_CLUSTER)");
    }
    EXPECT(!rsq_client_is_cluster(&m), "never in cluster mode");
    rsq_client_free(&m);
    printf("%d failed\n", failed);
    return failed ? 1 : 0;
}
