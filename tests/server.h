/* server.h - a private redis-server for the live tests: started from a temp dir on a
   free port and a unix socket, stopped by its pid (never by name). */
#ifndef RSQ_TEST_SERVER_H
#define RSQ_TEST_SERVER_H
#include <sys/types.h>

typedef struct srv {
    pid_t pid;
    int port;
    char dir[256];
    char sock[300];
    char url[400];      /* redis://127.0.0.1:PORT */
    char unix_url[400]; /* unix:///dir/redis.sock */
    char extra[2048];   /* config lines, kept for restarts */
    char bin[512];      /* redis-server binary; empty: "redis-server" on PATH */
} srv;

/* Starts redis-server with `extra` config lines appended (may be NULL). 0 on success. */
int srv_start(srv *s, const char *extra);
/* The same on a given port (0: any free one). */
int srv_start_at(srv *s, int port, const char *extra);
/* The same with a given redis-server binary (another version, say), on any free port;
   restarts use it too. 0 on success, -1 if it is not executable or did not start. */
int srv_start_bin(srv *s, const char *bin, const char *extra);
/* A free port P whose cluster bus port P + 10000 is free as well. */
int srv_free_cluster_port(void);
/* Stops it with SIGTERM (SIGKILL after 5 s) and waits; `keep_dir` keeps the data. */
void srv_stop(srv *s, int keep_dir);
/* SIGKILLs the server (a crash), waits for it. */
void srv_kill(srv *s);
/* Starts the server again in the same dir and on the same port. 0 on success. */
int srv_restart(srv *s);
/* Runs a redis-cli command line against the server and returns its stdout
   (trailing newline removed) in out; returns the exit status. */
int srv_cli(const srv *s, char *out, size_t cap, const char *fmt, ...);
/* A free TCP port on 127.0.0.1. */
int srv_free_port(void);
/* Path of a binary on PATH, or NULL. */
const char *srv_which(const char *name);

/* The version of a redis-server binary (NULL or "": the one on PATH) as
   major*10000 + minor*100 + patch, read from `BIN --version` once per binary (Valkey's
   own version for Valkey); 0 when it cannot be told. The config that srv_start writes
   follows it: `bind 127.0.0.1 -::1` from 6.2 on, else ::1 only where it can be bound;
   a directive renamed in a later release is written under the name that server knows
   (busy-reply-threshold is lua-time-limit before 7.0). */
long srv_bin_version(const char *bin);
/* The version of the binary that runs (or ran) s, as above. */
long srv_version(const srv *s);
/* "5.0.14" for 50014, into buf (at least 16 bytes); returns buf. */
const char *srv_version_str(long v, char *buf, size_t cap);

/* The fault-injecting proxy (tests/proxy.c) in front of a server, driven through its
   control pipe (proxy --control: commands on its stdin, one answer line each on its
   stdout). Stopped by its pid; it also stops when the test process dies (its control
   input ends). */
typedef struct srv_proxy {
    pid_t pid;
    int port;           /* clients connect to 127.0.0.1:port */
    int ctl, out;       /* the proxy's stdin (commands) and stdout (answers) */
    char url[64];       /* redis://127.0.0.1:PORT */
    char answer[512];   /* the last answer line, without its newline */
} srv_proxy;

/* The proxy binary: $RSQ_PROXY_BIN, else build/proxy, when executable; else NULL. */
const char *srv_proxy_bin(void);
/* Starts the proxy on a free port in front of 127.0.0.1:target_port, with the extra
   options in `opts` (NULL-terminated; may be NULL), e.g. {"--delay-ms", "100", NULL};
   its stderr (one line per fault) is appended to `logpath` (NULL: discarded).
   0 on success (it listens), -1 on failure (reason on stderr). */
int srv_proxy_start(srv_proxy *p, int target_port, const char *logpath, const char *const *opts);
/* Sends one control command ("blackhole on", "delay 200", "reset", "idle 500",
   "status"...; see tests/proxy.c) and waits up to 5 s for its answer, kept in
   p->answer. 0 when it answered "ok ...", else -1. */
int srv_proxy_ctl(srv_proxy *p, const char *cmd);
/* Closes its control input, after which the proxy stops by itself: returns its exit
   status once it did within timeout_ms; else -1, and it is stopped as below. */
int srv_proxy_close_control(srv_proxy *p, int timeout_ms);
/* Stops it with SIGTERM (SIGKILL after 5 s) and waits. Returns its exit status (0 after
   a clean stop), or -1 when it was killed or had not started. */
int srv_proxy_stop(srv_proxy *p);

#endif
