/* scale.c - how rsq's costs grow with the work (issue 19), in one run against one
   private redis-server (persistence off), measured, never asserted.

   Measures, for 64-byte payloads:
     (L) pending-list size L = 1k, 10k, 100k, 1M (entries delivered to a live
         consumer, not acked): consume+ack throughput of a consumer reading new entries
         (COUNT 64) over TCP and over the unix socket; the time of one reclaim pass
         that finds K = 100 idle entries behind the L live ones (XAUTOCLAIM, and the
         XPENDING + XCLAIM path of servers before 6.2), from the consumer's first call
         to the K-th reclaimed message; rsq_stream_stats, rsq_trim_safe and
         rsq_retire_idle_consumers (median of 7 calls);
     (N) consumers N = 1, 4, 16, 64 in one group, each its own process: aggregate
         throughput (all messages / time to the last one handled), fairness (fewest /
         most messages handled by one consumer), duplicates and losses (every message
         carries its number; each is counted once over all consumers);
     (G) groups G = 1, 8, 64 on one stream: publish cost per message (batches of 64;
         and with safe_trim_every 1000), rsq_trim_safe and rsq_stream_stats with every
         group holding 100 pending entries, rsq_retire_idle_consumers retiring G
         consumers; checks that stats report all G groups and retire removes all G;
     (P) priority levels 1, 2, 4, 8 x shards 1, 2, 4, 8, 16 on one node: consume+ack
         cost per message, messages spread evenly over levels and shards.
   The pending list is filled on the server (a script adds entries and reads them into
   the group, 20k per call), so 1M pending entries take seconds, not minutes; the
   consumer under test was started before (its first reclaim pass ran on an empty
   list), so (L)'s throughput is the read/ack path and the reclaim pass is measured
   on its own.

   Prints a table (stdout and DIR/scale.txt), writes DIR/pending.csv, consumers.csv,
   groups.csv, layout.csv, and reports each goal of issue 19 as met or MISSED with
   its figure (a report, not a test: the exit status is 0 unless a measurement could
   not run, or a count check failed: a duplicate, a loss, a group or consumer missed).

   Usage: rsq_bench_scale [-q] [-d DIR]     -q: the reduced run (L up to 10k, N up to 4,
   G up to 8, fewer layouts; about a minute). Environment: SCALE_VERBOSE=1;
   SCALE_ONLY=LNGP (a subset of the sections, for profiling; the others print as 0). */
#define _DEFAULT_SOURCE 1
#define RSQ_IMPLEMENTATION
#include "../rsq.h"
#include "bench.h"
#include "../tests/server.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <sys/time.h>
#include <sys/resource.h>

#define K_IDLE 100          /* idle entries a reclaim pass must find */
#define REPS 7              /* repetitions of a timed admin call (median) */
#define CONS_COUNT 64       /* XREADGROUP COUNT of the consumers under test */
#define LIVE_VIS_MS 3600000 /* visibility of the consumers: the held entries stay live */
#define IDLE_MS "86400000"  /* how idle the K entries are made to look */
#define CHUNK 20000L        /* entries per fill script call */

/* ------------------------------------------------------------------------------------ */
/* helpers */

uint64_t bench_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static char g_tcp[512], g_unix[512];
static char g_payload[BENCH_PAYLOAD + 1];
static int g_forked, g_verbose, g_failures;
static long g_version; /* the server's, major*10000 + minor*100 + patch */

static void die(const char *what, const char *why) {
    fprintf(stderr, "scale: %s: %s\n", what, why);
    if (g_forked) _exit(1); /* exit() would run server.c's hook and stop the server */
    exit(1);
}

static void say(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "scale: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
}

static void client_open(rsq_client *c, const char *url) {
    rsq_client_config cfg;
    rsq_client_config_init(&cfg);
    cfg.url = url;
    cfg.io_timeout_ms = 60000; /* a 20k-entry fill script on a busy machine */
    if (rsq_client_init(c, &cfg) != RSQ_OK) die("client", rsq_errstr(c));
    if (rsq_connect(c) != RSQ_OK) die("connect", rsq_errstr(c));
}

/* One command on c (C strings, ended by (char *)0); dies on an error. */
static const rsq_reply *cmd(rsq_client *c, const char *a0, ...) {
    const char *argv[16];
    int argc = 0;
    const rsq_reply *r;
    va_list ap;
    argv[argc++] = a0;
    va_start(ap, a0);
    while (argc < 16 && (argv[argc] = va_arg(ap, const char *)) != NULL) argc++;
    va_end(ap);
    if (rsq_command_argv(c, &r, argc, argv, NULL) != RSQ_OK) die(a0, rsq_errstr(c));
    return r;
}

static double median(double *v, int n) {
    int i, j;
    for (i = 1; i < n; i++)
        for (j = i; j > 0 && v[j - 1] > v[j]; j--) {
            double t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    return n ? v[n / 2] : -1;
}

static double secs_since(uint64_t t0) { return (double)(bench_now_ns() - t0) / 1e9; }

/* The server-side fill script: entries are added and read into the group on the
   server, CHUNK at a time, so that no entry crosses the network.
     add N PAYLOAD              N entries (field "payload")
     hold GROUP CONSUMER N      N new entries read by CONSUMER (pending, not acked)
     idle GROUP CONSUMER N MS   N new entries read by CONSUMER, made to look idle MS ms */
static const char fill_script[] =
    "local k, op = KEYS[1], ARGV[1] "
    "if op == 'add' then "
    "for i = 1, tonumber(ARGV[2]) do redis.call('XADD', k, '*', 'payload', ARGV[3]) end "
    "return tonumber(ARGV[2]) end "
    "local g, c, n, got = ARGV[2], ARGV[3], tonumber(ARGV[4]), 0 "
    "while got < n do "
    "local r = redis.call('XREADGROUP', 'GROUP', g, c, 'COUNT', math.min(1000, n - got), 'STREAMS', k, '>') "
    "if not r then break end "
    "local e = r[1][2] "
    "if #e == 0 then break end "
    "got = got + #e "
    "if op == 'idle' then "
    "for i = 1, #e do redis.call('XCLAIM', k, g, c, '0', e[i][1], 'IDLE', ARGV[5], 'JUSTID') end end "
    "end "
    "return got";

static long script(rsq_client *c, const char *key, const char *op, const char *a2, const char *a3, const char *a4,
                   const char *a5) {
    const rsq_reply *r = cmd(c, "EVAL", fill_script, "1", key, op, a2, a3, a4, a5, (char *)0);
    return r->type == RSQ_REPLY_INTEGER ? (long)r->integer : -1;
}

static void add_entries(rsq_client *c, const char *key, long n) {
    char num[24];
    while (n > 0) {
        long k = n < CHUNK ? n : CHUNK;
        snprintf(num, sizeof num, "%ld", k);
        script(c, key, "add", num, g_payload, NULL, NULL);
        n -= k;
    }
}

static void hold_entries(rsq_client *c, const char *key, const char *group, const char *consumer, long n) {
    char num[24];
    while (n > 0) {
        long k = n < CHUNK ? n : CHUNK;
        snprintf(num, sizeof num, "%ld", k);
        if (script(c, key, "hold", group, consumer, num, NULL) != k) die("fill", "the group read fewer entries than added");
        n -= k;
    }
}

/* calls and usec of one command in INFO commandstats (0 when never called) */
static void cmdstat(rsq_client *c, const char *name, long long *calls, long long *usec) {
    const rsq_reply *r = cmd(c, "INFO", "commandstats", (char *)0);
    char pat[64];
    const char *p;
    *calls = *usec = 0;
    snprintf(pat, sizeof pat, "cmdstat_%s:calls=", name);
    if (r->type != RSQ_REPLY_STRING && r->type != RSQ_REPLY_VERBATIM) return;
    p = strstr(r->str, pat);
    if (!p) return;
    p += strlen(pat);
    *calls = strtoll(p, NULL, 10);
    p = strstr(p, "usec=");
    if (p) *usec = strtoll(p + 5, NULL, 10);
}

/* The server's time in commands so far, us: the usec of every command in INFO
   commandstats but INFO's own (robust to the machine's noise, unlike a client's clock) */
static double server_cmd_us(rsq_client *c) {
    const rsq_reply *r = cmd(c, "INFO", "commandstats", (char *)0);
    const char *p = r->str;
    double sum = 0;
    while (p && (p = strstr(p, "cmdstat_")) != NULL) {
        const char *u = strstr(p, "usec=");
        if (!u) break;
        if (strncmp(p, "cmdstat_info:", 13) != 0) sum += strtod(u + 5, NULL);
        p = u + 5;
    }
    return sum;
}

/* The server's CPU time so far (INFO cpu: used_cpu_sys + used_cpu_user), s */
static double server_cpu_s(rsq_client *c) {
    const rsq_reply *r = cmd(c, "INFO", "cpu", (char *)0);
    const char *a = r->str ? strstr(r->str, "used_cpu_sys:") : NULL, *b = r->str ? strstr(r->str, "used_cpu_user:") : NULL;
    return (a ? strtod(a + 13, NULL) : 0) + (b ? strtod(b + 14, NULL) : 0);
}

static double self_cpu_s(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           (double)ru.ru_stime.tv_usec / 1e6;
}

static long server_mem_mib(rsq_client *c) {
    const rsq_reply *r = cmd(c, "INFO", "memory", (char *)0);
    const char *p = r->str ? strstr(r->str, "used_memory:") : NULL;
    return p ? (long)(strtoll(p + 12, NULL, 10) >> 20) : -1;
}

static void cons_config(rsq_consumer_config *cc, const char *queue, const char *group, const char *name) {
    rsq_consumer_config_init(cc);
    cc->queue = queue;
    cc->group = group;
    cc->name = name;
    cc->count = CONS_COUNT;
    cc->start = RSQ_START_ALL;
    cc->visibility_ms = LIVE_VIS_MS;
}

/* n messages through cons (next + ack, then flush): seconds. */
static double consume_n(rsq_consumer *cons, rsq_client *c, long n) {
    uint64_t t0 = bench_now_ns();
    long got;
    for (got = 0; got < n; got++) {
        const rsq_message *m;
        rsq_result rc = rsq_consumer_next(cons, &m, 10000);
        if (rc != RSQ_OK) die("consume", rc == RSQ_EMPTY ? "no message for 10 s" : rsq_errstr(c));
        if (rsq_ack(cons, m) != RSQ_OK) die("ack", rsq_errstr(c));
    }
    if (rsq_consumer_flush(cons) != RSQ_OK) die("flush", rsq_errstr(c));
    return secs_since(t0);
}

/* the report: a text buffer printed to stdout and DIR/scale.txt at the end */
static char *g_rep;
static size_t g_rep_len, g_rep_cap;
static void rep(const char *fmt, ...) {
    va_list ap;
    int n;
    for (;;) {
        va_start(ap, fmt);
        n = vsnprintf(g_rep ? g_rep + g_rep_len : NULL, g_rep ? g_rep_cap - g_rep_len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) return;
        if (g_rep && g_rep_len + (size_t)n < g_rep_cap) break;
        g_rep_cap = (g_rep_cap + (size_t)n + 1) * 2;
        g_rep = (char *)realloc(g_rep, g_rep_cap);
        if (!g_rep) die("report", "out of memory");
    }
    g_rep_len += (size_t)n;
}

static FILE *csv_open(const char *dir, const char *name, const char *header) {
    char path[1024];
    FILE *f;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    f = fopen(path, "w");
    if (!f) die(path, strerror(errno));
    fprintf(f, "%s\n", header);
    return f;
}

/* ------------------------------------------------------------------------------------ */
/* (L) pending-list size */

typedef struct lrow {
    long L;
    double tcp_rate, unix_rate;   /* consume+ack msgs/s, best of the runs */
    double ctl_rate;              /* the same over TCP on a stream without pending entries,
                                     in the same server at the same time (the control) */
    double reclaim_auto_s, reclaim_pc_s;
    long long autoclaim_calls, pending_calls;
    double stats_ms, trim_ms, retire_ms;
    double stats_srv_us, trim_srv_us, retire_srv_us; /* the server's time per call */
    long mem_mib;
} lrow;

/* One reclaim pass over the list: a fresh consumer's first calls, until the K idle
   entries are handed out (and acked). Seconds; the server's calls counted. */
static double reclaim_k(rsq_client *adm, const char *key, long L, rsq_reclaim_mode mode, long long *calls) {
    rsq_client c;
    rsq_consumer cons;
    rsq_consumer_config cc;
    rsq_consumer_stats st;
    char name[64];
    long long c0, c1, u;
    const char *counted = mode == RSQ_RECLAIM_AUTOCLAIM ? "xautoclaim" : "xpending";
    double s;
    long got;
    uint64_t t0;
    add_entries(adm, key, K_IDLE);
    if (script(adm, key, "idle", "g", "gone", "100", IDLE_MS) != K_IDLE) die("fill", "idle entries not made");
    snprintf(name, sizeof name, "reclaimer-%s-%ld", mode == RSQ_RECLAIM_AUTOCLAIM ? "auto" : "xpending", L);
    client_open(&c, g_tcp);
    cons_config(&cc, key, "g", name);
    cc.count = 0; /* the default prefetch: what a user's reclaim pass claims at a time */
    cc.reclaim = mode;
    if (rsq_consumer_init(&cons, &c, &cc) != RSQ_OK) die("consumer", rsq_errstr(&c));
    cmdstat(adm, counted, &c0, &u);
    t0 = bench_now_ns();
    for (got = 0; got < K_IDLE; got++) {
        const rsq_message *m;
        rsq_result rc = rsq_consumer_next(&cons, &m, 30000);
        if (rc != RSQ_OK) die("reclaim", rc == RSQ_EMPTY ? "idle entries not reclaimed within 30 s" : rsq_errstr(&c));
        if (rsq_ack(&cons, m) != RSQ_OK) die("ack", rsq_errstr(&c));
    }
    s = secs_since(t0);
    if (rsq_consumer_flush(&cons) != RSQ_OK) die("flush", rsq_errstr(&c));
    cmdstat(adm, counted, &c1, &u);
    *calls = c1 - c0;
    rsq_consumer_get_stats(&cons, &st);
    if (st.reclaimed != K_IDLE) {
        say("reclaim at L=%ld: %llu reclaimed, %d expected (live entries taken?)", L, (unsigned long long)st.reclaimed, K_IDLE);
        g_failures++;
    }
    rsq_consumer_free(&cons);
    rsq_client_free(&c);
    /* the same consumers in the group at every L: only the pending list grows */
    cmd(adm, "XGROUP", "DELCONSUMER", key, "g", name, (char *)0);
    return s;
}

static double time_stats(rsq_client *c, const char *key, size_t want_groups, double *srv_us) {
    double v[REPS], w[REPS];
    int i;
    for (i = 0; i < REPS; i++) {
        rsq_stream_info info;
        rsq_group_info groups[64];
        size_t n = 0;
        double u0 = server_cmd_us(c);
        uint64_t t0 = bench_now_ns();
        if (rsq_stream_stats(c, key, &info, groups, 64, &n) != RSQ_OK) die("rsq_stream_stats", rsq_errstr(c));
        v[i] = secs_since(t0) * 1e3;
        w[i] = server_cmd_us(c) - u0;
        if (want_groups && n != want_groups) {
            say("rsq_stream_stats on %s: %zu groups reported, %zu exist", key, n, want_groups);
            g_failures++;
            want_groups = 0;
        }
    }
    if (srv_us) *srv_us = median(w, REPS);
    return median(v, REPS);
}

static double time_trim(rsq_client *c, const char *key, double *srv_us) {
    double v[REPS], w[REPS];
    int i;
    for (i = 0; i < REPS; i++) {
        long long trimmed;
        double u0 = server_cmd_us(c);
        uint64_t t0 = bench_now_ns();
        if (rsq_trim_safe(c, key, 0, &trimmed) != RSQ_OK) die("rsq_trim_safe", rsq_errstr(c));
        v[i] = secs_since(t0) * 1e3;
        w[i] = server_cmd_us(c) - u0;
    }
    if (srv_us) *srv_us = median(w, REPS);
    return median(v, REPS);
}

/* retire with nothing to retire (min idle out of reach): the cost of the walk */
static double time_retire_none(rsq_client *c, const char *key, const char *group, double *srv_us) {
    double v[REPS], w[REPS];
    int i;
    for (i = 0; i < REPS; i++) {
        int n;
        double u0 = server_cmd_us(c);
        uint64_t t0 = bench_now_ns();
        if (rsq_retire_idle_consumers(c, key, group, 1000000000LL, &n) != RSQ_OK) die("rsq_retire_idle_consumers", rsq_errstr(c));
        v[i] = secs_since(t0) * 1e3;
        w[i] = server_cmd_us(c) - u0;
    }
    if (srv_us) *srv_us = median(w, REPS);
    return median(v, REPS);
}

static void measure_pending(const long *Ls, int nL, long msgs, int runs, lrow *out) {
    const char *key = "scale:pending", *ctl = "scale:control";
    rsq_client adm, ct, cu, cc2;
    rsq_consumer wt, wu, wc;
    rsq_consumer_config cc;
    long held = 0;
    int li;
    client_open(&adm, g_tcp);
    cmd(&adm, "FLUSHALL", (char *)0);
    cmd(&adm, "XGROUP", "CREATE", key, "g", "0", "MKSTREAM", (char *)0);
    cmd(&adm, "XGROUP", "CREATE", ctl, "g", "0", "MKSTREAM", (char *)0);
    /* the three consumers under test start now, on an empty list: their first reclaim
       pass is behind them, the next one an hour away (LIVE_VIS_MS / 2) */
    client_open(&ct, g_tcp);
    client_open(&cu, g_unix);
    client_open(&cc2, g_tcp);
    cons_config(&cc, ctl, "g", "worker-control");
    if (rsq_consumer_init(&wc, &cc2, &cc) != RSQ_OK) die("consumer", rsq_errstr(&cc2));
    cons_config(&cc, key, "g", "worker-tcp");
    if (rsq_consumer_init(&wt, &ct, &cc) != RSQ_OK) die("consumer", rsq_errstr(&ct));
    cons_config(&cc, key, "g", "worker-unix");
    if (rsq_consumer_init(&wu, &cu, &cc) != RSQ_OK) die("consumer", rsq_errstr(&cu));
    add_entries(&adm, key, 2 * CONS_COUNT);
    consume_n(&wt, &ct, CONS_COUNT);
    consume_n(&wu, &cu, CONS_COUNT);
    add_entries(&adm, ctl, CONS_COUNT);
    consume_n(&wc, &cc2, CONS_COUNT);
    for (li = 0; li < nL; li++) {
        lrow *o = &out[li];
        uint64_t t0 = bench_now_ns();
        int run;
        memset(o, 0, sizeof *o);
        o->L = Ls[li];
        add_entries(&adm, key, o->L - held);
        hold_entries(&adm, key, "g", "holder", o->L - held);
        held = o->L;
        o->mem_mib = server_mem_mib(&adm);
        say("(L) %ld entries pending (filled in %.1f s, server %ld MiB)", o->L, secs_since(t0), o->mem_mib);
        o->reclaim_auto_s = reclaim_k(&adm, key, o->L, RSQ_RECLAIM_AUTOCLAIM, &o->autoclaim_calls);
        o->reclaim_pc_s = reclaim_k(&adm, key, o->L, RSQ_RECLAIM_PENDING_CLAIM, &o->pending_calls);
        o->stats_ms = time_stats(&adm, key, 1, &o->stats_srv_us);
        o->trim_ms = time_trim(&adm, key, &o->trim_srv_us);
        o->retire_ms = time_retire_none(&adm, key, "g", &o->retire_srv_us);
        /* msgs is a multiple of COUNT: no run leaves entries prefetched in a worker's
           batch, and nothing is left unread (lag 0: stats count no lag) */
        add_entries(&adm, key, 2 * msgs * runs);
        add_entries(&adm, ctl, msgs * runs);
        for (run = 0; run < runs; run++) {
            double st = consume_n(&wt, &ct, msgs), su = consume_n(&wu, &cu, msgs), sc = consume_n(&wc, &cc2, msgs);
            if (msgs / st > o->tcp_rate) o->tcp_rate = msgs / st;
            if (msgs / su > o->unix_rate) o->unix_rate = msgs / su;
            if (msgs / sc > o->ctl_rate) o->ctl_rate = msgs / sc;
            if (g_verbose) say("(L) %ld run %d: tcp %.0f/s unix %.0f/s control %.0f/s", o->L, run, msgs / st, msgs / su, msgs / sc);
        }
        say("(L) %ld: consume tcp %.0f/s unix %.0f/s control %.0f/s; reclaim %.3f s (%lld XAUTOCLAIM), %.3f s (%lld XPENDING); stats %.2f ms, trim %.2f ms, retire %.2f ms",
            o->L, o->tcp_rate, o->unix_rate, o->ctl_rate, o->reclaim_auto_s, o->autoclaim_calls, o->reclaim_pc_s, o->pending_calls,
            o->stats_ms, o->trim_ms, o->retire_ms);
    }
    rsq_consumer_free(&wt);
    rsq_consumer_free(&wu);
    rsq_consumer_free(&wc);
    rsq_client_free(&ct);
    rsq_client_free(&cu);
    rsq_client_free(&cc2);
    cmd(&adm, "FLUSHALL", (char *)0);
    rsq_client_free(&adm);
}

/* ------------------------------------------------------------------------------------ */
/* (N) consumers in one group, one process each */

typedef struct nrow {
    int N;
    long total;
    double rate, fairness;
    double client_cpu_us, server_cpu_us; /* CPU per message: every consumer process; the server */
    long dups, lost, min_share, max_share;
} nrow;

/* A child: its consumer makes its first call on the empty group (setup and its
   first reclaim pass behind it), says it is ready, waits for the go, then reads until
   the group has nothing left for 1 s; writes to `path` its count, the time of its
   last message, its CPU time since the go and every message number. */
static void n_child(const char *key, int idx, int ready_fd, int go_fd, const char *path) {
    rsq_client c;
    rsq_consumer cons;
    rsq_consumer_config cc;
    const rsq_message *m;
    char name[32], b;
    uint32_t *seen = NULL;
    size_t cap = 0;
    long n = 0;
    uint64_t last = 0;
    double cpu;
    FILE *f;
    rsq_result rc;
    g_forked = 1;
    snprintf(name, sizeof name, "c%d", idx);
    client_open(&c, g_tcp);
    cons_config(&cc, key, "g", name);
    if (rsq_consumer_init(&cons, &c, &cc) != RSQ_OK) die("consumer", rsq_errstr(&c));
    if ((rc = rsq_consumer_next(&cons, &m, 1)) != RSQ_EMPTY) die("consumer setup", rc == RSQ_OK ? "a message before the fill" : rsq_errstr(&c));
    if (write(ready_fd, "r", 1) != 1 || read(go_fd, &b, 1) != 1) _exit(1);
    cpu = self_cpu_s();
    for (;;) {
        rc = rsq_consumer_next(&cons, &m, 1000);
        if (rc == RSQ_EMPTY) break;
        if (rc != RSQ_OK) die("consume", rsq_errstr(&c));
        if ((size_t)n == cap) {
            cap = cap ? cap * 2 : 4096;
            seen = (uint32_t *)realloc(seen, cap * sizeof *seen);
            if (!seen) die("consume", "out of memory");
        }
        seen[n++] = m->payload && m->payload_len >= 10 ? (uint32_t)strtoul(m->payload, NULL, 10) : UINT32_MAX;
        if (rsq_ack(&cons, m) != RSQ_OK) die("ack", rsq_errstr(&c));
        last = bench_now_ns();
    }
    if (rsq_consumer_flush(&cons) != RSQ_OK) die("flush", rsq_errstr(&c));
    cpu = self_cpu_s() - cpu;
    f = fopen(path, "wb");
    if (!f || fwrite(&n, sizeof n, 1, f) != 1 || fwrite(&last, sizeof last, 1, f) != 1 || fwrite(&cpu, sizeof cpu, 1, f) != 1 ||
        (n && fwrite(seen, sizeof *seen, (size_t)n, f) != (size_t)n) || fclose(f) != 0)
        _exit(1);
    rsq_consumer_free(&cons);
    rsq_client_free(&c);
    _exit(0);
}

static void fill_numbered(rsq_client *c, const char *key, long total) {
    rsq_producer p;
    rsq_producer_config pc;
    static char bodies[256][BENCH_PAYLOAD];
    rsq_outgoing m[256];
    long done = 0;
    int i;
    rsq_producer_config_init(&pc);
    pc.queue = key;
    if (rsq_producer_init(&p, c, &pc) != RSQ_OK) die("producer", rsq_errstr(c));
    memset(m, 0, sizeof m);
    while (done < total) {
        size_t k = (size_t)(total - done < 256 ? total - done : 256);
        for (i = 0; i < (int)k; i++) {
            memset(bodies[i], '.', BENCH_PAYLOAD);
            bodies[i][snprintf(bodies[i], 16, "%010ld", done + i)] = '.';
            m[i].payload = bodies[i];
            m[i].payload_len = BENCH_PAYLOAD;
        }
        if (rsq_publish_batch(&p, m, k, NULL, NULL) != RSQ_OK) die("fill", rsq_errstr(c));
        done += (long)k;
    }
}

/* One run of N consumer processes over `total` messages: the aggregate rate, the
   shares, and every message counted once (o is filled; the caller keeps the best). */
static void consumers_run(rsq_client *adm, const char *key, int N, long total, const char *dir, nrow *o) {
    int i, ready[2], go[2], st;
    pid_t *pids = (pid_t *)calloc((size_t)N, sizeof *pids);
    unsigned char *count = (unsigned char *)calloc((size_t)total, 1);
    uint64_t t_go, t_end = 0;
    char path[1024], b;
    double cpu_srv, cpu_cli;
    if (!pids || !count) die("consumers", "out of memory");
    memset(o, 0, sizeof *o);
    o->N = N;
    o->total = total;
    o->min_share = -1;
    cmd(adm, "FLUSHALL", (char *)0);
    cmd(adm, "XGROUP", "CREATE", key, "g", "0", "MKSTREAM", (char *)0);
    if (pipe(ready) != 0 || pipe(go) != 0) die("pipe", strerror(errno));
    for (i = 0; i < N; i++) {
        snprintf(path, sizeof path, "%s/consumer-%d.bin", dir, i);
        pids[i] = fork();
        if (pids[i] < 0) die("fork", strerror(errno));
        if (pids[i] == 0) {
            close(ready[0]);
            close(go[1]);
            n_child(key, i, ready[1], go[0], path);
        }
    }
    close(ready[1]);
    close(go[0]);
    for (i = 0; i < N; i++)
        if (read(ready[0], &b, 1) != 1) die("consumers", "a child did not start");
    fill_numbered(adm, key, total);
    cpu_srv = server_cpu_s(adm);
    cpu_cli = 0;
    t_go = bench_now_ns();
    for (i = 0; i < N; i++)
        if (write(go[1], "g", 1) != 1) die("consumers", "cannot start the children");
    close(go[1]);
    close(ready[0]);
    for (i = 0; i < N; i++) {
        FILE *f;
        long n = 0, j;
        uint64_t last = 0;
        double cpu = 0;
        waitpid(pids[i], &st, 0);
        snprintf(path, sizeof path, "%s/consumer-%d.bin", dir, i);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 || !(f = fopen(path, "rb"))) {
            say("(N) consumer %d of %d failed", i, N);
            g_failures++;
            continue;
        }
        if (fread(&n, sizeof n, 1, f) == 1 && fread(&last, sizeof last, 1, f) == 1 && fread(&cpu, sizeof cpu, 1, f) == 1)
            for (j = 0; j < n; j++) {
                uint32_t s;
                if (fread(&s, sizeof s, 1, f) != 1) break;
                if (s < (uint32_t)total && count[s] < 255) count[s]++;
            }
        fclose(f);
        remove(path);
        cpu_cli += cpu;
        if (last > t_end) t_end = last;
        if (o->min_share < 0 || n < o->min_share) o->min_share = n;
        if (n > o->max_share) o->max_share = n;
    }
    o->client_cpu_us = cpu_cli * 1e6 / (double)total;
    o->server_cpu_us = (server_cpu_s(adm) - cpu_srv) * 1e6 / (double)total;
    for (i = 0; i < (int)total; i++) {
        if (count[i] == 0) o->lost++;
        else o->dups += count[i] - 1;
    }
    o->rate = t_end > t_go ? (double)total / ((double)(t_end - t_go) / 1e9) : -1;
    o->fairness = o->max_share > 0 ? (double)o->min_share / (double)o->max_share : -1;
    if (o->dups || o->lost) g_failures++;
    free(pids);
    free(count);
}

static void measure_consumers(const int *Ns, int nN, long total, int runs, const char *dir, nrow *out) {
    const char *key = "scale:consumers";
    rsq_client adm;
    int ni, run;
    client_open(&adm, g_tcp);
    for (ni = 0; ni < nN; ni++) {
        nrow *o = &out[ni], r;
        long dups = 0, lost = 0;
        memset(o, 0, sizeof *o);
        for (run = 0; run < runs; run++) {
            consumers_run(&adm, key, Ns[ni], total, dir, &r);
            dups += r.dups;
            lost += r.lost;
            if (g_verbose) say("(N) %d consumers, run %d: %.0f msgs/s, shares %ld..%ld", r.N, run, r.rate, r.min_share, r.max_share);
            if (r.rate > o->rate) *o = r;
        }
        o->dups = dups; /* over every run */
        o->lost = lost;
        say("(N) %d consumers: %.0f msgs/s (best of %d), shares %ld..%ld (%.2f), duplicates %ld, lost %ld; CPU/msg %.2f us clients, %.2f us server",
            o->N, o->rate, runs, o->min_share, o->max_share, o->fairness, o->dups, o->lost, o->client_cpu_us, o->server_cpu_us);
    }
    cmd(&adm, "FLUSHALL", (char *)0);
    rsq_client_free(&adm);
}

/* ------------------------------------------------------------------------------------ */
/* (G) groups on one stream */

typedef struct grow {
    int G;
    double pub_us, pub_trim_us, trim_ms, stats_ms, retire_ms;
    double stats_lag_ms;          /* stats with every group RSQ__LAG_COUNT_MAX behind */
    int retired_all;
} grow;

/* Moves a group's last-delivered ID to the end, as a group that has read everything:
   from Redis 7.0 with its read counter (ENTRIESREAD), as reading would leave it, so
   that the server can tell its lag (XINFO GROUPS). */
static void group_to_end(rsq_client *c, const char *key, const char *group) {
    char n[24];
    const rsq_reply *r, *e;
    if (g_version < 70000) {
        cmd(c, "XGROUP", "SETID", key, group, "$", (char *)0);
        return;
    }
    r = cmd(c, "XINFO", "STREAM", key, (char *)0);
    e = rsq_reply_get(r, "entries-added");
    snprintf(n, sizeof n, "%lld", e ? e->integer : 0);
    cmd(c, "XGROUP", "SETID", key, group, "$", "ENTRIESREAD", n, (char *)0);
}

static double publish_run(rsq_client *c, const char *key, long n, int safe_trim_every) {
    rsq_producer p;
    rsq_producer_config pc;
    rsq_outgoing m[64];
    long done = 0;
    int i;
    uint64_t t0;
    rsq_producer_config_init(&pc);
    pc.queue = key;
    pc.safe_trim_every = safe_trim_every;
    if (rsq_producer_init(&p, c, &pc) != RSQ_OK) die("producer", rsq_errstr(c));
    memset(m, 0, sizeof m);
    for (i = 0; i < 64; i++) { m[i].payload = g_payload; m[i].payload_len = BENCH_PAYLOAD; }
    t0 = bench_now_ns();
    while (done < n) {
        size_t k = (size_t)(n - done < 64 ? n - done : 64);
        if (rsq_publish_batch(&p, m, k, NULL, NULL) != RSQ_OK) die("publish", rsq_errstr(c));
        done += (long)k;
    }
    return secs_since(t0);
}

static void measure_groups(const int *Gs, int nG, long msgs, grow *out) {
    const char *key = "scale:groups";
    rsq_client adm;
    int gi;
    client_open(&adm, g_tcp);
    for (gi = 0; gi < nG; gi++) {
        grow *o = &out[gi];
        char gname[32];
        double v[REPS];
        int i, r;
        memset(o, 0, sizeof *o);
        o->G = out[gi].G = Gs[gi];
        o->retired_all = 1;
        cmd(&adm, "FLUSHALL", (char *)0);
        for (i = 0; i < o->G; i++) {
            snprintf(gname, sizeof gname, "g%d", i);
            cmd(&adm, "XGROUP", "CREATE", key, gname, "0", "MKSTREAM", (char *)0);
        }
        o->pub_us = publish_run(&adm, key, msgs, 0) * 1e6 / (double)msgs;
        /* each group holds 100 pending entries and has read everything (lag 0) */
        for (i = 0; i < o->G; i++) {
            snprintf(gname, sizeof gname, "g%d", i);
            hold_entries(&adm, key, gname, "holder", 100);
            group_to_end(&adm, key, gname);
        }
        o->pub_trim_us = publish_run(&adm, key, msgs, 1000) * 1e6 / (double)msgs;
        for (i = 0; i < o->G; i++) {
            snprintf(gname, sizeof gname, "g%d", i);
            group_to_end(&adm, key, gname);
        }
        o->trim_ms = time_trim(&adm, key, NULL);
        o->stats_ms = time_stats(&adm, key, (size_t)o->G, NULL);
        /* lag: the entries no group has read yet are counted on the server, up to
           10000 per group (a lower bound past that) */
        add_entries(&adm, key, 10000);
        o->stats_lag_ms = time_stats(&adm, key, (size_t)o->G, NULL);
        /* retire: G idle consumers without pending entries, all retired each time */
        for (r = 0; r < REPS; r++) {
            int n = 0;
            uint64_t t0;
            for (i = 0; i < o->G; i++) {
                snprintf(gname, sizeof gname, "idle%d", i);
                cmd(&adm, "XGROUP", "CREATECONSUMER", key, "g0", gname, (char *)0);
            }
            t0 = bench_now_ns();
            if (rsq_retire_idle_consumers(&adm, key, "g0", 0, &n) != RSQ_OK) die("rsq_retire_idle_consumers", rsq_errstr(&adm));
            v[r] = secs_since(t0) * 1e3;
            if (n != o->G) {
                if (o->retired_all) say("(G) retire on %d consumers: %d retired", o->G, n);
                o->retired_all = 0;
            }
        }
        if (!o->retired_all) g_failures++;
        o->retire_ms = median(v, REPS);
        say("(G) %d groups: publish %.2f us/msg (%.2f with safe_trim_every 1000); trim %.2f ms, stats %.2f ms (%.2f ms lagging 10k), retire %d: %.2f ms",
            o->G, o->pub_us, o->pub_trim_us, o->trim_ms, o->stats_ms, o->stats_lag_ms, o->G, o->retire_ms);
    }
    cmd(&adm, "FLUSHALL", (char *)0);
    rsq_client_free(&adm);
}

/* ------------------------------------------------------------------------------------ */
/* (P) priority levels x shards */

typedef struct prow {
    int levels, shards;
    double us;
} prow;

static double layout_run(rsq_client *c, int levels, int shards, long n) {
    const char *queue = "scale:layout";
    rsq_producer p;
    rsq_producer_config pc;
    rsq_consumer cons;
    rsq_consumer_config cc;
    rsq_outgoing m[256];
    long done = 0;
    int i;
    double s;
    cmd(c, "FLUSHALL", (char *)0);
    rsq_producer_config_init(&pc);
    pc.queue = queue;
    pc.priority_levels = levels;
    pc.shards = shards;
    if (rsq_producer_init(&p, c, &pc) != RSQ_OK) die("producer", rsq_errstr(c));
    memset(m, 0, sizeof m);
    while (done < n) {
        size_t k = (size_t)(n - done < 256 ? n - done : 256);
        for (i = 0; i < (int)k; i++) {
            m[i].payload = g_payload;
            m[i].payload_len = BENCH_PAYLOAD;
            m[i].priority = (int)((done + i) % levels);
        }
        if (rsq_publish_batch(&p, m, k, NULL, NULL) != RSQ_OK) die("fill", rsq_errstr(c));
        done += (long)k;
    }
    cons_config(&cc, queue, "g", "layout");
    cc.priority_levels = levels;
    cc.shards = shards;
    if (rsq_consumer_init(&cons, c, &cc) != RSQ_OK) die("consumer", rsq_errstr(c));
    s = consume_n(&cons, c, n);
    rsq_consumer_free(&cons);
    return s;
}

static void measure_layout(const int *lv, int nlv, const int *sh, int nsh, long msgs, int runs, prow *out) {
    rsq_client c;
    int a, b, run;
    client_open(&c, g_tcp);
    for (a = 0; a < nlv; a++)
        for (b = 0; b < nsh; b++) {
            prow *o = &out[a * nsh + b];
            o->levels = lv[a];
            o->shards = sh[b];
            o->us = -1;
            for (run = 0; run < runs; run++) {
                double us = layout_run(&c, lv[a], sh[b], msgs) * 1e6 / (double)msgs;
                if (o->us < 0 || us < o->us) o->us = us;
            }
            say("(P) %d levels x %d shards: %.3f us/msg", lv[a], sh[b], o->us);
        }
    cmd(&c, "FLUSHALL", (char *)0);
    rsq_client_free(&c);
}

/* ------------------------------------------------------------------------------------ */

static const char *verdict(int ok) { return ok ? "met" : "MISSED"; }

/* "does not grow with L": at most 1.5x, or within 20 us of the server's time (these
   calls take 3 to 30 us there and vary by about 15 us from call to call; a cost
   that grew with 1000x the entries would show in milliseconds) */
static int flat(double first_us, double last_us) { return last_us <= 1.5 * first_us || last_us - first_us <= 20; }


static void fmt_count(char *o, size_t cap, long v) {
    if (v >= 1000000 && v % 1000000 == 0) snprintf(o, cap, "%ldM", v / 1000000);
    else if (v >= 1000 && v % 1000 == 0) snprintf(o, cap, "%ldk", v / 1000);
    else snprintf(o, cap, "%ld", v);
}

int main(int argc, char **argv) {
    static const long Ls_full[] = { 1000, 10000, 100000, 1000000 }, Ls_quick[] = { 1000, 10000 };
    static const int Ns_full[] = { 1, 4, 16, 64 }, Ns_quick[] = { 1, 4 };
    static const int Gs_full[] = { 1, 8, 64 }, Gs_quick[] = { 1, 8 };
    static const int lv_full[] = { 1, 2, 4, 8 }, lv_quick[] = { 1, 8 };
    static const int sh_full[] = { 1, 2, 4, 8, 16 }, sh_quick[] = { 1, 16 };
    const long *Ls;
    const int *Ns, *Gs, *lv, *sh;
    int nL, nN, nG, nlv, nsh, quick = 0, i, runs;
    long l_msgs, n_total, g_msgs, p_msgs;
    const char *dir = "build/scale", *env;
    lrow lr[4];
    nrow nr[4];
    grow gr[3];
    prow pr[20];
    srv s;
    char head[160], cell[24], sver[32] = "?";
    long version = 0;
    uint64_t t_start = bench_now_ns();
    FILE *f;
    memset(g_payload, 'x', BENCH_PAYLOAD);
    g_payload[BENCH_PAYLOAD] = '\0';
    env = getenv("SCALE_VERBOSE");
    g_verbose = env && *env && strcmp(env, "0") != 0;
    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-q")) quick = 1;
        else if (!strcmp(argv[i], "-d") && i + 1 < argc) dir = argv[++i];
        else { fprintf(stderr, "usage: %s [-q] [-d DIR]\n", argv[0]); return 2; }
    }
    if (quick) {
        Ls = Ls_quick; nL = 2; Ns = Ns_quick; nN = 2; Gs = Gs_quick; nG = 2;
        lv = lv_quick; nlv = 2; sh = sh_quick; nsh = 2;
        l_msgs = 20480; n_total = 20000; g_msgs = 10000; p_msgs = 10000; runs = 2;
    } else {
        Ls = Ls_full; nL = 4; Ns = Ns_full; nN = 4; Gs = Gs_full; nG = 3;
        lv = lv_full; nlv = 4; sh = sh_full; nsh = 5;
        l_msgs = 102400; n_total = 200000; g_msgs = 100000; p_msgs = 50000; runs = 3;
    }
    if (srv_start(&s, NULL) != 0) return 1; /* stopped by pid at exit (server.c) */
    snprintf(g_tcp, sizeof g_tcp, "%s", s.url);
    snprintf(g_unix, sizeof g_unix, "%s", s.unix_url);
    {
        rsq_client c;
        client_open(&c, g_tcp);
        if (rsq_server_version(&c, &version) == RSQ_OK)
            snprintf(sver, sizeof sver, "%ld.%ld.%ld", version / 10000, version / 100 % 100, version % 100);
        rsq_client_free(&c);
    }
    g_version = version;
    if (version && version < 60200) {
        fprintf(stderr, "scale: redis-server %s: the bench needs 6.2 (XAUTOCLAIM, XTRIM MINID, CREATECONSUMER)\n", sver);
        return 1;
    }
    env = getenv("SCALE_ONLY");
    memset(lr, 0, sizeof lr);
    memset(nr, 0, sizeof nr);
    memset(gr, 0, sizeof gr);
    memset(pr, 0, sizeof pr);
    if (!env || strchr(env, 'P')) measure_layout(lv, nlv, sh, nsh, p_msgs, runs, pr);
    if (!env || strchr(env, 'G')) measure_groups(Gs, nG, g_msgs, gr);
    if (!env || strchr(env, 'N')) measure_consumers(Ns, nN, n_total, runs, dir, nr);
    if (!env || strchr(env, 'L')) measure_pending(Ls, nL, l_msgs, runs + 2, lr);
    srv_stop(&s, 0);

    /* CSV */
    f = csv_open(dir, "pending.csv",
                 "pending,consume_tcp_per_s,consume_unix_per_s,consume_tcp_us,consume_unix_us,control_per_s,reclaim_autoclaim_s,"
                 "autoclaim_calls,reclaim_xpending_s,xpending_calls,stats_ms,trim_ms,retire_ms,server_mib,"
                 "stats_server_us,trim_server_us,retire_server_us");
    for (i = 0; i < nL; i++)
        fprintf(f, "%ld,%.0f,%.0f,%.4f,%.4f,%.0f,%.4f,%lld,%.4f,%lld,%.4f,%.4f,%.4f,%ld,%.1f,%.1f,%.1f\n", lr[i].L, lr[i].tcp_rate,
                lr[i].unix_rate, 1e6 / lr[i].tcp_rate, 1e6 / lr[i].unix_rate, lr[i].ctl_rate, lr[i].reclaim_auto_s, lr[i].autoclaim_calls,
                lr[i].reclaim_pc_s, lr[i].pending_calls, lr[i].stats_ms, lr[i].trim_ms, lr[i].retire_ms, lr[i].mem_mib,
                lr[i].stats_srv_us, lr[i].trim_srv_us, lr[i].retire_srv_us);
    fclose(f);
    f = csv_open(dir, "consumers.csv",
                 "consumers,messages,aggregate_per_s,ratio_to_1,fairness,min_share,max_share,duplicates,lost,client_cpu_us,server_cpu_us");
    for (i = 0; i < nN; i++)
        fprintf(f, "%d,%ld,%.0f,%.4f,%.4f,%ld,%ld,%ld,%ld,%.3f,%.3f\n", nr[i].N, nr[i].total, nr[i].rate, nr[i].rate / nr[0].rate,
                nr[i].fairness, nr[i].min_share, nr[i].max_share, nr[i].dups, nr[i].lost, nr[i].client_cpu_us, nr[i].server_cpu_us);
    fclose(f);
    f = csv_open(dir, "groups.csv", "groups,publish_us,publish_safe_trim_us,trim_ms,stats_ms,retire_ms,stats_lag10k_ms");
    for (i = 0; i < nG; i++)
        fprintf(f, "%d,%.4f,%.4f,%.4f,%.4f,%.4f,%.4f\n", gr[i].G, gr[i].pub_us, gr[i].pub_trim_us, gr[i].trim_ms, gr[i].stats_ms,
                gr[i].retire_ms, gr[i].stats_lag_ms);
    fclose(f);
    f = csv_open(dir, "layout.csv", "levels,shards,consume_us,ratio_to_1x1");
    for (i = 0; i < nlv * nsh; i++)
        fprintf(f, "%d,%d,%.4f,%.4f\n", pr[i].levels, pr[i].shards, pr[i].us, pr[i].us / pr[0].us);
    fclose(f);

    /* the table */
    rep("rsq scale bench (issue 19): 64-byte payloads, redis-server %s (persistence off), %s run, %.0f s\n", sver,
        quick ? "reduced (-q)" : "full", secs_since(t_start));
    rep("\n(L) pending-list size: consume+ack COUNT %d (best of %d x %ld msgs; ctl: the same on a stream without\n"
        "    pending entries, same server, same minute); reclaim pass finding %d idle entries behind L live ones\n"
        "    (default prefetch 16; the server's calls during it, resume's XPENDINGs included)\n",
        CONS_COUNT, runs + 2, l_msgs, K_IDLE);
    rep("  %-8s %10s %10s %10s %8s %8s %10s %8s %10s %7s %8s\n", "pending", "tcp msg/s", "unix msg/s", "ctl msg/s", "tcp us",
        "unix us", "reclaim s", "XAUTOCL", "xpend+cl s", "XPEND", "srv MiB");
    for (i = 0; i < nL; i++) {
        fmt_count(cell, sizeof cell, lr[i].L);
        rep("  %-8s %10.0f %10.0f %10.0f %8.3f %8.3f %10.3f %8lld %10.3f %7lld %8ld\n", cell, lr[i].tcp_rate, lr[i].unix_rate,
            lr[i].ctl_rate, 1e6 / lr[i].tcp_rate, 1e6 / lr[i].unix_rate, lr[i].reclaim_auto_s, lr[i].autoclaim_calls,
            lr[i].reclaim_pc_s, lr[i].pending_calls, lr[i].mem_mib);
    }
    rep("\n(L) admin calls on the same list: client time and the server's time in the call's commands (commandstats),\n"
        "    medians of %d\n", REPS);
    rep("  %-8s %10s %12s %10s %12s %10s %12s\n", "pending", "stats ms", "stats srv us", "trim ms", "trim srv us", "retire ms",
        "retire srv us");
    for (i = 0; i < nL; i++) {
        fmt_count(cell, sizeof cell, lr[i].L);
        rep("  %-8s %10.3f %12.1f %10.3f %12.1f %10.3f %12.1f\n", cell, lr[i].stats_ms, lr[i].stats_srv_us, lr[i].trim_ms,
            lr[i].trim_srv_us, lr[i].retire_ms, lr[i].retire_srv_us);
    }
    rep("\n(N) consumers in one group, one process each, COUNT %d, %ld messages (best of %d; shares of that run;\n"
        "    duplicates and losses over every run)\n", CONS_COUNT, n_total, runs);
    rep("  %-8s %12s %9s %9s %13s %10s %6s %11s %11s\n", "N", "aggregate/s", "vs N=1", "fairness", "min..max", "duplicates",
        "lost", "cli CPU us", "srv CPU us");
    for (i = 0; i < nN; i++) {
        char mm[40];
        snprintf(mm, sizeof mm, "%ld..%ld", nr[i].min_share, nr[i].max_share);
        rep("  %-8d %12.0f %8.2fx %9.2f %13s %10ld %6ld %11.2f %11.2f\n", nr[i].N, nr[i].rate, nr[i].rate / nr[0].rate,
            nr[i].fairness, mm, nr[i].dups, nr[i].lost, nr[i].client_cpu_us, nr[i].server_cpu_us);
    }
    rep("\n(G) groups on one stream (each holding 100 pending entries); publish in batches of 64, %ld msgs;\n"
        "    retire: G idle consumers retired in one call; last column: stats once 10k entries wait unread in every group\n", g_msgs);
    rep("  %-8s %11s %16s %9s %9s %10s %16s\n", "G", "publish us", "+safe trim/1000", "trim ms", "stats ms", "retire ms",
        "stats, lag 10k");
    for (i = 0; i < nG; i++)
        rep("  %-8d %11.3f %16.3f %9.3f %9.3f %10.3f %16.3f%s\n", gr[i].G, gr[i].pub_us, gr[i].pub_trim_us, gr[i].trim_ms,
            gr[i].stats_ms, gr[i].retire_ms, gr[i].stats_lag_ms, gr[i].retired_all ? "" : "  (not all retired)");
    rep("\n(P) consume+ack cost per message, us (best of %d x %ld msgs, spread over levels and shards)\n", runs, p_msgs);
    rep("  %-12s", "levels\\shards");
    for (i = 0; i < nsh; i++) rep(" %8d", sh[i]);
    rep("\n");
    for (i = 0; i < nlv; i++) {
        int j;
        rep("  %-12d ", lv[i]);
        for (j = 0; j < nsh; j++) rep(" %8.3f", pr[i * nsh + j].us);
        rep("\n");
    }

    /* goals */
    rep("\ngoals (issue 19; a report, not a test)%s:\n", quick ? " -- reduced run: over the reduced range only" : "");
    {
        const lrow *a = &lr[0], *z = &lr[nL - 1];
        char la[16], lz[16];
        double ct = a->tcp_rate / z->tcp_rate, cu = a->unix_rate / z->unix_rate;
        double cr = (a->tcp_rate / a->ctl_rate) / (z->tcp_rate / z->ctl_rate);
        double r_stats = z->stats_srv_us / a->stats_srv_us, r_trim = z->trim_srv_us / a->trim_srv_us;
        double r_ret = z->retire_srv_us / a->retire_srv_us;
        double agg = nr[nN - 1].rate / nr[0].rate;
        long dups = 0, lost = 0;
        fmt_count(la, sizeof la, a->L);
        fmt_count(lz, sizeof lz, z->L);
        /* the verdict is on the cost relative to the control, measured in the same
           minute on the same server: what the pending list adds, whatever else the
           machine was doing while L grew */
        snprintf(head, sizeof head, "consume cost L=%s / L=%s <= 1.2x, against the control (tcp)", lz, la);
        rep("  %-62s %.2fx  %s\n", head, cr, verdict(cr <= 1.2));
        rep("  %-62s %.2fx; %.2fx; %.2fx\n", "  raw: tcp; unix; the control itself", ct, cu, a->ctl_rate / z->ctl_rate);
        snprintf(head, sizeof head, "reclaim pass over %s pending < 2 s (XAUTOCLAIM)", lz);
        rep("  %-62s %.3f s  %s\n", head, z->reclaim_auto_s, verdict(z->reclaim_auto_s < 2.0));
        snprintf(head, sizeof head, "  the same through XPENDING + XCLAIM (before 6.2)");
        rep("  %-62s %.3f s  %s\n", head, z->reclaim_pc_s, verdict(z->reclaim_pc_s < 2.0));
        snprintf(head, sizeof head, "N=%d aggregate >= 0.9x N=1", nr[nN - 1].N);
        rep("  %-62s %.2fx  %s\n", head, agg, verdict(agg >= 0.9));
        snprintf(head, sizeof head, "  CPU per message N=%d / N=1: clients; server", nr[nN - 1].N);
        rep("  %-62s %.2fx; %.2fx\n", head, nr[nN - 1].client_cpu_us / nr[0].client_cpu_us, nr[nN - 1].server_cpu_us / nr[0].server_cpu_us);
        for (i = 0; i < nN; i++) { dups += nr[i].dups; lost += nr[i].lost; }
        rep("  %-62s %ld, %ld  %s\n", "duplicates, losses over all N (0 expected)", dups, lost, verdict(!dups && !lost));
        snprintf(head, sizeof head, "stats/trim/retire flat in pending (server us, L=%s/L=%s <= 1.5x or +20 us)", lz, la);
        rep("  %-62s %.2fx, %.2fx, %.2fx  %s\n", head, r_stats, r_trim, r_ret,
            verdict(flat(a->stats_srv_us, z->stats_srv_us) && flat(a->trim_srv_us, z->trim_srv_us) &&
                    flat(a->retire_srv_us, z->retire_srv_us)));
        rep("  %-62s %.2fx, %.2fx, %.2fx\n", "  client time, the same ratios (round trips; noisy)", z->stats_ms / a->stats_ms,
            z->trim_ms / a->trim_ms, z->retire_ms / a->retire_ms);
        snprintf(head, sizeof head, "  ... and they grow with groups (G=%d / G=1: stats, trim, retire)", gr[nG - 1].G);
        rep("  %-62s %.2fx, %.2fx, %.2fx\n", head, gr[nG - 1].stats_ms / gr[0].stats_ms, gr[nG - 1].trim_ms / gr[0].trim_ms,
            gr[nG - 1].retire_ms / gr[0].retire_ms);
        snprintf(head, sizeof head, "  stats report all %d groups; retire removes all %d consumers", gr[nG - 1].G, gr[nG - 1].G);
        rep("  %-62s %s\n", head, verdict(gr[nG - 1].retired_all && !g_failures));
    }
    rep("\nnotes: the (L) consumers started before the list was filled, so their reclaim pass (default: every\n"
        "visibility / 2) is not inside the throughput; the reclaim columns give its cost. 'xautocl' and 'xpend'\n"
        "count the server's calls during that pass. CSV and charts: %s/*.csv, %s/scale.png, %s/scale.svg\n",
        dir, dir, dir);
    fputs(g_rep, stdout);
    {
        char path[1024];
        snprintf(path, sizeof path, "%s/scale.txt", dir);
        f = fopen(path, "w");
        if (!f) die(path, strerror(errno));
        fputs(g_rep, f);
        fclose(f);
    }
    if (g_failures) fprintf(stderr, "scale: %d check(s) failed (see above)\n", g_failures);
    free(g_rep);
    return g_failures ? 1 : 0;
}
