/* bench.c - rsq against its peers, in one run against one private redis-server.

   Measures, for 64-byte payloads:
     (a) publish throughput at pipeline depth 1, 16, 64, 256: rsq_publish /
         rsq_publish_batch, redis-benchmark -c 1 -P depth (same XADD), hiredis
         (redisAppendCommandArgv + redisGetReply, `depth` at a time);
     (b) consume + ack throughput with XREADGROUP COUNT 64: rsq_consumer_next + rsq_ack,
         hiredis with one XACK per message, hiredis with one multi-ID XACK per batch;
     (c) publish-to-handler latency with a blocked consumer (p50/p99/p999): a producer
         process publishes one stamped message every 100 us, the consumer waits in
         XREADGROUP BLOCK and records receive time - stamp;
     (d) heap calls per message after warm-up (rsq: through its rsq_allocator hook)
         and the consumer's resident set after the warm-up and at the end.
   Prints one table (stdout and the -o file). Throughputs are the best of 3 runs.
   Environment: BENCH_SCALE (default 1; 0.1 for a quick run), BENCH_UNIX=1 to use the
   server's unix socket instead of TCP 127.0.0.1, BENCH_ONLY=abcd to run only some of
   the measurements (for profiling: the others show as "-"), BENCH_VERBOSE=1 to print
   every run with the client's own CPU time per message.

   Exit status: 0, or 1 when a measurement of an installed contender did not complete
   (the figures themselves are never checked: no timing assertions).

   Usage: rsq_bench [-o FILE]
   (rsq_bench --child ... is how it runs its own measurements in fresh processes.) */
#define _DEFAULT_SOURCE 1
#define RSQ_IMPLEMENTATION
#include "../rsq.h"
#include "bench.h"
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

#define RUNS 3
#define LAT_PERIOD_NS 100000L
#define CONS_COUNT 64
#define ALLOC_DEPTH 64

/* ------------------------------------------------------------------------------------ */
/* shared helpers (declared in bench.h) */

uint64_t bench_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void bench_stamp(char *buf, uint64_t stamp_ns) {
    static const char hex[] = "0123456789abcdef";
    int i;
    for (i = 0; i < 16; i++) buf[i] = hex[(stamp_ns >> (60 - 4 * i)) & 15];
    memset(buf + 16, '.', BENCH_PAYLOAD - 16);
}

uint64_t bench_unstamp(const char *buf, size_t len) {
    uint64_t v = 0;
    int i;
    if (!buf || len < 16) return 0;
    for (i = 0; i < 16; i++) {
        char ch = buf[i];
        unsigned d = ch >= '0' && ch <= '9' ? (unsigned)(ch - '0') : ch >= 'a' && ch <= 'f' ? (unsigned)(ch - 'a' + 10) : 99u;
        if (d > 15) return 0;
        v = (v << 4) | d;
    }
    return v;
}

int bench_paced(int (*pub)(void *ctx, const char *payload), void *ctx, long n, long period_ns) {
    char payload[BENCH_PAYLOAD];
    uint64_t next = bench_now_ns();
    long i;
    for (i = 0; i < n; i++) {
        uint64_t now;
        struct timespec ts;
        next += (uint64_t)period_ns;
        ts.tv_sec = (time_t)(next / 1000000000u);
        ts.tv_nsec = (long)(next % 1000000000u);
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {}
        now = bench_now_ns();
        if (now > next + (uint64_t)period_ns) next = now; /* late: no burst to catch up */
        bench_stamp(payload, bench_now_ns());
        if (pub(ctx, payload) != 0) return -1;
    }
    return 0;
}

long bench_rss_kib(void) {
    long size = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return 0;
    if (fscanf(f, "%ld %ld", &size, &resident) != 2) resident = 0;
    fclose(f);
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

/* ------------------------------------------------------------------------------------ */
/* the run's settings */

static double g_scale = 1.0;
static bench_ep g_ep;
static char g_url[512];
static char g_payload[BENCH_PAYLOAD + 1];

static long scaled(long n, long min) {
    long v = (long)((double)n * g_scale + 0.5);
    return v < min ? min : v;
}

static int g_forked; /* in a fork()ed producer: leave without the parent's atexit hooks */

static void die(const char *what, const char *why) {
    fprintf(stderr, "bench: %s: %s\n", what, why);
    if (g_forked) _exit(1); /* exit() would run server.c's hook and stop the server */
    exit(1);
}

static void client_open(rsq_client *c, const rsq_allocator *a) {
    rsq_client_config cfg;
    rsq_client_config_init(&cfg);
    cfg.url = g_url;
    if (a) cfg.allocator = *a;
    if (rsq_client_init(c, &cfg) != RSQ_OK) die("client", rsq_errstr(c));
    if (rsq_connect(c) != RSQ_OK) die("connect", rsq_errstr(c));
}

/* One admin command on a short-lived client. */
static void admin(const char *a0, const char *a1, const char *a2, const char *a3, const char *a4, const char *a5) {
    rsq_client c;
    const rsq_reply *r;
    const char *argv[6];
    int argc = 0;
    argv[argc++] = a0;
    if (a1) argv[argc++] = a1;
    if (a2) argv[argc++] = a2;
    if (a3) argv[argc++] = a3;
    if (a4) argv[argc++] = a4;
    if (a5) argv[argc++] = a5;
    client_open(&c, NULL);
    if (rsq_command_argv(&c, &r, argc, argv, NULL) != RSQ_OK) die(a0, rsq_errstr(&c));
    rsq_client_free(&c);
}

static void del_key(const char *key) { admin("DEL", key, NULL, NULL, NULL, NULL); }
static void group_at_0(const char *key, const char *group) { admin("XGROUP", "CREATE", key, group, "0", "MKSTREAM"); }

/* Pre-fills key with n entries (payload field, 64 bytes), pipelined. */
static void fill(const char *key, long n) {
    rsq_client c;
    rsq_producer p;
    rsq_producer_config pc;
    rsq_outgoing m[256];
    long done = 0;
    int i;
    client_open(&c, NULL);
    rsq_producer_config_init(&pc);
    pc.queue = key;
    if (rsq_producer_init(&p, &c, &pc) != RSQ_OK) die("producer", rsq_errstr(&c));
    memset(m, 0, sizeof m);
    for (i = 0; i < 256; i++) { m[i].payload = g_payload; m[i].payload_len = BENCH_PAYLOAD; }
    while (done < n) {
        size_t k = (size_t)(n - done < 256 ? n - done : 256);
        if (rsq_publish_batch(&p, m, k, NULL, NULL) != RSQ_OK) die("fill", rsq_errstr(&c));
        done += (long)k;
    }
    rsq_client_free(&c);
}

/* ------------------------------------------------------------------------------------ */
/* rsq contenders */

static double rsq_pub_run(const char *key, int depth, long n, int idempotent) {
    rsq_client c;
    rsq_producer p;
    rsq_producer_config pc;
    rsq_outgoing *m;
    long done = 0;
    uint64_t t0;
    double dt;
    int i;
    client_open(&c, NULL);
    rsq_producer_config_init(&pc);
    pc.queue = key;
    pc.idempotent = idempotent;
    if (rsq_producer_init(&p, &c, &pc) != RSQ_OK) die("producer", rsq_errstr(&c));
    m = (rsq_outgoing *)calloc((size_t)depth, sizeof *m);
    if (!m) die("publish", "out of memory");
    for (i = 0; i < depth; i++) { m[i].payload = g_payload; m[i].payload_len = BENCH_PAYLOAD; }
    t0 = bench_now_ns();
    while (done < n) {
        size_t k = (size_t)(n - done < depth ? n - done : depth);
        rsq_result rc = depth == 1 ? rsq_publish(&p, g_payload, BENCH_PAYLOAD, NULL)
                                   : rsq_publish_batch(&p, m, k, NULL, NULL);
        if (rc != RSQ_OK) die("rsq publish", rsq_errstr(&c));
        done += (long)k;
    }
    dt = (double)(bench_now_ns() - t0) / 1e9;
    free(m);
    rsq_client_free(&c);
    return dt;
}

static void cons_open(rsq_consumer *cons, rsq_client *c, const char *key, const char *group, int block_ms) {
    rsq_consumer_config cc;
    rsq_consumer_config_init(&cc);
    cc.queue = key;
    cc.group = group;
    cc.name = "bench";
    cc.count = CONS_COUNT;
    cc.start = RSQ_START_ALL;
    cc.block_ms = block_ms;
    if (rsq_consumer_init(cons, c, &cc) != RSQ_OK) die("consumer", rsq_errstr(c));
}

static volatile unsigned long g_sink; /* keeps the payload reads of the handlers alive */

static double rsq_cons_run(const char *key, const char *group, long n) {
    rsq_client c;
    rsq_consumer cons;
    long got;
    uint64_t t0;
    double dt;
    client_open(&c, NULL);
    cons_open(&cons, &c, key, group, 0);
    t0 = bench_now_ns();
    for (got = 0; got < n; got++) {
        const rsq_message *m;
        rsq_result rc = rsq_consumer_next(&cons, &m, RSQ_TIMEOUT_DEFAULT);
        if (rc != RSQ_OK) die("rsq consume", rc == RSQ_EMPTY ? "stream ran dry" : rsq_errstr(&c));
        g_sink += (unsigned char)m->payload[0] + m->payload_len;
        if (rsq_ack(&cons, m) != RSQ_OK) die("rsq ack", rsq_errstr(&c));
    }
    if (rsq_consumer_flush(&cons) != RSQ_OK) die("rsq flush", rsq_errstr(&c));
    dt = (double)(bench_now_ns() - t0) / 1e9;
    rsq_consumer_free(&cons);
    rsq_client_free(&c);
    return dt;
}

typedef struct rsq_pub_ctx {
    rsq_client c;
    rsq_producer p;
} rsq_pub_ctx;

static int rsq_pub_one(void *ctx, const char *payload) {
    rsq_pub_ctx *x = (rsq_pub_ctx *)ctx;
    return rsq_publish(&x->p, payload, BENCH_PAYLOAD, NULL) == RSQ_OK ? 0 : -1;
}

static int rsq_latency(const char *key, const char *group, long n, uint64_t *lat) {
    rsq_client c;
    rsq_consumer cons;
    long got;
    client_open(&c, NULL);
    cons_open(&cons, &c, key, group, 5000);
    for (got = 0; got < n; got++) {
        const rsq_message *m;
        rsq_result rc = rsq_consumer_next(&cons, &m, 10000);
        if (rc != RSQ_OK) { fprintf(stderr, "bench: rsq latency: %s\n", rc == RSQ_EMPTY ? "no message for 10 s" : rsq_errstr(&c)); break; }
        lat[got] = bench_now_ns() - bench_unstamp(m->payload, m->payload_len);
        if (rsq_ack(&cons, m) != RSQ_OK) die("rsq ack", rsq_errstr(&c));
    }
    rsq_consumer_flush(&cons);
    rsq_consumer_free(&cons);
    rsq_client_free(&c);
    return got == n ? 0 : -1;
}

/* ------------------------------------------------------------------------------------ */
/* counting allocator for rsq (the rsq_allocator hook) */

typedef struct counting {
    int on;
    unsigned long long calls;
} counting;

static void *cnt_malloc(size_t n, void *u) {
    counting *k = (counting *)u;
    if (k->on) k->calls++;
    return malloc(n);
}
static void *cnt_realloc(void *p, size_t n, void *u) {
    counting *k = (counting *)u;
    if (k->on) k->calls++;
    return realloc(p, n);
}
static void cnt_free(void *p, void *u) { (void)u; free(p); }

/* ------------------------------------------------------------------------------------ */
/* children: allocation counting in a fresh process (so that the RSS is the consumer's) */

/* --child alloc-pub|alloc-pub1|alloc-con rsq|hiredis KEY WARM TOTAL (pub1: depth 1)
   prints: calls counted process_calls rss_warm rss_end */
static int child_main(int argc, char **argv) {
    const char *mode, *peer, *key;
    long warm, total, counted = 0, rss_warm = 0, rss_end = 0;
    long long calls = -1;
    unsigned long long proc0 = 0, proc = 0;
    if (argc != 7) return 2;
    mode = argv[2]; peer = argv[3]; key = argv[4];
    warm = atol(argv[5]); total = atol(argv[6]);
    if (!strcmp(peer, "rsq")) {
        counting k;
        rsq_allocator a;
        rsq_client c;
        memset(&k, 0, sizeof k);
        a.malloc_fn = cnt_malloc; a.realloc_fn = cnt_realloc; a.free_fn = cnt_free; a.user = &k;
        client_open(&c, &a);
        k.on = 1;
        bench_mc_enable(1);
        if (!strncmp(mode, "alloc-pub", 9)) {
            int depth = !strcmp(mode, "alloc-pub1") ? 1 : ALLOC_DEPTH;
            rsq_producer p;
            rsq_producer_config pc;
            rsq_outgoing m[ALLOC_DEPTH];
            long done = 0;
            int i;
            unsigned long long before = 0;
            rsq_producer_config_init(&pc);
            pc.queue = key;
            if (rsq_producer_init(&p, &c, &pc) != RSQ_OK) die("producer", rsq_errstr(&c));
            memset(m, 0, sizeof m);
            for (i = 0; i < ALLOC_DEPTH; i++) { m[i].payload = g_payload; m[i].payload_len = BENCH_PAYLOAD; }
            while (done < total) {
                size_t n = (size_t)(total - done < depth ? total - done : depth);
                rsq_result rc;
                if (done >= warm && counted == 0) { before = k.calls; proc0 = bench_mc_calls(); counted = total - done; }
                rc = depth == 1 ? rsq_publish(&p, g_payload, BENCH_PAYLOAD, NULL) : rsq_publish_batch(&p, m, n, NULL, NULL);
                if (rc != RSQ_OK) die("rsq publish", rsq_errstr(&c));
                done += (long)n;
            }
            calls = (long long)(k.calls - before);
            proc = bench_mc_calls() - proc0;
        } else {
            rsq_consumer cons;
            long got;
            unsigned long long before = 0;
            cons_open(&cons, &c, key, "alloc", 0);
            for (got = 0; got < total; got++) {
                const rsq_message *m;
                rsq_result rc;
                if (got == warm) { rss_warm = bench_rss_kib(); before = k.calls; proc0 = bench_mc_calls(); counted = total - got; }
                rc = rsq_consumer_next(&cons, &m, RSQ_TIMEOUT_DEFAULT);
                if (rc != RSQ_OK) die("rsq consume", rc == RSQ_EMPTY ? "stream ran dry" : rsq_errstr(&c));
                g_sink += (unsigned char)m->payload[0] + m->payload_len;
                if (rsq_ack(&cons, m) != RSQ_OK) die("rsq ack", rsq_errstr(&c));
            }
            calls = (long long)(k.calls - before);
            proc = bench_mc_calls() - proc0;
            rss_end = bench_rss_kib();
            rsq_consumer_flush(&cons);
            rsq_consumer_free(&cons);
        }
        bench_mc_enable(0);
        rsq_client_free(&c);
    } else {
#ifdef BENCH_HIREDIS
        if (!strncmp(mode, "alloc-pub", 9))
            calls = hr_alloc_publish(&g_ep, key, !strcmp(mode, "alloc-pub1") ? 1 : ALLOC_DEPTH, warm, total, &counted);
        else calls = hr_alloc_consume(&g_ep, key, "alloc", CONS_COUNT, warm, total, &counted, &rss_warm, &rss_end);
        proc = calls < 0 ? 0 : (unsigned long long)calls;
#endif
    }
    printf("%lld %ld %llu %ld %ld\n", calls, counted, proc, rss_warm, rss_end);
    return calls < 0 ? 1 : 0;
}

typedef struct alloc_res {
    int ok;
    long long calls;
    long counted;
    unsigned long long proc;
    long rss_warm, rss_end;
} alloc_res;

static alloc_res run_child(const char *self, const char *mode, const char *peer, const char *key, long warm, long total) {
    alloc_res r;
    char cmd[2048];
    FILE *p;
    memset(&r, 0, sizeof r);
    snprintf(cmd, sizeof cmd, "'%s' --child '%s' '%s' '%s' %ld %ld", self, mode, peer, key, warm, total);
    p = popen(cmd, "r");
    if (!p) return r;
    if (fscanf(p, "%lld %ld %llu %ld %ld", &r.calls, &r.counted, &r.proc, &r.rss_warm, &r.rss_end) == 5 && r.calls >= 0)
        r.ok = 1;
    if (pclose(p) != 0) r.ok = 0;
    return r;
}

/* ------------------------------------------------------------------------------------ */
/* redis-benchmark */

static int g_have_rb;

/* requests per second of `redis-benchmark -c 1 -P depth -n n XADD key * payload <64>`;
   < 0 on failure. */
static double rb_run(const char *key, int depth, long n) {
    char cmd[2048], line[1024];
    FILE *p;
    double rps = -1;
    int lineno = 0;
    if (g_ep.sock) snprintf(cmd, sizeof cmd, "redis-benchmark -s '%s'", g_ep.sock);
    else snprintf(cmd, sizeof cmd, "redis-benchmark -h 127.0.0.1 -p %d", g_ep.port);
    snprintf(cmd + strlen(cmd), sizeof cmd - strlen(cmd), " -n %ld -c 1 -P %d --csv XADD '%s' '*' payload %s 2>/dev/null",
             n, depth, key, g_payload);
    p = popen(cmd, "r");
    if (!p) return -1;
    while (fgets(line, sizeof line, p)) {
        /* "test","rps",...  then  "XADD ...","1219512.12",... */
        char *q;
        if (lineno++ == 0 || strncmp(line, "\"XADD", 5) != 0) continue;
        q = strstr(line, "\",\"");
        if (q) rps = strtod(q + 3, NULL);
    }
    if (pclose(p) != 0) rps = -1;
    return rps > 0 ? rps : -1;
}

/* ------------------------------------------------------------------------------------ */
/* the table */

#define NROWS 32
typedef struct row {
    char label[64];
    char cell[5][24];   /* rsq, peer 1, peer 2, rsq/peer 1, rsq/peer 2 */
    int section;        /* 1: a section header (cells are column names) */
} row;

static row g_rows[NROWS];
static int g_nrows;
static char g_notes[24][200];
static int g_nnotes;

static row *add_row(const char *label, int section) {
    row *r = &g_rows[g_nrows++];
    memset(r, 0, sizeof *r);
    snprintf(r->label, sizeof r->label, "%s", label);
    r->section = section;
    return r;
}

static void section(const char *label, const char *c0, const char *c1, const char *c2, const char *c3, const char *c4) {
    row *r = add_row(label, 1);
    snprintf(r->cell[0], sizeof r->cell[0], "%s", c0);
    snprintf(r->cell[1], sizeof r->cell[1], "%s", c1);
    snprintf(r->cell[2], sizeof r->cell[2], "%s", c2);
    snprintf(r->cell[3], sizeof r->cell[3], "%s", c3);
    snprintf(r->cell[4], sizeof r->cell[4], "%s", c4);
}

static void note(const char *text) {
    if (g_nnotes < (int)(sizeof g_notes / sizeof g_notes[0]))
        snprintf(g_notes[g_nnotes++], sizeof g_notes[0], "%s", text);
}

/* Cell text: a value < 0 means "not measured". */
static void fmt_rate(char *out, double v) {
    if (v < 0) snprintf(out, 24, "-");
    else if (v >= 1e6) snprintf(out, 24, "%.3f M/s", v / 1e6);
    else snprintf(out, 24, "%.1f k/s", v / 1e3);
}
static void fmt_us(char *out, double ns) {
    if (ns < 0) snprintf(out, 24, "-");
    else snprintf(out, 24, "%.1f us", ns / 1e3);
}
static void fmt_ratio(char *out, double a, double b) {
    if (a < 0 || b <= 0) snprintf(out, 24, "-");
    else snprintf(out, 24, "%.2fx", a / b);
}

static void print_table(FILE *f, const char *head) {
    int i, j;
    fprintf(f, "%s", head);
    for (i = 0; i < g_nrows; i++) {
        const row *r = &g_rows[i];
        if (r->section) fprintf(f, "\n");
        fprintf(f, "%-40s", r->label);
        for (j = 0; j < 5; j++) fprintf(f, j < 3 ? " %16s" : " %12s", r->cell[j]);
        fprintf(f, "\n");
    }
    if (g_nnotes) fprintf(f, "\nnotes:\n");
    for (i = 0; i < g_nnotes; i++) fprintf(f, g_notes[i][0] == ' ' ? "  %s\n" : "  - %s\n", g_notes[i]);
}

/* ------------------------------------------------------------------------------------ */
/* the measurements */

static int g_verbose;
static int g_failures; /* measurements of an installed contender that did not complete */

static void failed(const char *what, int run) {
    fprintf(stderr, "bench: FAILED: %s (run %d)\n", what, run + 1);
    g_failures++;
}

static uint64_t cpu_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* BENCH_VERBOSE=1: each run's rate and, for in-process contenders, the client's own CPU
   time per message (what is left of the wall time is the server and the wire). */
static void run_report(const char *what, long n, double secs, uint64_t cpu) {
    if (!g_verbose || secs <= 0) return;
    if (cpu) fprintf(stderr, "bench:   %-28s %10.0f msgs/s   client CPU %6.0f ns/msg (%2.0f%% of wall)\n", what,
                     (double)n / secs, (double)cpu / (double)n, 100.0 * (double)cpu / 1e9 / secs);
    else fprintf(stderr, "bench:   %-28s %10.0f msgs/s\n", what, (double)n / secs);
}

static double best_rate(const double *secs, long n) {
    double best = -1;
    int i;
    for (i = 0; i < RUNS; i++)
        if (secs[i] > 0 && (best < 0 || (double)n / secs[i] > best)) best = (double)n / secs[i];
    return best;
}

static double g_pub[4][3];  /* depth x {rsq, redis-benchmark, hiredis} msgs/s */
static double g_cons[3];    /* rsq, hiredis XACK/msg, hiredis XACK/batch */
static double g_pub_idem;   /* rsq_publish_batch depth 64, idempotent (generated keys) */
static double g_lat[2][3];  /* {rsq, hiredis} x {p50, p99, p999} ns */
static alloc_res g_alloc[2][3]; /* {rsq, hiredis} x {publish batch 64, consume, publish depth 1} */
static long g_alloc_total;      /* messages through each (d) process, warm-up included */

static void measure_publish(void) {
    static const int depths[4] = { 1, 16, 64, 256 };
    int d, run;
    for (d = 0; d < 4; d++) {
        long n = depths[d] == 1 ? scaled(100000, 1000) : scaled(1000000, 5000);
        double secs[3][RUNS];
        fprintf(stderr, "bench: (a) publish depth %d, %ld messages x %d runs\n", depths[d], n, RUNS);
        for (run = 0; run < RUNS; run++) {
            double rps;
            uint64_t c0 = cpu_ns();
            secs[0][run] = rsq_pub_run("bench:pub:rsq", depths[d], n, 0);
            run_report("rsq publish", n, secs[0][run], cpu_ns() - c0);
            if (secs[0][run] <= 0) failed("rsq publish", run);
            del_key("bench:pub:rsq");
            secs[1][run] = -1;
            if (g_have_rb) {
                rps = rb_run("bench:pub:rb", depths[d], n);
                secs[1][run] = rps > 0 ? (double)n / rps : -1;
                run_report("redis-benchmark", n, secs[1][run], 0);
                if (secs[1][run] <= 0) failed("redis-benchmark", run);
                del_key("bench:pub:rb");
            }
            secs[2][run] = -1;
#ifdef BENCH_HIREDIS
            c0 = cpu_ns();
            secs[2][run] = hr_publish(&g_ep, "bench:pub:hr", g_payload, depths[d], n);
            run_report("hiredis publish", n, secs[2][run], cpu_ns() - c0);
            if (secs[2][run] <= 0) failed("hiredis publish", run);
            del_key("bench:pub:hr");
#endif
        }
        if (depths[d] == 64) { /* the same depth with idempotent publishing (generated keys) */
            double isecs[RUNS];
            for (run = 0; run < RUNS; run++) {
                uint64_t c0 = cpu_ns();
                isecs[run] = rsq_pub_run("bench:pub:idem", 64, n, 1);
                run_report("rsq publish idempotent", n, isecs[run], cpu_ns() - c0);
                if (isecs[run] <= 0) failed("rsq publish idempotent", run);
                admin("EVAL", "for _, k in ipairs(redis.call('KEYS', ARGV[1])) do redis.call('DEL', k) end", "0",
                      "{bench:pub:idem}:idem:*", NULL, NULL);
                del_key("bench:pub:idem");
            }
            g_pub_idem = best_rate(isecs, n);
        }
        g_pub[d][0] = best_rate(secs[0], n);
        g_pub[d][1] = best_rate(secs[1], n);
        g_pub[d][2] = best_rate(secs[2], n);
    }
}

static void measure_consume(void) {
    long n = scaled(200000, 2000);
    double secs[3][RUNS];
    int run, k;
    fprintf(stderr, "bench: (b) consume+ack, %ld messages x %d runs\n", n, RUNS);
    for (run = 0; run < RUNS; run++) {
        for (k = 0; k < 3; k++) {
            static const char *keys[3] = { "bench:con:rsq", "bench:con:hr1", "bench:con:hrb" };
            uint64_t c0;
            secs[k][run] = -1;
#ifndef BENCH_HIREDIS
            if (k > 0) continue;
#endif
            fill(keys[k], n);
            group_at_0(keys[k], "g");
            c0 = cpu_ns();
            if (k == 0) secs[k][run] = rsq_cons_run(keys[k], "g", n);
#ifdef BENCH_HIREDIS
            else secs[k][run] = hr_consume(&g_ep, keys[k], "g", n, CONS_COUNT, k == 2);
#endif
            run_report(k == 0 ? "rsq consume" : k == 1 ? "hiredis consume XACK/msg" : "hiredis consume XACK/batch",
                       n, secs[k][run], cpu_ns() - c0);
            if (secs[k][run] <= 0) failed(k == 0 ? "rsq consume" : "hiredis consume", run);
            del_key(keys[k]);
        }
    }
    for (k = 0; k < 3; k++) g_cons[k] = best_rate(secs[k], n);
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double pct(const uint64_t *v, long n, double q) {
    long i = (long)(q * (double)(n - 1) + 0.5);
    if (n <= 0) return -1;
    return (double)v[i < 0 ? 0 : i >= n ? n - 1 : i];
}

/* One latency round of one contender (who = 0 rsq, 1 hiredis): `warm` + n messages,
   the last n stored at out[0..n). 0, or -1 on failure. */
static int latency_round(int who, long warm, long n, uint64_t *out) {
    const char *key = who ? "bench:lat:hr" : "bench:lat:rsq";
    uint64_t *lat = (uint64_t *)calloc((size_t)(warm + n), sizeof *lat);
    pid_t pid;
    int rc, st;
    if (!lat) die("latency", "out of memory");
    group_at_0(key, "g");
    pid = fork();
    if (pid < 0) die("fork", strerror(errno));
    if (pid == 0) {
        /* the producer: let the consumer block first, then one message per period */
        int ok = -1;
        g_forked = 1;
        usleep(100000);
        if (who == 0) {
            rsq_pub_ctx *x = (rsq_pub_ctx *)calloc(1, sizeof *x);
            rsq_producer_config pc;
            if (x) {
                client_open(&x->c, NULL);
                rsq_producer_config_init(&pc);
                pc.queue = key;
                if (rsq_producer_init(&x->p, &x->c, &pc) == RSQ_OK) ok = bench_paced(rsq_pub_one, x, warm + n, LAT_PERIOD_NS);
                rsq_client_free(&x->c);
            }
        } else {
#ifdef BENCH_HIREDIS
            void *x = hr_pub_open(&g_ep, key);
            if (x) { ok = bench_paced(hr_pub_one, x, warm + n, LAT_PERIOD_NS); hr_pub_close(x); }
#endif
        }
        _exit(ok == 0 ? 0 : 1); /* _exit: the parent's atexit hooks would stop the server */
    }
    if (who == 0) rc = rsq_latency(key, "g", warm + n, lat);
    else {
#ifdef BENCH_HIREDIS
        rc = hr_latency(&g_ep, key, "g", warm + n, CONS_COUNT, lat);
#else
        rc = -1;
#endif
    }
    if (rc != 0) kill(pid, SIGTERM);
    waitpid(pid, &st, 0);
    if (rc == 0 && !(WIFEXITED(st) && WEXITSTATUS(st) == 0)) rc = -1;
    if (rc == 0) memcpy(out, lat + warm, (size_t)n * sizeof *lat);
    free(lat);
    del_key(key);
    return rc;
}

/* The contenders take turns, RUNS rounds each, so that a noisy spell on the machine
   hits both; the percentiles are over the pooled samples. */
static void measure_latency(void) {
    long n = scaled(30000, 1000), warm = scaled(2000, 200), per = n / RUNS;
    int who, run, nwho = 1;
    uint64_t *lat[2];
#ifdef BENCH_HIREDIS
    nwho = 2;
#endif
    n = per * RUNS;
    fprintf(stderr, "bench: (c) latency, %ld messages per contender in %d rounds (+%ld warm-up each), one per %ld us\n",
            n, RUNS, warm, LAT_PERIOD_NS / 1000);
    lat[0] = (uint64_t *)calloc((size_t)n, sizeof(uint64_t));
    lat[1] = (uint64_t *)calloc((size_t)n, sizeof(uint64_t));
    if (!lat[0] || !lat[1]) die("latency", "out of memory");
    for (who = 0; who < 2; who++) g_lat[who][0] = g_lat[who][1] = g_lat[who][2] = -1;
    {
        int ok[2] = { 1, 1 };
        for (run = 0; run < RUNS; run++)
            for (who = 0; who < nwho; who++)
                if (ok[who] && latency_round(who, warm, per, lat[who] + (size_t)run * (size_t)per) != 0) {
                    ok[who] = 0;
                    failed(who ? "hiredis latency" : "rsq latency", run);
                }
        for (who = 0; who < nwho; who++) {
            if (!ok[who]) continue;
            qsort(lat[who], (size_t)n, sizeof(uint64_t), cmp_u64);
            g_lat[who][0] = pct(lat[who], n, 0.50);
            g_lat[who][1] = pct(lat[who], n, 0.99);
            g_lat[who][2] = pct(lat[who], n, 0.999);
        }
    }
    free(lat[0]);
    free(lat[1]);
}

static void measure_alloc(const char *self) {
    long total = scaled(1000000, 10000), warm = 10000;
    int who;
    total += warm;
    g_alloc_total = total;
    fprintf(stderr, "bench: (d) heap calls and RSS, %ld messages after %ld warm-up\n", total - warm, warm);
    for (who = 0; who < 2; who++) {
        const char *peer = who ? "hiredis" : "rsq";
        const char *key = who ? "bench:alloc:hr" : "bench:alloc:rsq";
#ifndef BENCH_HIREDIS
        if (who) break;
#endif
        g_alloc[who][0] = run_child(self, "alloc-pub", peer, key, warm, total);
        group_at_0(key, "alloc");
        g_alloc[who][1] = run_child(self, "alloc-con", peer, key, warm, total);
        del_key(key);
        g_alloc[who][2] = run_child(self, "alloc-pub1", peer, key, warm, warm + scaled(100000, 2000));
        del_key(key);
        if (!g_alloc[who][0].ok) failed(who ? "hiredis heap count, publish" : "rsq heap count, publish", 0);
        if (!g_alloc[who][1].ok) failed(who ? "hiredis heap count, consume" : "rsq heap count, consume", 0);
        if (!g_alloc[who][2].ok) failed(who ? "hiredis heap count, publish depth 1" : "rsq heap count, publish depth 1", 0);
    }
}

static void fmt_calls(char *out, const alloc_res *a) {
    if (!a->ok || a->counted <= 0) snprintf(out, 24, "-");
    else snprintf(out, 24, "%.4f", (double)a->calls / (double)a->counted);
}

static void build_rows(void) {
    static const int depths[4] = { 1, 16, 64, 256 };
    char label[64];
    row *r;
    int d, k;
    section("(a) publish XADD, msgs/s, best of 3", "rsq", "redis-benchmark", "hiredis", "rsq/r-bench", "rsq/hiredis");
    for (d = 0; d < 4; d++) {
        snprintf(label, sizeof label, "    depth %d (%s)", depths[d], depths[d] == 1 ? "rsq_publish" : "rsq_publish_batch");
        r = add_row(label, 0);
        for (k = 0; k < 3; k++) fmt_rate(r->cell[k], g_pub[d][k]);
        fmt_ratio(r->cell[3], g_pub[d][0], g_pub[d][1]);
        fmt_ratio(r->cell[4], g_pub[d][0], g_pub[d][2]);
    }
    section("(a2) idempotent publish, depth 64, msgs/s", "rsq keys", "rsq plain", "", "keys/plain", "");
    r = add_row("    rsq_publish_batch, generated keys", 0);
    fmt_rate(r->cell[0], g_pub_idem);
    fmt_rate(r->cell[1], g_pub[2][0]);
    fmt_ratio(r->cell[3], g_pub_idem, g_pub[2][0]);
    section("(b) consume+ack, COUNT 64, best of 3", "rsq", "hiredis XACK/msg", "hiredis XACK/bat", "rsq/XACK-msg", "rsq/XACK-bat");
    r = add_row("    msgs/s", 0);
    for (k = 0; k < 3; k++) fmt_rate(r->cell[k], g_cons[k]);
    fmt_ratio(r->cell[3], g_cons[0], g_cons[1]);
    fmt_ratio(r->cell[4], g_cons[0], g_cons[2]);
    section("(c) publish-to-handler latency", "rsq", "hiredis", "", "rsq/hiredis", "");
    for (k = 0; k < 3; k++) {
        static const char *names[3] = { "    p50", "    p99", "    p99.9" };
        r = add_row(names[k], 0);
        fmt_us(r->cell[0], g_lat[0][k]);
        fmt_us(r->cell[1], g_lat[1][k]);
        fmt_ratio(r->cell[3], g_lat[0][k], g_lat[1][k]);
    }
    section("(d) steady state, after 10k warm-up", "rsq", "hiredis", "", "rsq/hiredis", "");
    r = add_row("    heap calls/msg, publish (batch 64)", 0);
    fmt_calls(r->cell[0], &g_alloc[0][0]);
    fmt_calls(r->cell[1], &g_alloc[1][0]);
    r = add_row("    heap calls/msg, publish (depth 1)", 0);
    fmt_calls(r->cell[0], &g_alloc[0][2]);
    fmt_calls(r->cell[1], &g_alloc[1][2]);
    r = add_row("    heap calls/msg, consume+ack", 0);
    fmt_calls(r->cell[0], &g_alloc[0][1]);
    fmt_calls(r->cell[1], &g_alloc[1][1]);
    for (k = 0; k < 2; k++) {
        long v[2];
        int w;
        if (k == 0) snprintf(label, sizeof label, "    consumer RSS after 10k msgs, KiB");
        else snprintf(label, sizeof label, "    consumer RSS after %.2fM msgs, KiB", (double)g_alloc_total / 1e6);
        r = add_row(label, 0);
        for (w = 0; w < 2; w++) {
            const alloc_res *a = &g_alloc[w][1];
            v[w] = !a->ok ? -1 : k == 0 ? a->rss_warm : a->rss_end;
            if (v[w] < 0) snprintf(r->cell[w], 24, "-");
            else snprintf(r->cell[w], 24, "%ld", v[w]);
        }
        fmt_ratio(r->cell[3], (double)v[0], (double)v[1]);
    }
    r = add_row("    consumer RSS growth, KiB", 0);
    for (k = 0; k < 2; k++) {
        const alloc_res *a = &g_alloc[k][1];
        if (a->ok) snprintf(r->cell[k], 24, "%+ld", a->rss_end - a->rss_warm);
        else snprintf(r->cell[k], 24, "-");
    }
}

/* Target checks, reported (never asserted). */
static void target(FILE *f, const char *what, double ratio, double want, int higher_better) {
    const char *verdict = ratio < 0 ? "not measured" : (higher_better ? ratio >= want : ratio <= want) ? "met" : "MISSED";
    if (ratio < 0) fprintf(f, "  %-58s %s\n", what, verdict);
    else fprintf(f, "  %-58s %6.3fx  %s\n", what, ratio, verdict);
}

static double ratio(double a, double b) { return a > 0 && b > 0 ? a / b : -1; }

static void print_targets(FILE *f) {
    double best_hr = g_cons[1] > g_cons[2] ? g_cons[1] : g_cons[2];
    fprintf(f, "\ntargets (a report, not a test):\n");
    target(f, "publish depth 64 >= 0.90x redis-benchmark", ratio(g_pub[2][0], g_pub[2][1]), 0.9, 1);
    target(f, "publish depth 64 >= 1.30x hiredis", ratio(g_pub[2][0], g_pub[2][2]), 1.3, 1);
    target(f, "consume+ack >= 1.15x best hiredis variant", ratio(g_cons[0], best_hr), 1.15, 1);
    target(f, "latency p50 <= 1.00x hiredis", ratio(g_lat[0][0], g_lat[1][0]), 1.0, 0);
    target(f, "latency p99 <= 1.20x hiredis", ratio(g_lat[0][1], g_lat[1][1]), 1.2, 0);
    if (g_alloc[0][0].ok && g_alloc[0][1].ok && g_alloc[0][2].ok)
        fprintf(f, "  %-58s %s\n", "0 heap calls per message in steady state (rsq)",
                g_alloc[0][0].calls == 0 && g_alloc[0][1].calls == 0 && g_alloc[0][2].calls == 0 ? "met" : "MISSED");
    if (g_alloc[0][1].ok) {
        long growth = g_alloc[0][1].rss_end - g_alloc[0][1].rss_warm;
        fprintf(f, "  %-58s %+ld KiB  %s\n", "flat consumer RSS (rsq; growth under 256 KiB)", growth, growth < 256 ? "met" : "MISSED");
    }
}

int main(int argc, char **argv) {
    srv s;
    const char *out = NULL, *env;
    char self[1024], head[2048], sver[32] = "?";
    ssize_t sl;
    long version = 0;
    int i, use_unix;
    uint64_t t0 = bench_now_ns();
    memset(g_payload, 'x', BENCH_PAYLOAD);
    g_payload[BENCH_PAYLOAD] = '\0';
    env = getenv("BENCH_SCALE");
    if (env && *env) {
        g_scale = atof(env);
        if (!(g_scale > 0) || g_scale > 100) { fprintf(stderr, "bench: BENCH_SCALE must be in (0, 100]\n"); return 2; }
    }
    env = getenv("BENCH_VERBOSE");
    g_verbose = env && *env && strcmp(env, "0") != 0;
    env = getenv("BENCH_UNIX");
    use_unix = env && *env && strcmp(env, "0") != 0;
    if (argc >= 2 && !strcmp(argv[1], "--child")) {
        /* the parent passes where the server is */
        env = getenv("BENCH_CHILD_URL");
        if (!env) return 2;
        snprintf(g_url, sizeof g_url, "%s", env);
        if (!strncmp(g_url, "unix://", 7)) g_ep.sock = g_url + 7;
        else g_ep.port = atoi(strrchr(g_url, ':') + 1);
        return child_main(argc, argv);
    }
    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-o") && i + 1 < argc) out = argv[++i];
        else { fprintf(stderr, "usage: %s [-o FILE]   (env: BENCH_SCALE, BENCH_UNIX, BENCH_ONLY, BENCH_VERBOSE)\n", argv[0]); return 2; }
    }
    sl = readlink("/proc/self/exe", self, sizeof self - 1);
    if (sl <= 0) { snprintf(self, sizeof self, "%s", argv[0]); }
    else self[sl] = '\0';

    if (srv_start(&s, NULL) != 0) return 1; /* stopped by pid at exit (server.c) */
    if (use_unix) { snprintf(g_url, sizeof g_url, "%s", s.unix_url); g_ep.sock = s.sock; }
    else { snprintf(g_url, sizeof g_url, "%s", s.url); g_ep.port = s.port; }
    setenv("BENCH_CHILD_URL", g_url, 1);
    g_have_rb = srv_which("redis-benchmark") != NULL;
    {
        rsq_client c;
        client_open(&c, NULL);
        if (rsq_server_version(&c, &version) == RSQ_OK)
            snprintf(sver, sizeof sver, "%ld.%ld.%ld", version / 10000, version / 100 % 100, version % 100);
        rsq_client_free(&c);
    }

    for (i = 0; i < 12; i++) g_pub[i / 3][i % 3] = -1;
    for (i = 0; i < 3; i++) g_cons[i] = g_lat[0][i] = g_lat[1][i] = -1;
    env = getenv("BENCH_ONLY");
    if (!env || strchr(env, 'a')) measure_publish();
    if (!env || strchr(env, 'b')) measure_consume();
    if (!env || strchr(env, 'c')) measure_latency();
    if (!env || strchr(env, 'd')) measure_alloc(self);
    srv_stop(&s, 0);

    build_rows();
    if (!g_have_rb) note("redis-benchmark not installed: its column is skipped (tools/deps.sh bench installs redis-tools)");
#ifndef BENCH_HIREDIS
    note("hiredis not installed (libhiredis-dev): its columns are skipped");
#endif
    note("every contender uses one connection (redis-benchmark -c 1 -P depth); throughput = best of 3 runs");
    note("(b): hiredis sends each batch's acks in the same write as its next XREADGROUP, like rsq");
    note("(c): one message per 100 us from a producer process; consumer in XREADGROUP BLOCK; 3 alternating rounds pooled");
    note("(d): rsq counts malloc+realloc calls through rsq_allocator, hiredis (no allocator hook) through a");
    note("     process-wide malloc/calloc/realloc counter; each in a fresh process; depth 1 counts 100k x scale");
    note("     messages; RSS from /proc/self/statm of the consumer process");
    if (bench_mc_available() &&
        ((g_alloc[0][0].ok && g_alloc[0][0].proc != (unsigned long long)g_alloc[0][0].calls) ||
         (g_alloc[0][1].ok && g_alloc[0][1].proc != (unsigned long long)g_alloc[0][1].calls) ||
         (g_alloc[0][2].ok && g_alloc[0][2].proc != (unsigned long long)g_alloc[0][2].calls)))
        note("rsq: process-wide heap calls differ from the hook's count (allocation outside rsq_allocator?)");
    snprintf(head, sizeof head,
             "rsq bench: 64-byte payloads, redis-server %s (persistence off) over %s, scale %g, %.0f s\n"
             "peers: redis-benchmark (redis-tools), %s\n",
             sver, use_unix ? "its unix socket" : "TCP 127.0.0.1", g_scale, (double)(bench_now_ns() - t0) / 1e9,
#ifdef BENCH_HIREDIS
             hr_version()
#else
             "hiredis: not installed"
#endif
    );
    print_table(stdout, head);
    print_targets(stdout);
    if (out) {
        FILE *f = fopen(out, "w");
        if (!f) { fprintf(stderr, "bench: cannot write %s: %s\n", out, strerror(errno)); return 1; }
        print_table(f, head);
        print_targets(f);
        fclose(f);
        fprintf(stderr, "bench: table written to %s\n", out);
    }
    if (g_failures) fprintf(stderr, "bench: %d measurement(s) failed (see FAILED above)\n", g_failures);
    return g_failures ? 1 : 0;
}
