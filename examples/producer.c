/* producer.c - publish messages with headers and a priority, one at a time and then as
   one pipelined batch, and compare the two.
   Build: cc examples/producer.c -o producer
   Run:   ./producer [redis://127.0.0.1:6379] [QUEUE] [N]

   The queue (default "orders") has two priority levels: level 0 is the stream QUEUE
   itself, level 1 (urgent) is the stream {QUEUE}:p1 (rsq_queue_key gives the name).
   Every message has its body in the field "payload" and two headers beside it,
   "source" and "seq"; every tenth message is urgent.

   First N messages (default 10) go out one by one with rsq_publish_msg: one round trip
   each. Then N more go out with a single rsq_publish_batch: one pipelined write, one
   wait for all the replies. Each entry ID is printed, then one throughput line per
   method. Nothing is trimmed: the streams keep every entry until you delete them
   (redis-cli DEL orders {orders}:p1). Consume them with ./worker or rsq work. */
#define RSQ_IMPLEMENTATION
#include "../rsq.h" /* first: it enables the POSIX names this file uses, too */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LEVELS 2 /* 0 = normal, 1 = urgent */

/* One message and the storage its fields point into. */
typedef struct order {
    char payload[32];
    char seq[24];
    rsq_field headers[2];
} order;

static void make_order(order *o, rsq_outgoing *m, int n) {
    snprintf(o->payload, sizeof o->payload, "order %d", n);
    snprintf(o->seq, sizeof o->seq, "%d", n);
    o->headers[0].name = "source";      /* lengths 0: strlen() */
    o->headers[0].name_len = 0;
    o->headers[0].value = "producer-example";
    o->headers[0].value_len = 0;
    o->headers[1].name = "seq";
    o->headers[1].name_len = 0;
    o->headers[1].value = o->seq;
    o->headers[1].value_len = 0;
    m->payload = o->payload;
    m->payload_len = strlen(o->payload);
    m->headers = o->headers;
    m->header_count = 2;
    m->id = NULL;                       /* "*": the server picks the ID */
    m->priority = n % 10 == 0 ? 1 : 0;  /* every tenth is urgent */
    m->shard_key = NULL;
    m->shard_key_len = 0;
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static void print_rate(const char *how, int n, double ms) {
    printf("%-11s %d messages in %.2f ms (%.0f msg/s)\n", how, n, ms, ms > 0 ? n * 1000.0 / ms : 0.0);
}

int main(int argc, char **argv) {
    const char *url = argc > 1 ? argv[1] : "redis://127.0.0.1:6379";
    const char *queue = argc > 2 ? argv[2] : "orders";
    int n = argc > 3 ? atoi(argv[3]) : 10, i, status = 1;
    rsq_client_config cc;
    rsq_client c;
    rsq_producer_config pc;
    rsq_producer p;
    order *orders = NULL;
    rsq_outgoing *msgs = NULL;
    rsq_id *ids = NULL;
    rsq_result *results = NULL, rc;
    char id[RSQ_ID_STRLEN], urgent[RSQ_KEY_MAX];
    double t0;

    if (n <= 0 || n > 100000) {
        fprintf(stderr, "usage: producer [URL] [QUEUE] [N (1..100000)]\n");
        return 2;
    }
    rsq_client_config_init(&cc);
    cc.url = url;
    if (rsq_client_init(&c, &cc) != RSQ_OK || rsq_connect(&c) != RSQ_OK) {
        fprintf(stderr, "producer: %s\n", rsq_errstr(&c));
        rsq_client_free(&c);
        return 1;
    }
    rsq_producer_config_init(&pc);
    pc.queue = queue;
    pc.priority_levels = LEVELS;
    if (rsq_producer_init(&p, &c, &pc) != RSQ_OK) { /* a bad queue name, for one */
        fprintf(stderr, "producer: %s\n", rsq_errstr(&c));
        rsq_client_free(&c);
        return 1;
    }
    rsq_queue_key(urgent, sizeof urgent, queue, 0, 1, RSQ_KEY_STREAM);
    printf("queue %s: normal messages in %s, urgent ones in %s\n", queue, queue, urgent);

    orders = (order *)malloc(sizeof *orders * (size_t)n);
    msgs = (rsq_outgoing *)malloc(sizeof *msgs * (size_t)n);
    ids = (rsq_id *)malloc(sizeof *ids * (size_t)n);
    results = (rsq_result *)malloc(sizeof *results * (size_t)n);
    if (!orders || !msgs || !ids || !results) {
        fprintf(stderr, "producer: out of memory\n");
        goto done;
    }

    /* 1. one at a time: each call waits for its entry ID */
    t0 = now_ms();
    for (i = 0; i < n; i++) {
        rsq_id one;
        make_order(&orders[i], &msgs[i], i + 1);
        if ((rc = rsq_publish_msg(&p, &msgs[i], &one)) != RSQ_OK) {
            fprintf(stderr, "producer: publish %s: %s\n", orders[i].payload, rsq_errstr(&c));
            goto done;
        }
        rsq_id_format(one, id);
        printf("sent %s %s priority %d\n", id, orders[i].payload, msgs[i].priority);
    }
    print_rate("one by one:", n, now_ms() - t0);

    /* 2. the same amount in one batch: one write, then all the replies */
    for (i = 0; i < n; i++) make_order(&orders[i], &msgs[i], n + i + 1);
    t0 = now_ms();
    rc = rsq_publish_batch(&p, msgs, (size_t)n, ids, results);
    {
        double ms = now_ms() - t0;
        for (i = 0; i < n; i++) {
            if (results[i] != RSQ_OK) { /* one message's error does not stop the others */
                fprintf(stderr, "producer: publish %s: %s\n", orders[i].payload, rsq_result_str(results[i]));
                continue;
            }
            rsq_id_format(ids[i], id);
            printf("sent %s %s priority %d\n", id, orders[i].payload, msgs[i].priority);
        }
        if (rc != RSQ_OK) {
            fprintf(stderr, "producer: batch: %s\n", rsq_errstr(&c));
            goto done;
        }
        print_rate("batch:", n, ms);
    }
    status = 0;
done:
    free(orders);
    free(msgs);
    free(ids);
    free(results);
    rsq_client_free(&c);
    return status;
}
