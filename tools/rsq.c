/* rsq - the command-line front end of rsq.h for operators and scripts.

     rsq [-u URL] pub STREAM [PAYLOAD]        publish one message, or each stdin line
     rsq [-u URL] work STREAM -g GROUP        consume as a group member
     rsq [-u URL] stats STREAM                queue metrics
     rsq [-u URL] dlq STREAM list|replay      dead letters
     rsq --version | --help

   Exit status: 0 success, 1 error (one line on stderr), 2 bad usage.
   The URL comes from -u, else $RSQ_URL, else redis://127.0.0.1:6379. */
#define _DEFAULT_SOURCE 1
#define RSQ_IMPLEMENTATION
#include "../rsq.h"
#include <errno.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define EXIT_USAGE 2

static const char *prog = "rsq";

static const char usage_main[] =
    "usage: rsq [-u URL] COMMAND [ARGS]\n"
    "\n"
    "commands:\n"
    "  pub STREAM [PAYLOAD]          publish PAYLOAD, or each line of standard input\n"
    "  work STREAM -g GROUP          consume as a member of GROUP\n"
    "  stats STREAM                  length, and per group: pending, lag, consumers, oldest\n"
    "  dlq STREAM list|replay        show or re-publish dead letters\n"
    "\n"
    "options:\n"
    "  -u URL      redis://[user:password@]host[:port][/db] or unix:///path[?db=N]\n"
    "              (default $RSQ_URL, else redis://127.0.0.1:6379)\n"
    "  --help      this text; `rsq COMMAND --help` for a command\n"
    "  --version   print the version\n";

static const char usage_pub[] =
    "usage: rsq [-u URL] pub STREAM [PAYLOAD] [options]\n"
    "Publishes PAYLOAD (field \"payload\"), or with no PAYLOAD each line of standard input\n"
    "as one message, pipelined. Prints each entry ID.\n"
    "  --priority N      priority level (0 = default stream, higher is more urgent)\n"
    "  --maxlen N        cap the stream at N entries (LOSSY: drops the oldest entries)\n"
    "  --shards N        spread messages round robin over N shards\n"
    "  -H name=value     a header field (repeatable)\n";

static const char usage_work[] =
    "usage: rsq [-u URL] work STREAM -g GROUP [-n CONSUMER] [options]\n"
    "Writes each payload to standard output, one per line, and acks it once written.\n"
    "  --exec CMD            run CMD (via /bin/sh) per message with the payload on its\n"
    "                        standard input: exit 0 acks, non-zero nacks; RSQ_ID,\n"
    "                        RSQ_STREAM and RSQ_DELIVERIES are set in its environment\n"
    "  --max-deliveries N    dead-letter a message after N deliveries (default 10)\n"
    "  --count N             prefetch N messages per read (default 16)\n"
    "  --max N               exit after N messages\n"
    "  --idle-exit SECONDS   exit when nothing arrives for that long\n"
    "  --visibility MS       reclaim entries idle that long on other consumers (default 30000)\n"
    "  --priority-levels N   read N priority levels, highest first (default 1)\n"
    "  --shards N            read N shards (default 1)\n"
    "  --from 0|$|ID         where a new group starts (default $: new messages only)\n"
    "SIGINT/SIGTERM: stop taking messages, finish the one in hand, exit 0.\n";

static const char usage_stats[] =
    "usage: rsq [-u URL] stats STREAM [--watch SECONDS]\n"
    "Prints the stream's length and, per group: pending, lag, consumers, oldest pending age.\n"
    "  --watch SECONDS   redraw every SECONDS until interrupted\n";

static const char usage_dlq[] =
    "usage: rsq [-u URL] dlq STREAM list|replay [--max N]\n"
    "  list     show dead letters of STREAM (oldest first)\n"
    "  replay   re-publish them to the stream they came from and remove them\n"
    "  --max N  at most N dead letters (default: all)\n";

static int fail(const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "%s: ", prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return 1;
}

static int usage_error(const char *usage, const char *fmt, const char *arg) {
    fprintf(stderr, "%s: ", prog);
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n%s", usage);
    return EXIT_USAGE;
}

/* Parses a non-negative integer option value. */
static int parse_num(const char *s, long long lo, long long hi, long long *out) {
    char *end;
    long long v;
    if (!s || !*s) return 0;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || *end || v < lo || v > hi) return 0;
    *out = v;
    return 1;
}

static volatile sig_atomic_t g_interrupted;
static rsq_consumer *g_consumer;

static void on_signal(int sig) {
    (void)sig;
    g_interrupted = 1;
    if (g_consumer) rsq_consumer_stop(g_consumer);
}

static void install_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

static int open_client(rsq_client *c, const char *url) {
    rsq_client_config cfg;
    rsq_client_config_init(&cfg);
    cfg.url = url;
    cfg.name = "rsq-cli";
    cfg.retry_attempts = 3; /* an operator wants a quick answer */
    if (rsq_client_init(c, &cfg) != RSQ_OK) {
        fail("%s", rsq_errstr(c));
        rsq_client_free(c);
        return 0;
    }
    return 1;
}

/* ---------------------------------------------------------------------------------- */
/* pub */
#define PUB_BATCH 256

static int print_ids(const rsq_id *ids, const rsq_result *res, size_t n, rsq_client *c) {
    size_t i;
    int ok = 1;
    for (i = 0; i < n; i++) {
        char buf[RSQ_ID_STRLEN];
        if (res[i] != RSQ_OK) { if (ok) fail("publish: %s", rsq_errstr(c)); ok = 0; continue; }
        rsq_id_format(ids[i], buf);
        puts(buf);
    }
    return ok;
}

static int cmd_pub(const char *url, int argc, char **argv) {
    const char *stream = NULL, *payload = NULL;
    rsq_field headers[RSQ_MAX_HEADERS];
    size_t nheaders = 0;
    long long priority = 0, maxlen = -1, shards = 1;
    rsq_client c;
    rsq_producer p;
    rsq_producer_config pc;
    int i, status = 0;
    for (i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { fputs(usage_pub, stdout); return 0; }
        if (!strcmp(a, "--priority") || !strcmp(a, "--maxlen") || !strcmp(a, "--shards") || !strcmp(a, "-H")) {
            if (i + 1 >= argc) return usage_error(usage_pub, "%s needs a value", a);
            if (!strcmp(a, "-H")) {
                char *eq = strchr(argv[i + 1], '=');
                if (!eq || eq == argv[i + 1]) return usage_error(usage_pub, "-H wants name=value, got \"%s\"", argv[i + 1]);
                if (nheaders == RSQ_MAX_HEADERS) return usage_error(usage_pub, "too many headers%s", "");
                *eq = '\0';
                headers[nheaders].name = argv[i + 1];
                headers[nheaders].name_len = 0;
                headers[nheaders].value = eq + 1;
                headers[nheaders].value_len = strlen(eq + 1);
                nheaders++;
            } else if (!strcmp(a, "--priority")) {
                if (!parse_num(argv[i + 1], 0, RSQ_MAX_PRIORITIES - 1, &priority)) return usage_error(usage_pub, "bad --priority \"%s\"", argv[i + 1]);
            } else if (!strcmp(a, "--maxlen")) {
                if (!parse_num(argv[i + 1], 0, (long long)1 << 62, &maxlen)) return usage_error(usage_pub, "bad --maxlen \"%s\"", argv[i + 1]);
            } else if (!parse_num(argv[i + 1], 1, RSQ_MAX_SHARDS, &shards)) {
                return usage_error(usage_pub, "bad --shards \"%s\"", argv[i + 1]);
            }
            i++;
        } else if (a[0] == '-' && a[1]) {
            return usage_error(usage_pub, "unknown option %s", a);
        } else if (!stream) {
            stream = a;
        } else if (!payload) {
            payload = a;
        } else {
            return usage_error(usage_pub, "unexpected argument \"%s\"", a);
        }
    }
    if (!stream) return usage_error(usage_pub, "pub needs a STREAM%s", "");
    if (!open_client(&c, url)) return 1;
    rsq_producer_config_init(&pc);
    pc.queue = stream;
    pc.priority_levels = (int)priority + 1;
    pc.shards = (int)shards;
    if (maxlen >= 0) {
        pc.cap.mode = RSQ_TRIM_MAXLEN;
        pc.cap.maxlen = maxlen;
        pc.cap.exact = 1;
    }
    if (rsq_producer_init(&p, &c, &pc) != RSQ_OK) {
        fail("%s", rsq_errstr(&c));
        rsq_client_free(&c);
        return 1;
    }
    if (payload) {
        rsq_outgoing m;
        rsq_id id;
        rsq_result res;
        memset(&m, 0, sizeof m);
        m.payload = payload;
        m.payload_len = strlen(payload);
        m.headers = headers;
        m.header_count = nheaders;
        m.priority = (int)priority;
        res = rsq_publish_msg(&p, &m, &id);
        if (res != RSQ_OK) status = res == RSQ_ERR_ARG || res == RSQ_ERR_TOO_LARGE ? fail("%s", rsq_errstr(&c)) : fail("publish: %s", rsq_errstr(&c));
        else print_ids(&id, &res, 1, &c);
    } else {
        /* each stdin line is one message; PUB_BATCH lines per pipelined write */
        static rsq_outgoing msgs[PUB_BATCH];
        static rsq_id ids[PUB_BATCH];
        static rsq_result res[PUB_BATCH];
        static char *lines[PUB_BATCH];
        static size_t caps[PUB_BATCH];
        size_t n = 0;
        for (;;) {
            ssize_t len = getline(&lines[n], &caps[n], stdin);
            if (len >= 0) {
                if (len > 0 && lines[n][len - 1] == '\n') lines[n][--len] = '\0';
                memset(&msgs[n], 0, sizeof msgs[n]);
                msgs[n].payload = lines[n];
                msgs[n].payload_len = (size_t)len;
                msgs[n].headers = headers;
                msgs[n].header_count = nheaders;
                msgs[n].priority = (int)priority;
                n++;
            }
            if ((len < 0 && n > 0) || n == PUB_BATCH) {
                rsq_result rc = rsq_publish_batch(&p, msgs, n, ids, res);
                if (rc == RSQ_ERR_ARG || rc == RSQ_ERR_TOO_LARGE) { status = fail("%s", rsq_errstr(&c)); break; }
                if (!print_ids(ids, res, n, &c)) status = 1;
                n = 0;
                if (status) break;
            }
            if (len < 0) break;
        }
        for (i = 0; i < PUB_BATCH; i++) free(lines[i]);
    }
    if (fflush(stdout) != 0 && !status) status = fail("stdout: %s", strerror(errno));
    rsq_client_free(&c);
    return status;
}

/* ---------------------------------------------------------------------------------- */
/* work */
static int run_exec(const char *cmd, const rsq_message *m, int *exit_status) {
    int fds[2], st;
    pid_t pid;
    if (pipe(fds) != 0) return -1;
    pid = fork();
    if (pid < 0) { close(fds[0]); close(fds[1]); return -1; }
    if (pid == 0) {
        char dl[24];
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = SIG_DFL;
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        signal(SIGPIPE, SIG_DFL);
        setpgid(0, 0); /* a terminal's Ctrl-C stops rsq, which lets this one finish */
        dup2(fds[0], 0);
        close(fds[0]);
        close(fds[1]);
        snprintf(dl, sizeof dl, "%lld", m->deliveries);
        setenv("RSQ_ID", m->id_str, 1);
        setenv("RSQ_STREAM", m->stream, 1);
        setenv("RSQ_DELIVERIES", dl, 1);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    close(fds[0]);
    {
        size_t off = 0;
        while (off < m->payload_len) {
            ssize_t k = write(fds[1], m->payload + off, m->payload_len - off);
            if (k < 0 && errno == EINTR) continue;
            if (k <= 0) break; /* the command does not read its input: fine */
            off += (size_t)k;
        }
    }
    close(fds[1]);
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR) return -1;
    *exit_status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    return 0;
}

static int cmd_work(const char *url, int argc, char **argv) {
    const char *stream = NULL, *group = NULL, *name = NULL, *exec_cmd = NULL, *from = NULL;
    long long max_deliveries = 10, count = 16, max = 0, idle_exit = 0, visibility = 30000, levels = 1, shards = 1;
    rsq_client c;
    rsq_consumer k;
    rsq_consumer_config cc;
    long long handled = 0;
    int i, status = 0;
    for (i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { fputs(usage_work, stdout); return 0; }
        if (a[0] == '-' && a[1]) {
            if (!v) return usage_error(usage_work, "%s needs a value", a);
            if (!strcmp(a, "-g")) group = v;
            else if (!strcmp(a, "-n")) name = v;
            else if (!strcmp(a, "--exec")) exec_cmd = v;
            else if (!strcmp(a, "--from")) from = v;
            else if (!strcmp(a, "--max-deliveries")) { if (!parse_num(v, 1, 1000000, &max_deliveries)) return usage_error(usage_work, "bad --max-deliveries \"%s\"", v); }
            else if (!strcmp(a, "--count")) { if (!parse_num(v, 1, 100000, &count)) return usage_error(usage_work, "bad --count \"%s\"", v); }
            else if (!strcmp(a, "--max")) { if (!parse_num(v, 1, (long long)1 << 62, &max)) return usage_error(usage_work, "bad --max \"%s\"", v); }
            else if (!strcmp(a, "--idle-exit")) { if (!parse_num(v, 1, 86400 * 365, &idle_exit)) return usage_error(usage_work, "bad --idle-exit \"%s\"", v); }
            else if (!strcmp(a, "--visibility")) { if (!parse_num(v, 1, 0x7fffffff, &visibility)) return usage_error(usage_work, "bad --visibility \"%s\"", v); }
            else if (!strcmp(a, "--priority-levels")) { if (!parse_num(v, 1, RSQ_MAX_PRIORITIES, &levels)) return usage_error(usage_work, "bad --priority-levels \"%s\"", v); }
            else if (!strcmp(a, "--shards")) { if (!parse_num(v, 1, RSQ_MAX_SHARDS, &shards)) return usage_error(usage_work, "bad --shards \"%s\"", v); }
            else return usage_error(usage_work, "unknown option %s", a);
            i++;
        } else if (!stream) {
            stream = a;
        } else {
            return usage_error(usage_work, "unexpected argument \"%s\"", a);
        }
    }
    if (!stream) return usage_error(usage_work, "work needs a STREAM%s", "");
    if (!group) return usage_error(usage_work, "work needs -g GROUP%s", "");
    if (from && strcmp(from, "0") && strcmp(from, "$")) {
        rsq_id tmp;
        if (!rsq_id_parse(from, strlen(from), &tmp)) return usage_error(usage_work, "bad --from \"%s\" (0, $ or an entry ID)", from);
    }
    if (!open_client(&c, url)) return 1;
    rsq_consumer_config_init(&cc);
    cc.queue = stream;
    cc.group = group;
    cc.name = name;
    cc.count = (int)(max && max < count ? max : count);
    cc.visibility_ms = (int)visibility;
    cc.max_deliveries = (int)max_deliveries;
    cc.priority_levels = (int)levels;
    cc.shards = (int)shards;
    cc.start = from;
    if (rsq_consumer_init(&k, &c, &cc) != RSQ_OK) {
        fail("%s", rsq_errstr(&c));
        rsq_client_free(&c);
        return 1;
    }
    g_consumer = &k;
    install_signals();
    for (;;) {
        const rsq_message *m;
        rsq_result rc = rsq_consumer_next(&k, &m, idle_exit ? (int)(idle_exit * 1000) : RSQ_TIMEOUT_FOREVER);
        if (rc == RSQ_STOPPED) break;
        if (rc == RSQ_EMPTY) { if (idle_exit) break; continue; }
        if (rc != RSQ_OK) { status = fail("%s", rsq_errstr(&c)); break; }
        if (exec_cmd) {
            int ex = 0;
            if (run_exec(exec_cmd, m, &ex) != 0) { status = fail("exec: %s", strerror(errno)); break; }
            if (ex == 0) {
                rc = rsq_ack(&k, m);
            } else {
                char why[64];
                snprintf(why, sizeof why, "exec: exit status %d", ex);
                rc = rsq_nack(&k, m, 0, why);
            }
        } else {
            if ((m->payload_len && fwrite(m->payload, 1, m->payload_len, stdout) != m->payload_len) ||
                fputc('\n', stdout) == EOF || fflush(stdout) != 0) {
                status = fail("stdout: %s", strerror(errno)); /* not acked: it stays pending */
                break;
            }
            rc = rsq_ack(&k, m);
        }
        if (rc != RSQ_OK && rc != RSQ_ERR_IO && rc != RSQ_ERR_TIMEOUT) { status = fail("%s", rsq_errstr(&c)); break; }
        if (max && ++handled >= max) break;
    }
    /* hand back what was prefetched but not handled, and send the last acks */
    if (rsq_consumer_release(&k) != RSQ_OK && !status) status = fail("ack: %s", rsq_errstr(&c));
    g_consumer = NULL;
    rsq_consumer_free(&k);
    rsq_client_free(&c);
    return status;
}

/* ---------------------------------------------------------------------------------- */
/* stats */
static void fmt_age(long long ms, char *out, size_t cap) {
    if (ms <= 0) snprintf(out, cap, "-");
    else if (ms < 1000) snprintf(out, cap, "%lldms", ms);
    else if (ms < 60000) snprintf(out, cap, "%.1fs", (double)ms / 1000.0);
    else if (ms < 3600000) snprintf(out, cap, "%.1fm", (double)ms / 60000.0);
    else if (ms < 86400000) snprintf(out, cap, "%.1fh", (double)ms / 3600000.0);
    else snprintf(out, cap, "%.1fd", (double)ms / 86400000.0);
}

static int print_stats(rsq_client *c, const char *stream) {
    rsq_stream_info si;
    rsq_group_info g[64];
    size_t n = 0, i;
    char a[RSQ_ID_STRLEN], b[RSQ_ID_STRLEN], dlq[RSQ_KEY_MAX];
    long long dl = 0;
    if (rsq_stream_stats(c, stream, &si, g, 64, &n) != RSQ_OK) return fail("stats: %s", rsq_errstr(c));
    if (!si.exists) {
        printf("stream %s: does not exist\n", stream);
        return 0;
    }
    rsq_id_format(si.first_id, a);
    rsq_id_format(si.last_id, b);
    if (rsq_queue_key(dlq, sizeof dlq, stream, 0, 0, RSQ_KEY_DEAD_LETTER)) rsq_stream_length(c, dlq, &dl);
    printf("stream %s  length %lld  first %s  last %s  dead-letters %lld\n", stream, si.length, a, b, dl);
    printf("%-24s %10s %10s %10s %10s\n", "GROUP", "PENDING", "LAG", "CONSUMERS", "OLDEST");
    for (i = 0; i < n; i++) {
        char lag[32], age[32];
        if (g[i].lag < 0) snprintf(lag, sizeof lag, "?");
        else snprintf(lag, sizeof lag, "%s%lld", g[i].lag_exact ? "" : ">", g[i].lag);
        fmt_age(g[i].oldest_pending_age_ms, age, sizeof age);
        printf("%-24s %10lld %10s %10lld %10s\n", g[i].name, g[i].pending, lag, g[i].consumers, age);
    }
    if ((long long)n < si.groups) printf("(%lld more groups)\n", si.groups - (long long)n);
    return 0;
}

static int cmd_stats(const char *url, int argc, char **argv) {
    const char *stream = NULL;
    long long watch = 0;
    rsq_client c;
    int i, status = 0, tty = isatty(1);
    for (i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { fputs(usage_stats, stdout); return 0; }
        if (!strcmp(argv[i], "--watch")) {
            if (i + 1 >= argc || !parse_num(argv[i + 1], 1, 86400, &watch)) return usage_error(usage_stats, "bad --watch%s", "");
            i++;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return usage_error(usage_stats, "unknown option %s", argv[i]);
        } else if (!stream) {
            stream = argv[i];
        } else {
            return usage_error(usage_stats, "unexpected argument \"%s\"", argv[i]);
        }
    }
    if (!stream) return usage_error(usage_stats, "stats needs a STREAM%s", "");
    if (!open_client(&c, url)) return 1;
    if (!watch) {
        status = print_stats(&c, stream);
    } else {
        install_signals();
        while (!g_interrupted) {
            time_t now = time(NULL);
            char when[64];
            strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", localtime(&now));
            if (tty) printf("\033[H\033[2J");
            printf("rsq stats  every %llds  %s\n", watch, when);
            status = print_stats(&c, stream);
            if (!tty) printf("\n");
            fflush(stdout);
            if (status) break;
            {
                long long left = watch * 1000;
                while (left > 0 && !g_interrupted) { usleep(100000); left -= 100; }
            }
        }
    }
    rsq_client_free(&c);
    return status;
}

/* ---------------------------------------------------------------------------------- */
/* dlq */
static int cmd_dlq(const char *url, int argc, char **argv) {
    const char *stream = NULL, *action = NULL;
    long long max = 0;
    char dlq[RSQ_KEY_MAX];
    rsq_client c;
    int i, status = 0;
    for (i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { fputs(usage_dlq, stdout); return 0; }
        if (!strcmp(argv[i], "--max")) {
            if (i + 1 >= argc || !parse_num(argv[i + 1], 1, (long long)1 << 62, &max)) return usage_error(usage_dlq, "bad --max%s", "");
            i++;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return usage_error(usage_dlq, "unknown option %s", argv[i]);
        } else if (!stream) {
            stream = argv[i];
        } else if (!action) {
            action = argv[i];
        } else {
            return usage_error(usage_dlq, "unexpected argument \"%s\"", argv[i]);
        }
    }
    if (!stream || !action) return usage_error(usage_dlq, "dlq needs STREAM and list or replay%s", "");
    if (strcmp(action, "list") && strcmp(action, "replay")) return usage_error(usage_dlq, "unknown dlq action \"%s\"", action);
    if (!rsq_queue_key(dlq, sizeof dlq, stream, 0, 0, RSQ_KEY_DEAD_LETTER)) return usage_error(usage_dlq, "bad STREAM \"%s\"", stream);
    if (!open_client(&c, url)) return 1;
    if (!strcmp(action, "replay")) {
        size_t n = 0;
        if (rsq_dead_letter_replay(&c, dlq, (size_t)max, &n) != RSQ_OK) status = fail("replay: %s (after %zu replayed)", rsq_errstr(&c), n);
        else printf("replayed %zu\n", n);
    } else {
        /* pages of 100, oldest first */
        char start[RSQ_ID_STRLEN + 1] = "-";
        long long shown = 0;
        for (;;) {
            const rsq_reply *r;
            size_t j;
            char cnt[24];
            long long page = max ? (max - shown < 100 ? max - shown : 100) : 100;
            if (page <= 0) break;
            snprintf(cnt, sizeof cnt, "%lld", page);
            if (rsq_command(&c, &r, "XRANGE", dlq, start, "+", "COUNT", cnt, (char *)0) != RSQ_OK) { status = fail("list: %s", rsq_errstr(&c)); break; }
            if (r->type != RSQ_REPLY_ARRAY || r->len == 0) break;
            for (j = 0; j < r->len; j++) {
                const rsq_reply *e = &r->element[j], *f = &e->element[1];
                const rsq_reply *oid = rsq_reply_get(f, "dlq-id"), *d = rsq_reply_get(f, "dlq-deliveries"),
                                *er = rsq_reply_get(f, "dlq-error"), *p = rsq_reply_get(f, "payload");
                printf("%s origin=%s deliveries=%s error=\"%s\" payload=%s\n", e->element[0].str,
                       oid && oid->str ? oid->str : "?", d && d->str ? d->str : "?", er && er->str ? er->str : "",
                       p && p->str ? p->str : "");
                snprintf(start, sizeof start, "(%s", e->element[0].str);
                shown++;
            }
            if (r->len < (size_t)page) break;
        }
    }
    if (fflush(stdout) != 0 && !status) status = fail("stdout: %s", strerror(errno));
    rsq_client_free(&c);
    return status;
}

int main(int argc, char **argv) {
    const char *url = getenv("RSQ_URL");
    int i = 1;
    if (!url || !*url) url = "redis://127.0.0.1:6379";
    while (i < argc && argv[i][0] == '-') {
        if (!strcmp(argv[i], "--version")) { printf("rsq %s\n", RSQ_VERSION); return 0; }
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { fputs(usage_main, stdout); return 0; }
        if (!strcmp(argv[i], "-u")) {
            if (i + 1 >= argc) return usage_error(usage_main, "-u needs a URL%s", "");
            url = argv[i + 1];
            i += 2;
            continue;
        }
        return usage_error(usage_main, "unknown option %s", argv[i]);
    }
    if (i >= argc) return usage_error(usage_main, "missing command%s", "");
    {
        const char *cmd = argv[i];
        int n = argc - i - 1, j;
        char **rest = argv + i + 1;
        /* -u is also accepted after the command */
        for (j = 0; j < n; j++)
            if (!strcmp(rest[j], "-u") && j + 1 < n) {
                url = rest[j + 1];
                memmove(&rest[j], &rest[j + 2], sizeof(char *) * (size_t)(n - j - 2));
                n -= 2;
                j--;
            }
        if (!strcmp(cmd, "pub")) return cmd_pub(url, n, rest);
        if (!strcmp(cmd, "work")) return cmd_work(url, n, rest);
        if (!strcmp(cmd, "stats")) return cmd_stats(url, n, rest);
        if (!strcmp(cmd, "dlq")) return cmd_dlq(url, n, rest);
        return usage_error(usage_main, "unknown command \"%s\"", cmd);
    }
}
