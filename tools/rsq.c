/* rsq - the command-line front end of rsq.h for operators and scripts.

     rsq [-u URL] pub STREAM [PAYLOAD]        publish one message, or each stdin line
     rsq [-u URL] work STREAM -g GROUP        consume as a group member
     rsq [-u URL] stats STREAM                every stream of the queue, its groups
     rsq [-u URL] pending STREAM -g GROUP     who holds which entries
     rsq [-u URL] dlq STREAM list|replay      dead letters
     rsq --version | --help

   Exit status: 0 success, 1 error (one line on stderr), 2 bad usage.
   The URL comes from -u, else $RSQ_URL, else redis://127.0.0.1:6379. A password can
   come from --password-file FILE or $REDISCLI_AUTH instead of the URL.

   Connection failures: one-shot commands (pub, stats, pending, dlq) give up after a
   few quick attempts. Long-running ones (work, stats --watch) never give up on a
   network failure: they retry with backoff, say once on stderr that they are
   reconnecting and once that they are back. Errors that retrying cannot cure
   (authentication, permissions, wrong types, protocol errors) end them with exit
   status 1.

   Whatever is printed from the server for people (stats, pending, dlq list, error
   texts) has its control bytes escaped; `work` writes payloads to standard output
   byte for byte. The manual is tools/rsq.1 (man -l tools/rsq.1). */
#define _DEFAULT_SOURCE 1
#define RSQ_IMPLEMENTATION
#include "../rsq.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/time.h>
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
    "  stats STREAM                  every stream of the queue: length, and per group:\n"
    "                                pending, lag, consumers, oldest\n"
    "  pending STREAM -g GROUP       who holds which entries, idle time, deliveries\n"
    "  dlq STREAM list|replay        show or re-publish dead letters\n"
    "\n"
    "options:\n"
    "  -u URL      redis://[user[:password]@]host[:port][/db] (an IPv6 host in\n"
    "              brackets: redis://[::1]:6379), rediss://... (TLS), or\n"
    "              unix://[user[:password]@]/path[?db=N]\n"
    "              (default $RSQ_URL, else redis://127.0.0.1:6379)\n"
    "  --password-file FILE\n"
    "              read the password from the first line of FILE (the URL then\n"
    "              carries no password, or only the user: redis://alice@host)\n"
    "  -h, --help  this text; `rsq COMMAND --help` for a command's options\n"
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
    "Exit status: 0 success, 1 error (one line on stderr), 2 bad usage.\n"
    "The manual: man rsq.\n";

static const char usage_pub[] =
    "usage: rsq [-u URL] pub STREAM [PAYLOAD] [options]\n"
    "Publishes PAYLOAD (field \"payload\"), or with no PAYLOAD each line of standard input\n"
    "as one message, pipelined (a line is sent once the input pauses or 256 are read).\n"
    "Prints each entry ID. An input line that cannot be published stops it: the error\n"
    "names the line, how many lines before it were published, and that the rest were\n"
    "not (lines sent in the same batch after it may have been: it says how many, and\n"
    "their IDs are printed). On a terminal (standard error), a long input shows its progress there.\n"
    "A PAYLOAD that starts with - goes after -- (rsq pub q -- -5).\n"
    "  --priority N      priority level (0 = default stream, higher is more urgent, at\n"
    "                    most 15): level N > 0 is the stream {STREAM}:pN\n"
    "  --maxlen N        cap the stream at N entries (LOSSY: drops the oldest entries)\n"
    "  --shards N        spread messages round robin over N shards\n"
    "  -H name=value     a header field (repeatable)\n"
    "  --delay MS        scheduled: the message reaches the stream (every group) MS\n"
    "                    milliseconds from now, by the server's clock; nothing is printed\n"
    "                    (it has no entry ID until then). Moved by a running worker\n"
    "  --at UNIX_MS      scheduled for that Unix time in milliseconds (server's clock)\n"
    "  --key KEY         idempotent (not with --delay/--at; 1..176 bytes): a second\n"
    "                    publish with the same KEY within an hour\n"
    "                    adds nothing and prints the first one's entry ID; from standard\n"
    "                    input each line's key is KEY:LINE (its line number), so running\n"
    "                    the same input again publishes nothing twice\n"
    "  -h, --help        this text\n";

static const char usage_work[] =
    "usage: rsq [-u URL] work STREAM -g GROUP [-n CONSUMER] [options]\n"
    "Writes each payload to standard output, byte for byte, one per line, and acks it\n"
    "once written.\n"
    "  -g GROUP              the consumer group (required)\n"
    "  -n CONSUMER           consumer name. Default: HOST-GROUP (this machine's host\n"
    "                        name), the same at every start on this host, so that a\n"
    "                        restarted worker first takes back what it held; a second\n"
    "                        worker of the same group running on this host at the same\n"
    "                        time is HOST-GROUP-2, and so on\n"
    "  --exec CMD            run CMD (via /bin/sh) per message with the payload on its\n"
    "                        standard input: exit 0 acks, non-zero nacks; RSQ_ID,\n"
    "                        RSQ_STREAM and RSQ_DELIVERIES are set in its environment,\n"
    "                        and RSQ_ORIGIN_ID: the entry first published (RSQ_ID and\n"
    "                        RSQ_STREAM differ for a retry longer than --visibility,\n"
    "                        which comes from the group's retry stream);\n"
    "                        RSQ_URL, REDISCLI_AUTH and any variable holding the\n"
    "                        password are not passed on\n"
    "  --max-deliveries N    dead-letter a message after N deliveries (default 10)\n"
    "  --retry-delay MS      wait before the first retry of a message whose --exec\n"
    "                        failed (default 1000); each further retry waits twice as\n"
    "                        long (give or take 10%), up to --retry-max. A wait longer\n"
    "                        than --visibility holds the message in the queue's delayed\n"
    "                        set, for this group only\n"
    "  --retry-max MS        the longest wait between retries (default 60000)\n"
    "  --count N             prefetch N messages per read (default 16)\n"
    "  --max N               exit after N messages\n"
    "  --idle-exit SECONDS   exit when nothing arrives for that long\n"
    "  --visibility MS       reclaim entries idle that long on other consumers (default 30000)\n"
    "  --priority-levels N   read N priority levels, highest first (default 1)\n"
    "  --shards N            read N shards (default 1)\n"
    "  --from 0|$|ID         where the group starts if it does not exist yet: 0 (the\n"
    "                        default) takes the whole stream, so nothing published\n"
    "                        before the first worker is lost; $ takes only messages\n"
    "                        published from now on; or after an entry ID. A group that\n"
    "                        exists keeps its place (a warning says so)\n"
    "  -h, --help            this text\n"
    "A note on stderr says when it creates the group and where the group starts; a\n"
    "warning names streams of the queue it does not read (a higher priority level or\n"
    "shard than --priority-levels and --shards reach).\n"
    "Server outages: retries forever with backoff; says once on stderr that it is\n"
    "reconnecting and once that it is back. Errors that retrying cannot cure\n"
    "(authentication, permissions, a failed ack) end it with exit status 1.\n"
    "SIGINT/SIGTERM: stop taking messages, finish the one in hand, exit 0. On a clean\n"
    "exit the consumer is removed from the group when it holds no pending entry.\n";

static const char usage_stats[] =
    "usage: rsq [-u URL] stats STREAM [--watch SECONDS] [--json | --prometheus]\n"
    "Prints every stream of the queue it finds on the server (STREAM, its priority\n"
    "levels {STREAM}:pN, its shards {STREAM:sN}, its dead letters {STREAM}:dlq) with its\n"
    "length and, per group: pending, lag, consumers, oldest (the longest idle time of a\n"
    "pending entry); and the delayed set {STREAM}:delayed: its size and next due time.\n"
    "Names and texts from the server are printed with control bytes escaped (\\n, \\x1b...).\n"
    "  --watch SECONDS   redraw every SECONDS until interrupted, with the rate in (entries\n"
    "                    added per second, per stream) and out (entries acknowledged per\n"
    "                    second, per group); rides out server outages (says once on\n"
    "                    stderr that it is reconnecting, once that it is back)\n"
    "  --json            one JSON object (with --watch: one per line)\n"
    "  --prometheus      the Prometheus text exposition format (for a textfile collector)\n"
    "  -h, --help        this text\n"
    "Streams are found with SCAN; without the right to SCAN, or on a cluster, by their\n"
    "names: priority levels 1 to 15 of each shard, shards up to the first with none.\n";

static const char usage_pending[] =
    "usage: rsq [-u URL] pending STREAM -g GROUP [--consumer C] [--max N]\n"
    "Lists the entries delivered to GROUP and not yet acknowledged, on every stream of\n"
    "the queue: stream, entry ID, consumer, idle time, deliveries; the longest idle\n"
    "first, the most recently delivered last. Names are printed with control bytes\n"
    "escaped.\n"
    "  -g GROUP        the consumer group (required)\n"
    "  --consumer C    only the entries C holds\n"
    "  --max N         at most N entries (default 100), the lowest IDs of each stream\n"
    "  -h, --help      this text\n";

static const char usage_dlq[] =
    "usage: rsq [-u URL] dlq STREAM list|replay [--max N] [--json]\n"
    "  list     show dead letters of STREAM (oldest first), one line each: ID, the\n"
    "           stream it came from, its group, its entry ID there (origin), deliveries,\n"
    "           the last error, its headers and its payload, control bytes escaped\n"
    "  replay   re-publish them to the stream of the queue they came from and remove\n"
    "           them, each atomically. Only the queue's own streams (STREAM and its\n"
    "           priority levels) are written: a dead letter whose dlq-stream field names\n"
    "           any other key is left where it is and reported (exit status 1)\n"
    "  --max N  at most N dead letters (default: all)\n"
    "  --json   list: a JSON array, one object per dead letter (a payload that is not\n"
    "           UTF-8 also as payload_base64)\n"
    "  -h, --help  this text\n";

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

/* ---------------------------------------------------------------------------------- */
/* machine output: JSON and the Prometheus text exposition format */

/* 1 when s[0..n) is valid UTF-8. */
static int utf8_valid(const char *str, size_t n) {
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        unsigned long cp;
        size_t k;
        if (s[i] < 0x80) { i++; continue; }
        k = utf8_seq(s + i, n - i, &cp);
        if (!k) return 0;
        i += k;
    }
    return 1;
}

/* A JSON string: valid UTF-8 passes, control characters and the code points that
   cp_unsafe names as \uXXXX, a byte that is not UTF-8 as U+FFFD. */
static void put_json_str(FILE *f, const char *str, size_t n) {
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    fputc('"', f);
    while (i < n) {
        unsigned char ch = s[i];
        if (ch == '"' || ch == '\\') { fputc('\\', f); fputc(ch, f); i++; }
        else if (ch < 0x20 || ch == 0x7f) { fprintf(f, "\\u%04x", ch); i++; }
        else if (ch < 0x80) { fputc(ch, f); i++; }
        else {
            unsigned long cp = 0;
            size_t k = utf8_seq(s + i, n - i, &cp);
            if (!k) { fputs("\\ufffd", f); i++; }
            else if (cp_unsafe(cp)) { fprintf(f, "\\u%04lx", cp); i += k; }
            else { fwrite(s + i, 1, k, f); i += k; }
        }
    }
    fputc('"', f);
}

static void put_json_cstr(FILE *f, const char *s) { put_json_str(f, s, strlen(s)); }

static void put_base64(FILE *f, const char *str, size_t n) {
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *s = (const unsigned char *)str;
    size_t i;
    fputc('"', f);
    for (i = 0; i + 2 < n; i += 3) {
        unsigned long v = ((unsigned long)s[i] << 16) | ((unsigned long)s[i + 1] << 8) | s[i + 2];
        fputc(tab[v >> 18], f); fputc(tab[(v >> 12) & 63], f); fputc(tab[(v >> 6) & 63], f); fputc(tab[v & 63], f);
    }
    if (n - i == 1) {
        unsigned long v = (unsigned long)s[i] << 16;
        fputc(tab[v >> 18], f); fputc(tab[(v >> 12) & 63], f); fputs("==", f);
    } else if (n - i == 2) {
        unsigned long v = ((unsigned long)s[i] << 16) | ((unsigned long)s[i + 1] << 8);
        fputc(tab[v >> 18], f); fputc(tab[(v >> 12) & 63], f); fputc(tab[(v >> 6) & 63], f); fputc('=', f);
    }
    fputc('"', f);
}

/* A Prometheus label value (without its quotes): \\, \" and \n as the format says; other
   control bytes, DEL, bytes that are not UTF-8 and unsafe code points as the text
   \xNN or \u{XXXX} (their backslash escaped), as put_esc shows them to people. */
static void put_prom_label(FILE *f, const char *str, size_t n) {
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        unsigned char ch = s[i];
        if (ch == '\\') { fputs("\\\\", f); i++; }
        else if (ch == '"') { fputs("\\\"", f); i++; }
        else if (ch == '\n') { fputs("\\n", f); i++; }
        else if (ch < 0x20 || ch == 0x7f) { fprintf(f, "\\\\x%02x", ch); i++; }
        else if (ch < 0x80) { fputc(ch, f); i++; }
        else {
            unsigned long cp = 0;
            size_t k = utf8_seq(s + i, n - i, &cp);
            if (!k) { fprintf(f, "\\\\x%02x", ch); i++; }
            else if (cp_unsafe(cp)) { fprintf(f, "\\\\u{%04lx}", cp); i += k; }
            else { fwrite(s + i, 1, k, f); i += k; }
        }
    }
}

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

/* Bad usage: what is wrong, the command's synopsis (the first line of its usage
   text) and where the rest is; exit status 2. */
static int usage_error(const char *usage, const char *fmt, const char *arg) {
    char a[256];
    const char *nl = strchr(usage, '\n'), *cmd = usage + 7; /* after "usage: " */
    fprintf(stderr, "%s: ", prog);
    fprintf(stderr, fmt, esc_str(a, sizeof a, arg));
    fprintf(stderr, "\n%.*s\n", nl ? (int)(nl - usage) : (int)strlen(usage), usage);
    if (usage == usage_main) fprintf(stderr, "(%s --help for more)\n", prog);
    else {
        /* "usage: rsq [-u URL] pub STREAM ...": the command is the word after "]" */
        const char *w = strstr(cmd, "] ");
        size_t len = 0;
        if (w) {
            w += 2;
            while (w[len] && w[len] != ' ') len++;
        }
        fprintf(stderr, "(%s %.*s --help for more)\n", prog, (int)len, w ? w : "");
    }
    return EXIT_USAGE;
}

/* A queue name the library can derive its keys from; else a usage error (0). */
static int check_queue_name(const char *usage, const char *queue) {
    char key[RSQ_KEY_MAX];
    if (!*queue) return usage_error(usage, "the STREAM name is empty%s", ""), 0;
    if (rsq_queue_key(key, sizeof key, queue, 0, 0, RSQ_KEY_DEAD_LETTER) &&
        rsq_queue_key(key, sizeof key, queue, 0, 0, RSQ_KEY_DELAYED))
        return 1;
    if (strlen(queue) + 16 >= RSQ_KEY_MAX) return usage_error(usage, "the STREAM name is too long%s", ""), 0;
    usage_error(usage,
                "STREAM \"%s\" holds '}' but no hash tag, so the keys of its queue could not share a cluster slot; "
                "put a tag in the name, e.g. {orders}.eu", queue);
    return 0;
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
    /* schemes are case-insensitive (REDIS://...) */
    if (!strncasecmp(url, "redis://", 8)) s = url + 8;
    else if (!strncasecmp(url, "rediss://", 9)) s = url + 9;
    else if (!strncasecmp(url, "unix://", 7)) { s = url + 7; is_unix = 1; }
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

/* The first place where needle occurs in s, ignoring ASCII case; NULL if none. */
static const char *ci_find(const char *s, const char *needle) {
    size_t n = strlen(needle);
    for (; *s; s++)
        if (!strncasecmp(s, needle, n)) return s;
    return NULL;
}

/* An environment value that holds a credential: a URL with user:password@ or
   ?password=, or the password itself. */
static int env_value_secret(const char *v) {
    static const char *const schemes[] = { "redis://", "rediss://", "unix://" };
    size_t i;
    if (g_password[0] && strlen(g_password) >= 4 && strstr(v, g_password)) return 1;
    for (i = 0; i < sizeof schemes / sizeof schemes[0]; i++) {
        const char *p = v;
        while ((p = ci_find(p, schemes[i])) != NULL) {
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

/* The client's error text as the tool says it: a missing password and a refused
   one are named as such, and where a password can come from. */
static const char *errmsg(const rsq_client *c) {
    static char buf[RSQ_ERR_MAX + 256];
    const char *e = rsq_errstr(c);
    if (strstr(e, "NOAUTH"))
        snprintf(buf, sizeof buf,
                 "authentication required: the server wants a password; give it with --password-file FILE, "
                 "$REDISCLI_AUTH or the URL (%s)", e);
    else if (strstr(e, "WRONGPASS") || strstr(e, "invalid password") || strstr(e, "invalid username-password"))
        snprintf(buf, sizeof buf, "authentication failed: wrong user name or password (%s)", e);
    else
        return e;
    return buf;
}

static const char *type_name(const char *t) {
    if (!strcmp(t, "zset")) return "sorted set";
    return t;
}

/* After a WRONGTYPE error: names the first of keys[0..n) that holds something other
   than `want` ("stream" or "zset"), with what it holds, in out; the server's own text
   when none can be told (TYPE refused, say). */
static const char *wrongtype_text(rsq_client *c, const char *const *keys, size_t n, const char *want, char *out,
                                  size_t cap) {
    char orig[RSQ_ERR_MAX];
    size_t i;
    snprintf(orig, sizeof orig, "%s", rsq_errstr(c));
    for (i = 0; i < n; i++) {
        const rsq_reply *r;
        if (rsq_command(c, &r, "TYPE", keys[i], (char *)0) != RSQ_OK) break;
        if (r->str && strcmp(r->str, want) && strcmp(r->str, "none")) {
            snprintf(out, cap, "key %s holds a %s, not a %s (WRONGTYPE)", keys[i], type_name(r->str), type_name(want));
            return out;
        }
    }
    if (n == 1) snprintf(out, cap, "%s (key %s)", orig, keys[0]);
    else snprintf(out, cap, "%s", orig);
    return out;
}

/* Opens a client on g_url. Long-running commands get the reconnect reporting; the
   others connect at once, so that a connection or authentication failure is said as
   such (not as the failure of their first command). */
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
    if (rc == RSQ_OK && !long_running) rc = rsq_connect(c);
    if (rc != RSQ_OK) {
        fail("%s", errmsg(c));
        rsq_client_free(c);
        return 0;
    }
    return 1;
}

/* ---------------------------------------------------------------------------------- */
/* the keys of a queue: its streams (priority levels, shards), dead letters, delayed
   set, and each group's retry stream ({TAG}:retry:GROUP: retries longer than the lease) */
typedef enum qkind { QK_STREAM = 0, QK_DLQ, QK_DELAYED, QK_RETRY } qkind;

typedef struct qkey {
    char key[RSQ_KEY_MAX];
    int shard, level;
    qkind kind;
} qkey;

typedef struct qkeys {
    qkey *v;
    size_t n, cap;
} qkeys;

static void qkeys_free(qkeys *q) {
    free(q->v);
    memset(q, 0, sizeof *q);
}

/* Adds the key of (shard, level, kind); 0 when it cannot be named or out of memory. */
static int qkeys_add(qkeys *q, const char *queue, int shard, int level, qkind kind) {
    static const rsq_key_kind kinds[] = { RSQ_KEY_STREAM, RSQ_KEY_DEAD_LETTER, RSQ_KEY_DELAYED };
    qkey *k;
    if (q->n == q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 16;
        qkey *v = (qkey *)realloc(q->v, cap * sizeof *v);
        if (!v) return 0;
        q->v = v;
        q->cap = cap;
    }
    k = &q->v[q->n];
    if (!rsq_queue_key(k->key, sizeof k->key, queue, shard, kind == QK_STREAM ? level : 0, kinds[kind])) return 0;
    k->shard = shard;
    k->level = kind == QK_STREAM ? level : 0;
    k->kind = kind;
    q->n++;
    return 1;
}

/* Streams first (shard, then level), then dead letters, then delayed sets. */
static int qkey_cmp(const void *pa, const void *pb) {
    const qkey *a = (const qkey *)pa, *b = (const qkey *)pb;
    if (a->kind != b->kind) return (int)a->kind - (int)b->kind;
    if (a->shard != b->shard) return a->shard - b->shard;
    if (a->level != b->level) return a->level - b->level;
    return a->kind == QK_RETRY ? strcmp(a->key, b->key) : 0; /* one per group */
}

/* Sorted, each key once. */
static void qkeys_sort(qkeys *q) {
    size_t i, w = 0;
    if (!q->n) return;
    qsort(q->v, q->n, sizeof *q->v, qkey_cmp);
    for (i = 1; i < q->n; i++)
        if (qkey_cmp(&q->v[w], &q->v[i])) q->v[++w] = q->v[i];
    q->n = w + 1;
}

/* Every derived key of a queue is A, then ":s<N>" for shard N > 0, then B, then the
   suffix (":p<k>", ":dlq", ":delayed" or none); only shard 0, level 0 of a name without
   a hash tag is the name itself. A and B come from the library's own names: A is what
   the keys of shard 0 level 1 and shard 1 level 0 have in common. 0 when the name is
   too long for its shard keys. */
static int key_parts(const char *queue, char *a, size_t *alen, char *b, size_t *blen) {
    char k01[RSQ_KEY_MAX], k10[RSQ_KEY_MAX];
    size_t n01 = rsq_queue_key(k01, sizeof k01, queue, 0, 1, RSQ_KEY_STREAM);
    size_t n10 = rsq_queue_key(k10, sizeof k10, queue, 1, 0, RSQ_KEY_STREAM);
    size_t i;
    if (!n01 || !n10 || n01 < 3) return 0;
    n01 -= 3; /* ":p1" */
    for (i = 0; i < n01 && i < n10 && k01[i] == k10[i]; i++) {}
    memcpy(a, k01, i);
    a[i] = '\0';
    *alen = i;
    memcpy(b, k01 + i, n01 - i);
    b[n01 - i] = '\0';
    *blen = n01 - i;
    return 1;
}

/* Reads a decimal number without a leading zero from [*p, e), below `limit`. */
static int parse_index(const char **p, const char *e, long limit, long *out) {
    long v = 0;
    const char *s = *p;
    if (s >= e || *s < '1' || *s > '9') return 0;
    while (s < e && *s >= '0' && *s <= '9' && v < limit) v = v * 10 + (*s++ - '0');
    if (v >= limit) return 0;
    *p = s;
    *out = v;
    return 1;
}

/* A group's retry stream of shard `shard`: "{TAG}:retry:GROUP", TAG the hash tag of the
   shard's stream (or all of its key); 1 with it added to q when key[0..n) is one. */
/* "{TAG}:retry:" + group into out; its length, or 0 when it does not fit. */
static int retry_key_name(const char *queue, int shard, const char *group, char *out, size_t cap) {
    char sk[RSQ_KEY_MAX];
    const char *t = sk, *o, *cl;
    size_t tn = rsq_queue_key(sk, sizeof sk, queue, shard, 0, RSQ_KEY_STREAM);
    int w;
    if (!tn) return 0;
    o = strchr(sk, '{');
    cl = o ? strchr(o + 1, '}') : NULL;
    if (cl && cl > o + 1) { t = o + 1; tn = (size_t)(cl - o - 1); }
    w = snprintf(out, cap, "{%.*s}:retry:%s", (int)tn, t, group);
    return w > 0 && (size_t)w < cap ? w : 0;
}

static int retry_key_add(qkeys *q, const char *queue, int shard, const char *key, size_t n) {
    char want[RSQ_KEY_MAX];
    int w = retry_key_name(queue, shard, "", want, sizeof want);
    if (w <= 0 || (size_t)w >= n || n >= sizeof want || memcmp(want, key, (size_t)w)) return 0;
    if (q->n == q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 16;
        qkey *v = (qkey *)realloc(q->v, cap * sizeof *v);
        if (!v) return 0;
        q->v = v;
        q->cap = cap;
    }
    memcpy(q->v[q->n].key, key, n);
    q->v[q->n].key[n] = '\0';
    q->v[q->n].shard = shard;
    q->v[q->n].level = 0;
    q->v[q->n].kind = QK_RETRY;
    q->n++;
    return 1;
}

/* Whether key[0..n) is one of queue's derived keys (see key_parts): 1 with it added to
   q. The library's name for what it parsed must be the key itself, byte for byte. */
static int key_parse_add(qkeys *q, const char *queue, const char *a, size_t alen, const char *b, size_t blen,
                         const char *key, size_t n) {
    const char *p = key, *e = key + n;
    long shard = 0, level = 0;
    qkind kind = QK_STREAM;
    if (n < alen || memcmp(p, a, alen)) return 0;
    p += alen;
    if (e - p >= 2 && p[0] == ':' && p[1] == 's') {
        p += 2;
        if (!parse_index(&p, e, RSQ_MAX_SHARDS, &shard)) return 0;
    }
    if ((size_t)(e - p) < blen || memcmp(p, b, blen)) return 0;
    p += blen;
    if (e - p > 7 && !memcmp(p, ":retry:", 7)) return retry_key_add(q, queue, (int)shard, key, n);
    if (e - p == 4 && !memcmp(p, ":dlq", 4)) kind = QK_DLQ;
    else if (e - p == 8 && !memcmp(p, ":delayed", 8)) kind = QK_DELAYED;
    else if (e - p >= 2 && p[0] == ':' && p[1] == 'p') {
        p += 2;
        if (!parse_index(&p, e, RSQ_MAX_PRIORITIES, &level) || p != e) return 0;
    } else if (p != e) {
        return 0;
    }
    if (!qkeys_add(q, queue, (int)shard, (int)level, kind)) return 0;
    if (strlen(q->v[q->n - 1].key) != n || memcmp(q->v[q->n - 1].key, key, n)) {
        q->n--;
        return 0;
    }
    return 1;
}

/* A SCAN pattern that matches s literally. */
static void glob_escape(char *out, size_t cap, const char *s, size_t n) {
    size_t w = 0, i;
    for (i = 0; i < n && w + 3 < cap; i++) {
        if (strchr("*?[]\\", s[i])) out[w++] = '\\';
        out[w++] = s[i];
    }
    out[w] = '\0';
}

/* SCAN for the queue's keys. RSQ_OK; a server error when SCAN is refused (no right,
   renamed away): the caller then finds them by name. */
static rsq_result discover_scan(rsq_client *c, const char *queue, const char *a, size_t alen, const char *b,
                                size_t blen, qkeys *q) {
    char pattern[2 * RSQ_KEY_MAX + 8], cursor[32] = "0";
    glob_escape(pattern, sizeof pattern - 6, a, alen);
    strcat(pattern, "[:}]*");
    do {
        const rsq_reply *r, *keys;
        size_t i;
        rsq_result rc = rsq_command(c, &r, "SCAN", cursor, "MATCH", pattern, "COUNT", "1000", (char *)0);
        if (rc != RSQ_OK) return rc;
        if (r->type != RSQ_REPLY_ARRAY || r->len != 2 || !r->element[0].str || r->element[0].len >= sizeof cursor ||
            r->element[1].type != RSQ_REPLY_ARRAY)
            return RSQ_ERR_REPLY;
        memcpy(cursor, r->element[0].str, r->element[0].len);
        cursor[r->element[0].len] = '\0';
        keys = &r->element[1];
        for (i = 0; i < keys->len; i++)
            if (keys->element[i].str) key_parse_add(q, queue, a, alen, b, blen, keys->element[i].str, keys->element[i].len);
    } while (strcmp(cursor, "0"));
    return RSQ_OK;
}

/* Whether a stream key exists, without reading an entry: 1, 0, or -1 when it cannot
   be told (no right to XINFO). A key of another type counts as existing (the caller
   names it). */
static rsq_result probe_stream(rsq_client *c, const char *key, int *exists) {
    const rsq_reply *r;
    rsq_result rc = rsq_command(c, &r, "XINFO", "GROUPS", key, (char *)0);
    *exists = 1;
    if (rc == RSQ_OK || rc == RSQ_ERR_WRONGTYPE) return RSQ_OK;
    if (rc == RSQ_ERR_SERVER && strstr(rsq_errstr(c), "no such key")) { *exists = 0; return RSQ_OK; }
    if (transient(rc)) return rc;
    *exists = -1;
    return RSQ_OK;
}

/* The same for a sorted set (an empty one does not exist in Redis). */
static rsq_result probe_zset(rsq_client *c, const char *key, int *exists) {
    const rsq_reply *r;
    rsq_result rc = rsq_command(c, &r, "ZCARD", key, (char *)0);
    *exists = 1;
    if (rc == RSQ_OK) { *exists = r->integer > 0; return RSQ_OK; }
    if (rc == RSQ_ERR_WRONGTYPE) return RSQ_OK;
    if (transient(rc)) return rc;
    *exists = -1;
    return RSQ_OK;
}

/* By name: levels 0 to 15 of each shard, its dead letters and delayed set, shards up
   to the first that has none of them. A key that cannot be probed is left out, but
   for shard 0's dead letters and delayed set (shown as unknown). */
static rsq_result discover_probe(rsq_client *c, const char *queue, qkeys *q) {
    int s, l;
    for (s = 0; s < RSQ_MAX_SHARDS; s++) {
        int found = 0, ex;
        rsq_result rc;
        char key[RSQ_KEY_MAX];
        for (l = s == 0 ? 1 : 0; l < RSQ_MAX_PRIORITIES; l++) {
            if (!rsq_queue_key(key, sizeof key, queue, s, l, RSQ_KEY_STREAM)) return RSQ_OK;
            if ((rc = probe_stream(c, key, &ex)) != RSQ_OK) return rc;
            if (ex > 0) found += qkeys_add(q, queue, s, l, QK_STREAM);
        }
        if (!rsq_queue_key(key, sizeof key, queue, s, 0, RSQ_KEY_DEAD_LETTER)) return RSQ_OK;
        if ((rc = probe_stream(c, key, &ex)) != RSQ_OK) return rc;
        if (ex > 0 || (ex < 0 && s == 0)) found += qkeys_add(q, queue, s, 0, QK_DLQ);
        if (!rsq_queue_key(key, sizeof key, queue, s, 0, RSQ_KEY_DELAYED)) return RSQ_OK;
        if ((rc = probe_zset(c, key, &ex)) != RSQ_OK) return rc;
        if (ex > 0 || (ex < 0 && s == 0)) found += qkeys_add(q, queue, s, 0, QK_DELAYED);
        if (s > 0 && !found) break;
    }
    return RSQ_OK;
}

/* Finds the keys of queue on the server, sorted, the queue's own stream always among
   them. SCAN on a single server; by name (discover_probe) on a cluster (SCAN sees one
   node) or when SCAN is refused. The caller has sent a command on a key of the queue
   first, so that a cluster is known as one. Returns a network error as is. */
static rsq_result discover(rsq_client *c, const char *queue, qkeys *q) {
    char a[RSQ_KEY_MAX], b[RSQ_KEY_MAX];
    size_t alen, blen, keep;
    rsq_result rc = RSQ_ERR_UNSUPPORTED;
    q->n = 0;
    if (!qkeys_add(q, queue, 0, 0, QK_STREAM)) return RSQ_ERR_ARG;
    keep = q->n;
    if (key_parts(queue, a, &alen, b, &blen) && !rsq_client_is_cluster(c))
        rc = discover_scan(c, queue, a, alen, b, blen, q);
    if (transient(rc)) return rc;
    if (rc != RSQ_OK) {
        q->n = keep;
        if ((rc = discover_probe(c, queue, q)) != RSQ_OK) return rc;
    }
    qkeys_sort(q);
    return RSQ_OK;
}

/* ---------------------------------------------------------------------------------- */
/* pub */
#define PUB_BATCH 256

/* Standard input, line by line, without stdio: it tells when no more input is ready
   for now (the lines read so far then go out at once, so that `tail -f | rsq pub`
   publishes as lines come), and a line over the payload limit is known as such
   without holding all of it. */
typedef struct line_in {
    char *buf;
    size_t len, pos, cap;
    size_t limit;                /* the longest line published (max_payload)             */
    int eof;
    long long line;              /* number of the line last returned                     */
} line_in;

enum { LINE_OK, LINE_EOF, LINE_WAIT, LINE_LONG, LINE_ERR };

/* The next line (without its '\n') at *out, n bytes, valid until the next call.
   LINE_WAIT: no whole line is buffered and no input is ready now (only when may_wait
   is 0). LINE_LONG: line li->line holds more than li->limit bytes (the rest of it is
   not read). LINE_ERR: a read error (errno). */
static int line_next(line_in *li, int may_wait, const char **out, size_t *n) {
    for (;;) {
        size_t have = li->len - li->pos;
        char *nl = have ? (char *)memchr(li->buf + li->pos, '\n', have) : NULL;
        ssize_t k;
        if (nl || (li->eof && have)) {
            size_t len = nl ? (size_t)(nl - (li->buf + li->pos)) : have;
            li->line++;
            if (len > li->limit) return LINE_LONG;
            *out = li->buf + li->pos;
            *n = len;
            li->pos += len + (nl ? 1 : 0);
            return LINE_OK;
        }
        if (li->eof) return LINE_EOF;
        if (have > li->limit) { li->line++; return LINE_LONG; }
        if (!may_wait) {
            struct pollfd pf;
            pf.fd = 0;
            pf.events = POLLIN;
            pf.revents = 0;
            if (poll(&pf, 1, 0) == 0) return LINE_WAIT;
        }
        if (li->pos) {
            memmove(li->buf, li->buf + li->pos, have);
            li->len = have;
            li->pos = 0;
        }
        if (li->cap - li->len < 65536) {
            size_t cap = li->cap ? li->cap * 2 : 65536 * 2;
            char *b;
            while (cap - li->len < 65536) cap *= 2;
            if (!(b = (char *)realloc(li->buf, cap))) { errno = ENOMEM; return LINE_ERR; }
            li->buf = b;
            li->cap = cap;
        }
        k = read(0, li->buf + li->len, li->cap - li->len);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) return LINE_ERR;
        if (k == 0) li->eof = 1;
        else li->len += (size_t)k;
    }
}

/* The progress line on a terminal: after the first second, four times a second. */
typedef struct pub_progress {
    int on, shown;
    uint64_t t0, last;
} pub_progress;

static void progress(pub_progress *pp, long long lines, int final) {
    uint64_t now = now_ms();
    double secs;
    if (!pp->on || (final && !pp->shown)) return;
    if (!final && (now - pp->t0 < 1000 || now - pp->last < 250)) return;
    secs = (double)(now - pp->t0) / 1000.0;
    fprintf(stderr, "\r%s: pub: %lld lines published, %.0f/s%s", prog, lines, secs > 0 ? (double)lines / secs : 0.0,
            final ? "\n" : "   ");
    fflush(stderr);
    pp->shown = 1;
    pp->last = now;
}

/* The library's text for a refused batch, without its "message N: " (the place in the
   batch; the tool names the input line instead). */
static const char *batch_text(const rsq_client *c) {
    const char *e = errmsg(c), *p = e;
    if (strncmp(p, "message ", 8)) return e;
    p += 8;
    while (*p >= '0' && *p <= '9') p++;
    return p[0] == ':' && p[1] == ' ' ? p + 2 : e;
}

/* The keys a publish writes to: one per shard at the given priority level. */
static const char *pub_wrongtype(rsq_client *c, const char *queue, int shards, int priority, char *out, size_t cap) {
    static char keys[16][RSQ_KEY_MAX];
    const char *names[16];
    size_t n = 0;
    int s;
    for (s = 0; s < shards && n < 16; s++)
        if (rsq_queue_key(keys[n], sizeof keys[n], queue, s, priority, RSQ_KEY_STREAM)) {
            names[n] = keys[n];
            n++;
        }
    return wrongtype_text(c, names, n, "stream", out, cap);
}

/* pub's --delay, --at and --key. */
static struct {
    long long delay_ms, at_ms;
    const char *key;
} g_pub;

/* Sets a message's schedule and idempotency key (line > 0: from standard input, the
   key KEY:LINE written to buf). */
static void pub_options(rsq_outgoing *m, long long line, char *buf, size_t cap) {
    m->delay_ms = g_pub.delay_ms;
    m->deliver_at_ms = g_pub.at_ms;
    if (!g_pub.key) return;
    if (line <= 0) {
        m->idempotency_key = g_pub.key;
        return;
    }
    snprintf(buf, cap, "%s:%lld", g_pub.key, line);
    m->idempotency_key = buf;
}

typedef struct pub_batch {
    rsq_outgoing msgs[PUB_BATCH];
    rsq_id ids[PUB_BATCH];
    rsq_result res[PUB_BATCH];
    char *lines[PUB_BATCH];
    size_t caps[PUB_BATCH];
    char keys[PUB_BATCH][RSQ_IDEMPOTENCY_KEY_MAX + 1]; /* --key KEY: KEY:LINE        */
    size_t n;
    long long first;             /* input line number of msgs[0]                         */
} pub_batch;

/* Publishes the batch and prints the IDs; on a failure, one line that names the input
   line and says what was published. 0, or 1 after a failure. */
static int pub_flush(rsq_producer *p, rsq_client *c, pub_batch *b, long long *published, int shards, int priority,
                     pub_progress *pp) {
    char why[RSQ_ERR_MAX + 3 * RSQ_KEY_MAX];
    size_t i, bad = b->n, after = 0;
    rsq_result rc = rsq_publish_batch(p, b->msgs, b->n, b->ids, b->res);
    if (rc == RSQ_ERR_ARG || rc == RSQ_ERR_TOO_LARGE) { /* checked before anything was sent */
        if (pp->shown) fputc('\n', stderr);
        return fail("line %lld: %s; the %lld lines before it were published, it and the rest were not", b->first,
                    batch_text(c), *published);
    }
    snprintf(why, sizeof why, "%s", errmsg(c));
    for (i = 0; i < b->n; i++) {
        char buf[RSQ_ID_STRLEN];
        if (b->res[i] != RSQ_OK) {
            if (bad == b->n) bad = i;
            continue;
        }
        if (b->ids[i].ms || b->ids[i].seq) { /* a scheduled message has no ID yet */
            rsq_id_format(b->ids[i], buf);
            puts(buf);
        }
        if (bad == b->n) (*published)++;
        else after++;
    }
    fflush(stdout); /* the IDs as they come, into a pipe too (tail -f | rsq pub | ...) */
    if (bad == b->n) return 0;
    if (pp->shown) fputc('\n', stderr);
    if (b->res[bad] == RSQ_ERR_WRONGTYPE) pub_wrongtype(c, p->queue, shards, priority, why, sizeof why);
    if (!rsq_result_is_server_error(b->res[bad]))
        return fail("line %lld: %s; the %lld lines before it were published, it and the rest were not confirmed", b->first + (long long)bad,
                    why, *published);
    if (!after)
        return fail("line %lld: %s; the %lld lines before it were published, it and the rest were not", b->first + (long long)bad,
                    why, *published);
    return fail("line %lld: %s; the %lld lines before it were published, it was not; of the %zu lines sent with it after "
                "it, %zu were published (their IDs are printed), the rest were not", b->first + (long long)bad, why,
                *published, b->n - bad - 1, after);
}

/* Each line of standard input as one message. */
static int pub_lines(rsq_producer *p, rsq_client *c, const rsq_field *headers, size_t nheaders, int priority, int shards) {
    static pub_batch b;
    line_in li;
    pub_progress pp;
    long long published = 0;
    int status = 0;
    size_t i;
    memset(&li, 0, sizeof li);
    memset(&pp, 0, sizeof pp);
    li.limit = p->max_payload;
    pp.on = isatty(2) && !isatty(0); /* typed lines need no progress */
    pp.t0 = now_ms();
    b.n = 0;
    for (;;) {
        const char *line = NULL;
        size_t len = 0;
        int st = line_next(&li, b.n == 0, &line, &len);
        if (st == LINE_OK) {
            rsq_outgoing *m = &b.msgs[b.n];
            if (len + 1 > b.caps[b.n]) {
                char *nb = (char *)realloc(b.lines[b.n], len + 1);
                if (!nb) { status = fail("out of memory"); break; }
                b.lines[b.n] = nb;
                b.caps[b.n] = len + 1;
            }
            if (len) memcpy(b.lines[b.n], line, len);
            b.lines[b.n][len] = '\0';
            if (b.n == 0) b.first = li.line;
            memset(m, 0, sizeof *m);
            m->payload = b.lines[b.n];
            m->payload_len = len;
            m->headers = headers;
            m->header_count = nheaders;
            m->priority = priority;
            pub_options(m, li.line, b.keys[b.n], sizeof b.keys[b.n]);
            if (++b.n < PUB_BATCH) continue;
        }
        if (b.n > 0) {
            if ((status = pub_flush(p, c, &b, &published, shards, priority, &pp)) != 0) break;
            b.n = 0;
            progress(&pp, published, 0);
        }
        if (st == LINE_OK || st == LINE_WAIT) continue;
        if (st == LINE_EOF) break;
        if (pp.shown) fputc('\n', stderr);
        if (st == LINE_LONG)
            status = fail("line %lld: longer than the payload limit (%zu bytes); the %lld lines before it were published, it "
                          "and the rest were not", li.line, li.limit, published);
        else
            status = fail("standard input, after line %lld: %s; the %lld lines before were published, the rest were not",
                          li.line, strerror(errno), published);
        break;
    }
    if (!status) progress(&pp, published, 1);
    for (i = 0; i < PUB_BATCH; i++) {
        free(b.lines[i]);
        b.lines[i] = NULL;
        b.caps[i] = 0;
    }
    free(li.buf);
    return status;
}

static int cmd_pub(int argc, char **argv) {
    const char *stream = NULL, *payload = NULL;
    rsq_field headers[RSQ_MAX_HEADERS];
    size_t nheaders = 0;
    long long priority = 0, maxlen = -1, shards = 1;
    rsq_client c;
    rsq_producer p;
    rsq_producer_config pc;
    int i, status = 0, opts = 1;
    for (i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (opts && !strcmp(a, "--")) { opts = 0; continue; } /* then a PAYLOAD may start with - */
        if (opts && (!strcmp(a, "--help") || !strcmp(a, "-h"))) { fputs(usage_pub, stdout); return 0; }
        if (opts && (!strcmp(a, "--priority") || !strcmp(a, "--maxlen") || !strcmp(a, "--shards") || !strcmp(a, "-H") ||
            !strcmp(a, "--delay") || !strcmp(a, "--at") || !strcmp(a, "--key"))) {
            if (i + 1 >= argc) return usage_error(usage_pub, "%s needs a value", a);
            if (!strcmp(a, "--delay") || !strcmp(a, "--at")) {
                if (g_pub.delay_ms || g_pub.at_ms) return usage_error(usage_pub, "give one of --delay and --at%s", "");
                if (!parse_num(argv[i + 1], 1, (long long)1 << 50, a[2] == 'd' ? &g_pub.delay_ms : &g_pub.at_ms))
                    return usage_error(usage_pub, "bad %s (milliseconds, at least 1)", a);
            } else if (!strcmp(a, "--key")) {
                g_pub.key = argv[i + 1];
                if (!*g_pub.key || strlen(g_pub.key) > RSQ_IDEMPOTENCY_KEY_MAX - 24)
                    return usage_error(usage_pub, "--key must be 1..176 bytes%s", "");
            } else if (!strcmp(a, "-H")) {
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
                if (!parse_num(argv[i + 1], 1, (long long)1 << 62, &maxlen)) return usage_error(usage_pub, "bad --maxlen \"%s\" (at least 1)", argv[i + 1]);
            } else if (!parse_num(argv[i + 1], 1, RSQ_MAX_SHARDS, &shards)) {
                return usage_error(usage_pub, "bad --shards \"%s\"", argv[i + 1]);
            }
            i++;
        } else if (opts && a[0] == '-' && a[1]) {
            return usage_error(usage_pub, "unknown option %s (a PAYLOAD that starts with - goes after --)", a);
        } else if (!stream) {
            stream = a;
        } else if (!payload) {
            payload = a;
        } else {
            return usage_error(usage_pub, "unexpected argument \"%s\"", a);
        }
    }
    if (!stream) return usage_error(usage_pub, "pub needs a STREAM%s", "");
    if (g_pub.key && (g_pub.delay_ms || g_pub.at_ms))
        return usage_error(usage_pub, "--key cannot be combined with --delay or --at%s", "");
    if (!check_queue_name(usage_pub, stream)) return EXIT_USAGE;
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
        fail("%s", errmsg(&c));
        rsq_client_free(&c);
        return 1;
    }
    if (payload) {
        rsq_outgoing m;
        rsq_id id;
        rsq_result res;
        char why[RSQ_ERR_MAX + 3 * RSQ_KEY_MAX];
        memset(&m, 0, sizeof m);
        m.payload = payload;
        m.payload_len = strlen(payload);
        m.headers = headers;
        m.header_count = nheaders;
        m.priority = (int)priority;
        pub_options(&m, 0, NULL, 0);
        res = rsq_publish_msg(&p, &m, &id);
        if (res == RSQ_ERR_ARG || res == RSQ_ERR_TOO_LARGE) status = fail("%s", errmsg(&c));
        else if (res == RSQ_ERR_WRONGTYPE) status = fail("publish: %s", pub_wrongtype(&c, stream, (int)shards, (int)priority, why, sizeof why));
        else if (res != RSQ_OK) status = fail("publish: %s", errmsg(&c));
        else if (!g_pub.delay_ms && !g_pub.at_ms) {
            char buf[RSQ_ID_STRLEN];
            rsq_id_format(id, buf);
            puts(buf);
        }
    } else {
        status = pub_lines(&p, &c, headers, nheaders, (int)priority, (int)shards);
    }
    if (fflush(stdout) != 0 && !status) status = fail("stdout: %s", strerror(errno));
    rsq_client_free(&c);
    return status;
}

/* ---------------------------------------------------------------------------------- */
/* work */
/* Whether an error of EVAL means that this server or user has no scripting: EVAL
   renamed away or disabled (an unknown command), or denied by an ACL. */
static int no_scripting(rsq_result rc, const char *err) {
    return (rc == RSQ_ERR_SERVER && !strncmp(err, "ERR unknown command", 19)) ||
           (rc == RSQ_ERR_NOPERM && strstr(err, "'eval") != NULL);
}

/* The default consumer name: HOST-GROUP, the same at every start on this host, so that
   a restarted worker takes back what it held. Workers of one group on one host at the
   same time each hold a lock file for their number (1: HOST-GROUP, n: HOST-GROUP-n),
   released when the process ends, however it ends. The lock files are per user,
   server, queue and group, in $XDG_RUNTIME_DIR or /tmp. */
static int g_name_lock = -1;
static char g_name_lock_path[600];

static void stable_name(const char *server, const char *queue, const char *group, char *out, size_t cap) {
    char host[64], path[600];
    const char *dir = getenv("XDG_RUNTIME_DIR"), *parts[3];
    uint64_t h = 14695981039346656037ULL; /* FNV-1a */
    int slot, i, locked = 0, tries = 0;
    char *dot;
    parts[0] = server;
    parts[1] = queue;
    parts[2] = group;
    for (i = 0; i < 3; i++) {
        const unsigned char *p = (const unsigned char *)parts[i];
        for (; *p; p++) h = (h ^ *p) * 1099511628211ULL;
        h = (h ^ '\n') * 1099511628211ULL;
    }
    if (gethostname(host, sizeof host) != 0 || !host[0]) snprintf(host, sizeof host, "host");
    host[sizeof host - 1] = '\0';
    if ((dot = strchr(host, '.')) != NULL && dot != host) *dot = '\0';
    if (!dir || dir[0] != '/' || strlen(dir) > 300) dir = "/tmp";
    for (slot = 1; slot <= 99 && !locked && tries++ < 200; slot++) {
        int fd;
        snprintf(path, sizeof path, "%s/rsq-work-%lu-%016llx.%d.lock", dir, (unsigned long)getuid(), (unsigned long long)h, slot);
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0) {
            if (slot == 1) break; /* no place for locks: the plain name */
            continue;
        }
        if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
            struct stat held, now;
            /* the file may have been removed by its last holder meanwhile: the lock
               counts only on the file that the name still leads to */
            if (fstat(fd, &held) != 0 || stat(path, &now) != 0 || held.st_ino != now.st_ino || held.st_dev != now.st_dev) {
                close(fd);
                slot--;
                continue;
            }
            g_name_lock = fd;
            memcpy(g_name_lock_path, path, sizeof g_name_lock_path);
            locked = 1;
            break;
        }
        close(fd);
    }
    if (!locked || slot == 1) snprintf(out, cap, "%s-%.*s", host, (int)(cap - strlen(host) - 2), group);
    else snprintf(out, cap, "%s-%.*s-%d", host, (int)(cap - strlen(host) - 6), group, slot);
}

/* Gives the name back as the worker ends: the lock file goes, then its lock (a
   worker killed leaves its file; the next one with that number takes it over). */
static void release_name(void) {
    if (g_name_lock < 0) return;
    unlink(g_name_lock_path);
    close(g_name_lock);
    g_name_lock = -1;
}

/* Who the server is, for the lock file's name: host:port/db or the socket path. */
static void server_id(char *out, size_t cap) {
    rsq_url u;
    if (rsq_url_parse(&u, g_url, NULL, 0) != RSQ_OK) snprintf(out, cap, "?");
    else if (u.is_unix) snprintf(out, cap, "unix:%s/%ld", u.path, u.db);
    else snprintf(out, cap, "%s:%d/%ld", u.host, u.port, u.db);
    wipe(&u, sizeof u);
}

/* The streams a worker reads: levels x shards. */
static size_t work_keys(const char *queue, int levels, int shards, qkeys *q) {
    int s, l;
    q->n = 0;
    for (s = 0; s < shards; s++)
        for (l = 0; l < levels; l++) qkeys_add(q, queue, s, l, QK_STREAM);
    return q->n;
}

/* Creates the group on each stream the worker reads, where it is missing, and says
   so on stderr: where it starts, or that --from cannot apply to a group that exists.
   A server outage is waited out (0 when interrupted meanwhile, with *status 0); an
   error that retrying cannot cure is said in one line (0, *status 1). */
static int work_groups(rsq_client *c, const qkeys *keys, const char *group, const char *from, int *status) {
    char created[600] = "", existed[600] = "", name[3 * RSQ_KEY_MAX];
    size_t i, ncreated = 0, nexisted = 0;
    const char *start = from ? from : RSQ_START_ALL;
    int attempt = 0;
    char last[RSQ_ID_STRLEN] = "";
    *status = 0;
    for (i = 0; i < keys->n; i++) {
        const rsq_reply *r;
        rsq_result rc = rsq_command(c, &r, "XGROUP", "CREATE", keys->v[i].key, group, start, "MKSTREAM", (char *)0);
        char *list;
        size_t *count;
        if (transient(rc)) {
            say_reconnecting(rsq_errstr(c));
            if (!backoff(&attempt)) return 0;
            i--;
            continue;
        }
        attempt = 0;
        if (rc == RSQ_OK) {
            list = created;
            count = &ncreated;
        } else if (rc == RSQ_ERR_SERVER && !strncmp(rsq_errstr(c), "BUSYGROUP", 9)) {
            list = existed;
            count = &nexisted;
        } else {
            char why[RSQ_ERR_MAX + 3 * RSQ_KEY_MAX];
            const char *k = keys->v[i].key;
            if (rc == RSQ_ERR_WRONGTYPE) wrongtype_text(c, &k, 1, "stream", why, sizeof why);
            else snprintf(why, sizeof why, "%s", errmsg(c));
            *status = fail("creating group %s on %s: %s", group, keys->v[i].key, why);
            return 0;
        }
        if ((*count)++ < 3) {
            size_t used = strlen(list);
            snprintf(list + used, 600 - used, "%s%s", used ? ", " : "", esc_str(name, sizeof name, keys->v[i].key));
        }
        if (list == existed && nexisted == 1 && from) { /* where it is, when this can be read */
            size_t j;
            rc = rsq_command(c, &r, "XINFO", "GROUPS", keys->v[i].key, (char *)0);
            for (j = 0; rc == RSQ_OK && r->type == RSQ_REPLY_ARRAY && j < r->len; j++) {
                const rsq_reply *gname = rsq_reply_get(&r->element[j], "name"), *ld;
                if (!gname || !gname->str || gname->len != strlen(group) || memcmp(gname->str, group, gname->len)) continue;
                ld = rsq_reply_get(&r->element[j], "last-delivered-id");
                if (ld && ld->str && ld->len < sizeof last) {
                    memcpy(last, ld->str, ld->len);
                    last[ld->len] = '\0';
                }
            }
        }
    }
    if (ncreated) {
        char g[4 * RSQ_NAME_MAX];
        fprintf(stderr, "%s: created group %s on %s%s", prog, esc_str(g, sizeof g, group), created, ncreated > 3 ? " and more" : "");
        if (!strcmp(start, "0")) fputs(" at 0: it takes the whole stream, messages published before it included\n", stderr);
        else if (!strcmp(start, "$")) fputs(" at $: it takes only messages published from now on\n", stderr);
        else fprintf(stderr, " after entry %s: it takes the messages published after it\n", start);
    }
    if (nexisted && from) {
        char g[4 * RSQ_NAME_MAX];
        fprintf(stderr, "%s: warning: group %s exists on %s%s: --from %s applies only to a new group and is ignored; "
                "the group goes on from where it is", prog, esc_str(g, sizeof g, group), existed, nexisted > 3 ? " and more" : "", from);
        if (last[0]) fprintf(stderr, " (last delivered %s)", last);
        fputc('\n', stderr);
    }
    fflush(stderr);
    return 1;
}

/* Names the streams of the queue that this worker does not read (a priority level or
   shard beyond its settings), found with SCAN; nothing when SCAN is refused. */
static void work_unread_warning(rsq_client *c, const char *queue, int levels, int shards) {
    char a[RSQ_KEY_MAX], b[RSQ_KEY_MAX], list[600] = "", name[3 * RSQ_KEY_MAX];
    size_t alen, blen, i, n = 0;
    int need_levels = levels, need_shards = shards;
    qkeys q;
    memset(&q, 0, sizeof q);
    if (rsq_client_is_cluster(c) || !key_parts(queue, a, &alen, b, &blen) ||
        discover_scan(c, queue, a, alen, b, blen, &q) != RSQ_OK) {
        qkeys_free(&q);
        return;
    }
    qkeys_sort(&q);
    for (i = 0; i < q.n; i++) {
        const qkey *k = &q.v[i];
        if (k->kind != QK_STREAM || (k->level < levels && k->shard < shards)) continue;
        if (k->level >= need_levels) need_levels = k->level + 1;
        if (k->shard >= need_shards) need_shards = k->shard + 1;
        if (n++ < 3) {
            size_t used = strlen(list);
            snprintf(list + used, sizeof list - used, "%s%s", used ? ", " : "", esc_str(name, sizeof name, k->key));
        }
    }
    if (n) {
        fprintf(stderr, "%s: warning: this worker does not read %s%s (it reads %d priority level%s and %d shard%s): give",
                prog, list, n > 3 ? " and more" : "", levels, levels == 1 ? "" : "s", shards, shards == 1 ? "" : "s");
        if (need_levels > levels) fprintf(stderr, " --priority-levels %d", need_levels);
        if (need_shards > shards) fprintf(stderr, " --shards %d", need_shards);
        fputs(" to read them\n", stderr);
        fflush(stderr);
    }
    qkeys_free(&q);
}

/* On a clean exit: removes the consumer from the group on each stream where it holds
   no pending entry (atomically with a script; without scripting, XPENDING then
   XGROUP DELCONSUMER: only a worker of the same name could slip an entry in
   between). Failures are left unsaid: the consumer then simply stays. */
static const char retire_script[] =
    "if #redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2]) > 0 then return 0 end "
    "redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2]) return 1";

static void retire_from(rsq_client *c, const char *key, const char *group, const char *name) {
    const rsq_reply *r;
    rsq_result rc = rsq_command(c, &r, "EVAL", retire_script, "1", key, group, name, (char *)0);
    if (rc == RSQ_OK || transient(rc)) return;
    if (!no_scripting(rc, rsq_errstr(c)) && !(rc == RSQ_ERR_NOPERM && ci_find(rsq_errstr(c), "eval"))) return;
    rc = rsq_command(c, &r, "XPENDING", key, group, "-", "+", "1", name, (char *)0);
    if (rc != RSQ_OK || r->type != RSQ_REPLY_ARRAY || r->len != 0) return;
    rsq_command(c, &r, "XGROUP", "DELCONSUMER", key, group, name, (char *)0);
}

/* The queue's streams it read, and the group's retry stream of each shard. */
static void work_retire(rsq_client *c, const char *queue, const qkeys *keys, const char *group, const char *name) {
    char rk[RSQ_KEY_MAX];
    size_t i;
    for (i = 0; i < keys->n; i++) {
        retire_from(c, keys->v[i].key, group, name);
        if (keys->v[i].level == 0 && retry_key_name(queue, keys->v[i].shard, group, rk, sizeof rk))
            retire_from(c, rk, group, name);
    }
}

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
        {   /* the entry first published: a retry longer than the lease is a new entry */
            size_t f;
            setenv("RSQ_ORIGIN_ID", m->id_str, 1);
            for (f = 0; f < m->field_count; f++)
                if (m->fields[f].name_len == 10 && !memcmp(m->fields[f].name, "rsq-origin", 10) &&
                    m->fields[f].value_len < RSQ_ID_STRLEN) {
                    char o[RSQ_ID_STRLEN];
                    memcpy(o, m->fields[f].value, m->fields[f].value_len);
                    o[m->fields[f].value_len] = '\0';
                    setenv("RSQ_ORIGIN_ID", o, 1);
                }
        }
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

/* The STREAM and -g GROUP of work and pending: 0, or the usage error's exit status. */
static int stream_and_group(const char *usage, const char *cmd, const char *stream, const char *group) {
    if (!stream) return usage_error(usage, "%s needs a STREAM", cmd);
    if (!check_queue_name(usage, stream)) return EXIT_USAGE;
    if (!group) return usage_error(usage, "%s needs -g GROUP", cmd);
    if (!*group) return usage_error(usage, "the group name is empty%s", "");
    return 0;
}

static int cmd_work(int argc, char **argv) {
    const char *stream = NULL, *group = NULL, *name = NULL, *exec_cmd = NULL, *from = NULL;
    long long max_deliveries = 10, retry_delay = 1000, retry_max = 60000, count = 16, max = 0, idle_exit = 0, visibility = 30000, levels = 1, shards = 1;
    rsq_client c;
    rsq_consumer k;
    rsq_consumer_config cc;
    qkeys keys;
    char own_name[RSQ_NAME_MAX];
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
            else if (!strcmp(a, "--retry-delay")) { if (!parse_num(v, 1, 0x7fffffff, &retry_delay)) return usage_error(usage_work, "bad --retry-delay \"%s\"", v); }
            else if (!strcmp(a, "--retry-max")) { if (!parse_num(v, 1, 0x7fffffff, &retry_max)) return usage_error(usage_work, "bad --retry-max \"%s\"", v); }
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
    if ((status = stream_and_group(usage_work, "work", stream, group)) != 0) return status;
    if (name && !*name) return usage_error(usage_work, "the consumer name is empty%s", "");
    if (exec_cmd && !*exec_cmd) return usage_error(usage_work, "the --exec command is empty%s", "");
    if (strlen(group) >= RSQ_NAME_MAX) return usage_error(usage_work, "the group name is longer than %s bytes", "127");
    if (name && strlen(name) >= RSQ_NAME_MAX) return usage_error(usage_work, "the consumer name is longer than %s bytes", "127");
    if (from && strcmp(from, "0") && strcmp(from, "$")) {
        rsq_id tmp;
        if (!rsq_id_parse(from, strlen(from), &tmp)) return usage_error(usage_work, "bad --from \"%s\" (0, $ or an entry ID)", from);
    }
    if (!name) {
        char server[RSQ_PATH_MAX + RSQ_HOST_MAX + 64];
        server_id(server, sizeof server);
        stable_name(server, stream, group, own_name, sizeof own_name);
        name = own_name;
    }
    if (!open_client(&c, 1)) {
        release_name();
        return 1;
    }
    memset(&keys, 0, sizeof keys);
    if (!work_keys(stream, (int)levels, (int)shards, &keys)) {
        qkeys_free(&keys);
        rsq_client_free(&c);
        release_name();
        return fail("out of memory");
    }
    install_signals();
    if (!work_groups(&c, &keys, group, from, &status)) {
        qkeys_free(&keys);
        rsq_client_free(&c);
        release_name();
        return status;
    }
    work_unread_warning(&c, stream, (int)levels, (int)shards);
    rsq_consumer_config_init(&cc);
    cc.queue = stream;
    cc.group = group;
    cc.name = name;
    cc.count = (int)(max && max < count ? max : count);
    cc.visibility_ms = (int)visibility;
    cc.max_deliveries = (int)max_deliveries;
    cc.retry_delay_ms = (int)(retry_delay < retry_max ? retry_delay : retry_max);
    cc.retry_max_ms = (int)retry_max;
    cc.priority_levels = (int)levels;
    cc.shards = (int)shards;
    /* a group the tool creates starts at 0 unless told otherwise, whatever the
       library's default: what was published before the first worker is handled */
    cc.start = from ? from : RSQ_START_ALL;
    if (rsq_consumer_init(&k, &c, &cc) != RSQ_OK) {
        fail("%s", errmsg(&c));
        qkeys_free(&keys);
        rsq_client_free(&c);
        release_name();
        return 1;
    }
    g_consumer = &k;
    if (g_interrupted) rsq_consumer_stop(&k);
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
                rc = rsq_nack(&k, m, rsq_consumer_backoff(&k, m), why);
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
    snprintf(own_name, sizeof own_name, "%s", rsq_consumer_name(&k));
    rsq_consumer_free(&k);
    /* a clean exit: the consumer goes from the group where it holds nothing */
    if (!status) work_retire(&c, stream, &keys, group, own_name);
    release_name();
    qkeys_free(&keys);
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

static long long wall_ms(void) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

#define STATS_GROUPS 64
#define STATS_REDISCOVER_MS 10000 /* --watch looks for new streams this often */

/* The figures of one key of the queue. */
typedef struct qstat {
    qkey k;
    int known;                   /* 0: could not be read; why says so                    */
    char why[RSQ_ERR_MAX];
    rsq_stream_info si;          /* streams and dead letters                             */
    rsq_group_info *g;
    size_t n;
    long long added;             /* entries ever added (Redis >= 7.0, --watch), or -1    */
    long long size, due_ms;      /* delayed set: members, lowest score (-1: none)        */
} qstat;

typedef struct snapshot {
    qstat *v;
    size_t n;
    uint64_t mono;               /* when it was taken (monotonic ms)                     */
    long long unix_ms;
    long long dead;              /* entries in the dead-letter streams, -1 unknown       */
} snapshot;

static void snapshot_free(snapshot *s) {
    size_t i;
    for (i = 0; i < s->n; i++) free(s->v[i].g);
    free(s->v);
    memset(s, 0, sizeof *s);
}

/* Entries ever added to the stream (XINFO STREAM's entries-added, Redis 7.0), read on
   the server so that no entry crosses the network; -1 when it cannot be told. */
static const char added_script[] =
    "local x = redis.call('XINFO', 'STREAM', KEYS[1]) "
    "for i = 1, #x, 2 do if x[i] == 'entries-added' then return x[i + 1] end end return -1";

static rsq_result stat_stream(rsq_client *c, qstat *q, int want_added) {
    static rsq_group_info tmp[STATS_GROUPS];
    const rsq_reply *r;
    rsq_result rc = rsq_stream_stats(c, q->k.key, &q->si, tmp, STATS_GROUPS, &q->n);
    if (rc != RSQ_OK) return rc;
    q->known = 1;
    if (q->n) {
        q->g = (rsq_group_info *)malloc(q->n * sizeof *q->g);
        if (!q->g) { q->n = 0; return RSQ_ERR_NOMEM; }
        memcpy(q->g, tmp, q->n * sizeof *q->g);
    }
    q->added = -1;
    if (want_added && q->si.exists) {
        rc = rsq_command(c, &r, "EVAL", added_script, "1", q->k.key, (char *)0);
        if (transient(rc)) return rc;
        if (rc == RSQ_OK && r->type == RSQ_REPLY_INTEGER) q->added = r->integer;
    }
    return RSQ_OK;
}

static rsq_result stat_delayed(rsq_client *c, qstat *q) {
    const rsq_reply *r;
    rsq_result rc = rsq_command(c, &r, "ZCARD", q->k.key, (char *)0);
    q->due_ms = -1;
    if (rc != RSQ_OK) return rc;
    q->size = r->integer;
    if (q->size > 0) {
        const rsq_reply *score = NULL;
        rc = rsq_command(c, &r, "ZRANGE", q->k.key, "0", "0", "WITHSCORES", (char *)0);
        if (rc != RSQ_OK) return rc;
        if (r->type == RSQ_REPLY_ARRAY && r->len == 2) score = &r->element[1];
        else if (r->type == RSQ_REPLY_ARRAY && r->len == 1 && r->element[0].type == RSQ_REPLY_ARRAY &&
                 r->element[0].len == 2) /* RESP3: [[member, score]] */
            score = &r->element[0].element[1];
        if (score && score->str) q->due_ms = (long long)strtod(score->str, NULL);
    }
    q->known = 1;
    return RSQ_OK;
}

/* Everything from the server first, then the printing: an error prints no half table.
   The queue's own stream must be readable; another key of it that cannot be read (no
   right to it) is shown as unknown. A key of the wrong type fails, naming it. */
static rsq_result collect_stats(rsq_client *c, const qkeys *keys, snapshot *s, int want_added, char *why, size_t cap) {
    size_t i;
    memset(s, 0, sizeof *s);
    s->v = (qstat *)calloc(keys->n ? keys->n : 1, sizeof *s->v);
    if (!s->v) return RSQ_ERR_NOMEM;
    s->mono = now_ms();
    s->unix_ms = wall_ms();
    for (i = 0; i < keys->n; i++) {
        qstat *q = &s->v[s->n++];
        rsq_result rc;
        q->k = keys->v[i];
        rc = q->k.kind == QK_DELAYED ? stat_delayed(c, q) : stat_stream(c, q, want_added);
        if (rc == RSQ_OK) continue;
        if (rc == RSQ_ERR_WRONGTYPE || (rc == RSQ_ERR_SERVER && strstr(rsq_errstr(c), "WRONGTYPE"))) {
            const char *k = q->k.key;
            wrongtype_text(c, &k, 1, q->k.kind == QK_DELAYED ? "zset" : "stream", why, cap);
            return RSQ_ERR_WRONGTYPE;
        }
        if (transient(rc) || rc == RSQ_ERR_NOMEM || (q->k.kind == QK_STREAM && q->k.shard == 0 && q->k.level == 0)) {
            snprintf(why, cap, "%s", errmsg(c));
            return rc;
        }
        snprintf(q->why, sizeof q->why, "%s", errmsg(c));
    }
    s->dead = 0;
    for (i = 0; i < s->n; i++)
        if (s->v[i].k.kind == QK_DLQ) {
            if (!s->v[i].known) { s->dead = -1; break; }
            s->dead += s->v[i].si.length;
        }
    return RSQ_OK;
}

/* The same key in the previous snapshot, if any. */
static const qstat *prev_of(const snapshot *p, const qstat *q) {
    size_t i;
    for (i = 0; p && i < p->n; i++)
        if (!strcmp(p->v[i].k.key, q->k.key) && p->v[i].known) return &p->v[i];
    return NULL;
}

/* Entries added to q's stream since pq, or -1; *exact 0 when it is the change of
   length (no entries-added before Redis 7.0: trimming hides additions). */
static long long added_since(const qstat *pq, const qstat *q, int *exact) {
    *exact = 1;
    if (!pq || !q->known || !q->si.exists) return -1;
    if (q->added >= 0 && pq->added >= 0 && q->added >= pq->added) return q->added - pq->added;
    *exact = 0;
    return q->si.length > pq->si.length ? q->si.length - pq->si.length : 0;
}

/* Rate in (entries added per second) of a stream, or -1. */
static double rate_in(const snapshot *p, const snapshot *s, const qstat *q, int *exact) {
    const qstat *pq = prev_of(p, q);
    long long add = added_since(pq, q, exact);
    double dt = p ? (double)(s->mono - p->mono) / 1000.0 : 0;
    if (add < 0 || dt <= 0) return -1;
    return (double)add / dt;
}

/* Rate out of a group (entries acknowledged or dead-lettered per second): what it
   read in the interval (the entries added, less the change of its lag) less the
   growth of its pending list. -1 when it cannot be told. */
static double rate_out(const snapshot *p, const snapshot *s, const qstat *q, const rsq_group_info *g) {
    const qstat *pq = prev_of(p, q);
    const rsq_group_info *pg = NULL;
    long long add, done;
    int exact;
    size_t i;
    double dt = p ? (double)(s->mono - p->mono) / 1000.0 : 0;
    if (!pq || dt <= 0) return -1;
    for (i = 0; i < pq->n; i++)
        if (!strcmp(pq->g[i].name, g->name)) pg = &pq->g[i];
    if (!pg || !pg->lag_exact || !g->lag_exact || pg->lag < 0 || g->lag < 0) return -1;
    add = added_since(pq, q, &exact);
    if (add < 0) return -1;
    done = add + pg->lag - g->lag - (g->pending - pg->pending);
    if (done < 0) return -1;
    return (double)done / dt;
}

static void fmt_rate(double r, char *out, size_t cap, int exact) {
    if (r < 0) snprintf(out, cap, "?");
    else snprintf(out, cap, "%s%.1f/s", exact ? "" : "~", r);
}

static void fmt_due(long long due_ms, long long now, char *out, size_t cap) {
    time_t t = (time_t)(due_ms / 1000);
    struct tm tmv;
    char when[32], age[32];
    localtime_r(&t, &tmv);
    strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tmv);
    fmt_age(due_ms > now ? due_ms - now : now - due_ms, age, sizeof age);
    snprintf(out, cap, "%s.%03lld (%s%s%s)", when, due_ms % 1000, due_ms > now ? "in " : "", age,
             due_ms > now ? "" : " ago");
}

static void print_ends(const qstat *q) {
    char a[RSQ_ID_STRLEN], b[RSQ_ID_STRLEN];
    if (q->si.ends_known) {
        rsq_id_format(q->si.first_id, a);
        rsq_id_format(q->si.last_id, b);
    } else {
        strcpy(a, "?");
        strcpy(b, "?");
    }
    printf("  length %lld  first %s  last %s", q->si.length, a, b);
}

static void print_groups(const qstat *q, const snapshot *p, const snapshot *s, int rates, int header) {
    size_t i;
    if (!q->n && !header) return;
    printf("%-24s %10s %10s %10s %10s%s\n", "GROUP", "PENDING", "LAG", "CONSUMERS", "OLDEST", rates ? "      OUT/S" : "");
    for (i = 0; i < q->n; i++) {
        char lag[32], age[32], gname[4 * RSQ_NAME_MAX + 8];
        const rsq_group_info *g = &q->g[i];
        if (g->lag < 0) snprintf(lag, sizeof lag, "?");
        else snprintf(lag, sizeof lag, "%s%lld", g->lag_exact ? "" : ">", g->lag);
        fmt_age(g->oldest_pending_age_ms, age, sizeof age);
        printf("%-24s %10lld %10s %10lld %10s", esc_str(gname, sizeof gname, g->name), g->pending, lag, g->consumers, age);
        if (rates) {
            char r[32];
            fmt_rate(rate_out(p, s, q, g), r, sizeof r, 1);
            printf(" %10s", r);
        }
        putchar('\n');
    }
    if ((long long)q->n < q->si.groups) printf("(%lld more groups)\n", q->si.groups - (long long)q->n);
}

/* People's view. `p` is the previous snapshot (--watch: rates), or NULL. */
static void print_stats(const snapshot *s, const snapshot *p, int rates) {
    char name[3 * RSQ_KEY_MAX + 8];
    size_t i;
    for (i = 0; i < s->n; i++) {
        const qstat *q = &s->v[i];
        int main_stream = q->k.kind == QK_STREAM && q->k.shard == 0 && q->k.level == 0;
        esc_str(name, sizeof name, q->k.key);
        if (q->k.kind == QK_DELAYED) {
            char due[96];
            if (!q->known) { printf("delayed %s: unknown (", name); put_esc(stdout, q->why, strlen(q->why), 0); puts(")"); continue; }
            printf("delayed %s  size %lld", name, q->size);
            if (q->due_ms >= 0) {
                fmt_due(q->due_ms, s->unix_ms, due, sizeof due);
                printf("  next due %s", due);
            }
            putchar('\n');
            continue;
        }
        if (!q->known) {
            printf("%s %s: unknown (", q->k.kind == QK_DLQ ? "dead letters" : q->k.kind == QK_RETRY ? "retries" : "stream", name);
            put_esc(stdout, q->why, strlen(q->why), 0);
            puts(")");
            continue;
        }
        if (!q->si.exists) {
            printf("stream %s: does not exist\n", name);
            continue;
        }
        printf("%s %s", q->k.kind == QK_DLQ ? "dead letters" : q->k.kind == QK_RETRY ? "retries" : "stream", name);
        print_ends(q);
        if (main_stream) {
            if (s->dead >= 0) printf("  dead-letters %lld", s->dead);
            else printf("  dead-letters unknown");
        }
        if (rates) {
            char r[32];
            int exact;
            double in = rate_in(p, s, q, &exact);
            fmt_rate(in, r, sizeof r, exact);
            printf("  in %s", r);
        }
        putchar('\n');
        print_groups(q, p, s, rates, main_stream);
    }
}

static void json_id(const char *name, rsq_id id, int known) {
    char b[RSQ_ID_STRLEN];
    printf(",\"%s\":", name);
    if (!known) { fputs("null", stdout); return; }
    rsq_id_format(id, b);
    printf("\"%s\"", b);
}

static void json_rate(const char *name, double r) {
    if (r < 0) printf(",\"%s\":null", name);
    else printf(",\"%s\":%.3f", name, r);
}

static const char *kind_name(qkind k) {
    return k == QK_DLQ ? "dead_letters" : k == QK_DELAYED ? "delayed" : k == QK_RETRY ? "retry" : "stream";
}

/* Scripts' view: one JSON object (one line). */
static void print_stats_json(const char *queue, const snapshot *s, const snapshot *p, int rates) {
    size_t i, j;
    fputs("{\"queue\":", stdout);
    put_json_cstr(stdout, queue);
    printf(",\"time_ms\":%lld,\"dead_letters\":", s->unix_ms);
    if (s->dead >= 0) printf("%lld", s->dead);
    else fputs("null", stdout);
    fputs(",\"streams\":[", stdout);
    for (i = 0; i < s->n; i++) {
        const qstat *q = &s->v[i];
        if (i) putchar(',');
        fputs("{\"key\":", stdout);
        put_json_cstr(stdout, q->k.key);
        printf(",\"kind\":\"%s\",\"shard\":%d", kind_name(q->k.kind), q->k.shard);
        if (q->k.kind == QK_STREAM) printf(",\"priority\":%d", q->k.level);
        printf(",\"known\":%s", q->known ? "true" : "false");
        if (!q->known) {
            fputs(",\"error\":", stdout);
            put_json_cstr(stdout, q->why);
            putchar('}');
            continue;
        }
        if (q->k.kind == QK_DELAYED) {
            printf(",\"exists\":%s,\"size\":%lld,\"next_due_ms\":", q->size > 0 ? "true" : "false", q->size);
            if (q->due_ms >= 0) printf("%lld", q->due_ms);
            else fputs("null", stdout);
            putchar('}');
            continue;
        }
        printf(",\"exists\":%s,\"length\":%lld", q->si.exists ? "true" : "false", q->si.length);
        json_id("first_id", q->si.first_id, q->si.exists && q->si.ends_known);
        json_id("last_id", q->si.last_id, q->si.exists && q->si.ends_known);
        json_id("last_generated_id", q->si.last_generated_id, q->si.exists && q->si.ends_known);
        printf(",\"groups_total\":%lld", q->si.groups);
        {
            int exact;
            json_rate("rate_in_per_s", rates ? rate_in(p, s, q, &exact) : -1);
        }
        fputs(",\"groups\":[", stdout);
        for (j = 0; j < q->n; j++) {
            const rsq_group_info *g = &q->g[j];
            if (j) putchar(',');
            fputs("{\"name\":", stdout);
            put_json_cstr(stdout, g->name);
            printf(",\"pending\":%lld,\"lag\":", g->pending);
            if (g->lag >= 0) printf("%lld", g->lag);
            else fputs("null", stdout);
            printf(",\"lag_exact\":%s,\"consumers\":%lld", g->lag_exact ? "true" : "false", g->consumers);
            json_id("last_delivered_id", g->last_delivered, 1);
            json_id("oldest_pending_id", g->oldest_pending, g->pending > 0);
            printf(",\"oldest_pending_idle_ms\":%lld", g->oldest_pending_age_ms);
            json_rate("rate_out_per_s", rates ? rate_out(p, s, q, g) : -1);
            putchar('}');
        }
        fputs("]}", stdout);
    }
    fputs("]}\n", stdout);
}

/* Prometheus: one family at a time, HELP and TYPE first; unknown figures left out. */
static void prom_family(const char *name, const char *help) {
    printf("# HELP %s %s\n# TYPE %s gauge\n", name, help, name);
}

static void prom_labels(const char *queue, const qstat *q, const char *group) {
    fputs("{queue=\"", stdout);
    put_prom_label(stdout, queue, strlen(queue));
    fputs("\",stream=\"", stdout);
    put_prom_label(stdout, q->k.key, strlen(q->k.key));
    if (group) {
        fputs("\",group=\"", stdout);
        put_prom_label(stdout, group, strlen(group));
        fputs("\"}", stdout);
        return;
    }
    printf("\",kind=\"%s\",shard=\"%d\"", kind_name(q->k.kind), q->k.shard);
    if (q->k.kind == QK_STREAM) printf(",priority=\"%d\"", q->k.level);
    putchar('}');
}

static int stream_shown(const qstat *q) { return q->known && q->k.kind != QK_DELAYED && q->si.exists; }

static void print_stats_prometheus(const char *queue, const snapshot *s) {
    static const char *const gnames[] = { "rsq_group_pending", "rsq_group_lag", "rsq_group_consumers",
                                          "rsq_group_oldest_pending_idle_seconds" };
    static const char *const ghelp[] = {
        "Entries delivered to the consumer group and not yet acknowledged.",
        "Entries the consumer group has yet to read (a lower bound past 10000).",
        "Consumers of the consumer group.",
        "Longest idle time of an entry pending in the consumer group, in seconds (sampled)."
    };
    size_t i, j, f;
    prom_family("rsq_stream_length", "Entries in a stream of the queue (kind: stream, dead_letters or retry).");
    for (i = 0; i < s->n; i++)
        if (stream_shown(&s->v[i])) {
            fputs("rsq_stream_length", stdout);
            prom_labels(queue, &s->v[i], NULL);
            printf(" %lld\n", s->v[i].si.length);
        }
    prom_family("rsq_stream_groups", "Consumer groups of a stream of the queue.");
    for (i = 0; i < s->n; i++)
        if (stream_shown(&s->v[i])) {
            fputs("rsq_stream_groups", stdout);
            prom_labels(queue, &s->v[i], NULL);
            printf(" %lld\n", s->v[i].si.groups);
        }
    for (f = 0; f < 4; f++) {
        prom_family(gnames[f], ghelp[f]);
        for (i = 0; i < s->n; i++) {
            const qstat *q = &s->v[i];
            if (!stream_shown(q)) continue;
            for (j = 0; j < q->n; j++) {
                const rsq_group_info *g = &q->g[j];
                if (f == 1 && g->lag < 0) continue;
                fputs(gnames[f], stdout);
                prom_labels(queue, q, g->name);
                if (f == 0) printf(" %lld\n", g->pending);
                else if (f == 1) printf(" %lld\n", g->lag);
                else if (f == 2) printf(" %lld\n", g->consumers);
                else printf(" %.3f\n", (double)g->oldest_pending_age_ms / 1000.0);
            }
        }
    }
    prom_family("rsq_dead_letters", "Dead letters of the queue (entries in its dead-letter streams).");
    if (s->dead >= 0) {
        fputs("rsq_dead_letters{queue=\"", stdout);
        put_prom_label(stdout, queue, strlen(queue));
        printf("\"} %lld\n", s->dead);
    }
    prom_family("rsq_delayed_messages", "Messages waiting in a delayed set of the queue.");
    for (i = 0; i < s->n; i++)
        if (s->v[i].k.kind == QK_DELAYED && s->v[i].known) {
            fputs("rsq_delayed_messages", stdout);
            prom_labels(queue, &s->v[i], NULL);
            printf(" %lld\n", s->v[i].size);
        }
    prom_family("rsq_delayed_next_due_timestamp_seconds", "When the next delayed message is due (Unix time).");
    for (i = 0; i < s->n; i++)
        if (s->v[i].k.kind == QK_DELAYED && s->v[i].known && s->v[i].due_ms >= 0) {
            fputs("rsq_delayed_next_due_timestamp_seconds", stdout);
            prom_labels(queue, &s->v[i], NULL);
            printf(" %.3f\n", (double)s->v[i].due_ms / 1000.0);
        }
}

/* One look: the queue's own stream first (on a cluster, its MOVED makes the client a
   cluster client before discovery), its keys found again when `rediscover` says so. */
static rsq_result stats_once(rsq_client *c, const char *queue, qkeys *keys, int rediscover, snapshot *s, int want_added,
                             char *why, size_t cap) {
    rsq_result rc;
    if (rediscover || !keys->n) {
        rsq_stream_info si;
        rc = rsq_stream_stats(c, queue, &si, NULL, 0, NULL);
        if (rc == RSQ_OK) rc = discover(c, queue, keys);
        if (rc == RSQ_ERR_WRONGTYPE || (rc == RSQ_ERR_SERVER && strstr(rsq_errstr(c), "WRONGTYPE"))) {
            wrongtype_text(c, &queue, 1, "stream", why, cap);
            return RSQ_ERR_WRONGTYPE;
        }
        if (rc != RSQ_OK) {
            snprintf(why, cap, "%s", errmsg(c));
            return rc;
        }
    }
    return collect_stats(c, keys, s, want_added, why, cap);
}

static int cmd_stats(int argc, char **argv) {
    const char *stream = NULL;
    long long watch = 0;
    rsq_client c;
    int i, status = 0, tty = isatty(1), attempt = 0, json = 0, prom = 0;
    qkeys keys;
    snapshot cur, prev;
    char why[RSQ_ERR_MAX + 3 * RSQ_KEY_MAX];
    uint64_t found_at = 0;
    memset(&keys, 0, sizeof keys);
    memset(&cur, 0, sizeof cur);
    memset(&prev, 0, sizeof prev);
    for (i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { fputs(usage_stats, stdout); return 0; }
        if (!strcmp(argv[i], "--watch")) {
            if (i + 1 >= argc || !parse_num(argv[i + 1], 1, 86400, &watch)) return usage_error(usage_stats, "bad --watch%s", "");
            i++;
        } else if (!strcmp(argv[i], "--json")) {
            json = 1;
        } else if (!strcmp(argv[i], "--prometheus")) {
            prom = 1;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return usage_error(usage_stats, "unknown option %s", argv[i]);
        } else if (!stream) {
            stream = argv[i];
        } else {
            return usage_error(usage_stats, "unexpected argument \"%s\"", argv[i]);
        }
    }
    if (!stream) return usage_error(usage_stats, "stats needs a STREAM%s", "");
    if (!check_queue_name(usage_stats, stream)) return EXIT_USAGE;
    if (json && prom) return usage_error(usage_stats, "--json and --prometheus: give one of them%s", "");
    if (prom && watch)
        return usage_error(usage_stats, "--prometheus is one reading (a collector runs it on its schedule): no --watch%s", "");
    if (!open_client(&c, watch != 0)) return 1;
    if (!watch) {
        rsq_result rc = stats_once(&c, stream, &keys, 1, &cur, 0, why, sizeof why);
        if (rc != RSQ_OK) status = fail("stats: %s", why);
        else if (json) print_stats_json(stream, &cur, NULL, 0);
        else if (prom) print_stats_prometheus(stream, &cur);
        else print_stats(&cur, NULL, 0);
    } else {
        install_signals();
        while (!g_interrupted) {
            rsq_result rc;
            int again = !keys.n || now_ms() - found_at >= STATS_REDISCOVER_MS;
            g_exit_in_call = 1;
            if (g_interrupted) _exit(0);
            rc = stats_once(&c, stream, &keys, again, &cur, 1, why, sizeof why);
            g_exit_in_call = 0;
            if (transient(rc)) {
                /* keep the last table; try again (the client backs off within a call,
                   the tool between calls) */
                snapshot_free(&cur);
                say_reconnecting(rsq_errstr(&c));
                if (!backoff(&attempt)) break;
                continue;
            }
            if (rc != RSQ_OK) { status = fail("stats: %s", why); break; }
            if (again) found_at = now_ms();
            attempt = 0;
            if (json) {
                print_stats_json(stream, &cur, prev.v ? &prev : NULL, 1);
            } else {
                time_t now = time(NULL);
                char when[64];
                strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", localtime(&now));
                if (tty) printf("\033[H\033[2J");
                printf("rsq stats  every %llds  %s\n", watch, when);
                print_stats(&cur, prev.v ? &prev : NULL, 1);
                if (!tty) printf("\n");
            }
            fflush(stdout);
            snapshot_free(&prev);
            prev = cur;
            memset(&cur, 0, sizeof cur);
            if (!pause_ms(watch * 1000)) break;
        }
    }
    snapshot_free(&cur);
    snapshot_free(&prev);
    qkeys_free(&keys);
    if (fflush(stdout) != 0 && !status) status = fail("stdout: %s", strerror(errno));
    rsq_client_free(&c);
    return status;
}

/* ---------------------------------------------------------------------------------- */
/* pending */
typedef struct pend_row {
    char stream[RSQ_KEY_MAX];
    char id[RSQ_ID_STRLEN];
    char consumer[RSQ_NAME_MAX];
    long long idle_ms, deliveries;
} pend_row;

/* Longest idle first; the same idle time in stream and ID order. */
static int pend_cmp(const void *pa, const void *pb) {
    const pend_row *a = (const pend_row *)pa, *b = (const pend_row *)pb;
    rsq_id ia, ib;
    int k;
    if (a->idle_ms != b->idle_ms) return a->idle_ms > b->idle_ms ? -1 : 1;
    if ((k = strcmp(a->stream, b->stream)) != 0) return k;
    rsq_id_parse(a->id, strlen(a->id), &ia);
    rsq_id_parse(b->id, strlen(b->id), &ib);
    return rsq_id_cmp(ia, ib);
}

static void copy_str(char *out, size_t cap, const rsq_reply *r) {
    size_t n = r && r->str ? (r->len < cap ? r->len : cap - 1) : 0;
    if (n) memcpy(out, r->str, n);
    out[n] = '\0';
}

/* The group's pending entries on one stream: the total in *total (all, or the
   consumer's), up to max rows appended. 0 when the stream has no such group. */
static rsq_result pending_one(rsq_client *c, const char *key, const char *group, const char *consumer, long long max,
                              pend_row **rows, size_t *n, size_t *cap, long long *total, int *has_group) {
    const rsq_reply *r;
    char cnt[24];
    size_t i;
    rsq_result rc = rsq_command(c, &r, "XPENDING", key, group, (char *)0);
    *has_group = 0;
    *total = 0;
    if (rc == RSQ_ERR_NOGROUP || (rc == RSQ_ERR_SERVER && strstr(rsq_errstr(c), "no such key"))) return RSQ_OK;
    if (rc != RSQ_OK) return rc;
    *has_group = 1;
    if (r->type != RSQ_REPLY_ARRAY || r->len < 4) return RSQ_ERR_REPLY;
    if (!consumer) {
        rsq_reply_int(&r->element[0], total);
    } else if (r->element[3].type == RSQ_REPLY_ARRAY) {
        for (i = 0; i < r->element[3].len; i++) {
            const rsq_reply *e = &r->element[3].element[i];
            if (e->type == RSQ_REPLY_ARRAY && e->len == 2 && e->element[0].str && strlen(consumer) == e->element[0].len &&
                !memcmp(consumer, e->element[0].str, e->element[0].len))
                rsq_reply_int(&e->element[1], total);
        }
    }
    if (*total == 0) return RSQ_OK;
    snprintf(cnt, sizeof cnt, "%lld", max);
    if (consumer) rc = rsq_command(c, &r, "XPENDING", key, group, "-", "+", cnt, consumer, (char *)0);
    else rc = rsq_command(c, &r, "XPENDING", key, group, "-", "+", cnt, (char *)0);
    if (rc != RSQ_OK) return rc;
    if (r->type != RSQ_REPLY_ARRAY) return RSQ_ERR_REPLY;
    for (i = 0; i < r->len; i++) {
        const rsq_reply *e = &r->element[i];
        pend_row *row;
        if (e->type != RSQ_REPLY_ARRAY || e->len < 4) return RSQ_ERR_REPLY;
        if (*n == *cap) {
            size_t nc = *cap ? *cap * 2 : 64;
            pend_row *v = (pend_row *)realloc(*rows, nc * sizeof *v);
            if (!v) return RSQ_ERR_NOMEM;
            *rows = v;
            *cap = nc;
        }
        row = &(*rows)[(*n)++];
        snprintf(row->stream, sizeof row->stream, "%s", key);
        copy_str(row->id, sizeof row->id, &e->element[0]);
        copy_str(row->consumer, sizeof row->consumer, &e->element[1]);
        row->idle_ms = row->deliveries = 0;
        rsq_reply_int(&e->element[2], &row->idle_ms);
        rsq_reply_int(&e->element[3], &row->deliveries);
    }
    return RSQ_OK;
}

static int cmd_pending(int argc, char **argv) {
    const char *stream = NULL, *group = NULL, *consumer = NULL;
    long long max = 100, total = 0;
    rsq_client c;
    qkeys keys;
    pend_row *rows = NULL;
    size_t n = 0, cap = 0, k;
    int i, status = 0, groups = 0;
    rsq_result rc = RSQ_OK;
    for (i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { fputs(usage_pending, stdout); return 0; }
        if (a[0] == '-' && a[1]) {
            if (!v) return usage_error(usage_pending, "%s needs a value", a);
            if (!strcmp(a, "-g")) group = v;
            else if (!strcmp(a, "--consumer")) consumer = v;
            else if (!strcmp(a, "--max")) { if (!parse_num(v, 1, 1000000, &max)) return usage_error(usage_pending, "bad --max \"%s\"", v); }
            else return usage_error(usage_pending, "unknown option %s", a);
            i++;
        } else if (!stream) {
            stream = a;
        } else {
            return usage_error(usage_pending, "unexpected argument \"%s\"", a);
        }
    }
    if ((status = stream_and_group(usage_pending, "pending", stream, group)) != 0) return status;
    if (consumer && !*consumer) return usage_error(usage_pending, "the consumer name is empty%s", "");
    if (!open_client(&c, 0)) return 1;
    memset(&keys, 0, sizeof keys);
    {
        /* the queue's own stream first (a cluster's MOVED), then the others */
        long long t = 0;
        int has = 0;
        rc = pending_one(&c, stream, group, consumer, max, &rows, &n, &cap, &t, &has);
        total = t;
        groups = has;
        if (rc == RSQ_OK) rc = discover(&c, stream, &keys);
        for (k = 0; rc == RSQ_OK && k < keys.n; k++) {
            if (keys.v[k].kind != QK_STREAM || !strcmp(keys.v[k].key, stream)) continue;
            rc = pending_one(&c, keys.v[k].key, group, consumer, max, &rows, &n, &cap, &t, &has);
            total += t;
            groups += has;
        }
    }
    if (rc == RSQ_ERR_WRONGTYPE || (rc == RSQ_ERR_SERVER && strstr(rsq_errstr(&c), "WRONGTYPE"))) {
        char why[RSQ_ERR_MAX + 3 * RSQ_KEY_MAX];
        const char **names = (const char **)malloc((keys.n + 1) * sizeof *names);
        size_t m = 0;
        if (names) {
            names[m++] = stream;
            for (k = 0; k < keys.n; k++)
                if (keys.v[k].kind == QK_STREAM && strcmp(keys.v[k].key, stream)) names[m++] = keys.v[k].key;
            status = fail("pending: %s", wrongtype_text(&c, names, m, "stream", why, sizeof why));
            free((void *)names);
        } else {
            status = fail("pending: %s", errmsg(&c));
        }
    } else if (rc != RSQ_OK) {
        status = fail("pending: %s", rc == RSQ_ERR_REPLY ? "unexpected reply to XPENDING" : errmsg(&c));
    } else if (!groups) {
        char g[4 * RSQ_NAME_MAX], s[3 * RSQ_KEY_MAX];
        status = fail_escaped("pending: no group %s on queue %s", esc_str(g, sizeof g, group), esc_str(s, sizeof s, stream));
    } else {
        qsort(rows, n, sizeof *rows, pend_cmp);
        if ((long long)n > max) n = (size_t)max;
        /* the most recently delivered last */
        printf("%-24s %-24s %-24s %10s %10s\n", "STREAM", "ID", "CONSUMER", "IDLE", "DELIVERIES");
        for (k = 0; k < n; k++) {
            char s[3 * RSQ_KEY_MAX], cn[4 * RSQ_NAME_MAX], age[32];
            fmt_age(rows[k].idle_ms, age, sizeof age);
            if (rows[k].idle_ms == 0) snprintf(age, sizeof age, "0ms");
            printf("%-24s %-24s %-24s %10s %10lld\n", esc_str(s, sizeof s, rows[k].stream), rows[k].id,
                   esc_str(cn, sizeof cn, rows[k].consumer), age, rows[k].deliveries);
        }
        printf("%zu of %lld pending shown\n", n, total);
    }
    free(rows);
    qkeys_free(&keys);
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

/* A header of a dead letter: any field but the payload and the dlq-* fields. */
static int is_header(const rsq_reply *k) {
    return k->str && !(k->len == 7 && !memcmp(k->str, "payload", 7)) && !(k->len >= 4 && !memcmp(k->str, "dlq-", 4));
}

/* One line: ID stream=S [group=G] origin=ID deliveries=N error="E" [header:NAME="V"]... payload=P */
static void dlq_line(const rsq_reply *e) {
    const rsq_reply *f = &e->element[1], *g, *p;
    size_t i;
    put_esc(stdout, e->element[0].str, e->element[0].len, 0);
    print_field(" stream=", rsq_reply_get(f, "dlq-stream"), 0);
    if ((g = rsq_reply_get(f, "dlq-group")) != NULL) print_field(" group=", g, 0);
    print_field(" origin=", rsq_reply_get(f, "dlq-id"), 0);
    print_field(" deliveries=", rsq_reply_get(f, "dlq-deliveries"), 0);
    print_field(" error=", rsq_reply_get(f, "dlq-error"), 1);
    for (i = 0; f->type == RSQ_REPLY_ARRAY && i + 1 < f->len; i += 2)
        if (is_header(&f->element[i])) {
            fputs(" header:", stdout);
            put_esc(stdout, f->element[i].str, f->element[i].len, 0);
            print_field("=", &f->element[i + 1], 1);
        }
    fputs(" payload=", stdout);
    p = rsq_reply_get(f, "payload");
    if (p && p->str) put_esc(stdout, p->str, p->len, 0);
    fputc('\n', stdout);
}

static void json_field(const char *name, const rsq_reply *v) {
    printf(",\"%s\":", name);
    if (v && v->str) put_json_str(stdout, v->str, v->len);
    else fputs("null", stdout);
}

/* One object of the JSON array. */
static void dlq_json(const rsq_reply *e) {
    const rsq_reply *f = &e->element[1], *d, *p;
    long long n;
    size_t i;
    int first = 1;
    fputs("{\"id\":", stdout);
    put_json_str(stdout, e->element[0].str, e->element[0].len);
    json_field("stream", rsq_reply_get(f, "dlq-stream"));
    json_field("group", rsq_reply_get(f, "dlq-group"));
    json_field("origin_id", rsq_reply_get(f, "dlq-id"));
    d = rsq_reply_get(f, "dlq-deliveries");
    fputs(",\"deliveries\":", stdout);
    if (d && d->str && parse_num(d->str, 0, (long long)1 << 62, &n)) printf("%lld", n);
    else fputs("null", stdout);
    json_field("error", rsq_reply_get(f, "dlq-error"));
    fputs(",\"headers\":{", stdout);
    for (i = 0; f->type == RSQ_REPLY_ARRAY && i + 1 < f->len; i += 2)
        if (is_header(&f->element[i])) {
            if (!first) putchar(',');
            first = 0;
            put_json_str(stdout, f->element[i].str, f->element[i].len);
            putchar(':');
            if (f->element[i + 1].str) put_json_str(stdout, f->element[i + 1].str, f->element[i + 1].len);
            else fputs("null", stdout);
        }
    putchar('}');
    p = rsq_reply_get(f, "payload");
    json_field("payload", p);
    if (p && p->str && !utf8_valid(p->str, p->len)) {
        fputs(",\"payload_base64\":", stdout);
        put_base64(stdout, p->str, p->len);
    }
    putchar('}');
}

static int dlq_list(rsq_client *c, const char *dlq, long long max, int json) {
    char start[RSQ_ID_STRLEN] = "-";
    long long shown = 0;
    if (json) fputs("[", stdout);
    for (;;) {
        const rsq_reply *r;
        size_t j;
        char cnt[24];
        long long page = max ? (max - shown < 100 ? max - shown : 100) : 100;
        int more = 1;
        rsq_result rc;
        if (page <= 0) break;
        snprintf(cnt, sizeof cnt, "%lld", page);
        if ((rc = rsq_command(c, &r, "XRANGE", dlq, start, "+", "COUNT", cnt, (char *)0)) != RSQ_OK) {
            char why[RSQ_ERR_MAX + 3 * RSQ_KEY_MAX];
            if (json) fputs("]\n", stdout);
            if (rc == RSQ_ERR_WRONGTYPE) return fail("list: %s", wrongtype_text(c, &dlq, 1, "stream", why, sizeof why));
            return fail("list: %s", errmsg(c));
        }
        if (r->type != RSQ_REPLY_ARRAY || r->len == 0) break;
        for (j = 0; j < r->len; j++) {
            const rsq_reply *e = &r->element[j];
            if (e->type != RSQ_REPLY_ARRAY || e->len < 2 || !e->element[0].str) {
                if (json) fputs("]\n", stdout);
                return fail("list: malformed entry in %s", dlq);
            }
            if (json) {
                fputs(shown ? ",\n" : "\n", stdout);
                dlq_json(e);
            } else {
                dlq_line(e);
            }
            if (!next_id(e->element[0].str, e->element[0].len, start)) more = 0;
            shown++;
        }
        if (!more || r->len < (size_t)page) break;
    }
    if (json) fputs("\n]\n", stdout);
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
    int i, status, json = 0;
    for (i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { fputs(usage_dlq, stdout); return 0; }
        if (!strcmp(argv[i], "--json")) {
            json = 1;
        } else if (!strcmp(argv[i], "--max")) {
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
    if (json && strcmp(action, "list")) return usage_error(usage_dlq, "--json is for list%s", "");
    if (!check_queue_name(usage_dlq, stream)) return EXIT_USAGE;
    if (!rsq_queue_key(dlq, sizeof dlq, stream, 0, 0, RSQ_KEY_DEAD_LETTER)) return usage_error(usage_dlq, "bad STREAM \"%s\"", stream);
    if (!open_client(&c, 0)) return 1;
    if (!strcmp(action, "replay")) status = dlq_replay(&c, stream, dlq, max);
    else status = dlq_list(&c, dlq, max, json);
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
    if (!*cmd) return usage_error(usage_main, "the command is empty%s", "");
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
    if (url_in_argv && !*url) return usage_error(usage_main, "-u: the URL is empty%s", "");
    if (password_file && !*password_file) return usage_error(usage_main, "--password-file: the file name is empty%s", "");
    if (strcmp(cmd, "pub") && strcmp(cmd, "work") && strcmp(cmd, "stats") && strcmp(cmd, "dlq") && strcmp(cmd, "pending"))
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
    else if (!strcmp(cmd, "pending")) rc = cmd_pending(n, rest);
    else rc = cmd_dlq(n, rest);
    wipe(g_url, sizeof g_url);
    wipe(g_password, sizeof g_password);
    return rc;
}
