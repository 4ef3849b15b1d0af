/* rsq - the command-line front end of rsq.h for operators and scripts.

     rsq [-u URL] pub STREAM [PAYLOAD]        publish one message, or each stdin line
     rsq [-u URL] work STREAM -g GROUP        consume as a group member
     rsq [-u URL] stats STREAM                queue metrics
     rsq [-u URL] dlq STREAM list|replay      dead letters
     rsq --version | --help

   Exit status: 0 success, 1 error (one line on stderr), 2 bad usage.
   The URL comes from -u, else $RSQ_URL, else redis://127.0.0.1:6379. A password can
   come from --password-file FILE or $REDISCLI_AUTH instead of the URL.

   Connection failures: one-shot commands (pub, stats, dlq) give up after a few quick
   attempts. Long-running ones (work, stats --watch) never give up on a network
   failure: they retry with backoff, say once on stderr that they are reconnecting and
   once that they are back. Errors that retrying cannot cure (authentication,
   permissions, wrong types, protocol errors) end them with exit status 1.

   Whatever is printed from the server for people (stats, dlq list, error texts) has
   its control bytes escaped; `work` writes payloads to standard output byte for
   byte. */
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

extern char **environ;

#define EXIT_USAGE 2

static const char *prog = "rsq";

static const char usage_main[] =
    "usage: rsq [-u URL] [--password-file FILE] COMMAND [ARGS]\n"
    "\n"
    "commands:\n"
    "  pub STREAM [PAYLOAD]          publish PAYLOAD, or each line of standard input\n"
    "  work STREAM -g GROUP          consume as a member of GROUP\n"
    "  stats STREAM                  length, and per group: pending, lag, consumers, oldest\n"
    "  dlq STREAM list|replay        show or re-publish dead letters\n"
    "\n"
    "options:\n"
    "  -u URL      redis://[user[:password]@]host[:port][/db] or\n"
    "              unix://[user[:password]@]/path[?db=N]\n"
    "              (default $RSQ_URL, else redis://127.0.0.1:6379)\n"
    "  --password-file FILE\n"
    "              read the password from the first line of FILE (the URL then\n"
    "              carries no password, or only the user: redis://alice@host)\n"
    "  --help      this text; `rsq COMMAND --help` for a command\n"
    "  --version   print the version\n"
    "\n"
    "Secrets: a password written in -u is visible to every user of this machine (ps,\n"
    "/proc) for as long as rsq runs. Prefer --password-file, or $REDISCLI_AUTH (used\n"
    "when neither the URL nor --password-file gives a password), or $RSQ_URL.\n"
    "Programs run by `work --exec` do not inherit RSQ_URL, REDISCLI_AUTH or any\n"
    "variable holding the password or a URL with credentials.\n"
    "\n"
    "work and stats --watch ride out server outages: they retry with backoff and say\n"
    "on stderr when they reconnect. The other commands fail after a few quick attempts.\n"
    "Exit status: 0 success, 1 error (one line on stderr), 2 bad usage.\n";

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
    "Writes each payload to standard output, byte for byte, one per line, and acks it\n"
    "once written.\n"
    "  --exec CMD            run CMD (via /bin/sh) per message with the payload on its\n"
    "                        standard input: exit 0 acks, non-zero nacks; RSQ_ID,\n"
    "                        RSQ_STREAM and RSQ_DELIVERIES are set in its environment;\n"
    "                        RSQ_URL, REDISCLI_AUTH and any variable holding the\n"
    "                        password are not passed on\n"
    "  --max-deliveries N    dead-letter a message after N deliveries (default 10)\n"
    "  --count N             prefetch N messages per read (default 16)\n"
    "  --max N               exit after N messages\n"
    "  --idle-exit SECONDS   exit when nothing arrives for that long\n"
    "  --visibility MS       reclaim entries idle that long on other consumers (default 30000)\n"
    "  --priority-levels N   read N priority levels, highest first (default 1)\n"
    "  --shards N            read N shards (default 1)\n"
    "  --from 0|$|ID         where the group starts if it does not exist yet: 0 (the\n"
    "                        default) takes the whole stream, so nothing published\n"
    "                        before the first worker is lost; $ takes only messages\n"
    "                        published from now on; or after an entry ID\n"
    "Server outages: retries forever with backoff; says once on stderr that it is\n"
    "reconnecting and once that it is back. Errors that retrying cannot cure\n"
    "(authentication, permissions, a failed ack) end it with exit status 1.\n"
    "SIGINT/SIGTERM: stop taking messages, finish the one in hand, exit 0.\n";

static const char usage_stats[] =
    "usage: rsq [-u URL] stats STREAM [--watch SECONDS]\n"
    "Prints the stream's length and, per group: pending, lag, consumers, oldest pending age.\n"
    "Names and texts from the server are printed with control bytes escaped (\\n, \\x1b...).\n"
    "  --watch SECONDS   redraw every SECONDS until interrupted; rides out server outages\n"
    "                    (says once on stderr that it is reconnecting, once that it is back)\n";

static const char usage_dlq[] =
    "usage: rsq [-u URL] dlq STREAM list|replay [--max N]\n"
    "  list     show dead letters of STREAM (oldest first), control bytes escaped\n"
    "  replay   re-publish them to the stream of the queue they came from and remove\n"
    "           them, each atomically. Only the queue's own streams (STREAM and its\n"
    "           priority levels) are written: a dead letter whose dlq-stream field names\n"
    "           any other key is left where it is and reported (exit status 1)\n"
    "  --max N  at most N dead letters (default: all)\n";

/* ---------------------------------------------------------------------------------- */
/* escaping: what reaches a terminal from the server */

/* Length of the valid UTF-8 sequence at s[0..n) (2..4), or 0. *cp receives the code point. */
static size_t utf8_seq(const unsigned char *s, size_t n, unsigned long *cp) {
    size_t len, i;
    unsigned long c = s[0];
    if (c >= 0xc2 && c <= 0xdf) { len = 2; c &= 0x1f; }
    else if (c >= 0xe0 && c <= 0xef) { len = 3; c &= 0x0f; }
    else if (c >= 0xf0 && c <= 0xf4) { len = 4; c &= 0x07; }
    else return 0;
    if (n < len) return 0;
    for (i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0;
        c = (c << 6) | (s[i] & 0x3f);
    }
    if ((len == 3 && c < 0x800) || (len == 4 && (c < 0x10000 || c > 0x10ffff)) || (c >= 0xd800 && c <= 0xdfff)) return 0;
    *cp = c;
    return len;
}

/* Code points a terminal acts on or that reorder/split what is shown: C1 controls,
   line and paragraph separators, bidirectional overrides and isolates. */
static int cp_unsafe(unsigned long cp) {
    return (cp >= 0x80 && cp <= 0x9f) || cp == 0x2028 || cp == 0x2029 || cp == 0x200e || cp == 0x200f ||
           (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

/* Writes s[0..n) to f with control bytes escaped: \n \r \t \\ (and \" when quoted),
   other bytes below 0x20, DEL and invalid UTF-8 as \xNN, unsafe code points as
   \u{XXXX}. Valid printable UTF-8 passes unchanged. */
static void put_esc(FILE *f, const char *str, size_t n, int quoted) {
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        unsigned char ch = s[i];
        if (ch >= 0x20 && ch < 0x7f) {
            if (ch == '\\' || (quoted && ch == '"')) fputc('\\', f);
            fputc(ch, f);
            i++;
        } else if (ch == '\n') { fputs("\\n", f); i++; }
        else if (ch == '\r') { fputs("\\r", f); i++; }
        else if (ch == '\t') { fputs("\\t", f); i++; }
        else if (ch < 0x80) { fprintf(f, "\\x%02x", ch); i++; }
        else {
            unsigned long cp = 0;
            size_t k = utf8_seq(s + i, n - i, &cp);
            if (!k) { fprintf(f, "\\x%02x", ch); i++; }
            else if (cp_unsafe(cp)) { fprintf(f, "\\u{%04lx}", cp); i += k; }
            else { fwrite(s + i, 1, k, f); i += k; }
        }
    }
}

/* The escaped form of s[0..n) in out (cap bytes), cut with "..." if too long. */
static const char *esc(char *out, size_t cap, const char *s, size_t n) {
    FILE *mem;
    size_t w;
    char *buf = NULL;
    size_t blen = 0;
    out[0] = '\0';
    mem = open_memstream(&buf, &blen);
    if (!mem) return out;
    put_esc(mem, s, n, 0);
    fclose(mem);
    if (!buf) return out;
    w = blen < cap ? blen : cap - 1;
    memcpy(out, buf, w);
    out[w] = '\0';
    if (blen >= cap && cap > 4) memcpy(out + cap - 4, "...", 4);
    free(buf);
    return out;
}

static const char *esc_str(char *out, size_t cap, const char *s) { return esc(out, cap, s ? s : "", s ? strlen(s) : 0); }

/* One line on stderr: "rsq: " and the message, escaped (it may quote the server). */
static int fail(const char *fmt, ...) {
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s: ", prog);
    put_esc(stderr, msg, strlen(msg), 0);
    fputc('\n', stderr);
    fflush(stderr);
    return 1;
}

/* The same for a message whose parts from the server are escaped already. */
static int fail_escaped(const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "%s: ", prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
    return 1;
}

static int usage_error(const char *usage, const char *fmt, const char *arg) {
    char a[256];
    fprintf(stderr, "%s: ", prog);
    fprintf(stderr, fmt, esc_str(a, sizeof a, arg));
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

static uint64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---------------------------------------------------------------------------------- */
/* signals */
static volatile sig_atomic_t g_interrupted;
static volatile sig_atomic_t g_exit_in_call;   /* stats --watch: inside a library call */
static rsq_consumer *volatile g_consumer;

static void on_signal(int sig) {
    (void)sig;
    g_interrupted = 1;
    if (g_consumer) rsq_consumer_stop(g_consumer);
    /* stats --watch holds nothing that needs finishing: a signal while it waits on the
       server (a reconnect, a frozen server) ends it at once */
    if (g_exit_in_call) _exit(0);
}

static void install_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

/* Sleeps ms in slices; 0 when interrupted. */
static int pause_ms(long long ms) {
    while (ms > 0 && !g_interrupted) {
        long long slice = ms < 100 ? ms : 100;
        usleep((useconds_t)(slice * 1000));
        ms -= slice;
    }
    return !g_interrupted;
}

/* Backoff between the tool's own retries: 200 ms doubling to 5 s, with jitter. */
static int backoff(int *attempt) {
    long long ms = 200;
    int i;
    for (i = 0; i < *attempt && ms < 5000; i++) ms *= 2;
    if (ms > 5000) ms = 5000;
    ms = ms / 2 + rand() % (ms / 2 + 1);
    if (*attempt < 30) (*attempt)++;
    return pause_ms(ms);
}

/* ---------------------------------------------------------------------------------- */
/* connection, credentials, outages */
static char g_url[4096 + 3 * RSQ_PASSWORD_MAX + 64]; /* the URL with the password, if any */
static char g_password[RSQ_PASSWORD_MAX];            /* a password from outside argv */
static int g_reconnecting;                           /* said "reconnecting", not yet "back" */

static void wipe(void *p, size_t n) {
    volatile unsigned char *v = (volatile unsigned char *)p;
    while (n--) *v++ = 0;
}

/* Network failures and "try later" answers: a long-running command waits them out. */
static int transient(rsq_result rc) {
    return rc == RSQ_ERR_CONNECT || rc == RSQ_ERR_TIMEOUT || rc == RSQ_ERR_IO || rc == RSQ_ERR_RESOLVE ||
           rc == RSQ_ERR_RETRY || rc == RSQ_ERR_MOVED;
}

static void say_reconnecting(const char *why) {
    if (g_reconnecting) return;
    g_reconnecting = 1;
    fprintf(stderr, "%s: server unreachable (", prog);
    put_esc(stderr, why, strlen(why), 0);
    fputs("); reconnecting with backoff\n", stderr);
    fflush(stderr);
}

static void on_log(void *user, rsq_log_level level, rsq_log_item item, const char *message) {
    rsq_client *c = (rsq_client *)user;
    (void)level;
    if (item == RSQ_LOGI_RECONNECT_WAIT) {
        say_reconnecting(rsq_errstr(c));
    } else if (item == RSQ_LOGI_CONNECTED) {
        if (g_reconnecting) {
            g_reconnecting = 0;
            fprintf(stderr, "%s: reconnected: the server is back\n", prog);
            fflush(stderr);
        }
    } else if (item == RSQ_LOGI_GROUP_RECREATED) {
        fprintf(stderr, "%s: ", prog);
        put_esc(stderr, message, strlen(message), 0);
        fputc('\n', stderr);
        fflush(stderr);
    }
}

/* Appends the percent-encoded s to out. */
static int pct_append(char *out, size_t cap, size_t *w, const char *s) {
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '-' ||
            ch == '.' || ch == '_' || ch == '~') {
            if (*w + 1 >= cap) return 0;
            out[(*w)++] = (char)ch;
        } else {
            if (*w + 3 >= cap) return 0;
            out[(*w)++] = '%';
            out[(*w)++] = hex[ch >> 4];
            out[(*w)++] = hex[ch & 15];
        }
    }
    out[*w] = '\0';
    return 1;
}

static int raw_append(char *out, size_t cap, size_t *w, const char *s, size_t n) {
    if (*w + n >= cap) return 0;
    memcpy(out + *w, s, n);
    *w += n;
    out[*w] = '\0';
    return 1;
}

/* Whether the URL carries a password of its own (user:password@, or ?password= on a
   unix URL); *ui and *uilen receive the user[:password] part, if any. */
static int url_has_password(const char *url, const char **ui, size_t *uilen, const char **rest) {
    const char *s, *end, *at = NULL, *p;
    int is_unix = 0;
    *ui = NULL;
    *uilen = 0;
    if (!strncmp(url, "redis://", 8)) s = url + 8;
    else if (!strncmp(url, "rediss://", 9)) s = url + 9;
    else if (!strncmp(url, "unix://", 7)) { s = url + 7; is_unix = 1; }
    else { *rest = url; return 0; }
    if (is_unix) {
        end = strchr(s, '?');
        if (!end) end = s + strlen(s);
        if (s[0] != '/') at = memchr(s, '@', (size_t)(end - s));
        if (end[0] == '?') {
            for (p = end; p; p = strchr(p + 1, '&'))
                if (!strncmp(p + 1, "password=", 9) && p[10] && p[10] != '&') return 1;
        }
    } else {
        end = strchr(s, '/');
        if (!end) end = s + strlen(s);
        for (p = s; p < end; p++) if (*p == '@') at = p;
    }
    *rest = at ? at + 1 : s;
    if (!at) return 0;
    *ui = s;
    *uilen = (size_t)(at - s);
    p = memchr(s, ':', *uilen);
    return p && p + 1 < at; /* "user:" or ":" with nothing after: no password */
}

/* The URL to connect to: `url`, with the password from outside argv put in when the
   URL has none of its own. 0 with a message when it does not fit. */
static int build_url(const char *url, const char *password) {
    const char *ui, *rest;
    size_t uilen, w = 0, scheme;
    const char *colon;
    if (!password || !password[0] || url_has_password(url, &ui, &uilen, &rest) || rest == url) {
        if (strlen(url) >= sizeof g_url) return 0;
        memcpy(g_url, url, strlen(url) + 1);
        return 1;
    }
    scheme = (size_t)(strstr(url, "://") - url) + 3;
    colon = ui ? memchr(ui, ':', uilen) : NULL;
    if (!raw_append(g_url, sizeof g_url, &w, url, scheme)) return 0;
    if (ui && !raw_append(g_url, sizeof g_url, &w, ui, colon ? (size_t)(colon - ui) : uilen)) return 0;
    if (!raw_append(g_url, sizeof g_url, &w, ":", 1) || !pct_append(g_url, sizeof g_url, &w, password) ||
        !raw_append(g_url, sizeof g_url, &w, "@", 1) || !raw_append(g_url, sizeof g_url, &w, rest, strlen(rest)))
        return 0;
    return 1;
}

/* Reads the first line of a password file (without its line end). */
static int read_password_file(const char *path) {
    char buf[RSQ_PASSWORD_MAX + 2];
    FILE *f = fopen(path, "r");
    size_t n, len;
    const char *nl;
    if (!f) return fail("--password-file %s: %s", path, strerror(errno)), 0;
    n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    nl = memchr(buf, '\n', n);
    len = nl ? (size_t)(nl - buf) : n;
    if (len > 0 && buf[len - 1] == '\r') len--;
    if (len >= sizeof g_password) {
        wipe(buf, sizeof buf);
        return fail("--password-file %s: password longer than %d bytes", path, RSQ_PASSWORD_MAX - 1), 0;
    }
    if (memchr(buf, '\0', len)) {
        wipe(buf, sizeof buf);
        return fail("--password-file %s: the password holds a NUL byte", path), 0;
    }
    memcpy(g_password, buf, len);
    g_password[len] = '\0';
    wipe(buf, sizeof buf);
    if (len == 0) return fail("--password-file %s: no password on its first line", path), 0;
    return 1;
}

/* An environment value that holds a credential: a URL with user:password@ or
   ?password=, or the password itself. */
static int env_value_secret(const char *v) {
    static const char *const schemes[] = { "redis://", "rediss://", "unix://" };
    size_t i;
    if (g_password[0] && strlen(g_password) >= 4 && strstr(v, g_password)) return 1;
    for (i = 0; i < sizeof schemes / sizeof schemes[0]; i++) {
        const char *p = v;
        while ((p = strstr(p, schemes[i])) != NULL) {
            const char *ui, *rest;
            size_t uilen;
            if (url_has_password(p, &ui, &uilen, &rest)) return 1;
            p += strlen(schemes[i]);
        }
    }
    return 0;
}

/* Removes credentials from the environment that children (work --exec) inherit. */
static void strip_environment(void) {
    for (;;) {
        char *name = NULL;
        char **e;
        for (e = environ; e && *e; e++) {
            const char *eq = strchr(*e, '=');
            size_t n = eq ? (size_t)(eq - *e) : strlen(*e);
            if (!eq || n == 0) continue;
            if ((n == 7 && !memcmp(*e, "RSQ_URL", 7)) || (n == 13 && !memcmp(*e, "REDISCLI_AUTH", 13)) ||
                env_value_secret(eq + 1)) {
                name = (char *)malloc(n + 1);
                if (name) {
                    memcpy(name, *e, n);
                    name[n] = '\0';
                }
                break;
            }
        }
        if (!name) break;
        if (unsetenv(name) != 0) { free(name); break; }
        free(name);
    }
}

/* Opens a client on g_url. Long-running commands get the reconnect reporting. */
static int open_client(rsq_client *c, int long_running) {
    rsq_client_config cfg;
    rsq_result rc;
    rsq_client_config_init(&cfg);
    cfg.url = g_url;
    cfg.name = "rsq-cli";
    cfg.retry_attempts = 3; /* a few quick attempts per call; long-running commands loop */
    if (!long_running) {
        /* one-shot commands fail fast, a frozen server included: a few seconds */
        cfg.connect_timeout_ms = 2000;
        cfg.io_timeout_ms = 2000;
        cfg.retry_attempts = 2;
        cfg.retry_max_ms = 500;
    }
    if (long_running) {
        cfg.logger.func = on_log;
        cfg.logger.user = c;
        cfg.logger.level = RSQ_LOG_INFO;
    }
    rc = rsq_client_init(c, &cfg);
    wipe(g_url, sizeof g_url); /* the client holds its own copy */
    wipe(g_password, sizeof g_password);
    if (rc != RSQ_OK) {
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

static int cmd_pub(int argc, char **argv) {
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
    if (!open_client(&c, 0)) return 1;
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

/* An ack that failed: the library's text names the step when it is the XACK itself. */
static int fail_ack(rsq_client *c) {
    const char *e = rsq_errstr(c);
    return fail("%s%s", strncmp(e, "acknowledging", 13) ? "ack: " : "", e);
}

static int cmd_work(int argc, char **argv) {
    const char *stream = NULL, *group = NULL, *name = NULL, *exec_cmd = NULL, *from = NULL;
    long long max_deliveries = 10, count = 16, max = 0, idle_exit = 0, visibility = 30000, levels = 1, shards = 1;
    rsq_client c;
    rsq_consumer k;
    rsq_consumer_config cc;
    long long handled = 0;
    uint64_t idle_until = 0;
    int i, status = 0, attempt = 0;
    rsq_result rc;
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
    if (!open_client(&c, 1)) return 1;
    rsq_consumer_config_init(&cc);
    cc.queue = stream;
    cc.group = group;
    cc.name = name;
    cc.count = (int)(max && max < count ? max : count);
    cc.visibility_ms = (int)visibility;
    cc.max_deliveries = (int)max_deliveries;
    cc.priority_levels = (int)levels;
    cc.shards = (int)shards;
    /* a group the tool creates starts at 0 unless told otherwise, whatever the
       library's default: what was published before the first worker is handled */
    cc.start = from ? from : RSQ_START_ALL;
    if (rsq_consumer_init(&k, &c, &cc) != RSQ_OK) {
        fail("%s", rsq_errstr(&c));
        rsq_client_free(&c);
        return 1;
    }
    g_consumer = &k;
    install_signals();
    if (idle_exit) idle_until = now_ms() + (uint64_t)idle_exit * 1000u;
    for (;;) {
        const rsq_message *m;
        int timeout = RSQ_TIMEOUT_FOREVER;
        if (idle_exit) {
            uint64_t now = now_ms();
            if (now >= idle_until) break;
            timeout = (int)(idle_until - now);
        }
        rc = rsq_consumer_next(&k, &m, timeout);
        if (rc == RSQ_STOPPED || (rc != RSQ_OK && g_interrupted)) break;
        if (rc == RSQ_EMPTY) continue; /* the idle deadline is checked above */
        if (transient(rc)) {
            /* the server is away: wait it out (the consumer resumes its own pending
               entries and recreates a lost group when it is back) */
            say_reconnecting(rsq_errstr(&c));
            if (!backoff(&attempt)) break;
            continue;
        }
        if (rc != RSQ_OK) { status = fail("%s", rsq_errstr(&c)); break; }
        attempt = 0;
        if (exec_cmd) {
            int ex = 0;
            if (run_exec(exec_cmd, m, &ex) != 0) { status = fail("exec: %s", strerror(errno)); break; }
            if (ex == 0) {
                rc = rsq_ack(&k, m);
            } else {
                char why[64];
                snprintf(why, sizeof why, "exec: exit status %d", ex);
                rc = rsq_nack(&k, m, 0, why);
                if (rc != RSQ_OK && !transient(rc)) { status = fail("nack: %s", rsq_errstr(&c)); break; }
            }
        } else {
            if ((m->payload_len && fwrite(m->payload, 1, m->payload_len, stdout) != m->payload_len) ||
                fputc('\n', stdout) == EOF || fflush(stdout) != 0) {
                status = fail("stdout: %s", strerror(errno)); /* not acked: it stays pending */
                break;
            }
            rc = rsq_ack(&k, m);
        }
        /* a lost link leaves the message pending: it comes back after the reconnect */
        if (rc != RSQ_OK && !transient(rc)) { status = fail_ack(&c); break; }
        if (idle_exit) idle_until = now_ms() + (uint64_t)idle_exit * 1000u;
        if (max && ++handled >= max) break;
    }
    /* hand back what was prefetched but not handled, and send the last acks; a
       server outage is waited out unless a signal says to stop */
    attempt = 0;
    for (;;) {
        rc = rsq_consumer_release(&k);
        if (rc == RSQ_OK || status) break;
        if (!transient(rc)) { status = fail_ack(&c); break; }
        if (!g_interrupted) say_reconnecting(rsq_errstr(&c));
        if (g_interrupted || !backoff(&attempt)) {
            status = fail("stopped before the last acks were confirmed (%s): those messages will be delivered again",
                          rsq_errstr(&c));
            break;
        }
    }
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

#define STATS_GROUPS 64
typedef struct stats_snapshot {
    rsq_stream_info si;
    rsq_group_info g[STATS_GROUPS];
    size_t n;
    long long dead;
    int dead_known;
} stats_snapshot;

/* Everything from the server first, then the printing: an error prints no half table. */
static rsq_result collect_stats(rsq_client *c, const char *stream, stats_snapshot *s) {
    char dlq[RSQ_KEY_MAX];
    rsq_result rc;
    memset(s, 0, sizeof *s);
    rc = rsq_stream_stats(c, stream, &s->si, s->g, STATS_GROUPS, &s->n);
    if (rc != RSQ_OK || !s->si.exists) return rc;
    if (rsq_queue_key(dlq, sizeof dlq, stream, 0, 0, RSQ_KEY_DEAD_LETTER)) {
        rc = rsq_stream_length(c, dlq, &s->dead);
        if (transient(rc)) return rc;
        s->dead_known = rc == RSQ_OK; /* e.g. no right to XLEN it: "unknown", not 0 */
    }
    return RSQ_OK;
}

static void print_stats(const char *stream, const stats_snapshot *s) {
    char a[RSQ_ID_STRLEN], b[RSQ_ID_STRLEN], name[3 * RSQ_KEY_MAX + 8];
    size_t i;
    esc_str(name, sizeof name, stream);
    if (!s->si.exists) {
        printf("stream %s: does not exist\n", name);
        return;
    }
    rsq_id_format(s->si.first_id, a);
    rsq_id_format(s->si.last_id, b);
    printf("stream %s  length %lld  first %s  last %s  dead-letters ", name, s->si.length, a, b);
    if (s->dead_known) printf("%lld\n", s->dead);
    else printf("unknown\n");
    printf("%-24s %10s %10s %10s %10s\n", "GROUP", "PENDING", "LAG", "CONSUMERS", "OLDEST");
    for (i = 0; i < s->n; i++) {
        char lag[32], age[32], gname[4 * RSQ_NAME_MAX + 8];
        const rsq_group_info *g = &s->g[i];
        if (g->lag < 0) snprintf(lag, sizeof lag, "?");
        else snprintf(lag, sizeof lag, "%s%lld", g->lag_exact ? "" : ">", g->lag);
        fmt_age(g->oldest_pending_age_ms, age, sizeof age);
        printf("%-24s %10lld %10s %10lld %10s\n", esc_str(gname, sizeof gname, g->name), g->pending, lag, g->consumers, age);
    }
    if ((long long)s->n < s->si.groups) printf("(%lld more groups)\n", s->si.groups - (long long)s->n);
}

static int cmd_stats(int argc, char **argv) {
    const char *stream = NULL;
    long long watch = 0;
    rsq_client c;
    int i, status = 0, tty = isatty(1), attempt = 0;
    static stats_snapshot snap;
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
    if (!open_client(&c, watch != 0)) return 1;
    if (!watch) {
        rsq_result rc = collect_stats(&c, stream, &snap);
        if (rc != RSQ_OK) status = fail("stats: %s", rsq_errstr(&c));
        else print_stats(stream, &snap);
    } else {
        install_signals();
        while (!g_interrupted) {
            rsq_result rc;
            long long left;
            g_exit_in_call = 1;
            if (g_interrupted) _exit(0);
            rc = collect_stats(&c, stream, &snap);
            g_exit_in_call = 0;
            if (transient(rc)) {
                /* keep the last table; try again (the client backs off within a call,
                   the tool between calls) */
                say_reconnecting(rsq_errstr(&c));
                if (!backoff(&attempt)) break;
                continue;
            }
            if (rc != RSQ_OK) { status = fail("stats: %s", rsq_errstr(&c)); break; }
            attempt = 0;
            {
                time_t now = time(NULL);
                char when[64];
                strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", localtime(&now));
                if (tty) printf("\033[H\033[2J");
                printf("rsq stats  every %llds  %s\n", watch, when);
                print_stats(stream, &snap);
                if (!tty) printf("\n");
                fflush(stdout);
            }
            left = watch * 1000;
            if (!pause_ms(left)) break;
        }
    }
    if (fflush(stdout) != 0 && !status) status = fail("stdout: %s", strerror(errno));
    rsq_client_free(&c);
    return status;
}

/* ---------------------------------------------------------------------------------- */
/* dlq */

/* The ID right after `id`: the exclusive start of the next XRANGE page, on every
   server version (the "(" prefix needs Redis 6.2). 0 when there is none. */
static int next_id(const char *text, size_t len, char *out) {
    rsq_id id;
    if (!rsq_id_parse(text, len, &id)) return 0;
    if (id.seq == UINT64_MAX) {
        if (id.ms == UINT64_MAX) return 0;
        id.ms++;
        id.seq = 0;
    } else {
        id.seq++;
    }
    rsq_id_format(id, out);
    return 1;
}

static void print_field(const char *label, const rsq_reply *v, int quoted) {
    fputs(label, stdout);
    if (quoted) fputc('"', stdout);
    if (v && v->str) put_esc(stdout, v->str, v->len, quoted);
    else if (!quoted) fputc('?', stdout);
    if (quoted) fputc('"', stdout);
}

static int dlq_list(rsq_client *c, const char *dlq, long long max) {
    char start[RSQ_ID_STRLEN] = "-";
    long long shown = 0;
    for (;;) {
        const rsq_reply *r;
        size_t j;
        char cnt[24];
        long long page = max ? (max - shown < 100 ? max - shown : 100) : 100;
        int more = 1;
        if (page <= 0) break;
        snprintf(cnt, sizeof cnt, "%lld", page);
        if (rsq_command(c, &r, "XRANGE", dlq, start, "+", "COUNT", cnt, (char *)0) != RSQ_OK) return fail("list: %s", rsq_errstr(c));
        if (r->type != RSQ_REPLY_ARRAY || r->len == 0) break;
        for (j = 0; j < r->len; j++) {
            const rsq_reply *e = &r->element[j], *f;
            if (e->type != RSQ_REPLY_ARRAY || e->len < 2 || !e->element[0].str) return fail("list: malformed entry in %s", dlq);
            f = &e->element[1];
            put_esc(stdout, e->element[0].str, e->element[0].len, 0);
            print_field(" stream=", rsq_reply_get(f, "dlq-stream"), 0);
            print_field(" origin=", rsq_reply_get(f, "dlq-id"), 0);
            print_field(" deliveries=", rsq_reply_get(f, "dlq-deliveries"), 0);
            print_field(" error=", rsq_reply_get(f, "dlq-error"), 1);
            fputs(" payload=", stdout);
            {
                const rsq_reply *p = rsq_reply_get(f, "payload");
                if (p && p->str) put_esc(stdout, p->str, p->len, 0);
            }
            fputc('\n', stdout);
            if (!next_id(e->element[0].str, e->element[0].len, start)) more = 0;
            shown++;
        }
        if (!more || r->len < (size_t)page) break;
    }
    return 0;
}

/* Replays one dead letter atomically: it must still be there (a second replayer gets
   nothing twice), it is added to KEYS[1], then removed from KEYS[2]. If the removal is
   refused, the copy is taken back, so the message is in one place only. */
static const char replay_script[] =
    "if #redis.call('XRANGE', KEYS[2], ARGV[1], ARGV[1]) == 0 then return 0 end "
    "local id = redis.call('XADD', KEYS[1], '*', unpack(ARGV, 2)) "
    "local d = redis.pcall('XDEL', KEYS[2], ARGV[1]) "
    "if type(d) == 'table' and d.err then "
    "local u = redis.pcall('XDEL', KEYS[1], id) "
    "if type(u) == 'table' and u.err then "
    "return redis.error_reply('ERR XDEL on the dead-letter stream failed (' .. d.err .. '), and so did taking the copy back: the message is in both streams') end "
    "return redis.error_reply('ERR XDEL on the dead-letter stream failed (' .. d.err .. '); nothing was moved') end "
    "return 1";

/* Whether an error of EVAL means that this server or user has no scripting: EVAL
   renamed away or disabled (an unknown command), or denied by an ACL. */
static int no_scripting(rsq_result rc, const char *err) {
    return (rc == RSQ_ERR_SERVER && !strncmp(err, "ERR unknown command", 19)) ||
           (rc == RSQ_ERR_NOPERM && strstr(err, "'eval") != NULL);
}

/* The same move without scripting, for servers that have none (or users who may not
   run it): WATCH the dead-letter stream, check that the entry is still there, then
   MULTI (confirmed before anything is queued: a refused MULTI must not let the
   commands run one by one), XADD to the queue, XDEL of the dead letter, EXEC. A
   command refused when queued (an ACL right missing) discards both; a change to the
   dead-letter stream meanwhile (another replayer) makes EXEC do nothing, and the
   entry is looked at again. xadd[0..xargc) is the XADD. 1 replayed, 0 gone meanwhile,
   -1 failed (one line printed; `done` replayed before it). */
static int replay_tx(rsq_client *c, const char *dlq, const char *id, const char **xadd, const size_t *xlens, size_t xargc,
                     size_t done) {
    char why[RSQ_ERR_MAX + 64];
    int attempt;
    for (attempt = 0; attempt < 20; attempt++) {
        const rsq_reply *r;
        rsq_result rc;
        size_t i;
        if (rsq_command(c, &r, "WATCH", dlq, (char *)0) != RSQ_OK ||
            rsq_command(c, &r, "XRANGE", dlq, id, id, (char *)0) != RSQ_OK) {
            snprintf(why, sizeof why, "%s", rsq_errstr(c));
            goto failed;
        }
        if (r->type != RSQ_REPLY_ARRAY || r->len == 0) return 0; /* replayed by someone else */
        if (rsq_command(c, &r, "MULTI", (char *)0) != RSQ_OK) {
            snprintf(why, sizeof why, "MULTI refused: %s; nothing was moved", rsq_errstr(c));
            goto failed;
        }
        rc = rsq_append_argv(c, (int)xargc, xadd, xlens);
        if (rc == RSQ_OK) rc = rsq_append(c, "XDEL", dlq, id, (char *)0);
        if (rc == RSQ_OK) rc = rsq_append(c, "EXEC", (char *)0);
        if (rc != RSQ_OK) {
            snprintf(why, sizeof why, "%s; nothing was moved", rsq_errstr(c));
            rsq_disconnect(c); /* the transaction must not stay open */
            goto failed;
        }
        for (i = 0; i < 2; i++) { /* +QUEUED each, or a refusal that discards both */
            rc = rsq_read_reply(c, &r, RSQ_TIMEOUT_DEFAULT);
            if (rc != RSQ_OK && rsq_result_is_server_error(rc)) {
                snprintf(why, sizeof why, "%s refused: %s; nothing was moved", i ? "XDEL" : "XADD", rsq_errstr(c));
                while (rsq_pending_replies(c) > 0) { /* the rest, and EXEC's EXECABORT */
                    rc = rsq_read_reply(c, &r, RSQ_TIMEOUT_DEFAULT);
                    if (rc != RSQ_OK && !rsq_result_is_server_error(rc)) break;
                }
                goto failed;
            }
            if (rc != RSQ_OK) break;
        }
        if (rc == RSQ_OK) rc = rsq_read_reply(c, &r, RSQ_TIMEOUT_DEFAULT);
        if (rc != RSQ_OK) {
            snprintf(why, sizeof why, "%s%s", rsq_errstr(c), rsq_result_is_server_error(rc) ? "" : "; the outcome is unknown");
            goto failed;
        }
        if (r->type == RSQ_REPLY_NIL) continue; /* the dead-letter stream changed: look again */
        if (r->type != RSQ_REPLY_ARRAY || r->len != 2) {
            snprintf(why, sizeof why, "EXEC: unexpected reply");
            goto failed;
        }
        if (r->element[0].type == RSQ_REPLY_ERROR || r->element[1].type == RSQ_REPLY_ERROR) {
            int add = r->element[0].type == RSQ_REPLY_ERROR;
            snprintf(why, sizeof why, "%s failed: %s%s", add ? "XADD" : "XDEL", r->element[add ? 0 : 1].str,
                     add ? "; nothing was moved" : ": the message is in both streams");
            goto failed;
        }
        return 1;
    }
    snprintf(why, sizeof why, "the dead-letter stream kept changing; try again");
failed:
    fail("replay of %s: %s (after %zu replayed)", id, why, done);
    return -1;
}

static int dlq_replay(rsq_client *c, const char *stream, const char *dlq, long long max) {
    char keys[RSQ_MAX_PRIORITIES][RSQ_KEY_MAX];
    char start[RSQ_ID_STRLEN] = "-", id[RSQ_ID_STRLEN];
    char first_left[RSQ_ID_STRLEN] = "", first_origin[200] = "";
    const char **argv = NULL;
    size_t *lens = NULL, argv_cap = 0, done = 0, left = 0, copy_cap = 0;
    char *copy = NULL;
    int status = 0, nkeys = 0, l, use_tx = 0;
    for (l = 0; l < RSQ_MAX_PRIORITIES; l++)
        if (rsq_queue_key(keys[nkeys], sizeof keys[nkeys], stream, 0, l, RSQ_KEY_STREAM)) nkeys++;
    while (max == 0 || (long long)done < max) {
        const rsq_reply *r, *e, *f, *o;
        size_t i, need = 0, w = 0, argc = 0;
        int dest = -1;
        rsq_result rc;
        if (rsq_command(c, &r, "XRANGE", dlq, start, "+", "COUNT", "1", (char *)0) != RSQ_OK) {
            status = fail("replay: %s (after %zu replayed)", rsq_errstr(c), done);
            break;
        }
        if (r->type != RSQ_REPLY_ARRAY || r->len == 0) break;
        e = &r->element[0];
        if (e->type != RSQ_REPLY_ARRAY || e->len < 2 || !e->element[0].str || e->element[1].type != RSQ_REPLY_ARRAY ||
            e->element[0].len >= sizeof id) {
            status = fail("replay: malformed entry in %s (after %zu replayed)", dlq, done);
            break;
        }
        memcpy(id, e->element[0].str, e->element[0].len + 1);
        if (!next_id(id, strlen(id), start)) start[0] = '\0';
        f = &e->element[1];
        /* the destination is one of the queue's own streams, never a key named by the
           entry: its fields are data written by whoever could write to this stream */
        o = rsq_reply_get(f, "dlq-stream");
        for (l = 0; o && o->str && l < nkeys; l++)
            if (strlen(keys[l]) == o->len && !memcmp(keys[l], o->str, o->len)) dest = l;
        for (i = 0; i + 1 < f->len; i += 2) {
            const rsq_reply *kf = &f->element[i];
            if (kf->str && !(kf->len >= 4 && !memcmp(kf->str, "dlq-", 4))) {
                need += kf->len + f->element[i + 1].len + 2;
                argc += 2;
            }
        }
        if (dest < 0 || argc == 0) {
            if (!left++) {
                memcpy(first_left, id, strlen(id) + 1);
                if (!o || !o->str) snprintf(first_origin, sizeof first_origin, "no dlq-stream field");
                else if (argc == 0) snprintf(first_origin, sizeof first_origin, "no fields to replay");
                else {
                    char eo[160];
                    esc(eo, sizeof eo, o->str, o->len);
                    snprintf(first_origin, sizeof first_origin, "dlq-stream %s", eo);
                }
            }
            if (!start[0]) break;
            continue;
        }
        argc += 6;
        if (argc > argv_cap) {
            const char **na = (const char **)realloc((void *)argv, argc * sizeof *argv);
            size_t *nl = na ? (size_t *)realloc(lens, argc * sizeof *lens) : NULL;
            if (na) argv = na;
            if (!na || !nl) { status = fail("replay: out of memory"); break; }
            lens = nl;
            argv_cap = argc;
        }
        if (need > copy_cap) {
            char *nc = (char *)realloc(copy, need);
            if (!nc) { status = fail("replay: out of memory"); break; }
            copy = nc;
            copy_cap = need;
        }
        argc = 0;
        argv[argc] = "EVAL"; lens[argc++] = 4;
        argv[argc] = replay_script; lens[argc++] = sizeof replay_script - 1;
        argv[argc] = "2"; lens[argc++] = 1;
        argv[argc] = keys[dest]; lens[argc++] = strlen(keys[dest]);
        argv[argc] = dlq; lens[argc++] = strlen(dlq);
        argv[argc] = id; lens[argc++] = strlen(id);
        /* the reply is gone with the next command: copy the fields out */
        for (i = 0; i + 1 < f->len; i += 2) {
            const rsq_reply *kf = &f->element[i], *vf = &f->element[i + 1];
            if (!kf->str || (kf->len >= 4 && !memcmp(kf->str, "dlq-", 4))) continue;
            memcpy(copy + w, kf->str, kf->len); argv[argc] = copy + w; lens[argc++] = kf->len; w += kf->len + 1;
            if (vf->len) memcpy(copy + w, vf->str, vf->len);
            argv[argc] = copy + w; lens[argc++] = vf->len; w += vf->len + 1;
        }
        rc = use_tx ? RSQ_ERR_UNSUPPORTED : rsq_command_argv(c, &r, (int)argc, argv, lens);
        if (!use_tx && no_scripting(rc, rsq_errstr(c))) {
            if (rsq_client_is_cluster(c)) {
                status = fail("replay of %s: on a cluster, replay needs scripting (EVAL): %s (after %zu replayed)", id,
                              rsq_errstr(c), done);
                break;
            }
            use_tx = 1; /* no scripting here: transactions from now on */
        }
        if (use_tx) {
            /* the same fields as an XADD: argv[3..] is XADD KEY * FIELDS */
            int one;
            argv[3] = "XADD"; lens[3] = 4;
            argv[4] = keys[dest]; lens[4] = strlen(keys[dest]);
            argv[5] = "*"; lens[5] = 1;
            one = replay_tx(c, dlq, id, argv + 3, lens + 3, argc - 3, done);
            if (one < 0) { status = 1; break; }
            done += (size_t)one;
        } else if (rc != RSQ_OK) {
            status = fail("replay of %s: %s (after %zu replayed)", id, rsq_errstr(c), done);
            break;
        } else if (r->type == RSQ_REPLY_INTEGER && r->integer == 1) {
            done++;
        }
        if (!start[0]) break;
    }
    free((void *)argv);
    free(lens);
    free(copy);
    printf("replayed %zu\n", done);
    if (!status && left) {
        char ed[3 * RSQ_KEY_MAX], es[3 * RSQ_KEY_MAX];
        status = fail_escaped("replay: left %zu dead letter%s in %s that name no stream of queue %s (first: %s, %s)", left,
                              left == 1 ? "" : "s", esc_str(ed, sizeof ed, dlq), esc_str(es, sizeof es, stream), first_left,
                              first_origin);
    }
    return status;
}

static int cmd_dlq(int argc, char **argv) {
    const char *stream = NULL, *action = NULL;
    long long max = 0;
    char dlq[RSQ_KEY_MAX];
    rsq_client c;
    int i, status;
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
    if (!open_client(&c, 0)) return 1;
    if (!strcmp(action, "replay")) status = dlq_replay(&c, stream, dlq, max);
    else status = dlq_list(&c, dlq, max);
    if (fflush(stdout) != 0 && !status) status = fail("stdout: %s", strerror(errno));
    rsq_client_free(&c);
    return status;
}

/* ---------------------------------------------------------------------------------- */
/* Overwrites the password of a URL given on the command line with '*', so that ps
   shows it no longer (it was visible until now: hence the warning in --help). The
   user[:password] part is at url[ui_off, ui_off + uilen). */
static void mask_password(char *url, size_t ui_off, size_t uilen) {
    char *p, *colon = uilen ? (char *)memchr(url + ui_off, ':', uilen) : NULL;
    if (colon)
        for (p = colon + 1; p < url + ui_off + uilen; p++) *p = '*';
    for (p = strchr(url, '?'); p; p = strchr(p + 1, '&'))
        if (!strncmp(p + 1, "password=", 9))
            for (p += 10; *p && *p != '&'; p++) *p = '*';
}

int main(int argc, char **argv) {
    const char *url = getenv("RSQ_URL"), *password_file = NULL, *cmd;
    int i = 1, n, j, rc, url_in_argv = 0;
    char **rest;
    signal(SIGPIPE, SIG_IGN);
    srand((unsigned)(time(NULL) ^ (time_t)getpid()));
    if (!url || !*url) url = "redis://127.0.0.1:6379";
    while (i < argc && argv[i][0] == '-') {
        if (!strcmp(argv[i], "--version")) { printf("rsq %s\n", RSQ_VERSION); return 0; }
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { fputs(usage_main, stdout); return 0; }
        if (!strcmp(argv[i], "-u") || !strcmp(argv[i], "--password-file")) {
            if (i + 1 >= argc) return usage_error(usage_main, "%s needs a value", argv[i]);
            if (argv[i][1] == 'u') url = argv[i + 1], url_in_argv = 1;
            else password_file = argv[i + 1];
            i += 2;
            continue;
        }
        return usage_error(usage_main, "unknown option %s", argv[i]);
    }
    if (i >= argc) return usage_error(usage_main, "missing command%s", "");
    cmd = argv[i];
    n = argc - i - 1;
    rest = argv + i + 1;
    /* -u and --password-file are also accepted after the command */
    for (j = 0; j < n; j++)
        if ((!strcmp(rest[j], "-u") || !strcmp(rest[j], "--password-file")) && j + 1 < n) {
            if (rest[j][1] == 'u') url = rest[j + 1], url_in_argv = 1;
            else password_file = rest[j + 1];
            memmove(&rest[j], &rest[j + 2], sizeof(char *) * (size_t)(n - j - 2));
            n -= 2;
            j--;
        }
    if (strcmp(cmd, "pub") && strcmp(cmd, "work") && strcmp(cmd, "stats") && strcmp(cmd, "dlq"))
        return usage_error(usage_main, "unknown command \"%s\"", cmd);
    /* the password: the URL's own, else --password-file, else $REDISCLI_AUTH */
    {
        const char *ui, *after;
        size_t uilen;
        int url_pw = url_has_password(url, &ui, &uilen, &after);
        int wants_help = 0;
        for (j = 0; j < n; j++) wants_help |= !strcmp(rest[j], "--help") || !strcmp(rest[j], "-h");
        if (password_file && !wants_help) {
            if (url_pw) return usage_error(usage_main, "the URL holds a password and --password-file gives one: give one of them%s", "");
            if (!read_password_file(password_file)) return 1;
        } else if (!url_pw) {
            const char *env = getenv("REDISCLI_AUTH");
            if (env && *env) {
                size_t len = strlen(env);
                if (len >= sizeof g_password) return fail("REDISCLI_AUTH: password longer than %d bytes", RSQ_PASSWORD_MAX - 1);
                memcpy(g_password, env, len + 1);
            }
        }
        if (!build_url(url, g_password)) {
            wipe(g_password, sizeof g_password);
            return fail("URL too long");
        }
        if (url_pw) {
            /* known too, so that no variable holding it reaches a child */
            rsq_url u;
            if (rsq_url_parse(&u, g_url, NULL, 0) == RSQ_OK && u.has_password)
                memcpy(g_password, u.password, sizeof g_password);
            wipe(&u, sizeof u);
            if (url_in_argv) mask_password((char *)url, ui ? (size_t)(ui - url) : 0, uilen);
        }
    }
    /* nothing below needs them, and children (work --exec) must not see them */
    strip_environment();
    if (!strcmp(cmd, "pub")) rc = cmd_pub(n, rest);
    else if (!strcmp(cmd, "work")) rc = cmd_work(n, rest);
    else if (!strcmp(cmd, "stats")) rc = cmd_stats(n, rest);
    else rc = cmd_dlq(n, rest);
    wipe(g_url, sizeof g_url);
    wipe(g_password, sizeof g_password);
    return rc;
}
