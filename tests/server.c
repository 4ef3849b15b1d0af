/* server.c - see server.h. Compiled into the test runner and the chaos programs. */
#define _DEFAULT_SOURCE 1
#include "server.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SRV_MAX 16
static pid_t srv_pids[SRV_MAX]; /* servers to stop if the test process dies */

static void srv_reap_all(void) {
    int i;
    for (i = 0; i < SRV_MAX; i++)
        if (srv_pids[i] > 0) { kill(srv_pids[i], SIGKILL); srv_pids[i] = 0; }
}
static void srv_on_signal(int sig) {
    srv_reap_all();
    signal(sig, SIG_DFL);
    raise(sig);
}
static void srv_track(pid_t pid, int add) {
    static int hooked;
    int i;
    if (!hooked) {
        hooked = 1;
        atexit(srv_reap_all);
        signal(SIGINT, srv_on_signal);
        signal(SIGTERM, srv_on_signal);
        signal(SIGSEGV, srv_on_signal);
        signal(SIGABRT, srv_on_signal);
        signal(SIGBUS, srv_on_signal);
    }
    for (i = 0; i < SRV_MAX; i++) {
        if (add && srv_pids[i] == 0) { srv_pids[i] = pid; return; }
        if (!add && srv_pids[i] == pid) { srv_pids[i] = 0; return; }
    }
}

const char *srv_which(const char *name) {
    static char buf[512];
    const char *path = getenv("PATH");
    const char *p = path ? path : "/usr/bin:/bin";
    while (*p) {
        const char *e = strchr(p, ':');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        snprintf(buf, sizeof buf, "%.*s/%s", (int)n, p, name);
        if (access(buf, X_OK) == 0) return buf;
        p += n + (e ? 1 : 0);
    }
    return NULL;
}

int srv_free_port(void) {
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    int port = 0, fd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0) close(fd);
    return port;
}

static int srv_ping(const srv *s) {
    struct sockaddr_un a;
    char buf[64];
    int fd = socket(AF_UNIX, SOCK_STREAM, 0), ok = 0;
    ssize_t n;
    if (fd < 0) return 0;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    if (strlen(s->sock) >= sizeof a.sun_path) { close(fd); return 0; }
    memcpy(a.sun_path, s->sock, strlen(s->sock) + 1);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0 && write(fd, "PING\r\n", 6) == 6) {
        n = read(fd, buf, sizeof buf - 1);
        ok = n > 0 && (!strncmp(buf, "+PONG", 5) || !strncmp(buf, "-NOAUTH", 7)); /* up, needs a password */
    }
    close(fd);
    return ok;
}

static int srv_spawn(srv *s) {
    char conf[400], log[400];
    int i;
    snprintf(conf, sizeof conf, "%s/redis.conf", s->dir);
    snprintf(log, sizeof log, "%s/redis.log", s->dir);
    s->pid = fork();
    if (s->pid < 0) return -1;
    if (s->pid == 0) {
        int fd = open("/dev/null", O_RDWR);
        if (fd >= 0) { dup2(fd, 0); dup2(fd, 1); }
        if (s->bin[0]) execl(s->bin, "redis-server", conf, (char *)NULL);
        else execlp("redis-server", "redis-server", conf, (char *)NULL);
        _exit(127);
    }
    srv_track(s->pid, 1);
    for (i = 0; i < 500; i++) { /* up to 10 s */
        int st;
        if (waitpid(s->pid, &st, WNOHANG) == s->pid) { srv_track(s->pid, 0); s->pid = 0; return -1; }
        if (srv_ping(s)) return 0;
        usleep(20000);
    }
    srv_stop(s, 1);
    return -1;
}

static int srv_port_free(int port) {
    struct sockaddr_in a;
    int fd = socket(AF_INET, SOCK_STREAM, 0), ok;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((unsigned short)port);
    ok = fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
    if (fd >= 0) close(fd);
    return ok;
}

int srv_free_cluster_port(void) {
    int i;
    for (i = 0; i < 200; i++) {
        int p = 20000 + (int)((unsigned)rand() % 25000u);
        if (srv_port_free(p) && srv_port_free(p + 10000)) return p;
    }
    return 0;
}

/* ---- the server's version, and config that version accepts ---- */

const char *srv_version_str(long v, char *buf, size_t cap) {
    snprintf(buf, cap, "%ld.%ld.%ld", v / 10000, v / 100 % 100, v % 100);
    return buf;
}

/* "... v=7.0.15 sha=..." (Redis and Valkey alike) -> 70015; 0 when absent. */
static long srv_parse_version(const char *text) {
    const char *p = strstr(text, " v=");
    long part[3] = { 0, 0, 0 };
    int k = 0;
    if (!p) return 0;
    for (p += 3; *p && k < 3; p++) {
        if (*p >= '0' && *p <= '9') { part[k] = part[k] * 10 + (*p - '0'); if (part[k] > 99) return 0; }
        else if (*p == '.') k++;
        else break;
    }
    return k == 2 ? part[0] * 10000 + part[1] * 100 + part[2] : 0;
}

long srv_bin_version(const char *bin) {
    static struct { char bin[512]; long v; } seen[16];
    static int nseen;
    char cmd[600], out[512], path[512];
    const char *which = bin && *bin ? bin : srv_which("redis-server");
    size_t n;
    long v;
    int i;
    FILE *p;
    if (!which || strlen(which) >= sizeof path || strchr(which, '\'')) return 0;
    snprintf(path, sizeof path, "%s", which);
    for (i = 0; i < nseen; i++)
        if (!strcmp(seen[i].bin, path)) return seen[i].v;
    snprintf(cmd, sizeof cmd, "'%s' --version 2>/dev/null", path);
    p = popen(cmd, "r");
    if (!p) return 0;
    n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    pclose(p);
    v = srv_parse_version(out);
    if (nseen < 16) {
        snprintf(seen[nseen].bin, sizeof seen[0].bin, "%s", path);
        seen[nseen++].v = v;
    }
    return v;
}

long srv_version(const srv *s) { return srv_bin_version(s->bin); }

/* Whether ::1 can be bound here (a machine or container may have no IPv6 loopback). */
static int srv_have_ipv6_loopback(void) {
    struct sockaddr_in6 a;
    int fd = socket(AF_INET6, SOCK_STREAM, 0), ok;
    memset(&a, 0, sizeof a);
    a.sin6_family = AF_INET6;
    a.sin6_addr = in6addr_loopback;
    ok = fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
    if (fd >= 0) close(fd);
    return ok;
}

/* Config directives under a newer name than older servers know: written under the
   old one for a server older than `since`. */
static const struct { const char *name, *old; long since; } srv_renamed[] = {
    { "busy-reply-threshold", "lua-time-limit", 70000 },
};

/* The test's extra config lines, each directive under the name server version v knows. */
static void srv_write_extra(FILE *f, const char *extra, long v) {
    const char *line = extra;
    while (*line) {
        const char *end = strchr(line, '\n'), *p = line;
        size_t len = end ? (size_t)(end - line) : strlen(line), w, i;
        while (p < line + len && (*p == ' ' || *p == '\t')) p++;
        for (w = 0; p + w < line + len && p[w] != ' ' && p[w] != '\t'; w++) {}
        for (i = 0; i < sizeof srv_renamed / sizeof srv_renamed[0]; i++)
            if (v && v < srv_renamed[i].since && w == strlen(srv_renamed[i].name) && !strncmp(p, srv_renamed[i].name, w)) break;
        if (i < sizeof srv_renamed / sizeof srv_renamed[0])
            fprintf(f, "%s%.*s\n", srv_renamed[i].old, (int)(line + len - (p + w)), p + w);
        else
            fprintf(f, "%.*s\n", (int)len, line);
        line += len + (end ? 1 : 0);
    }
}

int srv_start(srv *s, const char *extra) { return srv_start_at(s, 0, extra); }

static int srv_start_impl(srv *s, int port, const char *bin, const char *extra);

int srv_start_at(srv *s, int port, const char *extra) { return srv_start_impl(s, port, NULL, extra); }

int srv_start_bin(srv *s, const char *bin, const char *extra) {
    if (!bin || !bin[0] || strlen(bin) >= sizeof s->bin || access(bin, X_OK) != 0) {
        memset(s, 0, sizeof *s);
        fprintf(stderr, "%s: not an executable redis-server\n", bin ? bin : "(null)");
        return -1;
    }
    return srv_start_impl(s, 0, bin, extra);
}

static int srv_start_impl(srv *s, int port, const char *bin, const char *extra) {
    char tmpl[] = "/tmp/rsq-test-XXXXXX";
    char conf[400];
    FILE *f;
    int attempt, ipv6;
    long ver;
    memset(s, 0, sizeof *s);
    if (bin) snprintf(s->bin, sizeof s->bin, "%s", bin);
    else if (!srv_which("redis-server")) { fprintf(stderr, "redis-server not found on PATH\n"); return -1; }
    if (!mkdtemp(tmpl)) return -1;
    snprintf(s->dir, sizeof s->dir, "%s", tmpl);
    snprintf(s->sock, sizeof s->sock, "%s/redis.sock", s->dir);
    if (extra) snprintf(s->extra, sizeof s->extra, "%s", extra);
    ver = srv_version(s);
    ipv6 = ver && ver < 60200 && srv_have_ipv6_loopback();
    for (attempt = 0; attempt < 5; attempt++) {
        s->port = port ? port : srv_free_port();
        snprintf(conf, sizeof conf, "%s/redis.conf", s->dir);
        f = fopen(conf, "w");
        if (!f) return -1;
        /* "-::1": ::1 when it can be bound (Redis >= 6.2); older servers refuse the
           "-" and fail without ::1, so they get it only where it binds */
        fprintf(f, "port %d\nbind 127.0.0.1%s\nunixsocket %s\nunixsocketperm 700\ndir %s\n"
                   "logfile %s/redis.log\nsave \"\"\nappendonly no\ndaemonize no\n",
                s->port, ver == 0 || ver >= 60200 ? " -::1" : ipv6 ? " ::1" : "", s->sock, s->dir, s->dir);
        srv_write_extra(f, s->extra, ver);
        fclose(f);
        if (srv_spawn(s) == 0) {
            snprintf(s->url, sizeof s->url, "redis://127.0.0.1:%d", s->port);
            snprintf(s->unix_url, sizeof s->unix_url, "unix://%s", s->sock);
            return 0;
        }
    }
    fprintf(stderr, "redis-server did not start (see %s/redis.log)\n", s->dir);
    return -1;
}

static void srv_rmtree(const char *dir) {
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[1024];
    if (!d) return;
    while ((e = readdir(d))) {
        struct stat st;
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode)) srv_rmtree(path);
        else unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

static void srv_wait_gone(srv *s, int sig) {
    int i, st;
    if (s->pid <= 0) return;
    kill(s->pid, sig);
    for (i = 0; i < 250; i++) {
        if (waitpid(s->pid, &st, WNOHANG) == s->pid) break;
        usleep(20000);
        if (i == 249) { kill(s->pid, SIGKILL); waitpid(s->pid, &st, 0); }
    }
    srv_track(s->pid, 0);
    s->pid = 0;
}

void srv_stop(srv *s, int keep_dir) {
    srv_wait_gone(s, SIGTERM);
    if (!keep_dir && s->dir[0]) { srv_rmtree(s->dir); s->dir[0] = '\0'; }
}

void srv_kill(srv *s) { srv_wait_gone(s, SIGKILL); }

int srv_restart(srv *s) {
    int i;
    unlink(s->sock);
    for (i = 0; i < 50; i++) { /* the port may linger briefly */
        if (srv_spawn(s) == 0) return 0;
        usleep(100000);
    }
    return -1;
}

int srv_cli(const srv *s, char *out, size_t cap, const char *fmt, ...) {
    char cmd[4096], args[3500];
    va_list ap;
    FILE *p;
    size_t n = 0;
    int st;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "redis-cli -s '%s' %s", s->sock, args);
    p = popen(cmd, "r");
    if (!p) return -1;
    if (out && cap) {
        n = fread(out, 1, cap - 1, p);
        out[n] = '\0';
        while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r')) out[--n] = '\0';
    } else {
        char sink[256];
        while (fread(sink, 1, sizeof sink, p) > 0) {}
    }
    st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* ---- the fault-injecting proxy (tests/proxy.c) ---- */

const char *srv_proxy_bin(void) {
    const char *bin = getenv("RSQ_PROXY_BIN");
    if (bin && *bin && access(bin, X_OK) == 0) return bin;
    return access("build/proxy", X_OK) == 0 ? "build/proxy" : NULL;
}

static long long srv_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads one line of the proxy's answers into p->answer within timeout_ms. 0 or -1. */
static int srv_proxy_line(srv_proxy *p, int timeout_ms) {
    size_t n = 0;
    long long end = srv_now_ms() + timeout_ms;
    p->answer[0] = '\0';
    for (;;) {
        struct pollfd pf;
        long long left = end - srv_now_ms();
        char ch;
        ssize_t r;
        if (left <= 0) return -1;
        pf.fd = p->out;
        pf.events = POLLIN;
        pf.revents = 0;
        if (poll(&pf, 1, (int)left) <= 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        r = read(p->out, &ch, 1);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        if (ch == '\n') break;
        if (n + 1 < sizeof p->answer) p->answer[n++] = ch;
    }
    p->answer[n] = '\0';
    return 0;
}

int srv_proxy_start(srv_proxy *p, int target_port, const char *logpath, const char *const *opts) {
    const char *bin = srv_proxy_bin();
    const char *argv[40];
    char target[32];
    int in[2], out[2], argc = 0, i;
    memset(p, 0, sizeof *p);
    p->ctl = p->out = -1;
    if (!bin) {
        fprintf(stderr, "no proxy binary: set RSQ_PROXY_BIN or build build/proxy (make test does)\n");
        return -1;
    }
    snprintf(target, sizeof target, "127.0.0.1:%d", target_port);
    argv[argc++] = bin;
    argv[argc++] = "--listen";
    argv[argc++] = "127.0.0.1:0";
    argv[argc++] = "--target";
    argv[argc++] = target;
    argv[argc++] = "--control";
    for (i = 0; opts && opts[i]; i++) {
        if (argc == (int)(sizeof argv / sizeof argv[0]) - 1) { fprintf(stderr, "srv_proxy_start: too many options\n"); return -1; }
        argv[argc++] = opts[i];
    }
    argv[argc] = NULL;
    if (pipe(in) != 0) return -1;
    if (pipe(out) != 0) { close(in[0]); close(in[1]); return -1; }
    /* no other child (a redis-server, say) may hold the control pipe open */
    for (i = 0; i < 2; i++) { fcntl(in[i], F_SETFD, FD_CLOEXEC); fcntl(out[i], F_SETFD, FD_CLOEXEC); }
    p->pid = fork();
    if (p->pid < 0) {
        close(in[0]); close(in[1]); close(out[0]); close(out[1]);
        p->pid = 0;
        return -1;
    }
    if (p->pid == 0) {
        int log = logpath ? open(logpath, O_WRONLY | O_CREAT | O_APPEND, 0600) : open("/dev/null", O_WRONLY);
        dup2(in[0], 0);
        dup2(out[1], 1);
        if (log >= 0) dup2(log, 2);
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    srv_track(p->pid, 1);
    close(in[0]);
    close(out[1]);
    p->ctl = in[1];
    p->out = out[0];
    if (srv_proxy_line(p, 5000) != 0 || sscanf(p->answer, "listening %d", &p->port) != 1 || p->port <= 0) {
        fprintf(stderr, "proxy did not start (answer \"%s\")\n", p->answer);
        srv_proxy_stop(p);
        return -1;
    }
    snprintf(p->url, sizeof p->url, "redis://127.0.0.1:%d", p->port);
    return 0;
}

int srv_proxy_ctl(srv_proxy *p, const char *cmd) {
    char line[256];
    size_t len, off = 0;
    int n = snprintf(line, sizeof line, "%s\n", cmd);
    if (p->ctl < 0 || n < 0 || (size_t)n >= sizeof line) return -1;
    len = (size_t)n;
    while (off < len) {
        ssize_t w = write(p->ctl, line + off, len - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        off += (size_t)w;
    }
    if (srv_proxy_line(p, 5000) != 0) return -1;
    return strncmp(p->answer, "ok", 2) == 0 && (p->answer[2] == '\0' || p->answer[2] == ' ') ? 0 : -1;
}

int srv_proxy_close_control(srv_proxy *p, int timeout_ms) {
    long long end = srv_now_ms() + timeout_ms;
    int st;
    if (p->ctl >= 0) close(p->ctl);
    p->ctl = -1;
    while (p->pid > 0 && srv_now_ms() < end) {
        if (waitpid(p->pid, &st, WNOHANG) == p->pid) {
            srv_track(p->pid, 0);
            p->pid = 0;
            if (p->out >= 0) close(p->out);
            p->out = -1;
            return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        }
        usleep(10000);
    }
    srv_proxy_stop(p);
    return -1;
}

int srv_proxy_stop(srv_proxy *p) {
    int i, st = 0, got = 0;
    if (p->pid > 0) {
        kill(p->pid, SIGTERM);
        for (i = 0; i < 250; i++) {
            if (waitpid(p->pid, &st, WNOHANG) == p->pid) { got = 1; break; }
            usleep(20000);
        }
        if (!got) { kill(p->pid, SIGKILL); waitpid(p->pid, &st, 0); }
        srv_track(p->pid, 0);
    }
    if (p->ctl >= 0) close(p->ctl);
    if (p->out >= 0) close(p->out);
    p->ctl = p->out = -1;
    i = p->pid > 0 && got && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    p->pid = 0;
    return i;
}
