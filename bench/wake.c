/* wake.c - publish-to-handler latency of a waiting consumer, on one node and on a
   private Redis Cluster (issue 19, "a cluster consumer that waits"), for measuring
   before and after a change to the cluster consumer.

   A producer process publishes one stamped 64-byte message every WAKE_PERIOD_MS
   (default 20 ms: the consumer is idle and waiting when each one arrives); the
   consumer (rsq_consumer_next) records receive time - stamp. Rows: a single node with
   1 and 6 shards, then a cluster of 3 masters (no replicas; redis-server with
   cluster-enabled on free ports, joined by redis-cli --cluster create, stopped by pid)
   with 1 and 6 shards. A sharded queue's streams live in several slots there, on
   different masters, so no single XREADGROUP can wait on all of them.

   Prints p50, p90, p99 and max per row and the goal (cluster p50 within 2x
   of the single node's, sharded; a report, not a test). Exit status 0 unless a
   measurement could not run.

   Usage: rsq_bench_wake [-o FILE]   Environment: WAKE_N (messages per row, default
   500), WAKE_PERIOD_MS (default 20), WAKE_SHARDS (default 6). */
#define _DEFAULT_SOURCE 1
#define RSQ_IMPLEMENTATION
#include "../rsq.h"
#include "../tests/server.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>

#define PAYLOAD 64
#define MASTERS 3

static int g_forked;

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *what, const char *why) {
    fprintf(stderr, "wake: %s: %s\n", what, why);
    if (g_forked) _exit(1); /* exit() would run server.c's hook and stop the servers */
    exit(1);
}

static void stamp(char *buf, uint64_t t) {
    static const char hex[] = "0123456789abcdef";
    int i;
    for (i = 0; i < 16; i++) buf[i] = hex[(t >> (60 - 4 * i)) & 15];
    memset(buf + 16, '.', PAYLOAD - 16);
}

static uint64_t unstamp(const char *buf, size_t len) {
    uint64_t v = 0;
    int i;
    if (!buf || len < 16) return 0;
    for (i = 0; i < 16; i++) {
        char ch = buf[i];
        v = (v << 4) | (uint64_t)(ch >= 'a' ? ch - 'a' + 10 : ch - '0');
    }
    return v;
}

static void client_open(rsq_client *c, const char *url) {
    rsq_client_config cfg;
    rsq_client_config_init(&cfg);
    cfg.url = url;
    if (rsq_client_init(c, &cfg) != RSQ_OK) die("client", rsq_errstr(c));
    if (rsq_connect(c) != RSQ_OK) die("connect", rsq_errstr(c));
}

/* the producer process: one message per period_ms on an absolute schedule */
static void producer(const char *url, const char *queue, int shards, long n, int period_ms) {
    rsq_client c;
    rsq_producer p;
    rsq_producer_config pc;
    char body[PAYLOAD];
    uint64_t next;
    long i;
    g_forked = 1;
    client_open(&c, url);
    rsq_producer_config_init(&pc);
    pc.queue = queue;
    pc.shards = shards;
    if (rsq_producer_init(&p, &c, &pc) != RSQ_OK) die("producer", rsq_errstr(&c));
    usleep(300000); /* the consumer waits first */
    next = now_ns();
    for (i = 0; i < n; i++) {
        struct timespec ts;
        next += (uint64_t)period_ms * 1000000u;
        ts.tv_sec = (time_t)(next / 1000000000u);
        ts.tv_nsec = (long)(next % 1000000000u);
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {}
        stamp(body, now_ns());
        if (rsq_publish(&p, body, PAYLOAD, NULL) != RSQ_OK) die("publish", rsq_errstr(&c));
    }
    rsq_client_free(&c);
    _exit(0);
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

typedef struct row {
    const char *where;
    int shards;
    double p50, p90, p99, max; /* us; < 0: not measured */
} row;

static double pct(const uint64_t *v, long n, double q) {
    long i = (long)(q * (double)(n - 1) + 0.5);
    return (double)v[i] / 1e3;
}

/* One row: the consumer here, the producer in a child process. 0, or -1. */
static int measure(const char *url, const char *queue, int shards, long n, int period_ms, row *o) {
    rsq_client c;
    rsq_consumer cons;
    rsq_consumer_config cc;
    uint64_t *lat = (uint64_t *)calloc((size_t)n, sizeof *lat);
    long got = 0, warm = n / 10;
    pid_t pid;
    int st, rc = 0;
    o->p50 = o->p90 = o->p99 = o->max = -1;
    if (!lat) die("latency", "out of memory");
    client_open(&c, url);
    rsq_consumer_config_init(&cc);
    cc.queue = queue;
    cc.group = "g";
    cc.name = "wake";
    cc.shards = shards;
    cc.start = RSQ_START_ALL;
    if (rsq_consumer_init(&cons, &c, &cc) != RSQ_OK) die("consumer", rsq_errstr(&c));
    { /* setup (groups made on every stream) before the producer starts */
        const rsq_message *m;
        rsq_result r0 = rsq_consumer_next(&cons, &m, 10);
        if (r0 != RSQ_EMPTY) die("consumer setup", r0 == RSQ_OK ? "a message before the start" : rsq_errstr(&c));
    }
    pid = fork();
    if (pid < 0) die("fork", strerror(errno));
    if (pid == 0) producer(url, queue, shards, n + warm, period_ms);
    while (got < n + warm) {
        const rsq_message *m;
        rsq_result r = rsq_consumer_next(&cons, &m, 5000);
        uint64_t t = now_ns();
        if (r != RSQ_OK) {
            fprintf(stderr, "wake: %s, %d shards: %s\n", o->where, shards, r == RSQ_EMPTY ? "no message for 5 s" : rsq_errstr(&c));
            rc = -1;
            break;
        }
        if (got >= warm) lat[got - warm] = t - unstamp(m->payload, m->payload_len);
        got++;
        if (rsq_ack(&cons, m) != RSQ_OK) die("ack", rsq_errstr(&c));
    }
    if (rc != 0) kill(pid, SIGTERM);
    waitpid(pid, &st, 0);
    if (rc == 0 && !(WIFEXITED(st) && WEXITSTATUS(st) == 0)) rc = -1;
    rsq_consumer_flush(&cons);
    rsq_consumer_free(&cons);
    rsq_client_free(&c);
    if (rc == 0) {
        qsort(lat, (size_t)n, sizeof *lat, cmp_u64);
        o->p50 = pct(lat, n, 0.50);
        o->p90 = pct(lat, n, 0.90);
        o->p99 = pct(lat, n, 0.99);
        o->max = (double)lat[n - 1] / 1e3;
    }
    free(lat);
    fprintf(stderr, "wake: %-12s %2d shards: p50 %.0f us, p99 %.0f us\n", o->where, shards, o->p50, o->p99);
    return rc;
}

/* ---- a private cluster of MASTERS masters ---- */
static srv g_nodes[MASTERS];

static int cluster_ok(int i) {
    char out[2048];
    srv_cli(&g_nodes[i], out, sizeof out, "CLUSTER INFO");
    return strstr(out, "cluster_state:ok") != NULL && strstr(out, "cluster_slots_ok:16384") != NULL;
}

static int cluster_start(char *seed, size_t cap) {
    char cmd[1024];
    size_t w = 0;
    int i, all;
    uint64_t t0;
    if (!srv_which("redis-cli")) return -1;
    for (i = 0; i < MASTERS; i++) {
        int port = srv_free_cluster_port();
        if (!port || srv_start_at(&g_nodes[i], port, "cluster-enabled yes\ncluster-config-file nodes.conf\ncluster-node-timeout 5000\n") != 0)
            return -1;
    }
    w += (size_t)snprintf(cmd + w, sizeof cmd - w, "redis-cli --cluster create");
    for (i = 0; i < MASTERS; i++) w += (size_t)snprintf(cmd + w, sizeof cmd - w, " 127.0.0.1:%d", g_nodes[i].port);
    snprintf(cmd + w, sizeof cmd - w, " --cluster-replicas 0 --cluster-yes > %s/create.log 2>&1", g_nodes[0].dir);
    if (system(cmd) != 0) return -1;
    t0 = now_ns();
    do {
        usleep(100000);
        for (all = 1, i = 0; i < MASTERS; i++) all &= cluster_ok(i);
    } while (!all && now_ns() - t0 < 30000000000ull);
    snprintf(seed, cap, "redis://127.0.0.1:%d", g_nodes[0].port);
    return all ? 0 : -1;
}

int main(int argc, char **argv) {
    srv s;
    row rows[4];
    long n = 500;
    int period = 20, shards = 6, i, failed = 0;
    const char *env, *out = NULL;
    char seed[64];
    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-o") && i + 1 < argc) out = argv[++i];
        else { fprintf(stderr, "usage: %s [-o FILE]   (env: WAKE_N, WAKE_PERIOD_MS, WAKE_SHARDS)\n", argv[0]); return 2; }
    }
    if ((env = getenv("WAKE_N")) && atol(env) >= 10) n = atol(env);
    if ((env = getenv("WAKE_PERIOD_MS")) && atoi(env) >= 1) period = atoi(env);
    if ((env = getenv("WAKE_SHARDS")) && atoi(env) >= 2 && atoi(env) <= 64) shards = atoi(env);
    memset(rows, 0, sizeof rows);
    rows[0].where = rows[1].where = "single node";
    rows[2].where = rows[3].where = "cluster";
    rows[0].shards = rows[2].shards = 1;
    rows[1].shards = rows[3].shards = shards;
    if (srv_start(&s, NULL) != 0) return 1; /* stopped by pid at exit (server.c) */
    failed |= measure(s.url, "wake:1", 1, n, period, &rows[0]) != 0;
    failed |= measure(s.url, "wake:s", shards, n, period, &rows[1]) != 0;
    srv_stop(&s, 0);
    if (cluster_start(seed, sizeof seed) != 0) {
        fprintf(stderr, "wake: the cluster did not start (redis-cli --cluster create)\n");
        failed = 1;
    } else {
        failed |= measure(seed, "wake:1", 1, n, period, &rows[2]) != 0;
        failed |= measure(seed, "wake:s", shards, n, period, &rows[3]) != 0;
    }
    for (i = 0; i < MASTERS; i++) if (g_nodes[i].dir[0]) srv_stop(&g_nodes[i], 0);
    for (i = 0; i < 2; i++) {
        FILE *o = i == 0 ? stdout : out ? fopen(out, "w") : NULL;
        int k;
        if (!o) continue;
        fprintf(o, "rsq wake-up latency: publish-to-handler, one message every %d ms, %ld per row (+10%% warm-up)\n",
                period, n);
        fprintf(o, "  %-12s %6s %10s %10s %10s %10s\n", "where", "shards", "p50 us", "p90 us", "p99 us", "max us");
        for (k = 0; k < 4; k++)
            fprintf(o, "  %-12s %6d %10.0f %10.0f %10.0f %10.0f\n", rows[k].where, rows[k].shards, rows[k].p50, rows[k].p90,
                    rows[k].p99, rows[k].max);
        if (rows[1].p50 > 0 && rows[3].p50 > 0)
            fprintf(o, "goal (issue 19): cluster p50 within 2x of a single node's, %d shards: %.2fx  %s\n", shards,
                    rows[3].p50 / rows[1].p50, rows[3].p50 <= 2 * rows[1].p50 ? "met" : "MISSED");
        if (o != stdout) fclose(o);
    }
    return failed;
}
