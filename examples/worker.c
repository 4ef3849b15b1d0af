/* worker.c - a consumer-group worker: handles jobs, retries a transient failure later,
   dead-letters a poison message, takes over jobs a crashed worker left behind, and
   stops cleanly on SIGINT/SIGTERM.
   Build: cc examples/worker.c -o worker
   Run:   ./worker [URL] [QUEUE] [GROUP] [NAME] [VISIBILITY_MS]
          defaults: redis://127.0.0.1:6379 jobs workers worker-1 30000

   A job is a number in the "payload" field; the work is to square it. Feed it with
   any client, e.g.   for i in 1 2 3 4 5; do redis-cli XADD jobs '*' payload $i; done
   and start as many workers as you like under different names: they share the group
   and so the jobs (each job goes to one of them).

   What the handler shows (it returns an rsq_action, rsq_consumer_run does the rest):
   - success: RSQ_ACTION_ACK; the ack is queued and sent with the next read.
   - a transient failure (simulated: a multiple of 5 fails on its first delivery):
     RSQ_ACTION_RETRY_LATER; the job stays pending and comes back after the retry
     delay, to this worker or another one, with its delivery count raised.
   - a poison message (a payload that is not a number: retrying cannot help):
     RSQ_ACTION_DEAD_LETTER with an error text; it moves to {QUEUE}:dlq with its
     origin, group, ID, delivery count and the error (list it with rsq dlq QUEUE list).
   - a job that keeps failing goes to the dead letters by itself after MAX_DELIVERIES.
   Jobs held by a worker that died (kill -9, power loss) are reclaimed once they have
   been idle for VISIBILITY_MS. A worker restarted under the same NAME first finishes
   its own pending jobs. The group starts at the beginning of the stream ("0") when
   this creates it, so a backlog is handled too.

   SIGINT/SIGTERM: rsq_consumer_stop; the job in hand is finished, prefetched ones are
   handed back to the group, the acks are flushed, the counters printed, exit 0. */
#define RSQ_IMPLEMENTATION
#include "../rsq.h" /* first: it enables the POSIX names this file uses, too */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RETRY_MS 200      /* delay before a failed job comes back */
#define MAX_DELIVERIES 5  /* then it is dead-lettered */

static rsq_consumer *running; /* what the signal handler stops */

static void on_signal(int sig) {
    (void)sig;
    if (running) rsq_consumer_stop(running); /* safe in a signal handler */
}

/* The library's log hook: reclaims and dead letters are logged at RSQ_LOG_INFO and
   RSQ_LOG_WARN. Failures reach the caller as result codes anyway. */
static void log_line(void *user, rsq_log_level level, rsq_log_item item, const char *message) {
    (void)user;
    (void)item;
    fprintf(stderr, "worker: %s: %s\n", level == RSQ_LOG_ERROR ? "error" : level == RSQ_LOG_WARN ? "warning" : "info",
            message);
}

/* A job's number, or 0 when the payload is not one (or the entry has none). */
static int parse_job(const rsq_message *m, long *n) {
    char text[32], *end;
    if (!m->payload || m->payload_len == 0 || m->payload_len >= sizeof text) return 0;
    memcpy(text, m->payload, m->payload_len);
    text[m->payload_len] = '\0';
    *n = strtol(text, &end, 10);
    return *end == '\0' && *n >= 0 && *n <= 46340; /* n * n fits in a 32-bit long */
}

static rsq_action handle(void *user, rsq_consumer *cons, const rsq_message *m) {
    long n;
    (void)user;
    if (!parse_job(m, &n)) {
        printf("%s poison \"%.*s\": dead-lettered\n", m->id_str, (int)(m->payload_len < 40 ? m->payload_len : 40),
               m->payload ? m->payload : "");
        rsq_consumer_set_error(cons, "payload is not a number"); /* kept with the dead letter */
        return RSQ_ACTION_DEAD_LETTER;
    }
    if (n % 5 == 0 && m->deliveries == 1) {
        printf("%s job %ld: transient failure, retry in %d ms\n", m->id_str, n, RETRY_MS);
        rsq_consumer_set_error(cons, "simulated transient failure");
        rsq_consumer_retry_delay(cons, RETRY_MS);
        return RSQ_ACTION_RETRY_LATER;
    }
    printf("%s job %ld: %ld (delivery %lld)\n", m->id_str, n, n * n, m->deliveries);
    return RSQ_ACTION_ACK;
}

int main(int argc, char **argv) {
    const char *url = argc > 1 ? argv[1] : "redis://127.0.0.1:6379";
    rsq_client_config cc;
    rsq_consumer_config kc;
    rsq_client c;
    rsq_consumer worker;
    rsq_consumer_stats st;
    struct sigaction sa;
    rsq_result rc;

    setvbuf(stdout, NULL, _IOLBF, 0); /* one line per job, also into a pipe or a file */
    rsq_client_config_init(&cc);
    cc.url = url;
    cc.name = "worker-example";               /* CLIENT SETNAME: shows in CLIENT LIST */
    cc.retry_attempts = RSQ_RETRY_FOREVER;    /* a daemon rides out server restarts */
    cc.logger.func = log_line;
    cc.logger.level = RSQ_LOG_INFO;
    if (rsq_client_init(&c, &cc) != RSQ_OK) {
        fprintf(stderr, "worker: %s\n", rsq_errstr(&c));
        rsq_client_free(&c);
        return 1;
    }
    rsq_consumer_config_init(&kc);
    kc.queue = argc > 2 ? argv[2] : "jobs";
    kc.group = argc > 3 ? argv[3] : "workers";
    kc.name = argc > 4 ? argv[4] : "worker-1"; /* stable: a restart resumes its own jobs */
    kc.visibility_ms = argc > 5 ? atoi(argv[5]) : 30000;
    kc.max_deliveries = MAX_DELIVERIES;
    kc.start = RSQ_START_ALL;
    if (kc.visibility_ms <= 0) {
        fprintf(stderr, "usage: worker [URL] [QUEUE] [GROUP] [NAME] [VISIBILITY_MS (> 0)]\n");
        rsq_client_free(&c);
        return 2;
    }
    if (rsq_consumer_init(&worker, &c, &kc) != RSQ_OK) { /* e.g. an empty group name */
        fprintf(stderr, "worker: %s\n", rsq_errstr(&c));
        rsq_client_free(&c);
        return 1;
    }

    running = &worker;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    printf("worker %s: queue %s, group %s, visibility %d ms; SIGINT/SIGTERM stops\n", rsq_consumer_name(&worker),
           kc.queue, kc.group, kc.visibility_ms);
    rc = rsq_consumer_run(&worker, handle, NULL); /* returns on a stop, or on an error
                                                     that retries could not cure */
    if (rc != RSQ_STOPPED) fprintf(stderr, "worker: %s: %s\n", rsq_result_name(rc), rsq_errstr(&c));

    rsq_consumer_get_stats(&worker, &st);
    printf("worker %s stopped: delivered %llu, acked %llu, retried %llu, dead-lettered %llu, reclaimed %llu, "
           "resumed %llu\n",
           rsq_consumer_name(&worker), (unsigned long long)st.delivered, (unsigned long long)st.acked,
           (unsigned long long)st.nacked, (unsigned long long)st.dead_lettered, (unsigned long long)st.reclaimed,
           (unsigned long long)st.resumed);
    running = NULL;
    rsq_consumer_free(&worker);
    rsq_client_free(&c);
    return rc == RSQ_STOPPED ? 0 : 1;
}
