/* fake_server.c - see fake_server.h. A listening child process forks one process per
   connection and reaps them; fake_stop sends it SIGTERM, on which it kills and reaps
   its connection processes and leaves. All of them are in one process group, named
   by the child's pid, which fake_stop kills as a last resort. Children leave with
   _exit (never exit): the test runner's atexit hooks and stdio buffers are not theirs. */
#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE 1
#endif
#include "fake_server.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>

#if defined(__GNUC__) || defined(__clang__)
#define FAKE__INTERN static __attribute__((unused))
#else
#define FAKE__INTERN static
#endif

#define FAKE__MAX_CONN 256

/* Set by SIGTERM in the listening child (a process of its own: no state is shared). */
static volatile sig_atomic_t fake__stopping;
FAKE__INTERN void fake__on_term(int sig) {
    (void)sig;
    fake__stopping = 1;
}

/* Waits until fd is readable; gives up (returns 0) after ms or when the listening
   process `server` is gone. */
FAKE__INTERN int fake__wait_readable(int fd, int ms, pid_t server) {
    while (ms > 0) {
        struct pollfd p;
        int r;
        p.fd = fd;
        p.events = POLLIN;
        p.revents = 0;
        r = poll(&p, 1, ms < 100 ? ms : 100);
        if (r > 0) return 1;
        if (r < 0 && errno != EINTR) return 0;
        if (getppid() != server) return 0;
        ms -= 100;
    }
    return 0;
}

FAKE__INTERN int fake__write_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

/* Reads and drops input until the peer closes, an error, or `ms` passes. */
FAKE__INTERN void fake__drain(int fd, int ms, pid_t server) {
    char sink[4096];
    for (;;) {
        if (!fake__wait_readable(fd, ms, server)) return;
        if (read(fd, sink, sizeof sink) <= 0) return;
    }
}

/* One connection, in its own process. Never returns. */
FAKE__INTERN void fake__serve(const fake_scenario *sc, int fd, int evfd, pid_t server) {
    char in[1024];
    unsigned char rec[2 + sizeof in];
    ssize_t n = 0;
    unsigned seed = (unsigned)getpid() * 2654435761u;
    alarm(60); /* a last resort: nothing here outlives a minute */
    if (!(sc->flags & FAKE_NO_WAIT)) {
        if (!fake__wait_readable(fd, 10000, server)) _exit(0);
        do n = read(fd, in, sizeof in); while (n < 0 && errno == EINTR);
        if (n <= 0) _exit(0);
    }
    /* one atomic record per connection: 2-byte length, then the request's first bytes */
    rec[0] = (unsigned char)(n >> 8);
    rec[1] = (unsigned char)(n & 0xff);
    if (n > 0) memcpy(rec + 2, in, (size_t)n);
    if (write(evfd, rec, 2 + (size_t)n) < 0) { /* the parent stops listening: fine */ }
    if (!(sc->flags & FAKE_SILENT)) {
        if (sc->flags & FAKE_TRICKLE) {
            size_t off = 0;
            while (off < sc->reply_len) {
                size_t k;
                seed = seed * 1103515245u + 12345u;
                k = 1 + (seed >> 16) % 7;
                if (k > sc->reply_len - off) k = sc->reply_len - off;
                if (fake__write_all(fd, sc->reply + off, k) != 0) _exit(0);
                off += k;
                usleep(1000);
            }
        } else if (sc->reply_len && fake__write_all(fd, sc->reply, sc->reply_len) != 0) {
            _exit(0);
        }
        if (sc->repeat_len) {
            static char block[65536];
            size_t copies = sizeof block / sc->repeat_len, i;
            if (copies == 0) { /* a pattern longer than the block: send it as it is */
                for (;;) if (fake__write_all(fd, sc->repeat, sc->repeat_len) != 0) _exit(0);
            }
            for (i = 0; i < copies; i++) memcpy(block + i * sc->repeat_len, sc->repeat, sc->repeat_len);
            for (;;) if (fake__write_all(fd, block, copies * sc->repeat_len) != 0) _exit(0);
        }
    }
    if (sc->flags & FAKE_CLOSE) {
        /* a clean FIN after the data: half-close, then wait for the peer to close, so
           unread input never turns the close into a reset that could drop our bytes */
        shutdown(fd, SHUT_WR);
        fake__drain(fd, 2000, server);
        _exit(0);
    }
    fake__drain(fd, 60000, server); /* silent until the client goes away */
    _exit(0);
}

FAKE_DEF int fake_start_scenario(fake_server *f, const fake_scenario *sc) {
    struct sockaddr_in a;
    socklen_t alen = sizeof a;
    int lfd, pfd[2];
    pid_t parent = getpid(), pid;
    sigset_t block, old;
    memset(f, 0, sizeof *f);
    f->events_fd = -1;
    lfd = socket(AF_INET, SOCK_STREAM, 0);
    if (lfd < 0) return -1;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0; /* the kernel picks a free port: no race with other listeners */
    if (bind(lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(lfd, 64) != 0 ||
        getsockname(lfd, (struct sockaddr *)&a, &alen) != 0) {
        close(lfd);
        return -1;
    }
    if (pipe(pfd) != 0) { close(lfd); return -1; }
    fcntl(pfd[0], F_SETFL, fcntl(pfd[0], F_GETFL, 0) | O_NONBLOCK);
    fcntl(pfd[1], F_SETFL, fcntl(pfd[1], F_GETFL, 0) | O_NONBLOCK);
    fcntl(pfd[0], F_SETFD, FD_CLOEXEC);
    fcntl(pfd[1], F_SETFD, FD_CLOEXEC);
    fcntl(lfd, F_SETFD, FD_CLOEXEC);
    /* SIGTERM stays blocked until the child has its own handler: the runner's handler
       (which stops the runner's servers) must never run in the child */
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigprocmask(SIG_BLOCK, &block, &old);
    pid = fork();
    if (pid < 0) {
        sigprocmask(SIG_SETMASK, &old, NULL);
        close(lfd); close(pfd[0]); close(pfd[1]);
        return -1;
    }
    if (pid == 0) {
        pid_t self, conns[FAKE__MAX_CONN];
        int nconn = 0, i;
        struct sigaction sa;
        setpgid(0, 0);
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = fake__on_term; /* no SA_RESTART: poll returns at once */
        sigemptyset(&sa.sa_mask);
        sigaction(SIGTERM, &sa, NULL);
        signal(SIGPIPE, SIG_IGN);
        signal(SIGINT, SIG_DFL);
        signal(SIGSEGV, SIG_DFL);
        signal(SIGABRT, SIG_DFL);
        signal(SIGBUS, SIG_DFL);
        signal(SIGALRM, SIG_DFL);
        signal(SIGCHLD, SIG_DFL);
        sigprocmask(SIG_SETMASK, &old, NULL);
        close(pfd[0]);
        self = getpid();
        while (!fake__stopping) {
            struct pollfd p;
            int r, cfd;
            pid_t k;
            p.fd = lfd;
            p.events = POLLIN;
            p.revents = 0;
            r = poll(&p, 1, 200);
            if (getppid() != parent) break; /* the test runner died: so do we */
            for (i = 0; i < nconn; i++) /* reap connections that ended */
                if (waitpid(conns[i], NULL, WNOHANG) == conns[i]) conns[i--] = conns[--nconn];
            if (r <= 0 || fake__stopping) continue;
            cfd = accept(lfd, NULL, NULL);
            if (cfd < 0) continue;
            k = fork();
            if (k == 0) {
                signal(SIGTERM, SIG_DFL);
                close(lfd);
                fake__serve(sc, cfd, pfd[1], self);
            }
            if (k > 0 && nconn < FAKE__MAX_CONN) conns[nconn++] = k;
            close(cfd);
        }
        for (i = 0; i < nconn; i++) kill(conns[i], SIGKILL);
        for (i = 0; i < nconn; i++) while (waitpid(conns[i], NULL, 0) < 0 && errno == EINTR) {}
        _exit(0);
    }
    sigprocmask(SIG_SETMASK, &old, NULL);
    setpgid(pid, pid); /* also here, so that fake_stop's group kill never misses */
    close(lfd);
    close(pfd[1]);
    f->pid = pid;
    f->port = ntohs(a.sin_port);
    f->events_fd = pfd[0];
    snprintf(f->url, sizeof f->url, "redis://127.0.0.1:%d", f->port);
    return 0;
}

FAKE_DEF int fake_start(fake_server *f, const char *bytes, size_t len, int flags) {
    fake_scenario sc;
    memset(&sc, 0, sizeof sc);
    sc.reply = bytes;
    sc.reply_len = len;
    sc.flags = flags;
    return fake_start_scenario(f, &sc);
}

FAKE_DEF int fake_start_endless(fake_server *f, const char *prefix, size_t prefix_len,
                                const char *repeat, size_t repeat_len, int flags) {
    fake_scenario sc;
    memset(&sc, 0, sizeof sc);
    sc.reply = prefix;
    sc.reply_len = prefix_len;
    sc.repeat = repeat;
    sc.repeat_len = repeat_len;
    sc.flags = flags;
    return fake_start_scenario(f, &sc);
}

FAKE_DEF void fake_poll(fake_server *f) {
    for (;;) {
        ssize_t n;
        size_t used = 0;
        if (f->events_fd < 0 || f->pend_len >= sizeof f->pend) return;
        n = read(f->events_fd, f->pend + f->pend_len, sizeof f->pend - f->pend_len);
        if (n <= 0) return;
        f->pend_len += (size_t)n;
        while (f->pend_len - used >= 2) {
            size_t len = ((size_t)f->pend[used] << 8) | f->pend[used + 1], room;
            if (f->pend_len - used < 2 + len) break;
            f->connections++;
            room = sizeof f->requests - 1 - f->requests_len;
            if (len > room) len = room;
            memcpy(f->requests + f->requests_len, f->pend + used + 2, len);
            f->requests_len += len;
            f->requests[f->requests_len] = '\0';
            used += 2 + (((size_t)f->pend[used] << 8) | f->pend[used + 1]);
        }
        memmove(f->pend, f->pend + used, f->pend_len - used);
        f->pend_len -= used;
    }
}

FAKE_DEF void fake_stop(fake_server *f) {
    if (f->pid > 0) {
        int i, st;
        pid_t w = 0;
        fake_poll(f);
        kill(f->pid, SIGTERM); /* it kills and reaps its connection processes */
        for (i = 0; i < 2000; i++) { /* up to 2 s */
            w = waitpid(f->pid, &st, WNOHANG);
            if (w == f->pid || (w < 0 && errno != EINTR)) break;
            usleep(1000);
        }
        if (w != f->pid) { /* last resort: the whole group */
            kill(-f->pid, SIGKILL);
            kill(f->pid, SIGKILL);
            while (waitpid(f->pid, NULL, 0) < 0 && errno == EINTR) {}
        }
        fake_poll(f);
        f->pid = 0;
    }
    if (f->events_fd >= 0) close(f->events_fd);
    f->events_fd = -1;
}
