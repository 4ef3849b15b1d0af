/* fake_server.h - a hostile RESP server for tests, in a child process of the test
   runner. It listens on a free 127.0.0.1 port and answers every connection with the
   scenario's bytes, whatever the client sent; it can trickle them, close after them,
   stay silent, or stream a pattern forever. Stopped by its pid (fake_stop).

   Linkage: fake_server.c may be compiled on its own (extern functions) or included
   into one test file after `#define FAKE_SERVER_STATIC` (static functions). */
#ifndef RSQ_TEST_FAKE_SERVER_H
#define RSQ_TEST_FAKE_SERVER_H
#include <stddef.h>
#include <sys/types.h>

#ifndef FAKE_DEF
#ifdef FAKE_SERVER_STATIC
#if defined(__GNUC__) || defined(__clang__)
#define FAKE_DEF static __attribute__((unused))
#else
#define FAKE_DEF static
#endif
#else
#define FAKE_DEF extern
#endif
#endif

/* Flags of a scenario (combine with |). Default: wait for the client's first bytes,
   send the reply in one go, then keep the connection open (reading and discarding)
   until the client closes it. */
#define FAKE_CLOSE 1    /* close the connection once the reply (or nothing) is sent     */
#define FAKE_TRICKLE 2  /* send in pieces of 1..7 bytes with a 1 ms pause between them  */
#define FAKE_SILENT 4   /* send nothing at all (the reply is ignored)                   */
#define FAKE_NO_WAIT 8  /* send at once on accept, without waiting for a request        */

typedef struct fake_scenario {
    const char *reply;   /* bytes sent first; may be NULL when reply_len is 0            */
    size_t reply_len;
    const char *repeat;  /* then, if repeat_len > 0, these bytes over and over until the
                            client goes away (an endless reply)                          */
    size_t repeat_len;
    int flags;           /* FAKE_*                                                       */
} fake_scenario;

typedef struct fake_server {
    pid_t pid;           /* the listening child; 0 when stopped                          */
    int port;
    char url[64];        /* redis://127.0.0.1:PORT                                       */
    int events_fd;       /* read end of the child's report pipe                          */
    int connections;     /* connections accepted so far (see fake_poll)                  */
    char requests[4096]; /* first bytes each connection sent, concatenated, NUL-ended    */
    size_t requests_len;
    unsigned char pend[4100]; /* partial record from the pipe                            */
    size_t pend_len;
} fake_server;

/* Starts a server that answers every connection with bytes[0..len) and `flags`.
   Returns 0, or -1 (nothing left running). */
FAKE_DEF int fake_start(fake_server *f, const char *bytes, size_t len, int flags);
/* The same, with `repeat` sent over and over after `prefix` (an endless reply). */
FAKE_DEF int fake_start_endless(fake_server *f, const char *prefix, size_t prefix_len,
                                const char *repeat, size_t repeat_len, int flags);
FAKE_DEF int fake_start_scenario(fake_server *f, const fake_scenario *sc);
/* Collects what the child reported so far: connection count and request bytes. */
FAKE_DEF void fake_poll(fake_server *f);
/* Kills the child (and the per-connection processes it forked) and waits for it. */
FAKE_DEF void fake_stop(fake_server *f);

#endif
