/* priority.c - three priority levels: urgent work overtakes a backlog.
   Build: cc examples/priority.c -o priority
   Run:   ./priority [redis://127.0.0.1:6379]

   A queue with priority_levels = 3 is three streams sharing one hash tag (so they
   stay together on a Redis Cluster): level 0 is the queue's own name, level k > 0 is
   {QUEUE}:p<k> (rsq_queue_key names them). Higher levels are more urgent.

   This publishes three low (0), then three normal (1), then three high (2) tasks, the
   least urgent first. A consumer then drains the queue: it always takes from the
   highest non-empty level, so the output is high 1..3, normal 1..3, low 1..3. Within
   a level the order is first in, first out.

   The consumer's group is created on its first read, after the tasks were published,
   so it starts at RSQ_START_ALL ("0") to see them. For a repeatable demo the queue's
   streams are deleted first. */
#define RSQ_IMPLEMENTATION
#include "../rsq.h"
#include <stdio.h>
#include <string.h>

#define QUEUE "tasks"
#define LEVELS 3

static const char *const level_name[LEVELS] = {"low", "normal", "high"};

int main(int argc, char **argv) {
    const char *url = argc > 1 ? argv[1] : "redis://127.0.0.1:6379";
    rsq_client_config cc;
    rsq_client c;
    rsq_producer_config pc;
    rsq_producer p;
    rsq_consumer_config kc;
    rsq_consumer cons;
    const rsq_message *m;
    rsq_result rc;
    char key[RSQ_KEY_MAX], text[32];
    int level, i, got = 0, lowest = LEVELS, in_order = 1;

    rsq_client_config_init(&cc);
    cc.url = url;
    if (rsq_client_init(&c, &cc) != RSQ_OK || rsq_connect(&c) != RSQ_OK) {
        fprintf(stderr, "priority: %s\n", rsq_errstr(&c));
        rsq_client_free(&c);
        return 1;
    }
    for (level = LEVELS - 1; level >= 0; level--) {
        rsq_queue_key(key, sizeof key, QUEUE, 0, level, RSQ_KEY_STREAM);
        printf("level %d (%s): stream %s\n", level, level_name[level], key);
        if (rsq_stream_delete(&c, key) != RSQ_OK) goto fail; /* a fresh start */
    }

    /* publish: least urgent first */
    rsq_producer_config_init(&pc);
    pc.queue = QUEUE;
    pc.priority_levels = LEVELS;
    if (rsq_producer_init(&p, &c, &pc) != RSQ_OK) goto fail;
    for (level = 0; level < LEVELS; level++)
        for (i = 1; i <= 3; i++) {
            rsq_outgoing out;
            memset(&out, 0, sizeof out);
            snprintf(text, sizeof text, "%s %d", level_name[level], i);
            out.payload = text;
            out.payload_len = strlen(text);
            out.priority = level;
            if (rsq_publish_msg(&p, &out, NULL) != RSQ_OK) goto fail;
            printf("published %s\n", text);
        }

    /* consume: the highest non-empty level first */
    rsq_consumer_config_init(&kc);
    kc.queue = QUEUE;
    kc.group = "runners";
    kc.name = "runner-1";
    kc.priority_levels = LEVELS; /* must match the producer's */
    kc.start = RSQ_START_ALL;
    if (rsq_consumer_init(&cons, &c, &kc) != RSQ_OK) goto fail;
    while ((rc = rsq_consumer_next(&cons, &m, 500)) == RSQ_OK) { /* until 500 ms of quiet */
        printf("got %.*s (level %d, stream %s)\n", (int)m->payload_len, m->payload ? m->payload : "", m->priority,
               m->stream);
        rsq_ack(&cons, m);
        if (m->priority > lowest) in_order = 0; /* a more urgent one after a less urgent one */
        if (m->priority < lowest) lowest = m->priority;
        got++;
    }
    if (rc == RSQ_EMPTY) rc = rsq_consumer_flush(&cons);
    rsq_consumer_free(&cons);
    if (rc != RSQ_OK) goto fail;
    rsq_client_free(&c);
    if (got != 3 * LEVELS || !in_order) {
        fprintf(stderr, "priority: got %d of %d tasks, %s\n", got, 3 * LEVELS, in_order ? "in order" : "out of order");
        return 1;
    }
    printf("drained %d tasks, highest priority first\n", got);
    return 0;
fail:
    fprintf(stderr, "priority: %s\n", rsq_errstr(&c));
    rsq_client_free(&c);
    return 1;
}
