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
} srv;

/* Starts redis-server with `extra` config lines appended (may be NULL). 0 on success. */
int srv_start(srv *s, const char *extra);
/* The same on a given port (0: any free one). */
int srv_start_at(srv *s, int port, const char *extra);
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

#endif
