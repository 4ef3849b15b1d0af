/* bench.h - what the bench driver (bench.c) and its peer contenders share.
   The driver measures rsq itself; each peer file measures one other client doing
   the same work against the same server, so that the table compares like with like. */
#ifndef RSQ_BENCH_H
#define RSQ_BENCH_H
#include <stddef.h>
#include <stdint.h>

#define BENCH_PAYLOAD 64 /* bytes of every message body */

/* Where the server listens: a unix socket path, else 127.0.0.1:port. */
typedef struct bench_ep {
    const char *sock; /* NULL: TCP */
    int port;
} bench_ep;

/* Monotonic clock in nanoseconds (CLOCK_MONOTONIC, the stamp in latency payloads). */
uint64_t bench_now_ns(void);
/* Fills buf[0..BENCH_PAYLOAD) with a payload carrying stamp_ns as 16 hex digits. */
void bench_stamp(char *buf, uint64_t stamp_ns);
/* The stamp of a payload made by bench_stamp (0 when malformed). */
uint64_t bench_unstamp(const char *buf, size_t len);
/* Paced producer: calls pub(ctx, payload) n times, one message every period_ns
   (absolute schedule; a late tick is not made up with a burst). 0, or -1 on error. */
int bench_paced(int (*pub)(void *ctx, const char *payload), void *ctx, long n, long period_ns);
/* Resident set size of this process in KiB, from /proc/self/statm (0 if unknown). */
long bench_rss_kib(void);

/* Process-wide heap call counter (malloc_count.c): every malloc, calloc and realloc
   call while enabled. bench_mc_available() is 0 where it cannot be built. */
int bench_mc_available(void);
void bench_mc_enable(int on);
unsigned long long bench_mc_calls(void);

/* ---- the hiredis peer (peer_hiredis.c); present when BENCH_HIREDIS is defined ---- */
/* "hiredis 0.14.1": the version compiled against. */
const char *hr_version(void);
/* Each returns elapsed seconds (> 0), or a negative value on error (reason on stderr). */
/* n XADDs of `payload` to key, appended `depth` at a time, then their replies read. */
double hr_publish(const bench_ep *ep, const char *key, const char *payload, int depth, long n);
/* Reads n entries of key through group (created at 0 by the caller) with XREADGROUP
   COUNT count; acks with one XACK per message (batch_ack 0) or one multi-ID XACK per
   batch (batch_ack 1), sent in the same write as the next read. */
double hr_consume(const bench_ep *ep, const char *key, const char *group, long n, int count, int batch_ack);
/* Publisher for bench_paced: open, one publish, close. */
void *hr_pub_open(const bench_ep *ep, const char *key);
int hr_pub_one(void *ctx, const char *payload);
void hr_pub_close(void *ctx);
/* Blocked consumer: reads n messages through group with XREADGROUP BLOCK (COUNT
   count, batch XACK with the next read), lat_ns[i] = receive time - stamp. 0 or -1. */
int hr_latency(const bench_ep *ep, const char *key, const char *group, long n, int count, uint64_t *lat_ns);
/* Steady-state heap calls: `warm` messages first, then the rest of `total` counted
   (publish at `depth`, or consume with COUNT count and batch XACK). Returns the calls
   and sets *counted to the messages they cover, or returns -1. For consume, rss_warm
   and rss_end (KiB) are taken after the warm-up and at the end. */
long long hr_alloc_publish(const bench_ep *ep, const char *key, int depth, long warm, long total, long *counted);
long long hr_alloc_consume(const bench_ep *ep, const char *key, const char *group, int count, long warm, long total,
                           long *counted, long *rss_warm, long *rss_end);

#endif
