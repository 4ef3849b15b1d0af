/* chaos.c - proves that nothing the server accepted is lost under faults.

   chaos [--messages N] [--producers P] [--consumers C] [--restarts R] [--kills N]
         [--kill-ms K] [--restart-ms MS] [--cut-every-bytes B] [--seed S] [--timeout-s T]
         [--idempotent] [--retry-later]

   A private redis-server (appendonly yes, appendfsync always) behind the
   fault-injecting proxy (tests/proxy.c, found via $RSQ_PROXY_BIN or build/proxy),
   which cuts connections at random points in the byte stream. P producer processes
   publish N messages in all (each retries until every one of its messages is
   confirmed); C consumer processes in one group log every payload they handle, then
   ack it. Meanwhile a consumer is SIGKILLed every K ms (N times, while messages are
   still being published or consumed) and restarted (alternately
   under its old name, which resumes its pending entries, and under a new one, whose
   predecessor's entries are reclaimed), and redis-server is SIGKILLed and restarted R
   times. At the end every published message must have been handled at least once:

       lost=0 duplicates=D producer-duplicates=E reconnects=R

   D counts handlings beyond the first (at-least-once on the consumer's side), E the
   stream's entries beyond one per message (a publish resent after its confirmation
   was lost). With --idempotent every message carries its number as idempotency key,
   so E must be 0 (a producer's own retry of an unconfirmed message is a new publish
   call here, which only a key of the caller's makes safe). With --retry-later the
   consumers send every fifth message, on its first delivery, to a retry longer than
   the lease (1.5 s, visibility 1 s: through the delayed set and the group's retry
   stream) and handle it when it comes back: the delayed path under the same kills,
   cuts and restarts; the run is drained only when the delayed set and the retry
   stream are empty too.

   Exit status 0 when nothing was lost, 1 otherwise. */
#define _DEFAULT_SOURCE 1
#define RSQ_IMPLEMENTATION
#include "../rsq.h"
#include "server.h"
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_PROCS 16

static struct {
    long messages;
    int producers, consumers, restarts, kills, kill_ms, restart_ms, timeout_s;
    long cut_every;
    unsigned seed;
    int idempotent, retry_later;
} opt = { 100000, 4, 3, 2, 10, 1000, 2500, 600, 300000, 1, 0, 0 };

static long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void client_cfg(rsq_client_config *cfg, const char *url) {
    rsq_client_config_init(cfg);
    cfg->url = url;
    cfg->retry_attempts = RSQ_RETRY_FOREVER;
    cfg->retry_base_ms = 20;
    cfg->retry_max_ms = 500;
    cfg->connect_timeout_ms = 2000;
    cfg->io_timeout_ms = 3000;
}

static void write_stats(const char *dir, const char *who, const rsq_client *c, unsigned long long extra) {
    char path[600], line[160];
    rsq_client_stats st;
    int fd, n;
    rsq_client_get_stats(c, &st);
    snprintf(path, sizeof path, "%s/%s.stats", dir, who);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) return;
    n = snprintf(line, sizeof line, "%llu %llu\n", (unsigned long long)st.reconnects, extra);
    if (write(fd, line, (size_t)n) != n) { /* stats are best effort */ }
    close(fd);
}

/* ---- producer: publishes [from, to) and retries until each one is confirmed ---- */
static void producer_main(const char *url, const char *dir, int idx, long from, long to) {
    rsq_client c;
    rsq_client_config cfg;
    rsq_producer p;
    rsq_producer_config pc;
    rsq_outgoing m[50];
    rsq_result res[50];
    char body[50][24];
    char who[32];
    long next = from;
    client_cfg(&cfg, url);
    if (rsq_client_init(&c, &cfg) != RSQ_OK) _exit(2);
    rsq_producer_config_init(&pc);
    pc.queue = "chaos";
    if (rsq_producer_init(&p, &c, &pc) != RSQ_OK) _exit(2);
    memset(m, 0, sizeof m);
    while (next < to) {
        int n = 0, i, pending;
        for (; n < 50 && next + n < to; n++) {
            snprintf(body[n], sizeof body[n], "%ld", next + n);
            m[n].payload = body[n];
            m[n].payload_len = strlen(body[n]);
            m[n].idempotency_key = opt.idempotent ? body[n] : NULL;
        }
        for (i = 0; i < n; i++) res[i] = RSQ_ERR_IO;
        /* publish what is unconfirmed until everything is */
        for (pending = n; pending > 0;) {
            rsq_outgoing todo[50];
            int map[50], k = 0;
            rsq_result r2[50];
            for (i = 0; i < n; i++) if (res[i] != RSQ_OK) { todo[k] = m[i]; map[k++] = i; }
            rsq_publish_batch(&p, todo, (size_t)k, NULL, r2);
            pending = 0;
            for (i = 0; i < k; i++) { res[map[i]] = r2[i]; pending += r2[i] != RSQ_OK; }
            if (pending) usleep(50000);
        }
        next += n;
    }
    snprintf(who, sizeof who, "p%d", idx);
    {
        rsq_producer_stats st;
        rsq_producer_get_stats(&p, &st);
        write_stats(dir, who, &c, (unsigned long long)st.resent);
    }
    rsq_client_free(&c);
    _exit(0);
}

/* ---- consumer: logs each payload, then acks ---- */
static rsq_consumer *g_cons;
static int g_log = -1;
static void on_term(int sig) { (void)sig; if (g_cons) rsq_consumer_stop(g_cons); }

static rsq_action handle(void *user, rsq_consumer *k, const rsq_message *m) {
    char line[40];
    int n;
    (void)user;
    if (opt.retry_later && m->deliveries == 1 && m->payload && atol(m->payload) % 5 == 0) {
        rsq_consumer_retry_delay(k, 1500);
        return RSQ_ACTION_RETRY_LATER;
    }
    n = snprintf(line, sizeof line, "%.*s\n", (int)m->payload_len, m->payload ? m->payload : "");
    if (write(g_log, line, (size_t)n) != n) return RSQ_ACTION_RETRY;
    return RSQ_ACTION_ACK;
}

static void consumer_main(const char *url, const char *dir, const char *name) {
    rsq_client c;
    rsq_client_config cfg;
    rsq_consumer k;
    rsq_consumer_config cc;
    struct sigaction sa;
    char path[600];
    rsq_result rc;
    snprintf(path, sizeof path, "%s/%s.log", dir, name);
    g_log = open(path, O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (g_log < 0) _exit(2);
    client_cfg(&cfg, url);
    if (rsq_client_init(&c, &cfg) != RSQ_OK) _exit(2);
    rsq_consumer_config_init(&cc);
    cc.queue = "chaos";
    cc.group = "g";
    cc.name = name;
    cc.start = RSQ_START_ALL;
    cc.count = 32;
    cc.block_ms = 500;
    cc.visibility_ms = 1000;
    cc.reclaim_interval_ms = 300;
    cc.max_deliveries = -1; /* kills redeliver a lot here: never dead-letter */
    if (rsq_consumer_init(&k, &c, &cc) != RSQ_OK) _exit(2);
    g_cons = &k;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_term;
    sigaction(SIGTERM, &sa, NULL);
    rc = rsq_consumer_run(&k, handle, NULL);
    {
        rsq_consumer_stats st;
        rsq_consumer_get_stats(&k, &st);
        write_stats(dir, name, &c, (unsigned long long)st.delayed);
    }
    rsq_consumer_free(&k);
    rsq_client_free(&c);
    _exit(rc == RSQ_STOPPED ? 0 : 3);
}

static pid_t spawn_consumer(const char *url, const char *dir, const char *name) {
    pid_t pid = fork();
    if (pid == 0) {
        signal(SIGINT, SIG_DFL);
        consumer_main(url, dir, name);
    }
    return pid;
}

/* The group is done when nothing is pending and nothing is undelivered. */
static int drained(rsq_client *admin) {
    rsq_stream_info si;
    rsq_group_info g[4];
    size_t n = 0;
    const rsq_reply *r;
    if (rsq_stream_stats(admin, "chaos", &si, g, 4, &n) != RSQ_OK || n == 0) return 0;
    if (g[0].pending != 0 || g[0].lag != 0) return 0;
    if (rsq_command(admin, &r, "ZCARD", "{chaos}:delayed", (char *)0) != RSQ_OK || r->integer != 0) return 0;
    return rsq_command(admin, &r, "XLEN", "{chaos}:retry:g", (char *)0) == RSQ_OK && r->integer == 0;
}

static long read_logs(const char *dir, unsigned char *seen, long n, long *lines) {
    char path[700];
    long unique = 0;
    int i;
    for (i = 0; i < 4096; i++) {
        FILE *f;
        char line[64];
        snprintf(path, sizeof path, "%s/c%d.log", dir, i);
        f = fopen(path, "r");
        if (!f) { if (i > 64) break; continue; }
        while (fgets(line, sizeof line, f)) {
            long v = atol(line);
            (*lines)++;
            if (v >= 0 && v < n && seen[v]++ == 0) unique++;
        }
        fclose(f);
    }
    return unique;
}

static unsigned long long sum_stats(const char *dir, const char *prefix, int count, unsigned long long *extra) {
    unsigned long long total = 0;
    int i;
    for (i = 0; i < count; i++) {
        char path[700];
        unsigned long long a = 0, b = 0;
        FILE *f;
        snprintf(path, sizeof path, "%s/%s%d.stats", dir, prefix, i);
        f = fopen(path, "r");
        if (!f) continue;
        if (fscanf(f, "%llu %llu", &a, &b) == 2) { total += a; if (extra) *extra += b; }
        fclose(f);
    }
    return total;
}

static int arg_long(int argc, char **argv, int *i, const char *name, long *out) {
    if (strcmp(argv[*i], name) || *i + 1 >= argc) return 0;
    *out = atol(argv[++*i]);
    return 1;
}

int main(int argc, char **argv) {
    srv s;
    rsq_client admin;
    rsq_client_config cfg;
    char proxy_url[64], port[16], target[64], seed[16], cut[32], plog[600];
    const char *proxy_bin = getenv("RSQ_PROXY_BIN");
    pid_t proxy, prod[MAX_PROCS], cons[MAX_PROCS];
    int cons_gen[MAX_PROCS], i, producers_left, restarts = 0, kills = 0, cuts = 0, lost_flag;
    long long t0, next_kill, next_restart, deadline;
    long v, unique, lines = 0;
    unsigned char *seen;
    unsigned long long reconnects, resent = 0, delayed = 0;
    for (i = 1; i < argc; i++) {
        if (arg_long(argc, argv, &i, "--messages", &opt.messages)) continue;
        if (arg_long(argc, argv, &i, "--producers", &v)) { opt.producers = (int)v; continue; }
        if (arg_long(argc, argv, &i, "--consumers", &v)) { opt.consumers = (int)v; continue; }
        if (arg_long(argc, argv, &i, "--restarts", &v)) { opt.restarts = (int)v; continue; }
        if (arg_long(argc, argv, &i, "--kill-ms", &v)) { opt.kill_ms = (int)v; continue; }
        if (arg_long(argc, argv, &i, "--kills", &v)) { opt.kills = (int)v; continue; }
        if (arg_long(argc, argv, &i, "--restart-ms", &v)) { opt.restart_ms = (int)v; continue; }
        if (arg_long(argc, argv, &i, "--cut-every-bytes", &opt.cut_every)) continue;
        if (arg_long(argc, argv, &i, "--seed", &v)) { opt.seed = (unsigned)v; continue; }
        if (arg_long(argc, argv, &i, "--timeout-s", &v)) { opt.timeout_s = (int)v; continue; }
        if (!strcmp(argv[i], "--idempotent")) { opt.idempotent = 1; continue; }
        if (!strcmp(argv[i], "--retry-later")) { opt.retry_later = 1; continue; }
        fprintf(stderr, "chaos: unknown argument %s\n", argv[i]);
        return 2;
    }
    if (opt.producers < 1 || opt.producers > MAX_PROCS || opt.consumers < 1 || opt.consumers > MAX_PROCS || opt.messages < 1) {
        fprintf(stderr, "chaos: bad sizes\n");
        return 2;
    }
    if (!proxy_bin || access(proxy_bin, X_OK) != 0) proxy_bin = "build/proxy";
    if (access(proxy_bin, X_OK) != 0) { fprintf(stderr, "chaos: proxy binary not found (make build/proxy)\n"); return 2; }
    signal(SIGPIPE, SIG_IGN);
    srand(opt.seed);
    if (srv_start(&s, "appendonly yes\nappendfsync always\n") != 0) { fprintf(stderr, "chaos: redis-server did not start\n"); return 1; }

    /* the proxy: every client connection goes through it */
    snprintf(port, sizeof port, "%d", srv_free_port());
    snprintf(target, sizeof target, "127.0.0.1:%d", s.port);
    snprintf(seed, sizeof seed, "%u", opt.seed);
    snprintf(cut, sizeof cut, "%ld", opt.cut_every);
    snprintf(plog, sizeof plog, "%s/proxy.log", s.dir);
    proxy = fork();
    if (proxy == 0) {
        int fd = open(plog, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0) dup2(fd, 2);
        execl(proxy_bin, "proxy", "--listen", port, "--target", target, "--seed", seed, "--cut-every-bytes", cut,
              "--delay-ms", "0", (char *)NULL);
        _exit(127);
    }
    snprintf(proxy_url, sizeof proxy_url, "redis://127.0.0.1:%s", port);
    usleep(200000);

    client_cfg(&cfg, s.url); /* the orchestrator talks to the server directly */
    rsq_client_init(&admin, &cfg);
    rsq_group_create(&admin, "chaos", "g", RSQ_START_ALL);

    for (i = 0; i < opt.consumers; i++) {
        char name[32];
        snprintf(name, sizeof name, "c%d", i);
        cons_gen[i] = i;
        cons[i] = spawn_consumer(proxy_url, s.dir, name);
    }
    for (i = 0; i < opt.producers; i++) {
        long share = opt.messages / opt.producers, from = share * i, to = i == opt.producers - 1 ? opt.messages : from + share;
        prod[i] = fork();
        if (prod[i] == 0) producer_main(proxy_url, s.dir, i, from, to);
    }
    producers_left = opt.producers;
    t0 = now_ms();
    next_kill = t0 + opt.kill_ms;
    next_restart = t0 + opt.restart_ms;
    deadline = t0 + (long long)opt.timeout_s * 1000;
    int next_gen = opt.consumers, done_checks = 0;
    for (;;) {
        long long now = now_ms();
        int st;
        pid_t w;
        usleep(100000);
        while ((w = waitpid(-1, &st, WNOHANG)) > 0) {
            for (i = 0; i < opt.producers; i++)
                if (w == prod[i]) {
                    prod[i] = 0;
                    producers_left--;
                    if (!WIFEXITED(st) || WEXITSTATUS(st)) fprintf(stderr, "chaos: producer %d failed\n", i);
                }
            for (i = 0; i < opt.consumers; i++)
                if (w == cons[i]) { /* died on its own: a bug or an uncured error; restart it */
                    char name[32];
                    fprintf(stderr, "chaos: consumer c%d exited (status %d); restarting\n", cons_gen[i], WIFEXITED(st) ? WEXITSTATUS(st) : -1);
                    snprintf(name, sizeof name, "c%d", cons_gen[i]);
                    cons[i] = spawn_consumer(proxy_url, s.dir, name);
                }
        }
        if (now >= next_kill && kills < opt.kills) {
            char name[32];
            int victim = rand() % opt.consumers;
            kill(cons[victim], SIGKILL);
            waitpid(cons[victim], NULL, 0);
            kills++;
            if (kills % 2 == 0) cons_gen[victim] = next_gen++; /* a new name: its old entries get reclaimed */
            snprintf(name, sizeof name, "c%d", cons_gen[victim]);
            cons[victim] = spawn_consumer(proxy_url, s.dir, name);
            next_kill = now + opt.kill_ms;
        }
        if (restarts < opt.restarts && now >= next_restart) {
            srv_kill(&s);
            usleep(200000);
            if (srv_restart(&s) != 0) { fprintf(stderr, "chaos: redis-server did not restart\n"); break; }
            restarts++;
            next_restart = now_ms() + opt.restart_ms;
        }
        if (producers_left == 0 && restarts >= opt.restarts && kills >= opt.kills && drained(&admin)) {
            if (++done_checks >= 3) break;
        } else {
            done_checks = 0;
        }
        if (now > deadline) { fprintf(stderr, "chaos: timed out\n"); break; }
    }
    for (i = 0; i < opt.consumers; i++) kill(cons[i], SIGTERM);
    for (i = 0; i < opt.consumers; i++) waitpid(cons[i], NULL, 0);
    for (i = 0; i < opt.producers; i++) if (prod[i]) { kill(prod[i], SIGKILL); waitpid(prod[i], NULL, 0); }
    kill(proxy, SIGTERM);
    waitpid(proxy, NULL, 0);
    {
        FILE *f = fopen(plog, "r");
        char line[256];
        while (f && fgets(line, sizeof line, f)) cuts += strstr(line, ": cut #") != NULL;
        if (f) fclose(f);
    }
    seen = (unsigned char *)calloc((size_t)opt.messages, 1);
    unique = read_logs(s.dir, seen, opt.messages, &lines);
    reconnects = sum_stats(s.dir, "p", opt.producers, &resent) + sum_stats(s.dir, "c", next_gen, &delayed);
    lost_flag = unique != opt.messages;
    printf("chaos: messages=%ld producers=%d consumers=%d consumer-kills=%d server-restarts=%d proxy-cuts=%d resent=%llu "
           "delayed=%llu %.1fs\n", opt.messages, opt.producers, opt.consumers, kills, restarts, cuts, resent, delayed,
           (double)(now_ms() - t0) / 1000.0);
    {
        long long entries = -1;
        rsq_stream_length(&admin, "chaos", &entries);
        printf("lost=%ld duplicates=%ld producer-duplicates=%lld reconnects=%llu\n", opt.messages - unique, lines - unique,
               entries - (long long)opt.messages, reconnects);
    }
    if (lost_flag) {
        long shown = 0, k;
        for (k = 0; k < opt.messages && shown < 10; k++) if (!seen[k]) { fprintf(stderr, "chaos: lost message %ld\n", k); shown++; }
    }
    free(seen);
    rsq_client_free(&admin);
    srv_stop(&s, lost_flag); /* keep the data of a failed run for a look */
    if (lost_flag) fprintf(stderr, "chaos: data kept in %s\n", s.dir);
    return lost_flag ? 1 : 0;
}
