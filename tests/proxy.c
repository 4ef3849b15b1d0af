/* proxy.c - a fault-injecting TCP proxy for chaos and failure tests.

   proxy --listen [HOST:]PORT --target HOST:PORT [--seed N] [--cut-every-bytes N]
         [--cut-prob P] [--delay-ms N] [--stall-ms N] [--stall-prob P]
         [--blackhole] [--idle-close-ms N] [--control]

   Forwards every connection accepted on the listen address to the target, both ways,
   in one thread with poll(). PORT 0 picks a free port (printed, see below). Faults,
   the random ones drawn from a generator seeded by --seed:
     --cut-every-bytes N  cut each connection after a random number of forwarded bytes
                          (both directions counted) between N/2 and 3N/2
     --cut-prob P         cut with probability P for each chunk read (0..1)
     --delay-ms N         hold every chunk N ms before forwarding it (added latency,
                          each way: a request and its reply take 2N ms more)
     --stall-ms N         now and then (probability --stall-prob per chunk, default
                          0.02) hold a chunk, and all that follows it, N ms more
     --blackhole          start blackholed: connections are accepted (and connected to
                          the target) but nothing is forwarded either way, and nothing
                          is closed: each side sees a silent, half-open peer. The bytes
                          sent meanwhile wait in the sockets and flow once it is off,
                          as after a healed network partition.
     --idle-close-ms N    close (cleanly, both sides) a connection that forwarded
                          nothing for N ms, as a server's `timeout` does; a blackholed
                          connection is never idle-closed (its timer restarts when the
                          blackhole ends)
   A cut happens at a random point inside a chunk: the bytes before it are forwarded,
   then both sides are closed (half the time with a reset instead of a clean close).
   Each cut prints one line to stderr: "proxy: cut #COUNT: ...".

   Run-time control (--control): the proxy reads commands from its standard input, one
   per line, applies each at once and answers each on standard output with one line,
   "ok ..." or "error REASON". Its first line on standard output is "listening PORT".
     delay MS         the --delay-ms of chunks read from now on
     blackhole on|off as --blackhole; off forwards what waited
     idle MS          as --idle-close-ms (0: never)
     reset            reset every open connection now (SO_LINGER 0: both the client and
                      the target get a TCP RST); answers "ok reset N", N connections
     close            close every open connection now, cleanly (FIN to both sides)
     status           "ok open=N conns=N cuts=N resets=N closes=N idle_closes=N
                      blackhole=0|1 delay=MS idle=MS"
   End of input on standard input stops the proxy (so it never outlives the test that
   drives it), as do SIGTERM and SIGINT: a summary line on stderr, exit status 0. Bad
   usage: exit status 2. tests/server.h has helpers (srv_proxy_start, srv_proxy_ctl,
   srv_proxy_stop) that drive it. */
#define _DEFAULT_SOURCE 1
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#define PX_MAX_CONN 128
#define PX_READ 16384
#define PX_QUEUE_MAX ((size_t)1 << 20) /* stop reading a side while this much waits */

typedef struct px_chunk {
    struct px_chunk *next;
    size_t len, off;
    long long due;  /* monotonic ms when it may be written */
    int cut_after;  /* cut the connection once this chunk is written */
    char data[];
} px_chunk;

typedef struct px_queue {
    px_chunk *head, *tail;
    size_t bytes;
} px_queue;

typedef struct px_conn {
    int used;
    int fd[2];        /* 0: the client, 1: the target                 */
    int connecting;   /* the connect to the target is in progress     */
    int eof[2];       /* fd[i] has no more to read                    */
    int shut[2];      /* the write side of fd[i] is shut down         */
    int cutting;      /* a cut is queued: read nothing more           */
    px_queue q[2];    /* q[i]: read from fd[i], to be written to fd[1-i] */
    unsigned long long bytes, cut_at;
    long long last_ms; /* monotonic ms of the last byte read or written */
    unsigned long id;
} px_conn;

static struct {
    long long cut_every, delay_ms, stall_ms, idle_ms;
    double cut_prob, stall_prob;
    int blackhole, control;
    uint64_t rng;
    struct addrinfo *target;
    unsigned long conns, cuts, stalls, resets, closes, idle_closes;
} px;

static px_conn px_conn_tab[PX_MAX_CONN];
static volatile sig_atomic_t px_stop;

static void px_on_signal(int sig) {
    (void)sig;
    px_stop = 1;
}

static long long px_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t px_rand(void) {
    uint64_t x = px.rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    px.rng = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static double px_rand01(void) { return (double)(px_rand() >> 11) / 9007199254740992.0; }

#define PX_USAGE "usage: proxy --listen [HOST:]PORT --target HOST:PORT [--seed N] [--cut-every-bytes N] " \
                 "[--cut-prob P] [--delay-ms N] [--stall-ms N] [--stall-prob P] [--blackhole] " \
                 "[--idle-close-ms N] [--control]\n"

static void px_usage(const char *why) {
    fprintf(stderr, "proxy: %s\n" PX_USAGE, why);
    exit(2);
}

/* Splits "HOST:PORT" (HOST may be [v6]) or "PORT" (host: def_host). */
static int px_split(const char *s, const char *def_host, char *host, size_t hcap, char *port, size_t pcap) {
    const char *colon = strrchr(s, ':');
    size_t hl;
    if (!colon) {
        snprintf(host, hcap, "%s", def_host);
        snprintf(port, pcap, "%s", s);
        return *s != '\0';
    }
    hl = (size_t)(colon - s);
    if (hl >= 2 && s[0] == '[' && s[hl - 1] == ']') { s++; hl -= 2; }
    if (hl == 0 || hl >= hcap || strlen(colon + 1) == 0 || strlen(colon + 1) >= pcap) return 0;
    memcpy(host, s, hl);
    host[hl] = '\0';
    snprintf(port, pcap, "%s", colon + 1);
    return 1;
}

static void px_nonblock(int fd) {
    int one = 1;
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL, 0) | O_NONBLOCK);
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* fails harmlessly on listeners */
}

static void px_queue_free(px_queue *q) {
    while (q->head) {
        px_chunk *c = q->head;
        q->head = c->next;
        free(c);
    }
    q->tail = NULL;
    q->bytes = 0;
}

/* Closes both sides; `reset` closes with a TCP reset instead of a clean close. */
static void px_close(px_conn *c, int reset) {
    int i;
    for (i = 0; i < 2; i++) {
        if (c->fd[i] >= 0) {
            if (reset) {
                struct linger l;
                l.l_onoff = 1;
                l.l_linger = 0;
                setsockopt(c->fd[i], SOL_SOCKET, SO_LINGER, &l, sizeof l);
            }
            close(c->fd[i]);
        }
        c->fd[i] = -1;
        px_queue_free(&c->q[i]);
    }
    c->used = 0;
}

static void px_cut(px_conn *c, const char *why) {
    int reset = (int)(px_rand() & 1);
    px.cuts++;
    fprintf(stderr, "proxy: cut #%lu: connection %lu after %llu bytes (%s, %s)\n", px.cuts, c->id, c->bytes, why,
            reset ? "reset" : "closed");
    px_close(c, reset);
}

static void px_accept(int lfd) {
    for (;;) {
        int cfd = accept(lfd, NULL, NULL), sfd, i;
        px_conn *c = NULL;
        if (cfd < 0) return;
        for (i = 0; i < PX_MAX_CONN; i++) if (!px_conn_tab[i].used) { c = &px_conn_tab[i]; break; }
        if (!c) { close(cfd); continue; }
        px_nonblock(cfd);
        sfd = socket(px.target->ai_family, px.target->ai_socktype, px.target->ai_protocol);
        if (sfd < 0) { close(cfd); continue; }
        px_nonblock(sfd);
        memset(c, 0, sizeof *c);
        c->used = 1;
        c->fd[0] = cfd;
        c->fd[1] = sfd;
        c->id = ++px.conns;
        c->last_ms = px_now();
        if (px.cut_every > 0)
            c->cut_at = (unsigned long long)(px.cut_every / 2) + px_rand() % (unsigned long long)(px.cut_every + 1);
        if (connect(sfd, px.target->ai_addr, px.target->ai_addrlen) != 0) {
            if (errno != EINPROGRESS) {
                fprintf(stderr, "proxy: connection %lu: target refused: %s\n", c->id, strerror(errno));
                px_close(c, 0);
                continue;
            }
            c->connecting = 1;
        }
    }
}

/* Reads one chunk from fd[i] and queues it for the other side, deciding on cuts. */
static void px_read(px_conn *c, int i) {
    char buf[PX_READ];
    ssize_t n = read(c->fd[i], buf, sizeof buf);
    px_chunk *ch;
    size_t k;
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
        px_close(c, 0);
        return;
    }
    if (n == 0) { c->eof[i] = 1; return; }
    c->last_ms = px_now();
    k = (size_t)n;
    ch = (px_chunk *)malloc(sizeof *ch + k);
    if (!ch) { px_close(c, 0); return; }
    ch->next = NULL;
    ch->off = 0;
    ch->cut_after = 0;
    ch->due = px_now() + px.delay_ms;
    if (px.stall_ms > 0 && px_rand01() < px.stall_prob) { ch->due += px.stall_ms; px.stalls++; }
    if (px.cut_every > 0 && c->bytes + k >= c->cut_at) {
        k = (size_t)(c->cut_at - c->bytes);
        ch->cut_after = 1;
    } else if (px.cut_prob > 0 && px_rand01() < px.cut_prob) {
        k = (size_t)(px_rand() % (uint64_t)n);
        ch->cut_after = 2;
    }
    if (ch->cut_after) c->cutting = 1;
    memcpy(ch->data, buf, k);
    ch->len = k;
    c->bytes += k;
    if (c->q[i].tail) c->q[i].tail->next = ch;
    else c->q[i].head = ch;
    c->q[i].tail = ch;
    c->q[i].bytes += k;
}

/* Writes the due chunks of q[1-j] to fd[j]. Returns 0, or -1 when c was closed. */
static int px_flush(px_conn *c, int j) {
    px_queue *q = &c->q[1 - j];
    long long now = px_now();
    while (q->head && q->head->due <= now) {
        px_chunk *ch = q->head;
        if (ch->off < ch->len) {
            ssize_t n = write(c->fd[j], ch->data + ch->off, ch->len - ch->off);
            if (n < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return 0;
                if (c->cutting) px_cut(c, "peer gone first"); /* counted all the same */
                else px_close(c, 0);
                return -1;
            }
            ch->off += (size_t)n;
            q->bytes -= (size_t)n;
            c->last_ms = now;
            if (ch->off < ch->len) return 0;
        }
        q->head = ch->next;
        if (!q->head) q->tail = NULL;
        if (ch->cut_after) {
            const char *why = ch->cut_after == 1 ? "byte count" : "chance";
            free(ch);
            px_cut(c, why);
            return -1;
        }
        free(ch);
    }
    return 0;
}

static void px_service(px_conn *c) {
    int i;
    if (c->connecting) {
        int err = 0;
        socklen_t len = sizeof err;
        struct pollfd p;
        p.fd = c->fd[1];
        p.events = POLLOUT;
        p.revents = 0;
        if (poll(&p, 1, 0) <= 0) return;
        if (getsockopt(c->fd[1], SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
            fprintf(stderr, "proxy: connection %lu: target refused: %s\n", c->id, strerror(err ? err : errno));
            px_close(c, 0);
            return;
        }
        c->connecting = 0;
    }
    if (px.blackhole) return; /* nothing read, nothing written, nothing closed */
    for (i = 0; i < 2; i++)
        if (!c->eof[i] && !c->cutting && c->q[i].bytes < PX_QUEUE_MAX) {
            px_read(c, i);
            if (!c->used) return;
        }
    for (i = 0; i < 2; i++)
        if (px_flush(c, i) != 0) return;
    for (i = 0; i < 2; i++) /* pass an end of input on once its data is through */
        if (c->eof[i] && !c->q[i].head && !c->shut[1 - i]) {
            shutdown(c->fd[1 - i], SHUT_WR);
            c->shut[1 - i] = 1;
        }
    if (c->eof[0] && c->eof[1] && !c->q[0].head && !c->q[1].head) px_close(c, 0);
}

/* Idle connections (none while blackholed) are closed cleanly, like a server's timeout. */
static void px_idle_check(long long now) {
    int k;
    if (px.idle_ms <= 0 || px.blackhole) return;
    for (k = 0; k < PX_MAX_CONN; k++) {
        px_conn *c = &px_conn_tab[k];
        if (!c->used || c->connecting || c->q[0].head || c->q[1].head) continue;
        if (now - c->last_ms >= px.idle_ms) {
            px.idle_closes++;
            fprintf(stderr, "proxy: idle close #%lu: connection %lu idle %lld ms\n", px.idle_closes, c->id,
                    now - c->last_ms);
            px_close(c, 0);
        }
    }
}

static void px_answer(const char *fmt, ...) {
    char line[512];
    va_list ap;
    int n;
    size_t off = 0;
    va_start(ap, fmt);
    n = vsnprintf(line, sizeof line - 1, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n > sizeof line - 2) n = (int)(sizeof line - 2);
    line[n++] = '\n';
    while (off < (size_t)n) { /* stdout is a pipe to the test; a lost reader is no error */
        ssize_t w = write(1, line + off, (size_t)n - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return;
        off += (size_t)w;
    }
}

/* Parses a non-negative number of ms; -1 if `s` is not one. */
static long long px_ms(const char *s) {
    char *end = NULL;
    long long v;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (end == s || *end || errno || v < 0 || v > 86400000LL) return -1;
    return v;
}

/* Applies one control command (see the top comment) and answers it. */
static void px_control(char *line) {
    char *cmd = line, *arg;
    int k, n = 0;
    long long v;
    while (*cmd == ' ' || *cmd == '\t') cmd++;
    arg = cmd;
    while (*arg && *arg != ' ' && *arg != '\t') arg++;
    if (*arg) *arg++ = '\0';
    while (*arg == ' ' || *arg == '\t') arg++;
    if (!*cmd) return;
    fprintf(stderr, "proxy: control: %s%s%s\n", cmd, *arg ? " " : "", arg);
    if (!strcmp(cmd, "delay")) {
        if ((v = px_ms(arg)) < 0) { px_answer("error delay wants a number of ms"); return; }
        px.delay_ms = v;
        px_answer("ok delay %lld", v);
    } else if (!strcmp(cmd, "idle")) {
        if ((v = px_ms(arg)) < 0) { px_answer("error idle wants a number of ms"); return; }
        px.idle_ms = v;
        px_answer("ok idle %lld", v);
    } else if (!strcmp(cmd, "blackhole")) {
        if (!strcmp(arg, "on")) px.blackhole = 1;
        else if (!strcmp(arg, "off")) {
            long long now = px_now();
            if (px.blackhole) /* idle timers restart; held chunks keep their place */
                for (k = 0; k < PX_MAX_CONN; k++) px_conn_tab[k].last_ms = now;
            px.blackhole = 0;
        } else { px_answer("error blackhole wants on or off"); return; }
        px_answer("ok blackhole %s", px.blackhole ? "on" : "off");
    } else if (!strcmp(cmd, "reset") || !strcmp(cmd, "close")) {
        int reset = cmd[0] == 'r';
        if (*arg) { px_answer("error %s takes no argument", cmd); return; }
        for (k = 0; k < PX_MAX_CONN; k++)
            if (px_conn_tab[k].used) {
                fprintf(stderr, "proxy: %s connection %lu (control)\n", reset ? "reset" : "close", px_conn_tab[k].id);
                px_close(&px_conn_tab[k], reset);
                n++;
            }
        if (reset) px.resets += (unsigned long)n;
        else px.closes += (unsigned long)n;
        px_answer("ok %s %d", cmd, n);
    } else if (!strcmp(cmd, "status")) {
        for (k = 0; k < PX_MAX_CONN; k++) n += px_conn_tab[k].used;
        px_answer("ok open=%d conns=%lu cuts=%lu resets=%lu closes=%lu idle_closes=%lu blackhole=%d delay=%lld idle=%lld",
                  n, px.conns, px.cuts, px.resets, px.closes, px.idle_closes, px.blackhole, px.delay_ms, px.idle_ms);
    } else {
        px_answer("error unknown command: %s", cmd);
    }
}

/* Reads what came on standard input and runs each complete line. 0, or -1 at its end. */
static int px_control_read(void) {
    static char buf[1024];
    static size_t len;
    static int overlong;
    ssize_t n = read(0, buf + len, sizeof buf - 1 - len);
    char *nl;
    if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -1;
    if (n == 0) return -1;
    len += (size_t)n;
    buf[len] = '\0';
    while ((nl = strchr(buf, '\n')) != NULL) {
        size_t used = (size_t)(nl - buf) + 1;
        *nl = '\0';
        if (nl > buf && nl[-1] == '\r') nl[-1] = '\0';
        if (overlong) { overlong = 0; px_answer("error line too long"); }
        else px_control(buf);
        memmove(buf, buf + used, len - used + 1);
        len -= used;
    }
    if (len == sizeof buf - 1) { overlong = 1; len = 0; } /* drop it up to its newline */
    return 0;
}

int main(int argc, char **argv) {
    const char *listen_at = NULL, *target_at = NULL;
    char host[256], port[32];
    struct addrinfo hints, *la = NULL;
    struct sigaction sa;
    struct sockaddr_storage bound;
    socklen_t bound_len = sizeof bound;
    int lfd, i, one = 1, bound_port = 0, ctl_open;
    long long seed = 1;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        char *end = NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf(PX_USAGE);
            return 0;
        }
        if (!strcmp(a, "--blackhole")) { px.blackhole = 1; continue; }
        if (!strcmp(a, "--control")) { px.control = 1; continue; }
        if (!v) px_usage("missing value after an option");
        i++;
        errno = 0;
        if (!strcmp(a, "--listen")) listen_at = v;
        else if (!strcmp(a, "--target")) target_at = v;
        else if (!strcmp(a, "--seed")) seed = strtoll(v, &end, 10);
        else if (!strcmp(a, "--cut-every-bytes")) px.cut_every = strtoll(v, &end, 10);
        else if (!strcmp(a, "--delay-ms")) px.delay_ms = strtoll(v, &end, 10);
        else if (!strcmp(a, "--stall-ms")) px.stall_ms = strtoll(v, &end, 10);
        else if (!strcmp(a, "--idle-close-ms")) px.idle_ms = strtoll(v, &end, 10);
        else if (!strcmp(a, "--cut-prob")) px.cut_prob = strtod(v, &end);
        else if (!strcmp(a, "--stall-prob")) px.stall_prob = strtod(v, &end);
        else px_usage("unknown option");
        if (end && (*end || end == v || errno)) px_usage("bad number");
    }
    if (!listen_at || !target_at) px_usage("--listen and --target are required");
    if (px.cut_every < 0 || px.delay_ms < 0 || px.stall_ms < 0 || px.idle_ms < 0 || px.cut_prob < 0 ||
        px.cut_prob > 1 || px.stall_prob < 0 || px.stall_prob > 1)
        px_usage("negative value or probability outside 0..1");
    if (px.stall_ms > 0 && px.stall_prob == 0) px.stall_prob = 0.02;
    px.rng = (uint64_t)seed * 0x9E3779B97F4A7C15ULL + 0x632BE59BD9B4E019ULL;
    if (!px.rng) px.rng = 1;

    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    if (!px_split(target_at, "127.0.0.1", host, sizeof host, port, sizeof port)) px_usage("bad --target");
    if (getaddrinfo(host, port, &hints, &px.target) != 0 || !px.target) {
        fprintf(stderr, "proxy: cannot resolve target %s\n", target_at);
        return 1;
    }
    if (!px_split(listen_at, "127.0.0.1", host, sizeof host, port, sizeof port)) px_usage("bad --listen");
    hints.ai_flags = AI_PASSIVE;
    if (getaddrinfo(host, port, &hints, &la) != 0 || !la) {
        fprintf(stderr, "proxy: cannot resolve listen address %s\n", listen_at);
        return 1;
    }
    lfd = socket(la->ai_family, la->ai_socktype, la->ai_protocol);
    if (lfd < 0) { perror("proxy: socket"); return 1; }
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(lfd, la->ai_addr, la->ai_addrlen) != 0 || listen(lfd, 64) != 0) {
        fprintf(stderr, "proxy: cannot listen on %s: %s\n", listen_at, strerror(errno));
        return 1;
    }
    freeaddrinfo(la);
    if (getsockname(lfd, (struct sockaddr *)&bound, &bound_len) == 0) {
        if (bound.ss_family == AF_INET) bound_port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
        else if (bound.ss_family == AF_INET6) bound_port = ntohs(((struct sockaddr_in6 *)&bound)->sin6_port);
    }
    px_nonblock(lfd);

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = px_on_signal; /* no SA_RESTART: poll returns EINTR */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    for (i = 0; i < PX_MAX_CONN; i++) px_conn_tab[i].fd[0] = px_conn_tab[i].fd[1] = -1;
    fprintf(stderr, "proxy: listening on %s:%d, target %s%s\n", host, bound_port, target_at,
            px.blackhole ? " (blackholed)" : "");
    ctl_open = px.control;
    if (px.control) px_answer("listening %d", bound_port);

    while (!px_stop) {
        struct pollfd pf[2 + 2 * PX_MAX_CONN];
        int np = 0, timeout = -1, k, ctl_at = -1;
        long long now = px_now();
        pf[np].fd = lfd;
        pf[np].events = POLLIN;
        pf[np].revents = 0;
        np++;
        if (ctl_open) {
            ctl_at = np;
            pf[np].fd = 0;
            pf[np].events = POLLIN;
            pf[np].revents = 0;
            np++;
        }
        for (k = 0; k < PX_MAX_CONN; k++) {
            px_conn *c = &px_conn_tab[k];
            int j;
            if (!c->used) continue;
            if (px.idle_ms > 0 && !px.blackhole && !c->connecting && !c->q[0].head && !c->q[1].head) {
                /* (the same test as px_idle_check's, or poll would spin) */
                long long left = c->last_ms + px.idle_ms - now;
                if (left < 0) left = 0;
                if (timeout < 0 || left < timeout) timeout = (int)left;
            }
            for (j = 0; j < 2; j++) {
                short ev = 0;
                px_chunk *h = c->q[1 - j].head;
                if (c->connecting) {
                    if (j == 1) ev = POLLOUT;
                } else if (!px.blackhole) {
                    if (!c->eof[j] && !c->cutting && c->q[j].bytes < PX_QUEUE_MAX) ev |= POLLIN;
                    if (h) {
                        if (h->due <= now) ev |= POLLOUT;
                        else if (timeout < 0 || h->due - now < timeout) timeout = (int)(h->due - now);
                    }
                }
                /* a descriptor with nothing to wait for stays out of the set, so that a
                   hung-up peer cannot make poll spin */
                pf[np].fd = ev ? c->fd[j] : -1;
                pf[np].events = ev;
                pf[np].revents = 0;
                np++;
            }
        }
        if (poll(pf, (nfds_t)np, timeout) < 0) {
            if (errno == EINTR) continue;
            perror("proxy: poll");
            break;
        }
        if (pf[0].revents) px_accept(lfd);
        if (ctl_at >= 0 && pf[ctl_at].revents && px_control_read() != 0) {
            fprintf(stderr, "proxy: end of control input\n");
            ctl_open = 0;
            px_stop = 1;
        }
        for (k = 0; k < PX_MAX_CONN; k++)
            if (px_conn_tab[k].used) px_service(&px_conn_tab[k]);
        px_idle_check(px_now());
    }
    for (i = 0; i < PX_MAX_CONN; i++)
        if (px_conn_tab[i].used) px_close(&px_conn_tab[i], 0);
    close(lfd);
    freeaddrinfo(px.target);
    fprintf(stderr, "proxy: exiting: %lu connections, %lu cuts, %lu stalls, %lu resets, %lu closes, %lu idle closes\n",
            px.conns, px.cuts, px.stalls, px.resets, px.closes, px.idle_closes);
    return 0;
}
