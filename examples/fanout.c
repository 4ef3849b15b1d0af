/* fanout.c - an event bus: one producer, two consumer groups on the same stream, and
   each group receives every event.
   Build: cc examples/fanout.c -o fanout
   Run:   ./fanout [redis://127.0.0.1:6379] [EVENTS]

   A sign-up service publishes EVENTS events (default 5) to the stream "signups". Two
   services read it, each as its own consumer group: "mailer" sends a welcome mail,
   "analytics" counts sign-ups. Groups do not compete: each keeps its own position
   and its own pending list, so each gets all the events. (Consumers inside one group
   do compete: there, each event goes to one of them; see worker.c.)

   The groups are created before anything is published, starting at RSQ_START_NEW
   ("$": only what comes after). A group created later with RSQ_START_ALL ("0") would
   get the whole history instead. For a repeatable demo the stream is deleted first. */
#define RSQ_IMPLEMENTATION
#include "../rsq.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STREAM "signups"
#define MAX_EVENTS 1000

static const char *const groups[2] = {"mailer", "analytics"};

static int open_client(rsq_client *c, const char *url) {
    rsq_client_config cfg;
    rsq_client_config_init(&cfg);
    cfg.url = url;
    if (rsq_client_init(c, &cfg) != RSQ_OK || rsq_connect(c) != RSQ_OK) {
        fprintf(stderr, "fanout: %s\n", rsq_errstr(c));
        return -1;
    }
    return 0;
}

/* One service: reads its group until nothing more arrives for 500 ms. Returns the
   number of events received, or -1 on an error. */
static int drain(rsq_client *c, const char *group) {
    rsq_consumer_config cfg;
    rsq_consumer cons;
    const rsq_message *m;
    rsq_result rc;
    int got = 0;
    rsq_consumer_config_init(&cfg);
    cfg.queue = STREAM;
    cfg.group = group;
    cfg.name = "service-1";
    if (rsq_consumer_init(&cons, c, &cfg) != RSQ_OK) {
        fprintf(stderr, "fanout: %s\n", rsq_errstr(c));
        return -1;
    }
    while ((rc = rsq_consumer_next(&cons, &m, 500)) == RSQ_OK) {
        printf("%-9s got %s %.*s\n", group, m->id_str, (int)m->payload_len, m->payload ? m->payload : "");
        rsq_ack(&cons, m); /* queued; sent with the next read */
        got++;
    }
    if (rc == RSQ_EMPTY) rc = rsq_consumer_flush(&cons); /* send the last acks now */
    if (rc != RSQ_OK) {
        fprintf(stderr, "fanout: %s: %s\n", group, rsq_errstr(c));
        got = -1;
    }
    rsq_consumer_free(&cons);
    return got;
}

int main(int argc, char **argv) {
    const char *url = argc > 1 ? argv[1] : "redis://127.0.0.1:6379";
    int events = argc > 2 ? atoi(argv[2]) : 5, i, g, got[2], status = 0;
    static char text[MAX_EVENTS][32];
    static rsq_outgoing msgs[MAX_EVENTS];
    rsq_client pub, sub[2];
    rsq_producer_config pc;
    rsq_producer p;

    if (events <= 0 || events > MAX_EVENTS) {
        fprintf(stderr, "usage: fanout [URL] [EVENTS (1..%d)]\n", MAX_EVENTS);
        return 2;
    }
    if (open_client(&pub, url) != 0) {
        rsq_client_free(&pub);
        return 1;
    }
    /* a fresh stream, then the groups, then the events */
    if (rsq_stream_delete(&pub, STREAM) != RSQ_OK) goto fail;
    for (g = 0; g < 2; g++)
        if (rsq_group_create(&pub, STREAM, groups[g], RSQ_START_NEW) != RSQ_OK) goto fail;

    rsq_producer_config_init(&pc);
    pc.queue = STREAM;
    if (rsq_producer_init(&p, &pub, &pc) != RSQ_OK) goto fail;
    for (i = 0; i < events; i++) {
        snprintf(text[i], sizeof text[i], "user %d signed up", i + 1);
        memset(&msgs[i], 0, sizeof msgs[i]);
        msgs[i].payload = text[i];
        msgs[i].payload_len = strlen(text[i]);
    }
    if (rsq_publish_batch(&p, msgs, (size_t)events, NULL, NULL) != RSQ_OK) goto fail;
    printf("published %d events to %s\n", events, STREAM);
    rsq_client_free(&pub);

    /* each service on its own connection, as two processes would be */
    for (g = 0; g < 2; g++) {
        if (open_client(&sub[g], url) != 0) {
            got[g] = -1;
        } else {
            got[g] = drain(&sub[g], groups[g]);
        }
        rsq_client_free(&sub[g]);
    }
    for (g = 0; g < 2; g++) {
        printf("%s received %d of %d events\n", groups[g], got[g] < 0 ? 0 : got[g], events);
        if (got[g] >= 0 && got[g] != events) {
            fprintf(stderr, "fanout: %s received %d events, not %d\n", groups[g], got[g], events);
            status = 1;
        }
        if (got[g] < 0) status = 1; /* the error is already on stderr */
    }
    return status;
fail:
    fprintf(stderr, "fanout: %s\n", rsq_errstr(&pub));
    rsq_client_free(&pub);
    return 1;
}
