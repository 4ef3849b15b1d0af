/* nemesis.c - the delivery contract under a seeded nemesis.

   nemesis --seed N --duration S [--producers P] [--consumers C] [--levels L]
           [--rate R] [--intensity X] [--acts LIST] [--drain-s D] [--tail-s T]
           [--max-deliveries M] [--prefetch K] [--visibility-ms V] [--max-bulk B]
           [--big B] [--start 0|$] [--crash-every N] [--dlq-slack N] [--keep] [--schedule]
           [--show N]

   A private redis-server (appendonly yes, appendfsync always); the group is created
   at 0 before anything starts, and consumers recreate it with the library's default
   start (or --start) when it goes missing. P producer processes
   publish, for S seconds plus a quiet tail of T seconds, messages whose payload is
   "s=<seq>;" and filler derived from the seq (so any handler can check it), at L
   priority levels; each logs every accepted publish (seq, level, ID, when). C
   consumer processes (rsq_consumer_run, one group, names c0..) log every handler
   call (seq, level, ID, deliveries, whether the fields were there and intact, the
   action) before returning; a few seqs are poison (always RSQ_ACTION_RETRY), about one
   in --crash-every (3000) crashes its worker on every delivery (exit 42; the worker is
   restarted under its name): both must end as dead letters, and only they; a few fail
   once (RETRY_LATER). The consumers read with a small reply limit (max_bulk, 64 KiB
   by default).

   Meanwhile the nemesis, at moments drawn from the seed, does (LIST names, comma
   separated, or none; default all): flushall, del (some of the queue's streams, the
   dead-letter stream among them), xtrim (MINID past a pending entry), xdel (pending
   or fresh entries), group-destroy, client-kill (the consumers' connections),
   consumer-kill (SIGKILL, restarted under the same name), server-stop (SIGSTOP for
   1-4 s, then SIGCONT), server-restart (SIGKILL and restart from the AOF),
   xclaim-dead (pending entries to a consumer that does not exist, IDLE 600000,
   JUSTID), oversized (another client writes an entry of --big bytes, 256 KiB by
   default, larger than the consumers' max_bulk). The schedule (when, what, and the
   random numbers each act draws its choices from) depends on the seed alone;
   which entries an act meets depends on timing.

   What the nemesis may remove, and so what the check excuses, is recorded exactly:
   - flushall, del and group-destroy run in one MULTI/EXEC with a capture of each
     affected stream (last generated ID, the group's last-delivered ID, its pending
     list). Entries present at that moment that the group had not finished with
     (pending or not yet delivered; for flushall and del also any entry of a stream
     without the group) are excused; entries the group had already passed and
     acked are not (they must have been handled or dead-lettered).
     Deleted dead letters are read in the same transaction and count as dead letters.
   - xtrim MINID M excuses the entries below M; xdel excuses exactly its IDs.
   - an act whose outcome is unknown (the nemesis's own link failed) excuses
     everything published before it on the streams it touched.
   Server restarts (appendfsync always), SIGSTOP, kills and claims remove nothing.

   After S seconds the nemesis stops; producers go on for T seconds, then a quiet
   drain (at most D seconds) waits until every stream's group has nothing pending
   and nothing left to read. Then the checks:
     lost             a published message not excused was neither handled (handler
                      returned ACK on its intact fields) nor dead-lettered
     empty            a handler got a message without its fields (payload NULL,
                      no field "payload", no fields)
     corrupt          a handler got fields that are not the entry's own
     bad-deliveries   a handler got deliveries < 1
     wrong-dead-letter  a dead letter without a reason (dlq-error), of a message
                      with fewer than M handler deliveries (the only excuse is a
                      recorded reason of the nemesis's own: an oversized entry),
                      with dlq-deliveries < M, or that names no known entry.
                      A handler delivery is a logged handler call; deliveries to a
                      worker that died before its handler saw the message do not
                      count (DESIGN.md). --dlq-slack N tolerates N of them.
     pending          entries still pending in the group after the drain
     drain-timeout    the drain did not finish within D seconds
     consumer-exit    rsq_consumer_run returned an error (the contract says: recover
                      and continue); the consumer is restarted under its name
   Counts must add up: a handler call or dead letter of a seq nobody published is
   corrupt / wrong-dead-letter. Duplicates (at-least-once) are allowed and counted.

   Output: the configuration, the acts as they happen (with --schedule the whole
   schedule first), evidence for each failure kind (the first --show seqs, default
   5, with their history: publish, handler calls, dead letters, nearby acts), and a
   last line
       nemesis: seed=N verdict=PASS|FAIL published=... lost=... ...
   Exit status 0 on PASS, 1 on FAIL, 2 when the harness itself could not run. The
   server's directory (logs of every process) is kept on FAIL or with --keep. */
#define _DEFAULT_SOURCE 1
#define RSQ_IMPLEMENTATION
#include "../rsq.h"
#include "server.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_PROCS 16
#define MAX_LEVELS 4
#define SEQ_STRIDE 100000000LL /* producer p publishes seqs p*STRIDE + n */
#define OVS_PROD 99            /* the nemesis's oversized entries: 99*STRIDE + k */
#define GROUP "g"
#define QUEUE "nq"
#define MAX_IDS 8
#define MAX_PEL 100000

/* ------------------------------------------------------------------ options ---- */
enum {
    A_FLUSHALL, A_DEL, A_XTRIM, A_XDEL, A_DESTROY, A_CLIENT_KILL, A_CONSUMER_KILL,
    A_SERVER_STOP, A_RESTART, A_XCLAIM, A_OVERSIZED, A_COUNT
};
static const char *const act_name[A_COUNT] = {
    "flushall", "del", "xtrim", "xdel", "group-destroy", "client-kill", "consumer-kill",
    "server-stop", "server-restart", "xclaim-dead", "oversized"
};
static const int act_weight[A_COUNT] = { 2, 2, 4, 6, 2, 4, 6, 2, 2, 6, 3 };

static struct {
    unsigned long long seed;
    double duration_s, tail_s, drain_s, intensity;
    int producers, consumers, levels, rate, max_deliveries, prefetch, visibility_ms;
    size_t max_bulk, big;
    unsigned acts;
    const char *start;
    int keep, schedule, show, crash_every, dlq_slack;
} opt = { 1, 60, 3, 60, 1.0, 2, 3, 2, 150, 5, 16, 2000, 65536, 262144, (1u << A_COUNT) - 1, NULL, 0, 0, 5, 3000, 0 };

static char key_lvl[MAX_LEVELS][RSQ_KEY_MAX], key_dlq[RSQ_KEY_MAX];
static char g_dir[300];
static long long g_t0; /* monotonic us when the run starts (shared by every process) */

static long long now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}
static double rel_s(long long t) { return (double)(t - g_t0) / 1e6; }
static void sleep_ms(long ms) { if (ms > 0) usleep((useconds_t)(ms * 1000)); }

static uint64_t sm64(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}
static uint64_t mix(uint64_t a, uint64_t b) {
    uint64_t s = a * 0xd1342543de82ef95ULL + b;
    sm64(&s);
    return sm64(&s);
}

/* ------------------------------------------------ what a seq is, deterministically */
static int is_oversized(long long seq) { return seq / SEQ_STRIDE == OVS_PROD; }
static uint64_t seq_hash(long long seq) { return mix(opt.seed, (uint64_t)seq); }
static int seq_level(long long seq) {
    uint64_t h = seq_hash(seq);
    if (opt.levels < 2 || h % 10 >= 3) return 0;
    return 1 + (int)((h >> 8) % (uint64_t)(opt.levels - 1));
}
static int seq_poison(long long seq) { return !is_oversized(seq) && (seq_hash(seq) >> 32) % 250 == 0; }
/* a message whose handler crashes its worker (exit 42) on every delivery */
static int seq_crash(long long seq) {
    return opt.crash_every > 0 && !is_oversized(seq) && !seq_poison(seq) && (seq_hash(seq) >> 40) % (uint64_t)opt.crash_every == 0;
}
static int seq_flaky(long long seq) {
    uint64_t k = (seq_hash(seq) >> 32) % 250;
    return !is_oversized(seq) && k >= 1 && k <= 5;
}
/* mostly small (the server keeps every entry of a long run), one in ten up to 1.2 KB */
static size_t payload_len(long long seq) {
    uint64_t h = seq_hash(seq) >> 16;
    if (is_oversized(seq)) return opt.big;
    return 16 + (size_t)(h % 10 == 0 ? (h >> 8) % 1200 : (h >> 8) % 120);
}
static char filler(long long seq, size_t i) { return (char)('a' + (int)(((unsigned long long)seq + i * 7) % 26)); }
/* buf holds payload_len(seq) + 1 bytes */
static size_t make_payload(char *buf, long long seq) {
    size_t n = payload_len(seq), i;
    int h = snprintf(buf, n + 1, "s=%lld;", seq);
    for (i = (size_t)h; i < n; i++) buf[i] = filler(seq, i);
    buf[n] = '\0';
    return n;
}
/* seq of a payload prefix "s=<digits>;", or -1 */
static long long payload_seq(const char *p, size_t n) {
    long long v = 0;
    size_t i = 2;
    if (!p || n < 4 || p[0] != 's' || p[1] != '=') return -1;
    for (; i < n && i < 20 && p[i] >= '0' && p[i] <= '9'; i++) v = v * 10 + (p[i] - '0');
    if (i == 2 || i >= n || p[i] != ';') return -1;
    return v;
}
static int payload_ok(const char *p, size_t n, long long seq) {
    char head[32];
    size_t i;
    int h;
    if (!p || seq < 0 || n != payload_len(seq)) return 0;
    h = snprintf(head, sizeof head, "s=%lld;", seq);
    if (memcmp(p, head, (size_t)h) != 0) return 0;
    for (i = (size_t)h; i < n; i++) if (p[i] != filler(seq, i)) return 0;
    return 1;
}
static int level_of_key(const char *k, size_t n) {
    int l;
    for (l = 0; l < opt.levels; l++) if (strlen(key_lvl[l]) == n && !memcmp(key_lvl[l], k, n)) return l;
    return -1;
}

static void reset_child_signals(void) {
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGSEGV, SIG_DFL);
    signal(SIGABRT, SIG_DFL);
    signal(SIGBUS, SIG_DFL);
    signal(SIGPIPE, SIG_IGN);
}

static int open_log(const char *name) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    return open(path, O_WRONLY | O_CREAT | O_APPEND, 0600);
}
static void write_all(int fd, const char *s, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, s, n);
        if (w < 0) { if (errno == EINTR) continue; return; }
        s += w;
        n -= (size_t)w;
    }
}
static void logf_fd(int fd, const char *fmt, ...) {
    char line[1024];
    va_list ap;
    int n;
    va_start(ap, fmt);
    n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n >= sizeof line) n = (int)sizeof line - 1;
    write_all(fd, line, (size_t)n); /* one write per line: a kill never tears a line in two */
}

static void client_cfg(rsq_client_config *cfg, const char *url, const char *name) {
    rsq_client_config_init(cfg);
    cfg->url = url;
    cfg->name = name;
    cfg->retry_attempts = RSQ_RETRY_FOREVER;
    cfg->retry_base_ms = 20;
    cfg->retry_max_ms = 500;
    cfg->connect_timeout_ms = 2000;
    cfg->io_timeout_ms = 3000;
}

/* ---------------------------------------------------------------- producers ---- */
static void producer_main(const char *url, int idx) {
    rsq_client c;
    rsq_client_config cfg;
    rsq_producer p;
    rsq_producer_config pc;
    rsq_outgoing m[8];
    rsq_result res[8];
    char *body[8], name[32];
    long long n = 0, end = g_t0 + (long long)((opt.duration_s + opt.tail_s) * 1e6), start;
    uint64_t rng = mix(opt.seed, 1000 + (uint64_t)idx);
    int fd, i;
    reset_child_signals();
    snprintf(name, sizeof name, "p%d.log", idx);
    if ((fd = open_log(name)) < 0) _exit(2);
    snprintf(name, sizeof name, "nemp-p%d", idx);
    client_cfg(&cfg, url, name);
    if (rsq_client_init(&c, &cfg) != RSQ_OK) _exit(2);
    rsq_producer_config_init(&pc);
    pc.queue = QUEUE;
    pc.priority_levels = opt.levels;
    if (rsq_producer_init(&p, &c, &pc) != RSQ_OK) _exit(2);
    for (i = 0; i < 8; i++) if (!(body[i] = (char *)malloc(1300))) _exit(2);
    memset(m, 0, sizeof m);
    start = now_us();
    while (now_us() < end) {
        int b = 1 + (int)(sm64(&rng) % 8), pending;
        long long t_start, due;
        for (i = 0; i < b; i++) {
            long long seq = (long long)idx * SEQ_STRIDE + n + i;
            m[i].payload = body[i];
            m[i].payload_len = make_payload(body[i], seq);
            m[i].priority = seq_level(seq);
            res[i] = RSQ_ERR_IO;
        }
        t_start = now_us();
        /* publish what is unconfirmed until everything is (a failed attempt may still
           have been written: that copy is a duplicate, the confirmed ID is the one logged) */
        for (pending = b; pending > 0;) {
            rsq_outgoing todo[8];
            rsq_id tid[8];
            rsq_result tr[8];
            int map[8], k = 0;
            for (i = 0; i < b; i++) if (res[i] != RSQ_OK) { todo[k] = m[i]; map[k++] = i; }
            rsq_publish_batch(&p, todo, (size_t)k, tid, tr);
            pending = 0;
            for (i = 0; i < k; i++) {
                res[map[i]] = tr[i];
                if (tr[i] == RSQ_OK) {
                    char ids_txt[RSQ_ID_STRLEN];
                    long long seq = (long long)idx * SEQ_STRIDE + n + map[i];
                    rsq_id_format(tid[i], ids_txt);
                    logf_fd(fd, "P %lld %d %s %lld %lld\n", seq, m[map[i]].priority, ids_txt, t_start, now_us());
                } else {
                    pending++;
                }
            }
            if (pending) sleep_ms(50);
        }
        n += b;
        due = start + n * 1000000LL / (opt.rate > 0 ? opt.rate : 1);
        if (due > now_us()) usleep((useconds_t)(due - now_us()));
    }
    rsq_client_free(&c);
    _exit(0);
}

/* ---------------------------------------------------------------- consumers ---- */
static rsq_consumer *g_cons;
static int g_hlog = -1, g_llog = -1;
static void on_term(int sig) { (void)sig; if (g_cons) rsq_consumer_stop(g_cons); }

enum { F_PAYLOAD = 1, F_FIELD = 2, F_FIELDS = 4, F_VERIFIED = 8, F_SEQ = 16, F_STREAM = 32 };

static rsq_action handle(void *user, rsq_consumer *k, const rsq_message *m) {
    int flags = 0, level;
    long long seq = -1;
    size_t i;
    char act = 'A';
    rsq_action a = RSQ_ACTION_ACK;
    (void)user;
    if (m->payload) flags |= F_PAYLOAD;
    if (m->fields && m->field_count >= 1) {
        flags |= F_FIELDS;
        for (i = 0; i < m->field_count; i++)
            if (m->fields[i].name && m->fields[i].name_len == 7 && !memcmp(m->fields[i].name, "payload", 7) &&
                m->fields[i].value && m->payload && m->fields[i].value_len == m->payload_len &&
                !memcmp(m->fields[i].value, m->payload, m->payload_len))
                flags |= F_FIELD;
    }
    if (m->payload && (seq = payload_seq(m->payload, m->payload_len)) >= 0) {
        flags |= F_SEQ;
        if (payload_ok(m->payload, m->payload_len, seq)) flags |= F_VERIFIED;
    }
    level = m->stream ? level_of_key(m->stream, m->stream_len) : -1;
    if (level >= 0 && level == m->priority) flags |= F_STREAM;
    if ((flags & (F_PAYLOAD | F_FIELD | F_FIELDS | F_VERIFIED)) == (F_PAYLOAD | F_FIELD | F_FIELDS | F_VERIFIED)) {
        if (seq_crash(seq)) {
            logf_fd(g_hlog, "H %lld %d %s %lld %d C %lld\n", seq, level, m->id_str, m->deliveries, flags, now_us());
            _exit(42);
        } else if (seq_poison(seq)) {
            rsq_consumer_set_error(k, "poison message");
            a = RSQ_ACTION_RETRY;
            act = 'R';
        } else if (seq_flaky(seq) && m->deliveries <= 1) {
            rsq_consumer_retry_delay(k, 300);
            a = RSQ_ACTION_RETRY_LATER;
            act = 'L';
        }
    }
    /* logged before the library acks: a kill after this line is a handler delivery */
    logf_fd(g_hlog, "H %lld %d %s %lld %d %c %lld\n", seq, level, m->id_str, m->deliveries, flags, act, now_us());
    if (seq >= 0 && mix((uint64_t)seq, (uint64_t)m->deliveries) % 50 == 0) sleep_ms(5 + (long)(seq % 25));
    return a;
}

static void lib_log(void *user, rsq_log_level level, rsq_log_item item, const char *message) {
    (void)user;
    logf_fd(g_llog, "L %lld %d %d %s\n", now_us(), (int)level, (int)item, message);
}

static void consumer_main(const char *url, int idx) {
    rsq_client c;
    rsq_client_config cfg;
    rsq_consumer k;
    rsq_consumer_config cc;
    struct sigaction sa;
    char name[32], cname[32], file[32];
    rsq_result rc;
    reset_child_signals();
    snprintf(name, sizeof name, "c%d", idx);
    snprintf(cname, sizeof cname, "nemc-c%d", idx);
    snprintf(file, sizeof file, "c%d.log", idx);
    if ((g_hlog = open_log(file)) < 0) _exit(2);
    snprintf(file, sizeof file, "c%d.lib", idx);
    if ((g_llog = open_log(file)) < 0) _exit(2);
    client_cfg(&cfg, url, cname);
    cfg.limits.max_bulk = opt.max_bulk;
    cfg.logger.func = lib_log;
    cfg.logger.level = RSQ_LOG_INFO;
    if (rsq_client_init(&c, &cfg) != RSQ_OK) _exit(2);
    rsq_consumer_config_init(&cc);
    cc.queue = QUEUE;
    cc.group = GROUP;
    cc.name = name;
    cc.count = opt.prefetch;
    cc.block_ms = 500;
    cc.visibility_ms = opt.visibility_ms;
    cc.reclaim_interval_ms = 500;
    cc.max_deliveries = opt.max_deliveries;
    cc.retry_delay_ms = 300;
    cc.priority_levels = opt.levels;
    cc.start = opt.start;
    if ((rc = rsq_consumer_init(&k, &c, &cc)) != RSQ_OK) {
        logf_fd(g_llog, "X %lld %d %s\n", now_us(), (int)rc, rsq_errstr(&c));
        _exit(3);
    }
    g_cons = &k;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_term;
    sigaction(SIGTERM, &sa, NULL);
    rc = rsq_consumer_run(&k, handle, NULL);
    if (rc != RSQ_STOPPED) logf_fd(g_llog, "X %lld %d %s: %s\n", now_us(), (int)rc, rsq_result_name(rc), rsq_errstr(&c));
    rsq_consumer_free(&k);
    rsq_client_free(&c);
    _exit(rc == RSQ_STOPPED ? 0 : 3);
}

/* -------------------------------------------------------- the orchestrator ---- */
static srv g_srv;
static rsq_client nem;
static pid_t cpid[MAX_PROCS], ppid_[MAX_PROCS];
static long long crestart_at[MAX_PROCS];
static int cexits, crashes, harness_error, server_stopped;
typedef struct cexit { long long t; int c; char why[200]; } cexit;
static cexit cexit_log[256];

/* SIGINT/SIGTERM of the orchestrator: take the children and the server along */
static void on_orchestrator_signal(int sig) {
    int i;
    for (i = 0; i < MAX_PROCS; i++) {
        if (cpid[i] > 0) kill(cpid[i], SIGKILL);
        if (ppid_[i] > 0) kill(ppid_[i], SIGKILL);
    }
    if (g_srv.pid > 0) { kill(g_srv.pid, SIGCONT); kill(g_srv.pid, SIGKILL); }
    signal(sig, SIG_DFL);
    raise(sig);
}

static pid_t spawn_consumer(int idx) {
    pid_t pid;
    fflush(stdout);
    fflush(stderr);
    pid = fork();
    if (pid == 0) consumer_main(g_srv.url, idx);
    return pid;
}

/* the last line a consumer's library log holds about its exit */
static void consumer_exit_reason(int idx, char *out, size_t cap) {
    char path[512], line[600];
    FILE *f;
    snprintf(out, cap, "?");
    snprintf(path, sizeof path, "%s/c%d.lib", g_dir, idx);
    if (!(f = fopen(path, "r"))) return;
    while (fgets(line, sizeof line, f))
        if (line[0] == 'X') {
            char *p = strchr(line + 2, ' ');
            size_t n;
            if (!p) continue;
            snprintf(out, cap, "%s", p + 1);
            n = strlen(out);
            while (n && out[n - 1] == '\n') out[--n] = '\0';
        }
    fclose(f);
}

/* Reaps children by pid (never the server's), restarts consumers that exited. */
static void supervise(void) {
    int i, st;
    long long now = now_us();
    for (i = 0; i < opt.consumers; i++) {
        if (cpid[i] > 0 && waitpid(cpid[i], &st, WNOHANG) == cpid[i]) {
            char why[300];
            cpid[i] = 0;
            crestart_at[i] = now + 300000;
            if (WIFEXITED(st) && WEXITSTATUS(st) == 42) { crashes++; continue; } /* a crashing message, by design */
            if (WIFEXITED(st)) consumer_exit_reason(i, why, sizeof why);
            else snprintf(why, sizeof why, "killed by signal %d", WTERMSIG(st));
            if (cexits < (int)(sizeof cexit_log / sizeof cexit_log[0])) {
                cexit_log[cexits].t = now;
                cexit_log[cexits].c = i;
                snprintf(cexit_log[cexits].why, sizeof cexit_log[0].why, "%.190s", why);
            }
            cexits++;
            printf("  +%.3fs consumer c%d exited by itself (%s %d): %s; restarting\n", rel_s(now),
                   i, WIFEXITED(st) ? "status" : "signal", WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st), why);
        }
        if (cpid[i] == 0 && now >= crestart_at[i]) cpid[i] = spawn_consumer(i);
    }
    for (i = 0; i < opt.producers; i++)
        if (ppid_[i] > 0 && waitpid(ppid_[i], &st, WNOHANG) == ppid_[i]) {
            if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
                printf("nemesis: producer p%d failed (%s %d)\n", i, WIFEXITED(st) ? "status" : "signal",
                       WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
                harness_error = 1;
            }
            ppid_[i] = 0;
        }
}
static void nap(long ms) { /* sleep while supervising */
    long long end = now_us() + ms * 1000LL;
    while (now_us() < end) {
        long long left = (end - now_us()) / 1000;
        sleep_ms(left > 50 ? 50 : (left > 0 ? left : 1));
        supervise();
    }
}

/* ------------------------------------------------------------------- the acts ---- */
typedef struct lvl_state {
    int captured, stream_exists, group_exists, pel_cut; /* pel_cut: the list was cut at MAX_PEL */
    rsq_id last_gen, last_delivered;
    rsq_id *pel; /* sorted */
    size_t npel;
} lvl_state;

typedef struct act {
    long long at;   /* us after t0, from the seed */
    int kind;
    uint64_t r[4];  /* the act's random numbers, from the seed */
    int done, noop, uncertain;
    long long t_start, t_end;
    unsigned mask;  /* levels touched (bit l); DLQ_BIT: the dead-letter stream */
    lvl_state st[MAX_LEVELS];
    int level;
    rsq_id minid;
    rsq_id ids[MAX_IDS];
    int nids;
    long long seq; /* oversized */
    rsq_id oid;
    int ohave;
    char detail[200];
} act;
#define DLQ_BIT (1u << 31)

static act *acts;
static int nacts;

/* formatted text into a->detail (vsnprintf: truncation is expected and fine) */
static void detailf(act *a, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->detail, sizeof a->detail, fmt, ap);
    va_end(ap);
}
/* appends to buf[0..cap) at *off */
static void appendf(char *buf, size_t cap, size_t *off, const char *fmt, ...) {
    va_list ap;
    int n;
    if (*off >= cap) return;
    va_start(ap, fmt);
    n = vsnprintf(buf + *off, cap - *off, fmt, ap);
    va_end(ap);
    if (n > 0) *off = *off + (size_t)n < cap ? *off + (size_t)n : cap - 1;
}

/* dead letters: read at the end, or captured when the nemesis deleted them */
typedef struct dlq_ent {
    rsq_id entry;
    int level;           /* from dlq-stream; -1 unknown */
    rsq_id id;           /* dlq-id */
    int has_id;
    long long deliveries;/* dlq-deliveries; -1 absent */
    char error[160];
    long long pseq;      /* seq from the payload prefix, -1 */
    long long plen;      /* payload length, -1 absent */
    int deleted_by;      /* act index, or -1 (read at the end) */
} dlq_ent;
static dlq_ent *dlqs;
static size_t ndlq, dlq_cap;

/* oversized entries written by the nemesis (appended to the published records) */
typedef struct ovs_rec { long long seq; int level; rsq_id id; int have_id; long long t_start, t_ok; } ovs_rec;
static ovs_rec ovs[4096];
static int novs;

static const char dlq_script[] =
    "local out = {} "
    "local r = redis.call('XRANGE', KEYS[1], '-', '+') "
    "for i, e in ipairs(r) do "
    "  local f = e[2] "
    "  local row = {e[1], '', '', '-1', '', '', '-1', '0', '0'} "
    "  for j = 1, #f, 2 do "
    "    local k = f[j] "
    "    if k == 'dlq-stream' then row[2] = f[j+1] row[8] = '1' "
    "    elseif k == 'dlq-id' then row[3] = f[j+1] "
    "    elseif k == 'dlq-deliveries' then row[4] = f[j+1] "
    "    elseif k == 'dlq-error' then row[5] = string.sub(f[j+1], 1, 150) row[9] = '1' "
    "    elseif k == 'payload' then row[6] = string.sub(f[j+1], 1, 32) row[7] = tostring(#f[j+1]) end "
    "  end "
    "  out[#out+1] = row "
    "end "
    "return out";

static void parse_dlq_rows(const rsq_reply *r, int deleted_by) {
    size_t i;
    if (!r || r->type != RSQ_REPLY_ARRAY) return;
    for (i = 0; i < r->len; i++) {
        const rsq_reply *row = &r->element[i];
        dlq_ent *d;
        long long v;
        if (row->type != RSQ_REPLY_ARRAY || row->len < 9) continue;
        if (ndlq == dlq_cap) {
            size_t nc = dlq_cap ? dlq_cap * 2 : 256;
            dlq_ent *p = (dlq_ent *)realloc(dlqs, nc * sizeof *p);
            if (!p) { harness_error = 1; return; }
            dlqs = p;
            dlq_cap = nc;
        }
        d = &dlqs[ndlq++];
        memset(d, 0, sizeof *d);
        d->deleted_by = deleted_by;
        rsq_id_parse(row->element[0].str, row->element[0].len, &d->entry);
        d->level = row->element[1].len ? level_of_key(row->element[1].str, row->element[1].len) : -1;
        d->has_id = row->element[2].len && rsq_id_parse(row->element[2].str, row->element[2].len, &d->id);
        d->deliveries = rsq_reply_int(&row->element[3], &v) ? v : -1;
        snprintf(d->error, sizeof d->error, "%.*s", (int)row->element[4].len, row->element[4].str ? row->element[4].str : "");
        d->pseq = payload_seq(row->element[5].str, row->element[5].len);
        d->plen = rsq_reply_int(&row->element[6], &v) ? v : -1;
    }
}

static int id_cmp_q(const void *a, const void *b) { return rsq_id_cmp(*(const rsq_id *)a, *(const rsq_id *)b); }

/* Appends the capture of level l to the transaction: XINFO STREAM, XINFO GROUPS, XPENDING. */
static rsq_result queue_capture(int l) {
    const rsq_reply *r;
    rsq_result rc;
    char cnt[16];
    snprintf(cnt, sizeof cnt, "%d", MAX_PEL);
    if ((rc = rsq_command(&nem, &r, "XINFO", "STREAM", key_lvl[l], (char *)0)) != RSQ_OK) return rc;
    if (!rsq_reply_is(r, "QUEUED")) return RSQ_ERR_STATE;
    if ((rc = rsq_command(&nem, &r, "XINFO", "GROUPS", key_lvl[l], (char *)0)) != RSQ_OK) return rc;
    if (!rsq_reply_is(r, "QUEUED")) return RSQ_ERR_STATE;
    if ((rc = rsq_command(&nem, &r, "XPENDING", key_lvl[l], GROUP, "-", "+", cnt, (char *)0)) != RSQ_OK) return rc;
    if (!rsq_reply_is(r, "QUEUED")) return RSQ_ERR_STATE;
    return RSQ_OK;
}
static void parse_capture(lvl_state *st, const rsq_reply *xs, const rsq_reply *xg, const rsq_reply *xp) {
    const rsq_reply *v;
    size_t i;
    memset(st, 0, sizeof *st);
    st->captured = 1;
    if (xs->type == RSQ_REPLY_ERROR) return; /* no such key */
    st->stream_exists = 1;
    if ((v = rsq_reply_get(xs, "last-generated-id")) && v->str) rsq_id_parse(v->str, v->len, &st->last_gen);
    if (xg->type == RSQ_REPLY_ARRAY)
        for (i = 0; i < xg->len; i++) {
            const rsq_reply *g = &xg->element[i], *nm = rsq_reply_get(g, "name");
            if (nm && rsq_reply_is(nm, GROUP)) {
                st->group_exists = 1;
                if ((v = rsq_reply_get(g, "last-delivered-id")) && v->str) rsq_id_parse(v->str, v->len, &st->last_delivered);
            }
        }
    if (st->group_exists && xp->type == RSQ_REPLY_ARRAY && xp->len) {
        st->pel = (rsq_id *)calloc(xp->len, sizeof *st->pel);
        if (!st->pel) { harness_error = 1; return; }
        for (i = 0; i < xp->len; i++) {
            const rsq_reply *e = &xp->element[i];
            if (e->type == RSQ_REPLY_ARRAY && e->len >= 1 && e->element[0].str &&
                rsq_id_parse(e->element[0].str, e->element[0].len, &st->pel[st->npel]))
                st->npel++;
        }
        qsort(st->pel, st->npel, sizeof *st->pel, id_cmp_q);
        st->pel_cut = xp->len >= MAX_PEL;
    }
}

/* FLUSHALL, DEL or XGROUP DESTROY in one transaction with the capture of every level it
   touches (and of the dead letters it deletes). */
static void act_wide(act *a) {
    const rsq_reply *r;
    rsq_result rc;
    rsq_client_stats s0, s1;
    int l, ncap = 0, i, dlq = (a->mask & DLQ_BIT) != 0, sent_exec = 0;
    rsq_client_get_stats(&nem, &s0);
    a->t_start = now_us();
    rc = rsq_command(&nem, &r, "MULTI", (char *)0);
    for (l = 0; l < opt.levels && rc == RSQ_OK; l++)
        if (a->mask & (1u << l)) { rc = queue_capture(l); ncap++; }
    if (rc == RSQ_OK && dlq) {
        rc = rsq_command(&nem, &r, "EVAL", dlq_script, "1", key_dlq, (char *)0);
        if (rc == RSQ_OK && !rsq_reply_is(r, "QUEUED")) rc = RSQ_ERR_STATE;
    }
    if (rc == RSQ_OK) {
        if (a->kind == A_FLUSHALL) rc = rsq_command(&nem, &r, "FLUSHALL", (char *)0);
        else if (a->kind == A_DESTROY) {
            for (l = 0; l < opt.levels && rc == RSQ_OK; l++)
                if (a->mask & (1u << l)) {
                    rc = rsq_command(&nem, &r, "XGROUP", "DESTROY", key_lvl[l], GROUP, (char *)0);
                    if (rc == RSQ_OK && !rsq_reply_is(r, "QUEUED")) rc = RSQ_ERR_STATE;
                }
        } else {
            const char *argv[MAX_LEVELS + 2];
            int argc = 0;
            argv[argc++] = "DEL";
            for (l = 0; l < opt.levels; l++) if (a->mask & (1u << l)) argv[argc++] = key_lvl[l];
            if (dlq) argv[argc++] = key_dlq;
            rc = rsq_command_argv(&nem, &r, argc, argv, NULL);
        }
        if (rc == RSQ_OK && !rsq_reply_is(r, "QUEUED")) rc = RSQ_ERR_STATE;
    }
    if (rc == RSQ_OK) { sent_exec = 1; rc = rsq_command(&nem, &r, "EXEC", (char *)0); }
    a->t_end = now_us();
    rsq_client_get_stats(&nem, &s1);
    if (rc != RSQ_OK || s1.connects != s0.connects || r->type != RSQ_REPLY_ARRAY) {
        /* a command may have run outside the transaction, or EXEC's reply was lost */
        if (sent_exec || s1.connects != s0.connects) a->uncertain = 1; else a->noop = 1;
        if (rc == RSQ_OK && r->type != RSQ_REPLY_ARRAY) a->uncertain = 1;
        detailf(a, "transaction failed (%s: %s)%s", rsq_result_name(rc), rsq_errstr(&nem),
                 a->uncertain ? "; outcome unknown" : "; not applied");
        if (!sent_exec && rc != RSQ_OK) rsq_command(&nem, &r, "DISCARD", (char *)0);
        return;
    }
    if (r->len < (size_t)(3 * ncap + dlq)) { a->uncertain = 1; detailf(a, "short EXEC reply"); return; }
    i = 0;
    for (l = 0; l < opt.levels; l++)
        if (a->mask & (1u << l)) {
            parse_capture(&a->st[l], &r->element[i], &r->element[i + 1], &r->element[i + 2]);
            i += 3;
        }
    if (dlq) parse_dlq_rows(&r->element[i], (int)(a - acts));
    {
        size_t n = 0;
        for (l = 0; l < opt.levels; l++)
            if (a->mask & (1u << l)) {
                char lg[RSQ_ID_STRLEN], ld[RSQ_ID_STRLEN];
                rsq_id_format(a->st[l].last_gen, lg);
                rsq_id_format(a->st[l].last_delivered, ld);
                appendf(a->detail, sizeof a->detail, &n, "%s[last %s, group %s, pending %zu] ", key_lvl[l],
                        a->st[l].stream_exists ? lg : "-", a->st[l].group_exists ? ld : "none", a->st[l].npel);
            }
        if (dlq) appendf(a->detail, sizeof a->detail, &n, "+%s", key_dlq);
    }
}


/* up to cap pending (or, with fresh, newest) entry IDs of level l */
static size_t list_ids(int l, int fresh, rsq_id *out, size_t cap) {
    const rsq_reply *r;
    size_t i, n = 0;
    rsq_result rc = fresh ? rsq_command(&nem, &r, "XREVRANGE", key_lvl[l], "+", "-", "COUNT", "50", (char *)0)
                          : rsq_command(&nem, &r, "XPENDING", key_lvl[l], GROUP, "-", "+", "200", (char *)0);
    if (rc != RSQ_OK || r->type != RSQ_REPLY_ARRAY) return 0;
    for (i = 0; i < r->len && n < cap; i++) {
        const rsq_reply *e = &r->element[i];
        if (e->type == RSQ_REPLY_ARRAY && e->len >= 1 && e->element[0].str && rsq_id_parse(e->element[0].str, e->element[0].len, &out[n]))
            n++;
    }
    return n;
}

static void act_xtrim(act *a) {
    rsq_id ids[200], m;
    size_t n;
    char txt[RSQ_ID_STRLEN];
    const rsq_reply *r;
    rsq_result rc;
    a->level = (int)(a->r[1] % (uint64_t)opt.levels);
    a->mask = 1u << a->level;
    n = list_ids(a->level, 0, ids, 200);
    if (n == 0) n = list_ids(a->level, 1, ids, 50);
    if (n == 0) { a->noop = 1; detailf(a, "%s: nothing to trim", key_lvl[a->level]); return; }
    if (ids[0].ms > ids[n - 1].ms || (ids[0].ms == ids[n - 1].ms && ids[0].seq > ids[n - 1].seq)) qsort(ids, n, sizeof *ids, id_cmp_q);
    m = ids[a->r[2] % n];
    m.seq++; /* the chosen entry goes too */
    a->minid = m;
    rsq_id_format(m, txt);
    a->t_start = now_us();
    rc = rsq_command(&nem, &r, "XTRIM", key_lvl[a->level], "MINID", txt, (char *)0);
    a->t_end = now_us();
    if (rc != RSQ_OK) {
        a->uncertain = !rsq_result_is_server_error(rc);
        a->noop = !a->uncertain;
    }
    detailf(a, "%s MINID %s: %lld removed%s", key_lvl[a->level], txt,
             rc == RSQ_OK ? r->integer : -1LL, rc == RSQ_OK ? "" : " (failed)");
}

static void act_xdel(act *a) {
    rsq_id ids[200];
    size_t n, i, want;
    const char *argv[2 + MAX_IDS];
    char txt[MAX_IDS][RSQ_ID_STRLEN];
    const rsq_reply *r;
    rsq_result rc;
    int fresh = a->r[3] % 4 == 0, k = 0, j;
    a->level = (int)(a->r[1] % (uint64_t)opt.levels);
    a->mask = 1u << a->level;
    n = list_ids(a->level, fresh, ids, 200);
    if (n == 0 && !fresh) { fresh = 1; n = list_ids(a->level, 1, ids, 50); }
    if (n == 0) { a->noop = 1; detailf(a, "%s: nothing to delete", key_lvl[a->level]); return; }
    want = 1 + (size_t)(a->r[2] % 3);
    for (i = 0; i < want && i < n; i++) { /* distinct picks from the random numbers */
        size_t pick = (size_t)(mix(a->r[2], i) % n);
        for (j = 0; j < k; j++) if (rsq_id_cmp(a->ids[j], ids[pick]) == 0) break;
        if (j < k) continue;
        a->ids[k] = ids[pick];
        rsq_id_format(ids[pick], txt[k]);
        k++;
    }
    a->nids = k;
    argv[0] = "XDEL";
    argv[1] = key_lvl[a->level];
    for (j = 0; j < k; j++) argv[2 + j] = txt[j];
    a->t_start = now_us();
    rc = rsq_command_argv(&nem, &r, 2 + k, argv, NULL);
    a->t_end = now_us();
    if (rc != RSQ_OK) a->uncertain = 1; /* XDEL's IDs are exact: excused either way */
    {
        size_t o = 0;
        appendf(a->detail, sizeof a->detail, &o, "%s (%s):", key_lvl[a->level], fresh ? "fresh" : "pending");
        for (j = 0; j < k; j++) appendf(a->detail, sizeof a->detail, &o, " %s", txt[j]);
        appendf(a->detail, sizeof a->detail, &o, " -> %lld deleted", rc == RSQ_OK ? r->integer : -1LL);
    }
}

static void act_xclaim(act *a) {
    rsq_id ids[200];
    size_t n, i, from, cnt;
    const char *argv[5 + MAX_IDS + 4];
    char txt[MAX_IDS][RSQ_ID_STRLEN], dead[32];
    const rsq_reply *r;
    rsq_result rc;
    int argc = 0;
    a->level = (int)(a->r[1] % (uint64_t)opt.levels);
    n = list_ids(a->level, 0, ids, 200);
    if (n == 0) { a->noop = 1; detailf(a, "%s: nothing pending", key_lvl[a->level]); return; }
    cnt = 1 + (size_t)(a->r[2] % 5);
    from = (size_t)(a->r[3] % n);
    snprintf(dead, sizeof dead, "dead-%d", (int)(a->r[2] % 3));
    argv[argc++] = "XCLAIM"; argv[argc++] = key_lvl[a->level]; argv[argc++] = GROUP; argv[argc++] = dead; argv[argc++] = "0";
    for (i = 0; i < cnt && from + i < n; i++) { rsq_id_format(ids[from + i], txt[i]); argv[argc++] = txt[i]; }
    a->nids = (int)i;
    argv[argc++] = "IDLE"; argv[argc++] = "600000"; argv[argc++] = "JUSTID";
    a->t_start = now_us();
    rc = rsq_command_argv(&nem, &r, argc, argv, NULL);
    a->t_end = now_us();
    detailf(a, "%s: %d entries from %s to %s -> %s", key_lvl[a->level], a->nids, txt[0], dead,
             rc == RSQ_OK ? "ok" : rsq_errstr(&nem));
}

static void act_client_kill(act *a) {
    const rsq_reply *r;
    long long ids[64];
    char names[64][24];
    int n = 0, i, killed = 0, all = a->r[1] % 3 == 0;
    const char *p;
    rsq_result rc = rsq_command(&nem, &r, "CLIENT", "LIST", "TYPE", "normal", (char *)0);
    a->t_start = now_us();
    if (rc != RSQ_OK || !r->str) { a->noop = 1; detailf(a, "CLIENT LIST failed"); a->t_end = now_us(); return; }
    for (p = r->str; p && *p && n < 64;) {
        const char *eol = strchr(p, '\n'), *idp = strstr(p, "id="), *nm = strstr(p, " name=nemc-");
        if (!eol) eol = p + strlen(p);
        if (idp && idp < eol && nm && nm < eol) {
            size_t k = 0;
            ids[n] = atoll(idp + 3);
            nm += 6;
            while (nm + k < eol && nm[k] != ' ' && k + 1 < sizeof names[0]) { names[n][k] = nm[k]; k++; }
            names[n][k] = '\0';
            n++;
        }
        p = *eol ? eol + 1 : eol;
    }
    if (n == 0) { a->noop = 1; detailf(a, "no consumer connected"); a->t_end = now_us(); return; }
    {
        size_t o = 0;
        int pick = (int)(a->r[2] % (uint64_t)n);
        for (i = 0; i < n; i++) {
            char idt[24];
            if (!all && i != pick) continue;
            snprintf(idt, sizeof idt, "%lld", ids[i]);
            if (rsq_command(&nem, &r, "CLIENT", "KILL", "ID", idt, (char *)0) == RSQ_OK) killed++;
            appendf(a->detail, sizeof a->detail, &o, "%s ", names[i]);
        }
        appendf(a->detail, sizeof a->detail, &o, "(%d killed)", killed);
    }
    a->t_end = now_us();
}

static void act_oversized(act *a) {
    char *buf;
    const char *argv[5];
    size_t lens[5];
    const rsq_reply *r;
    rsq_result rc;
    ovs_rec *o;
    if (novs == (int)(sizeof ovs / sizeof ovs[0])) { a->noop = 1; return; }
    a->level = (int)(a->r[1] % (uint64_t)opt.levels);
    a->seq = (long long)OVS_PROD * SEQ_STRIDE + novs;
    if (!(buf = (char *)malloc(opt.big + 1))) { a->noop = 1; return; }
    argv[0] = "XADD"; argv[1] = key_lvl[a->level]; argv[2] = "*"; argv[3] = "payload";
    lens[0] = 4; lens[1] = strlen(key_lvl[a->level]); lens[2] = 1; lens[3] = 7;
    argv[4] = buf;
    lens[4] = make_payload(buf, a->seq);
    a->t_start = now_us();
    rc = rsq_command_argv(&nem, &r, 5, argv, lens);
    a->t_end = now_us();
    free(buf);
    o = &ovs[novs++];
    memset(o, 0, sizeof *o);
    o->seq = a->seq;
    o->level = a->level;
    o->t_start = a->t_start;
    o->t_ok = a->t_end;
    if (rc == RSQ_OK && r->str && rsq_id_parse(r->str, r->len, &o->id)) { o->have_id = 1; a->oid = o->id; a->ohave = 1; }
    else a->uncertain = 1; /* perhaps written, ID unknown: excused like an unknown removal */
    {
        char idt[RSQ_ID_STRLEN];
        rsq_id_format(o->id, idt);
        detailf(a, "%s: seq %lld, %zu bytes -> %s", key_lvl[a->level], a->seq, opt.big,
                 o->have_id ? idt : "failed");
    }
}

static void run_act(act *a) {
    int l;
    a->done = 1;
    a->t_start = a->t_end = now_us();
    if (a->kind != A_CONSUMER_KILL && a->kind != A_SERVER_STOP && a->kind != A_RESTART) {
        /* settle the nemesis's own link first (after a restart it reconnects here), so
           that a reconnect inside an act means the act's outcome is unknown */
        const rsq_reply *r;
        int tries;
        for (tries = 0; tries < 5 && rsq_command(&nem, &r, "PING", (char *)0) != RSQ_OK; tries++) sleep_ms(100);
    }
    switch (a->kind) {
    case A_FLUSHALL:
        a->mask = DLQ_BIT;
        for (l = 0; l < opt.levels; l++) a->mask |= 1u << l;
        act_wide(a);
        break;
    case A_DEL: {
        /* which streams: one level, every level, the dead letters, or all of them */
        int pick = (int)(a->r[1] % 4);
        a->mask = 0;
        if (pick == 0) a->mask = 1u << (int)(a->r[2] % (uint64_t)opt.levels);
        else if (pick == 1) for (l = 0; l < opt.levels; l++) a->mask |= 1u << l;
        else if (pick == 2) a->mask = DLQ_BIT;
        else { a->mask = DLQ_BIT; for (l = 0; l < opt.levels; l++) a->mask |= 1u << l; }
        act_wide(a);
        break;
    }
    case A_DESTROY:
        a->mask = 0;
        if (a->r[1] % 2) for (l = 0; l < opt.levels; l++) a->mask |= 1u << l;
        else a->mask = 1u << (int)(a->r[2] % (uint64_t)opt.levels);
        act_wide(a);
        break;
    case A_XTRIM: act_xtrim(a); break;
    case A_XDEL: act_xdel(a); break;
    case A_CLIENT_KILL: act_client_kill(a); break;
    case A_CONSUMER_KILL: {
        int v = (int)(a->r[1] % (uint64_t)opt.consumers);
        a->t_start = now_us();
        if (cpid[v] > 0) {
            kill(cpid[v], SIGKILL);
            waitpid(cpid[v], NULL, 0);
        }
        cpid[v] = spawn_consumer(v);
        a->t_end = now_us();
        detailf(a, "c%d SIGKILLed and restarted", v);
        break;
    }
    case A_SERVER_STOP: {
        long ms = 1000 + (long)(a->r[1] % 3000);
        a->t_start = now_us();
        kill(g_srv.pid, SIGSTOP);
        server_stopped = 1;
        nap(ms);
        kill(g_srv.pid, SIGCONT);
        server_stopped = 0;
        a->t_end = now_us();
        detailf(a, "SIGSTOP for %ld ms", ms);
        break;
    }
    case A_RESTART:
        a->t_start = now_us();
        srv_kill(&g_srv);
        sleep_ms(100);
        if (srv_restart(&g_srv) != 0) {
            printf("nemesis: redis-server did not restart (see %s/redis.log)\n", g_dir);
            harness_error = 1;
        }
        a->t_end = now_us();
        detailf(a, "SIGKILL, restarted from the AOF in %.1f s", (double)(a->t_end - a->t_start) / 1e6);
        break;
    case A_XCLAIM: act_xclaim(a); break;
    case A_OVERSIZED: act_oversized(a); break;
    default: break;
    }
    printf("  +%.3fs %-14s %s%s\n", rel_s(a->t_start), act_name[a->kind], a->detail,
           a->noop ? " [no-op]" : a->uncertain ? " [uncertain]" : "");
    fflush(stdout);
}

static void make_schedule(void) {
    uint64_t rng = mix(opt.seed, 7);
    double gap = 1.5e6 / (opt.intensity > 0 ? opt.intensity : 1.0), t = 1e6;
    int total = 0, k, cap = 0;
    for (k = 0; k < A_COUNT; k++) if (opt.acts & (1u << k)) total += act_weight[k];
    if (total == 0) return;
    for (;;) {
        act *a;
        int w;
        t += gap * (0.25 + 1.5 * (double)(sm64(&rng) % 1000000) / 1e6);
        if (t >= opt.duration_s * 1e6) break;
        if (nacts == cap) {
            act *p;
            cap = cap ? cap * 2 : 64;
            p = (act *)realloc(acts, (size_t)cap * sizeof *p);
            if (!p) { harness_error = 1; return; }
            acts = p;
        }
        a = &acts[nacts++];
        memset(a, 0, sizeof *a);
        a->at = (long long)t;
        w = (int)(sm64(&rng) % (uint64_t)total);
        for (k = 0; k < A_COUNT; k++) {
            if (!(opt.acts & (1u << k))) continue;
            if (w < act_weight[k]) break;
            w -= act_weight[k];
        }
        a->kind = k;
        for (w = 0; w < 4; w++) a->r[w] = sm64(&rng);
    }
}

/* -------------------------------------------------------------------- drain ---- */
typedef struct lvl_end { int stream_exists, group_exists; long long pending; rsq_id last_entry, last_delivered; } lvl_end;

static int read_level_end(int l, lvl_end *e) {
    const rsq_reply *r;
    size_t i;
    const rsq_reply *v;
    memset(e, 0, sizeof *e);
    if (rsq_command(&nem, &r, "XREVRANGE", key_lvl[l], "+", "-", "COUNT", "1", (char *)0) != RSQ_OK) return -1;
    if (r->type == RSQ_REPLY_ARRAY && r->len == 1 && r->element[0].type == RSQ_REPLY_ARRAY && r->element[0].len >= 1)
        rsq_id_parse(r->element[0].element[0].str, r->element[0].element[0].len, &e->last_entry);
    if (rsq_command(&nem, &r, "XINFO", "GROUPS", key_lvl[l], (char *)0) != RSQ_OK) return rsq_errstr(&nem)[0] && strstr(rsq_errstr(&nem), "no such key") ? 0 : -1;
    e->stream_exists = 1;
    for (i = 0; r->type == RSQ_REPLY_ARRAY && i < r->len; i++) {
        const rsq_reply *g = &r->element[i], *nm = rsq_reply_get(g, "name");
        long long p = 0;
        if (!nm || !rsq_reply_is(nm, GROUP)) continue;
        e->group_exists = 1;
        if ((v = rsq_reply_get(g, "pending")) && rsq_reply_int(v, &p)) e->pending = p;
        if ((v = rsq_reply_get(g, "last-delivered-id")) && v->str) rsq_id_parse(v->str, v->len, &e->last_delivered);
    }
    return 0;
}
static int level_drained(const lvl_end *e) {
    int empty = e->last_entry.ms == 0 && e->last_entry.seq == 0;
    if (!e->stream_exists) return 1;
    if (!e->group_exists) return empty;
    return e->pending == 0 && (empty || rsq_id_cmp(e->last_delivered, e->last_entry) >= 0);
}

/* ------------------------------------------------------------------ analysis ---- */
typedef struct rec {
    long long seq;
    int level, have_id, present;
    rsq_id id;
    long long t_start, t_ok;
    int excused_by;   /* act index + 1 */
    int handled_ok, calls, empty_calls, dead, dead_ok;
} rec;
typedef struct hev {
    long long seq;    /* from the payload, -1 */
    int level, cons, flags;
    rsq_id id;
    long long deliveries, t;
    char action;
    int rec;          /* attributed record, -1 */
} hev;

static rec *recs;
static size_t nrecs;
static size_t prod_base[MAX_PROCS + 1], prod_count[MAX_PROCS + 1];
static hev *hevs;
static size_t nhev, hev_cap;
static size_t *by_id; /* rec indices sorted by (level, id) */
static size_t nby_id;
static long long torn_lines;

static rec *rec_of_seq(long long seq) {
    long long p = seq / SEQ_STRIDE, n = seq % SEQ_STRIDE;
    size_t slot;
    if (seq < 0) return NULL;
    if (p == OVS_PROD) slot = (size_t)opt.producers;
    else if (p >= 0 && p < opt.producers) slot = (size_t)p;
    else return NULL;
    if (n < 0 || (size_t)n >= prod_count[slot]) return NULL;
    return recs[prod_base[slot] + (size_t)n].present ? &recs[prod_base[slot] + (size_t)n] : NULL;
}
static int cmp_by_id(const void *a, const void *b) {
    const rec *x = &recs[*(const size_t *)a], *y = &recs[*(const size_t *)b];
    if (x->level != y->level) return x->level < y->level ? -1 : 1;
    return rsq_id_cmp(x->id, y->id);
}
/* first position in by_id of (level, id), or nby_id */
static size_t find_id(int level, rsq_id id) {
    size_t lo = 0, hi = nby_id;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const rec *x = &recs[by_id[mid]];
        int c = x->level != level ? (x->level < level ? -1 : 1) : rsq_id_cmp(x->id, id);
        if (c < 0) lo = mid + 1; else hi = mid;
    }
    if (lo < nby_id && recs[by_id[lo]].level == level && rsq_id_cmp(recs[by_id[lo]].id, id) == 0) return lo;
    return nby_id;
}
static int id_in(const rsq_id *v, size_t n, rsq_id id) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = rsq_id_cmp(v[mid], id);
        if (c == 0) return 1;
        if (c < 0) lo = mid + 1; else hi = mid;
    }
    return 0;
}

static int load_producer_logs(void) {
    int p;
    size_t total = 0;
    /* first pass: how many seqs each producer reached */
    for (p = 0; p < opt.producers; p++) {
        char path[512], line[256];
        FILE *f;
        snprintf(path, sizeof path, "%s/p%d.log", g_dir, p);
        prod_count[p] = 0;
        if (!(f = fopen(path, "r"))) continue;
        while (fgets(line, sizeof line, f)) {
            long long seq;
            if (sscanf(line, "P %lld", &seq) == 1 && seq / SEQ_STRIDE == p && (size_t)(seq % SEQ_STRIDE) + 1 > prod_count[p])
                prod_count[p] = (size_t)(seq % SEQ_STRIDE) + 1;
        }
        fclose(f);
    }
    prod_count[opt.producers] = (size_t)novs;
    for (p = 0; p <= opt.producers; p++) { prod_base[p] = total; total += prod_count[p]; }
    recs = (rec *)calloc(total ? total : 1, sizeof *recs);
    if (!recs) return -1;
    nrecs = total;
    for (p = 0; p < opt.producers; p++) {
        char path[512], line[256];
        FILE *f;
        snprintf(path, sizeof path, "%s/p%d.log", g_dir, p);
        if (!(f = fopen(path, "r"))) continue;
        while (fgets(line, sizeof line, f)) {
            long long seq, ts, to;
            int level;
            char idt[64];
            rec *r;
            if (sscanf(line, "P %lld %d %63s %lld %lld", &seq, &level, idt, &ts, &to) != 5) { torn_lines++; continue; }
            if (seq / SEQ_STRIDE != p) continue;
            r = &recs[prod_base[p] + (size_t)(seq % SEQ_STRIDE)];
            r->seq = seq;
            r->level = level;
            r->have_id = rsq_id_parse(idt, strlen(idt), &r->id);
            r->t_start = ts;
            r->t_ok = to;
            r->present = 1;
        }
        fclose(f);
    }
    for (p = 0; p < novs; p++) {
        rec *r = &recs[prod_base[opt.producers] + (size_t)p];
        r->seq = ovs[p].seq;
        r->level = ovs[p].level;
        r->have_id = ovs[p].have_id;
        r->id = ovs[p].id;
        r->t_start = ovs[p].t_start;
        r->t_ok = ovs[p].t_ok;
        r->present = 1;
    }
    by_id = (size_t *)malloc((total ? total : 1) * sizeof *by_id);
    if (!by_id) return -1;
    for (nby_id = 0, p = 0; (size_t)p < total; p++) if (recs[p].present && recs[p].have_id) by_id[nby_id++] = (size_t)p;
    qsort(by_id, nby_id, sizeof *by_id, cmp_by_id);
    return 0;
}

static int load_consumer_logs(void) {
    int c;
    for (c = 0; c < opt.consumers; c++) {
        char path[512], line[512];
        FILE *f;
        snprintf(path, sizeof path, "%s/c%d.log", g_dir, c);
        if (!(f = fopen(path, "r"))) continue;
        while (fgets(line, sizeof line, f)) {
            long long seq, deliv, t;
            int level, flags;
            char idt[64], action;
            hev *h;
            if (sscanf(line, "H %lld %d %63s %lld %d %c %lld", &seq, &level, idt, &deliv, &flags, &action, &t) != 7) {
                torn_lines++;
                continue;
            }
            if (nhev == hev_cap) {
                size_t nc = hev_cap ? hev_cap * 2 : 4096;
                hev *p = (hev *)realloc(hevs, nc * sizeof *p);
                if (!p) { fclose(f); return -1; }
                hevs = p;
                hev_cap = nc;
            }
            h = &hevs[nhev++];
            h->seq = seq;
            h->level = level;
            h->cons = c;
            h->flags = flags;
            h->deliveries = deliv;
            h->t = t;
            h->action = action;
            h->rec = -1;
            memset(&h->id, 0, sizeof h->id);
            rsq_id_parse(idt, strlen(idt), &h->id);
        }
        fclose(f);
    }
    return 0;
}

static int read_final_dlq(void) {
    const rsq_reply *r;
    if (rsq_command(&nem, &r, "EVAL", dlq_script, "1", key_dlq, (char *)0) != RSQ_OK) {
        printf("nemesis: reading the dead letters failed: %s\n", rsq_errstr(&nem));
        return -1;
    }
    parse_dlq_rows(r, -1);
    return 0;
}

/* Is record r excused by act a (the nemesis removed it, or it may have)? */
static int excused_by(const rec *r, const act *a) {
    int i;
    if (!a->done || a->noop || !r->present) return 0;
    switch (a->kind) {
    case A_FLUSHALL: case A_DEL: case A_DESTROY: {
        const lvl_state *st;
        if (!(a->mask & (1u << r->level))) return 0;
        st = &a->st[r->level];
        if (a->uncertain || !st->captured) return r->t_start <= a->t_end;
        if (!r->have_id || !st->stream_exists) return !r->have_id && r->t_start <= a->t_end;
        if (rsq_id_cmp(r->id, st->last_gen) > 0) return 0;   /* written after the act */
        if (!st->group_exists) return a->kind != A_DESTROY;  /* deleted, or (destroy) untouched */
        if (rsq_id_cmp(r->id, st->last_delivered) > 0) return 1; /* not yet delivered */
        return st->pel_cut || id_in(st->pel, st->npel, r->id); /* delivered, not yet acked */
    }
    case A_XTRIM:
        if (r->level != a->level || r->t_start > a->t_end) return 0;
        if (a->uncertain) return 1;
        return r->have_id && rsq_id_cmp(r->id, a->minid) < 0;
    case A_XDEL:
        if (r->level != a->level || r->t_start > a->t_end) return 0;
        for (i = 0; i < a->nids; i++) if (r->have_id && rsq_id_cmp(r->id, a->ids[i]) == 0) return 1;
        return 0;
    case A_OVERSIZED:
        return a->uncertain && r->seq == a->seq;
    default:
        return 0;
    }
}

enum { K_LOST, K_EMPTY, K_CORRUPT, K_BADDELIV, K_WRONGDLQ, K_PENDING, K_DRAIN, K_EXIT, K_COUNT };
static const char *const kind_name[K_COUNT] = { "lost", "empty", "corrupt", "bad-deliveries", "wrong-dead-letter", "pending",
                                                "drain-timeout", "consumer-exit" };

/* the consumers' library log lines, kept for the evidence */
typedef struct libline { long long t; int c, item; char msg[200]; } libline;
static libline *liblines;
static size_t nlib, lib_cap;

/* the library's own words near time t (items that tell about losses) */
static void print_lib_near(long long t) {
    size_t i;
    int shown = 0;
    for (i = 0; i < nlib && shown < 4; i++) {
        const libline *x = &liblines[i];
        if (x->t < t - 2000000 || x->t > t + 2000000) continue;
        if (x->item != RSQ_LOGI_GROUP_RECREATED && x->item != RSQ_LOGI_PROTOCOL && x->item != RSQ_LOGI_DELETED_ENTRY) continue;
        printf("      library c%d +%.3fs: %s\n", x->c, rel_s(x->t), x->msg);
        shown++;
    }
    for (i = 0; i < (size_t)cexits && i < sizeof cexit_log / sizeof cexit_log[0]; i++)
        if (cexit_log[i].t >= t - 2000000 && cexit_log[i].t <= t + 2000000)
            printf("      c%d exited +%.3fs: %s\n", cexit_log[i].c, rel_s(cexit_log[i].t), cexit_log[i].why);
}
static long long kind_count[K_COUNT];

static const char *flags_txt(int f, char *buf, size_t cap) {
    snprintf(buf, cap, "payload=%s field=%s fields=%s content=%s%s", f & F_PAYLOAD ? "yes" : "NULL", f & F_FIELD ? "yes" : "no",
             f & F_FIELDS ? "yes" : "none", f & F_VERIFIED ? "ok" : (f & F_SEQ ? "WRONG" : "-"), f & F_STREAM ? "" : " stream=?");
    return buf;
}

static void print_history(const rec *r, long long seq, int level, rsq_id id) {
    size_t i;
    char idt[RSQ_ID_STRLEN];
    int shown = 0, k;
    if (r) {
        rsq_id_format(r->id, idt);
        printf("    seq %lld%s%s%s: level %d id %s published +%.3f..+%.3fs; handler calls %d (%d with fields), dead letters %d%s\n",
               r->seq, is_oversized(r->seq) ? " (oversized)" : "", seq_poison(r->seq) ? " (poison)" : "",
               seq_flaky(r->seq) ? " (fails once)" : seq_crash(r->seq) ? " (crashes its worker)" : "", r->level, r->have_id ? idt : "?", rel_s(r->t_start), rel_s(r->t_ok),
               r->calls, r->calls - r->empty_calls, r->dead, r->excused_by ? "; excused" : "");
        if (r->excused_by) printf("      excused by act #%d (%s)\n", r->excused_by - 1, act_name[acts[r->excused_by - 1].kind]);
        seq = r->seq;
        level = r->level;
        id = r->id;
    } else {
        rsq_id_format(id, idt);
        printf("    entry %d/%s (seq %lld): no publish on record\n", level, idt, seq);
    }
    for (i = 0; i < nhev && shown < 12; i++) {
        const hev *h = &hevs[i];
        char ft[128];
        if (!((seq >= 0 && h->seq == seq) || (h->level == level && rsq_id_cmp(h->id, id) == 0))) continue;
        rsq_id_format(h->id, idt);
        printf("      handler c%d +%.3fs id %s deliveries %lld %s -> %s\n", h->cons, rel_s(h->t), idt, h->deliveries,
               flags_txt(h->flags, ft, sizeof ft), h->action == 'A' ? "ack" : h->action == 'R' ? "retry" : h->action == 'C' ? "crash (worker exits)" : "retry later");
        shown++;
    }
    for (i = 0; i < ndlq; i++) {
        const dlq_ent *d = &dlqs[i];
        if (!((seq >= 0 && d->pseq == seq) || (d->has_id && d->level == level && rsq_id_cmp(d->id, id) == 0))) continue;
        rsq_id_format(d->id, idt);
        printf("      dead letter%s: dlq-id %s dlq-deliveries %lld dlq-error \"%s\" payload %s\n",
               d->deleted_by >= 0 ? " (deleted later by the nemesis)" : "", d->has_id ? idt : "(none)", d->deliveries,
               d->error, d->plen >= 0 ? "present" : "absent");
    }
    if (r) {
        int nc = 0;
        print_lib_near(r->t_start);
        for (i = 0; i < nhev && nc < 3; i++) /* crashing messages handled near it */
            if (hevs[i].action == 'C' && hevs[i].t >= r->t_start && hevs[i].t <= r->t_start + 5000000 && hevs[i].seq != r->seq) {
                rsq_id_format(hevs[i].id, idt);
                printf("      worker crash c%d +%.3fs on seq %lld (%d/%s, deliveries %lld)\n", hevs[i].cons, rel_s(hevs[i].t),
                       hevs[i].seq, hevs[i].level, idt, hevs[i].deliveries);
                nc++;
            }
    }
    /* acts near the publish: what happened around it (at most 8) */
    for (k = 0, shown = 0; k < nacts && shown < 8; k++) {
        const act *a = &acts[k];
        long long t = r ? r->t_start : (nhev ? hevs[0].t : g_t0);
        if (!a->done || a->t_end < t - 3000000 || a->t_start > t + 3000000) continue;
        shown++;
        printf("      act #%d +%.3fs %s %s\n", k, rel_s(a->t_start), act_name[a->kind], a->detail);
    }
}

static char summary[1024];
static size_t *hev_sorted;

static int cmp_hev(const void *a, const void *b) {
    const hev *x = &hevs[*(const size_t *)a], *y = &hevs[*(const size_t *)b];
    if (x->level != y->level) return x->level < y->level ? -1 : 1;
    return rsq_id_cmp(x->id, y->id);
}
/* handler calls on entry (level, id) */
/* The time of the first handler call of an entry, or -1. */
static long long hev_first_t(int level, rsq_id id) {
    size_t i;
    long long t = -1;
    for (i = 0; i < nhev; i++)
        if (hevs[i].level == level && rsq_id_cmp(hevs[i].id, id) == 0 && (t < 0 || hevs[i].t < t)) t = hevs[i].t;
    return t;
}

/* A consumer SIGKILLed between an entry's publish and its first handler call may have
   held it in a read's reply, counted by the server, before any handler saw it: one
   delivery no library can tell from a handler's (README, delivery counts). */
static long long excused_dlq; /* dead letters one count early for that reason */
static int killed_while_unseen(const rec *r, int level, rsq_id id) {
    long long first = hev_first_t(level, id);
    int k;
    for (k = 0; k < nacts; k++) {
        const act *a = &acts[k];
        if (a->kind == A_CONSUMER_KILL && a->done && a->t_start >= r->t_start && (first < 0 || a->t_start <= first)) return 1;
    }
    return 0;
}

static long long hev_calls(int level, rsq_id id) {
    size_t lo = 0, hi = nhev, i;
    long long n = 0;
    if (!hev_sorted) {
        if (!(hev_sorted = (size_t *)malloc((nhev ? nhev : 1) * sizeof *hev_sorted))) return 0;
        for (i = 0; i < nhev; i++) hev_sorted[i] = i;
        qsort(hev_sorted, nhev, sizeof *hev_sorted, cmp_hev);
    }
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const hev *x = &hevs[hev_sorted[mid]];
        int c = x->level != level ? (x->level < level ? -1 : 1) : rsq_id_cmp(x->id, id);
        if (c < 0) lo = mid + 1; else hi = mid;
    }
    for (i = lo; i < nhev && hevs[hev_sorted[i]].level == level && rsq_id_cmp(hevs[hev_sorted[i]].id, id) == 0; i++) n++;
    return n;
}

static int analyse(int drain_ok, const lvl_end *ends) {
    size_t i, j;
    int k, l, fail = 0;
    long long published = 0, handled = 0, dead = 0, excused_unhandled = 0, dups = 0, unknown_calls = 0;
    long long per_act_excuse[A_COUNT];
    long long first[K_COUNT][64];
    int nfirst[K_COUNT];
    memset(nfirst, 0, sizeof nfirst);
    memset(per_act_excuse, 0, sizeof per_act_excuse);
    /* attribute handler calls */
    for (i = 0; i < nhev; i++) {
        hev *h = &hevs[i];
        rec *r = NULL;
        int fields_ok = (h->flags & (F_PAYLOAD | F_FIELD | F_FIELDS)) == (F_PAYLOAD | F_FIELD | F_FIELDS);
        size_t pos = h->level >= 0 ? find_id(h->level, h->id) : nby_id;
        if (h->seq >= 0) r = rec_of_seq(h->seq);
        if (!r && pos < nby_id) r = &recs[by_id[pos]];
        h->rec = r ? (int)(r - recs) : -1;
        if (!r) unknown_calls++;
        if (r) r->calls++;
        if (!fields_ok) {
            if (r) r->empty_calls++;
            kind_count[K_EMPTY]++;
            if (nfirst[K_EMPTY] < 64) first[K_EMPTY][nfirst[K_EMPTY]++] = (long long)i;
            continue;
        }
        /* content that is not the entry's (or of a seq nobody published: counts must add up) */
        if (!(h->flags & F_VERIFIED) || !(h->flags & F_STREAM) || !rec_of_seq(h->seq)) {
            kind_count[K_CORRUPT]++;
            if (nfirst[K_CORRUPT] < 64) first[K_CORRUPT][nfirst[K_CORRUPT]++] = (long long)i;
            continue;
        }
        /* the entry's own fields? (an ID on record must carry one of its seqs) */
        if (pos < nby_id) {
            int match = 0;
            for (j = pos; j < nby_id && recs[by_id[j]].level == h->level && rsq_id_cmp(recs[by_id[j]].id, h->id) == 0; j++)
                if (recs[by_id[j]].seq == h->seq) match = 1;
            if (!match) {
                kind_count[K_CORRUPT]++;
                if (nfirst[K_CORRUPT] < 64) first[K_CORRUPT][nfirst[K_CORRUPT]++] = (long long)i;
                continue;
            }
        }
        if (h->deliveries < 1) {
            kind_count[K_BADDELIV]++;
            if (nfirst[K_BADDELIV] < 64) first[K_BADDELIV][nfirst[K_BADDELIV]++] = (long long)i;
        }
        if (r && h->action == 'A') {
            if (r->handled_ok) dups++;
            r->handled_ok++;
        }
    }
    /* dead letters */
    for (i = 0; i < ndlq; i++) {
        dlq_ent *d = &dlqs[i];
        rec *r = NULL;
        const char *why = NULL;
        char whybuf[200];
        size_t pos = d->has_id && d->level >= 0 ? find_id(d->level, d->id) : nby_id;
        if (d->pseq >= 0) r = rec_of_seq(d->pseq);
        if (!r && pos < nby_id) r = &recs[by_id[pos]];
        if (!r) {
            int unsure = 0; /* an oversized write whose reply was lost: its ID is unknown */
            for (k = 0; k < novs; k++) if (!ovs[k].have_id && ovs[k].level == d->level) unsure = 1;
            if (!unsure) why = "names no published entry";
        } else if (!d->error[0]) why = "has no reason (dlq-error)";
        else if (!d->has_id || d->level < 0) why = "has no origin (dlq-stream/dlq-id)";
        else if (!is_oversized(r->seq)) {
            long long calls = hev_calls(d->level, d->id);
            if (calls + opt.dlq_slack + 1 == opt.max_deliveries && killed_while_unseen(r, d->level, d->id)) {
                excused_dlq++; /* one count from a killed consumer's unseen read */
            } else if (calls + opt.dlq_slack < opt.max_deliveries) {
                snprintf(whybuf, sizeof whybuf, "after %lld handler deliveries (max_deliveries %d)", calls, opt.max_deliveries);
                why = whybuf;
            } else if (d->deliveries < opt.max_deliveries) {
                snprintf(whybuf, sizeof whybuf, "says dlq-deliveries %lld after %lld handler deliveries", d->deliveries, calls);
                why = whybuf;
            }
        }
        if (r) { r->dead++; if (!why) r->dead_ok++; }
        if (why) {
            kind_count[K_WRONGDLQ]++;
            if (nfirst[K_WRONGDLQ] < 64) first[K_WRONGDLQ][nfirst[K_WRONGDLQ]++] = (long long)i;
            if (nfirst[K_WRONGDLQ] <= opt.show) {
                char idt[RSQ_ID_STRLEN];
                rsq_id_format(d->id, idt);
                if (kind_count[K_WRONGDLQ] == 1) printf("\nFAIL wrong-dead-letter: dead letters against the contract\n");
                printf("  dead letter of %d/%s (seq %lld) %s\n", d->level, idt, r ? r->seq : d->pseq, why);
                print_history(r, d->pseq, d->level, d->id);
            }
        }
    }
    /* excuses and losses */
    for (i = 0; i < nrecs; i++) {
        rec *r = &recs[i];
        if (!r->present) continue;
        if (!is_oversized(r->seq)) published++;
        for (k = 0; k < nacts; k++)
            if (excused_by(r, &acts[k])) { r->excused_by = k + 1; break; }
        if (r->handled_ok) handled++;
        if (r->dead) dead++;
        /* a wrong dead letter is reported as such, not again as a loss */
        if (r->handled_ok || r->dead) continue;
        if (r->excused_by) { excused_unhandled++; per_act_excuse[acts[r->excused_by - 1].kind]++; continue; }
        kind_count[K_LOST]++;
        if (nfirst[K_LOST] < 64) first[K_LOST][nfirst[K_LOST]++] = (long long)i;
    }
    if (!drain_ok) kind_count[K_DRAIN] = 1;
    kind_count[K_EXIT] = cexits;
    for (l = 0; l < opt.levels; l++) kind_count[K_PENDING] += ends[l].pending;

    /* evidence */
    if (kind_count[K_LOST]) {
        printf("\nFAIL lost: %lld published messages neither handled nor dead-lettered, not removed by the nemesis\n",
               kind_count[K_LOST]);
        for (k = 0; k < nfirst[K_LOST] && k < opt.show; k++) {
            rec *r = &recs[first[K_LOST][k]];
            print_history(r, r->seq, r->level, r->id);
        }
        /* which act came last before each lost message's publish (acts run in time order) */
        {
            long long *n = (long long *)calloc((size_t)nacts + 1, sizeof *n), *lo, *hi;
            lo = (long long *)calloc((size_t)nacts + 1, sizeof *lo);
            hi = (long long *)calloc((size_t)nacts + 1, sizeof *hi);
            printf("  lost messages by the last act before their publish:\n");
            for (i = 0; n && lo && hi && i < nrecs; i++) {
                const rec *r = &recs[i];
                int a = 0, b = nacts; /* first act starting after the publish */
                if (!r->present || r->handled_ok || r->dead || r->excused_by) continue;
                while (a < b) { int m = (a + b) / 2; if (acts[m].t_start <= r->t_start) a = m + 1; else b = m; }
                if (!n[a]) lo[a] = r->seq; /* slot a: after act a-1 (slot 0: before any) */
                hi[a] = r->seq;
                n[a]++;
            }
            for (k = 0; n && lo && hi && k <= nacts; k++) {
                if (!n[k]) continue;
                if (k == 0) printf("    %lld before any act (seqs %lld..%lld)\n", n[k], lo[k], hi[k]);
                else printf("    %lld after act #%d +%.3fs %s %s (seqs %lld..%lld)\n", n[k], k - 1, rel_s(acts[k - 1].t_start),
                            act_name[acts[k - 1].kind], acts[k - 1].detail, lo[k], hi[k]);
            }
            free(n);
            free(lo);
            free(hi);
        }
    }
    if (kind_count[K_EMPTY] || kind_count[K_CORRUPT] || kind_count[K_BADDELIV]) {
        static const int ks[3] = { K_EMPTY, K_CORRUPT, K_BADDELIV };
        static const char *const what[3] = { "handler calls without the message's fields", "handler calls with fields not the entry's own",
                                             "handler calls with deliveries < 1" };
        for (k = 0; k < 3; k++) {
            int m;
            if (!kind_count[ks[k]]) continue;
            printf("\nFAIL %s: %lld %s\n", kind_name[ks[k]], kind_count[ks[k]], what[k]);
            for (m = 0; m < nfirst[ks[k]] && m < opt.show; m++) {
                const hev *h = &hevs[first[ks[k]][m]];
                char idt[RSQ_ID_STRLEN], ft[128];
                rsq_id_format(h->id, idt);
                printf("  c%d +%.3fs got %d/%s deliveries %lld %s\n", h->cons, rel_s(h->t), h->level, idt, h->deliveries,
                       flags_txt(h->flags, ft, sizeof ft));
                print_history(h->rec >= 0 ? &recs[h->rec] : NULL, h->seq, h->level, h->id);
            }
        }
    }
    if (kind_count[K_PENDING]) {
        printf("\nFAIL pending: %lld entries still pending after the drain\n", kind_count[K_PENDING]);
        for (l = 0; l < opt.levels; l++) {
            const rsq_reply *r;
            size_t m;
            if (!ends[l].pending) continue;
            if (rsq_command(&nem, &r, "XPENDING", key_lvl[l], GROUP, "-", "+", "5", (char *)0) != RSQ_OK || r->type != RSQ_REPLY_ARRAY) continue;
            for (m = 0; m < r->len; m++) {
                const rsq_reply *e = &r->element[m];
                rsq_id id;
                size_t pos;
                if (e->type != RSQ_REPLY_ARRAY || e->len < 4 || !rsq_id_parse(e->element[0].str, e->element[0].len, &id)) continue;
                printf("  %s %s held by %s idle %lld ms, %lld deliveries\n", key_lvl[l], e->element[0].str,
                       e->element[1].str ? e->element[1].str : "?", e->element[2].integer, e->element[3].integer);
                pos = find_id(l, id);
                if ((int)m < opt.show) print_history(pos < nby_id ? &recs[by_id[pos]] : NULL, -1, l, id);
            }
        }
    }
    if (kind_count[K_EXIT]) {
        int n = cexits < (int)(sizeof cexit_log / sizeof cexit_log[0]) ? cexits : (int)(sizeof cexit_log / sizeof cexit_log[0]);
        printf("\nFAIL consumer-exit: rsq_consumer_run returned an error %d times (the consumer was restarted)\n", cexits);
        for (k = 0; k < n; k++) { /* each distinct reason once, with its count */
            int m, same = 0, seen = 0;
            for (m = 0; m < k; m++) if (!strcmp(cexit_log[m].why, cexit_log[k].why)) seen = 1;
            if (seen) continue;
            for (m = k; m < n; m++) same += !strcmp(cexit_log[m].why, cexit_log[k].why);
            printf("  %d x \"%s\" (first c%d +%.3fs)\n", same, cexit_log[k].why, cexit_log[k].c, rel_s(cexit_log[k].t));
        }
    }
    if (kind_count[K_DRAIN]) printf("\nFAIL drain-timeout: the group did not drain within %.0f s after the nemesis stopped\n", opt.drain_s);

    printf("\nexcused (removed by the nemesis before being handled):");
    for (k = 0; k < A_COUNT; k++) if (per_act_excuse[k]) printf(" %s=%lld", act_name[k], per_act_excuse[k]);
    printf(" (total %lld of %lld published%s)\n", excused_unhandled, published, novs ? " and oversized" : "");
    if (unknown_calls) printf("handler calls on entries with no publish on record (unconfirmed copies): %lld\n", unknown_calls);
    if (torn_lines) printf("log lines not parsed (torn by a kill): %lld\n", torn_lines);
    if (excused_dlq)
        printf("dead letters one handler delivery early, a consumer having been SIGKILLed while the entry may have been in its\n"
               "read's reply, unseen by any handler (the server counts the read): %lld\n", excused_dlq);
    for (k = 0; k < K_COUNT; k++) if (kind_count[k]) fail = 1;
    snprintf(summary, sizeof summary, "nemesis: seed=%llu verdict=%s published=%lld oversized=%d handled=%lld dead=%lld excused=%lld lost=%lld empty=%lld "
           "corrupt=%lld bad_deliveries=%lld wrong_dlq=%lld pending=%lld drained=%s duplicates=%lld calls=%zu acts=%d crashes=%d consumer_exits=%d\n",
           opt.seed, fail ? "FAIL" : "PASS", published, novs, handled, dead, excused_unhandled, kind_count[K_LOST], kind_count[K_EMPTY],
           kind_count[K_CORRUPT], kind_count[K_BADDELIV], kind_count[K_WRONGDLQ], kind_count[K_PENDING], drain_ok ? "yes" : "no",
           dups, nhev, nacts, crashes, cexits);
    return fail;
}

/* the library's own log lines, counted per item */
static void library_log_summary(void) {
    long long count[RSQ__LOGI_COUNT];
    char firsts[RSQ__LOGI_COUNT][200];
    int c, i, any = 0;
    memset(count, 0, sizeof count);
    memset(firsts, 0, sizeof firsts);
    for (c = 0; c < opt.consumers; c++) {
        char path[512], line[700];
        FILE *f;
        snprintf(path, sizeof path, "%s/c%d.lib", g_dir, c);
        if (!(f = fopen(path, "r"))) continue;
        while (fgets(line, sizeof line, f)) {
            long long t;
            int lv, item, off = 0;
            if (sscanf(line, "L %lld %d %d %n", &t, &lv, &item, &off) < 3 || item < 0 || item >= RSQ__LOGI_COUNT) continue;
            count[item]++;
            if (nlib == lib_cap) {
                size_t nc = lib_cap ? lib_cap * 2 : 256;
                libline *p = (libline *)realloc(liblines, nc * sizeof *p);
                if (p) { liblines = p; lib_cap = nc; }
            }
            if (nlib < lib_cap) {
                size_t n;
                libline *x = &liblines[nlib++];
                x->t = t;
                x->c = c;
                x->item = item;
                snprintf(x->msg, sizeof x->msg, "%s", line + off);
                n = strlen(x->msg);
                while (n && x->msg[n - 1] == '\n') x->msg[--n] = '\0';
            }
            if (!firsts[item][0]) {
                size_t n;
                snprintf(firsts[item], sizeof firsts[item], "+%.3fs c%d: %s", rel_s(t), c, line + off);
                n = strlen(firsts[item]);
                while (n && firsts[item][n - 1] == '\n') firsts[item][--n] = '\0';
            }
        }
        fclose(f);
    }
    for (i = 0; i < RSQ__LOGI_COUNT; i++) {
        if (!count[i]) continue;
        if (!any) printf("library log (consumers):\n");
        any = 1;
        printf("  %-50s x%lld, first %s\n", rsq_log_item_str((rsq_log_item)i), count[i], firsts[i]);
    }
}

/* ---------------------------------------------------------------------- main ---- */
static void usage(void) {
    fprintf(stderr, "usage: nemesis --seed N --duration S [--producers P] [--consumers C] [--levels L] [--rate R]\n"
                    "               [--intensity X] [--acts a,b,...] [--drain-s D] [--tail-s T] [--max-deliveries M]\n"
                    "               [--prefetch K] [--visibility-ms V] [--max-bulk B] [--big B] [--start 0|$]\n"
                    "               [--crash-every N] [--dlq-slack N] [--keep] [--schedule] [--show N]\nacts:");
    {
        int k;
        for (k = 0; k < A_COUNT; k++) fprintf(stderr, " %s", act_name[k]);
    }
    fprintf(stderr, "\n");
}

static int parse_acts(const char *s) {
    char buf[512], *tok, *save = NULL;
    unsigned m = 0;
    snprintf(buf, sizeof buf, "%s", s);
    for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        int k;
        if (!strcmp(tok, "none")) continue;
        for (k = 0; k < A_COUNT; k++) if (!strcmp(tok, act_name[k])) break;
        if (k == A_COUNT) { fprintf(stderr, "nemesis: unknown act %s\n", tok); return -1; }
        m |= 1u << k;
    }
    opt.acts = m;
    return 0;
}

int main(int argc, char **argv) {
    rsq_client_config cfg;
    int i, l, fail, drain_ok = 0, stable = 0;
    lvl_end ends[MAX_LEVELS];
    long long nem_end, prod_end, drain_end;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--keep")) { opt.keep = 1; continue; }
        if (!strcmp(a, "--schedule")) { opt.schedule = 1; continue; }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(); return 0; }
        if (!v) { usage(); return 2; }
        i++;
        if (!strcmp(a, "--seed")) opt.seed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--duration")) opt.duration_s = atof(v);
        else if (!strcmp(a, "--tail-s")) opt.tail_s = atof(v);
        else if (!strcmp(a, "--drain-s")) opt.drain_s = atof(v);
        else if (!strcmp(a, "--intensity")) opt.intensity = atof(v);
        else if (!strcmp(a, "--producers")) opt.producers = atoi(v);
        else if (!strcmp(a, "--consumers")) opt.consumers = atoi(v);
        else if (!strcmp(a, "--levels")) opt.levels = atoi(v);
        else if (!strcmp(a, "--rate")) opt.rate = atoi(v);
        else if (!strcmp(a, "--max-deliveries")) opt.max_deliveries = atoi(v);
        else if (!strcmp(a, "--prefetch")) opt.prefetch = atoi(v);
        else if (!strcmp(a, "--visibility-ms")) opt.visibility_ms = atoi(v);
        else if (!strcmp(a, "--max-bulk")) opt.max_bulk = (size_t)atol(v);
        else if (!strcmp(a, "--big")) opt.big = (size_t)atol(v);
        else if (!strcmp(a, "--show")) opt.show = atoi(v);
        else if (!strcmp(a, "--crash-every")) opt.crash_every = atoi(v);
        else if (!strcmp(a, "--dlq-slack")) opt.dlq_slack = atoi(v);
        else if (!strcmp(a, "--start")) opt.start = v;
        else if (!strcmp(a, "--acts")) { if (parse_acts(v) != 0) return 2; }
        else { fprintf(stderr, "nemesis: unknown argument %s\n", a); usage(); return 2; }
    }
    if (opt.producers < 1 || opt.producers > MAX_PROCS || opt.consumers < 1 || opt.consumers > MAX_PROCS ||
        opt.levels < 1 || opt.levels > MAX_LEVELS || opt.duration_s <= 0 || opt.max_deliveries < 1 || opt.prefetch < 1 ||
        opt.visibility_ms < 100 || opt.big < 64 || opt.max_bulk < 1024) {
        fprintf(stderr, "nemesis: bad sizes\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    for (l = 0; l < opt.levels; l++) rsq_queue_key(key_lvl[l], sizeof key_lvl[l], QUEUE, 0, l, RSQ_KEY_STREAM);
    rsq_queue_key(key_dlq, sizeof key_dlq, QUEUE, 0, 0, RSQ_KEY_DEAD_LETTER);
    make_schedule();
    printf("nemesis: seed=%llu duration=%.0fs producers=%d consumers=%d levels=%d rate=%d/s intensity=%.2f prefetch=%d "
           "visibility=%dms max_deliveries=%d dlq_slack=%d max_bulk=%zu big=%zu start=%s acts=%d\n",
           opt.seed, opt.duration_s, opt.producers, opt.consumers, opt.levels, opt.rate, opt.intensity, opt.prefetch,
           opt.visibility_ms, opt.max_deliveries, opt.dlq_slack, opt.max_bulk, opt.big, opt.start ? opt.start : "(library default)", nacts);
    if (opt.schedule)
        for (i = 0; i < nacts; i++)
            printf("  schedule #%d +%.3fs %s r=%llx\n", i, (double)acts[i].at / 1e6, act_name[acts[i].kind],
                   (unsigned long long)acts[i].r[1]);
    if (harness_error) return 2;
    /* rewrites keep the AOF short, so that a restart loads it quickly even late in a long run */
    if (srv_start(&g_srv, "appendonly yes\nappendfsync always\nauto-aof-rewrite-percentage 50\n"
                          "auto-aof-rewrite-min-size 16mb\n") != 0) { printf("nemesis: redis-server did not start\n"); return 2; }
    snprintf(g_dir, sizeof g_dir, "%s", g_srv.dir);
    signal(SIGINT, on_orchestrator_signal);
    signal(SIGTERM, on_orchestrator_signal);
    rsq_client_config_init(&cfg);
    cfg.url = g_srv.url;
    cfg.name = "nemesis";
    cfg.retry_attempts = 50;
    cfg.retry_base_ms = 50;
    cfg.retry_max_ms = 500;
    cfg.io_timeout_ms = 10000;
    if (rsq_client_init(&nem, &cfg) != RSQ_OK) { srv_stop(&g_srv, 0); return 2; }
    /* the group exists from the start, at 0, so that nothing hangs on where a new group begins */
    for (l = 0; l < opt.levels; l++) {
        rsq_result rc = rsq_group_create(&nem, key_lvl[l], GROUP, RSQ_START_ALL);
        if (rc != RSQ_OK) { printf("nemesis: group create: %s\n", rsq_errstr(&nem)); srv_stop(&g_srv, 0); return 2; }
    }
    g_t0 = now_us();
    for (i = 0; i < opt.consumers; i++) cpid[i] = spawn_consumer(i);
    for (i = 0; i < opt.producers; i++) {
        fflush(stdout);
        ppid_[i] = fork();
        if (ppid_[i] == 0) producer_main(g_srv.url, i);
    }
    nem_end = g_t0 + (long long)(opt.duration_s * 1e6);
    prod_end = g_t0 + (long long)((opt.duration_s + opt.tail_s) * 1e6);
    printf("nemesis: data in %s\n", g_dir);
    for (i = 0; i < nacts && !harness_error;) {
        long long now = now_us();
        if (now >= g_t0 + acts[i].at) { run_act(&acts[i]); i++; continue; }
        {
            long wait_ms = (long)((g_t0 + acts[i].at - now) / 1000);
            nap(wait_ms > 50 ? 50 : wait_ms + 1);
        }
    }
    nacts = i; /* acts not run (a harness error) are not acts */
    while (now_us() < nem_end) nap(50);
    /* producers finish their tail; wait for them (bounded) */
    for (;;) {
        int left = 0;
        supervise();
        for (i = 0; i < opt.producers; i++) left += ppid_[i] > 0;
        if (!left) break;
        if (now_us() > prod_end + 60000000LL) {
            printf("nemesis: producers did not finish; stopping them\n");
            for (i = 0; i < opt.producers; i++) if (ppid_[i] > 0) { kill(ppid_[i], SIGKILL); waitpid(ppid_[i], NULL, 0); ppid_[i] = 0; }
            harness_error = 1;
            break;
        }
        nap(100);
    }
    printf("  +%.3fs producers done; draining (at most %.0f s)\n", rel_s(now_us()), opt.drain_s);
    drain_end = now_us() + (long long)(opt.drain_s * 1e6);
    while (now_us() < drain_end) {
        int all = 1;
        for (l = 0; l < opt.levels; l++) {
            if (read_level_end(l, &ends[l]) != 0) { all = 0; break; }
            if (!level_drained(&ends[l])) all = 0;
        }
        stable = all ? stable + 1 : 0;
        if (stable >= 3) { drain_ok = 1; break; }
        nap(500);
    }
    for (l = 0; l < opt.levels; l++) if (read_level_end(l, &ends[l]) != 0) memset(&ends[l], 0, sizeof ends[l]);
    printf("  +%.3fs drain %s:", rel_s(now_us()), drain_ok ? "done" : "TIMED OUT");
    for (l = 0; l < opt.levels; l++) {
        char a[RSQ_ID_STRLEN], b[RSQ_ID_STRLEN];
        rsq_id_format(ends[l].last_entry, a);
        rsq_id_format(ends[l].last_delivered, b);
        printf(" %s[last %s, group %s, pending %lld]", key_lvl[l], a, ends[l].group_exists ? b : "none", ends[l].pending);
    }
    printf("\n");
    /* stop the consumers (they release what they hold), then read everything */
    for (i = 0; i < opt.consumers; i++) if (cpid[i] > 0) kill(cpid[i], SIGTERM);
    for (i = 0; i < opt.consumers; i++) {
        int w;
        if (cpid[i] <= 0) continue;
        for (w = 0; w < 100 && waitpid(cpid[i], NULL, WNOHANG) != cpid[i]; w++) sleep_ms(100);
        if (w == 100) { kill(cpid[i], SIGKILL); waitpid(cpid[i], NULL, 0); printf("nemesis: consumer c%d ignored SIGTERM for 10 s\n", i); }
        cpid[i] = 0;
    }
    if (read_final_dlq() != 0 || load_producer_logs() != 0 || load_consumer_logs() != 0) harness_error = 1;
    library_log_summary();
    if (harness_error) {
        printf("nemesis: seed=%llu verdict=ERROR (the harness could not run; data kept in %s)\n", opt.seed, g_dir);
        rsq_client_free(&nem);
        srv_stop(&g_srv, 1);
        return 2;
    }
    fail = analyse(drain_ok, ends);
    rsq_client_free(&nem);
    srv_stop(&g_srv, fail || opt.keep);
    if (fail || opt.keep) printf("nemesis: data kept in %s (reproduce: build/nemesis --seed %llu --duration %.0f)\n", g_dir, opt.seed, opt.duration_s);
    fputs(summary, stdout); /* the last line */
    return fail ? 1 : 0;
}
