/* peer_hiredis.c - the hiredis contender (Debian's libhiredis-dev), synchronous API:
   commands go out with redisAppendCommandArgv and replies come back with
   redisGetReply, pipelined exactly as deep as the rsq side of each measurement. */
#define _DEFAULT_SOURCE 1
#include "bench.h"
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HR_ID_MAX 48
#define HR_STR2(x) #x
#define HR_STR(x) HR_STR2(x)

const char *hr_version(void) {
    return "hiredis " HR_STR(HIREDIS_MAJOR) "." HR_STR(HIREDIS_MINOR) "." HR_STR(HIREDIS_PATCH);
}

static redisContext *hr_connect(const bench_ep *ep) {
    redisContext *c = ep->sock ? redisConnectUnix(ep->sock) : redisConnect("127.0.0.1", ep->port);
    if (!c || c->err) {
        fprintf(stderr, "hiredis: connect: %s\n", c ? c->errstr : "out of memory");
        if (c) redisFree(c);
        return NULL;
    }
    return c;
}

/* Reads one reply; -1 on a transport error or an error reply. */
static int hr_get(redisContext *c, redisReply **out) {
    void *r = NULL;
    *out = NULL;
    if (redisGetReply(c, &r) != REDIS_OK || !r) {
        fprintf(stderr, "hiredis: %s\n", c->errstr);
        return -1;
    }
    *out = (redisReply *)r;
    if ((*out)->type == REDIS_REPLY_ERROR) {
        fprintf(stderr, "hiredis: server error: %s\n", (*out)->str);
        freeReplyObject(r);
        *out = NULL;
        return -1;
    }
    return 0;
}

static int hr_drain(redisContext *c, int k) {
    redisReply *r;
    while (k-- > 0) {
        if (hr_get(c, &r) != 0) return -1;
        freeReplyObject(r);
    }
    return 0;
}

/* Appends `k` XADDs and reads their replies. */
static int hr_xadd_round(redisContext *c, const char **argv, const size_t *lens, int k) {
    int i;
    for (i = 0; i < k; i++)
        if (redisAppendCommandArgv(c, 5, argv, lens) != REDIS_OK) return -1;
    return hr_drain(c, k);
}

static void hr_xadd_argv(const char **argv, size_t *lens, const char *key, const char *payload) {
    argv[0] = "XADD"; lens[0] = 4;
    argv[1] = key; lens[1] = strlen(key);
    argv[2] = "*"; lens[2] = 1;
    argv[3] = "payload"; lens[3] = 7;
    argv[4] = payload; lens[4] = BENCH_PAYLOAD;
}

double hr_publish(const bench_ep *ep, const char *key, const char *payload, int depth, long n) {
    const char *argv[5];
    size_t lens[5];
    redisContext *c = hr_connect(ep);
    long done = 0;
    uint64_t t0;
    double dt;
    if (!c) return -1;
    hr_xadd_argv(argv, lens, key, payload);
    t0 = bench_now_ns();
    while (done < n) {
        int k = (int)(n - done < depth ? n - done : depth);
        if (hr_xadd_round(c, argv, lens, k) != 0) { redisFree(c); return -1; }
        done += k;
    }
    dt = (double)(bench_now_ns() - t0) / 1e9;
    redisFree(c);
    return dt;
}

/* ---- consuming: one loop for throughput, latency and allocation counting ---- */
typedef struct hr_cons {
    redisContext *c;
    const char *key, *group;
    int count, batch_ack, block_ms;
    char cnt[16], blk[16];
    char (*ids)[HR_ID_MAX]; /* acks owed: IDs copied out of the last batch */
    size_t id_len[1024];
    int nids;
    const char **argv;
    size_t *lens;
    unsigned long sink;
} hr_cons;

/* Sends the owed acks and the next XREADGROUP in one write, reads the ack replies,
   and returns the read's reply (NULL on error). */
static redisReply *hr_read_batch(hr_cons *h) {
    int i, argc = 0, acks = 0;
    redisReply *r;
    if (h->nids > 0 && h->batch_ack) {
        h->argv[0] = "XACK"; h->lens[0] = 4;
        h->argv[1] = h->key; h->lens[1] = strlen(h->key);
        h->argv[2] = h->group; h->lens[2] = strlen(h->group);
        for (i = 0; i < h->nids; i++) { h->argv[3 + i] = h->ids[i]; h->lens[3 + i] = h->id_len[i]; }
        if (redisAppendCommandArgv(h->c, 3 + h->nids, h->argv, h->lens) != REDIS_OK) return NULL;
        acks = 1;
    } else if (h->nids > 0) {
        for (i = 0; i < h->nids; i++) {
            const char *a[4];
            size_t l[4];
            a[0] = "XACK"; l[0] = 4;
            a[1] = h->key; l[1] = strlen(h->key);
            a[2] = h->group; l[2] = strlen(h->group);
            a[3] = h->ids[i]; l[3] = h->id_len[i];
            if (redisAppendCommandArgv(h->c, 4, a, l) != REDIS_OK) return NULL;
        }
        acks = h->nids;
    }
    h->nids = 0;
    h->argv[argc] = "XREADGROUP"; h->lens[argc++] = 10;
    h->argv[argc] = "GROUP"; h->lens[argc++] = 5;
    h->argv[argc] = h->group; h->lens[argc++] = strlen(h->group);
    h->argv[argc] = "bench"; h->lens[argc++] = 5;
    h->argv[argc] = "COUNT"; h->lens[argc++] = 5;
    h->argv[argc] = h->cnt; h->lens[argc++] = strlen(h->cnt);
    if (h->block_ms >= 0) {
        h->argv[argc] = "BLOCK"; h->lens[argc++] = 5;
        h->argv[argc] = h->blk; h->lens[argc++] = strlen(h->blk);
    }
    h->argv[argc] = "STREAMS"; h->lens[argc++] = 7;
    h->argv[argc] = h->key; h->lens[argc++] = strlen(h->key);
    h->argv[argc] = ">"; h->lens[argc++] = 1;
    if (redisAppendCommandArgv(h->c, argc, h->argv, h->lens) != REDIS_OK) return NULL;
    if (hr_drain(h->c, acks) != 0) return NULL;
    if (hr_get(h->c, &r) != 0) return NULL;
    return r;
}

/* Handles the entries of one XREADGROUP reply; returns how many, or -1. lat (may be
   NULL) receives receive time - stamp per entry, at most `room` of them. */
static long hr_handle(hr_cons *h, const redisReply *r, uint64_t *lat, long room) {
    size_t s, e;
    long got = 0;
    if (r->type == REDIS_REPLY_NIL) return 0;
    if (r->type != REDIS_REPLY_ARRAY) return -1;
    for (s = 0; s < r->elements; s++) {
        const redisReply *ents;
        if (r->element[s]->type != REDIS_REPLY_ARRAY || r->element[s]->elements != 2) return -1;
        ents = r->element[s]->element[1];
        for (e = 0; e < ents->elements; e++) {
            const redisReply *ent = ents->element[e], *f;
            size_t k;
            if (ent->type != REDIS_REPLY_ARRAY || ent->elements != 2 || ent->element[0]->len >= HR_ID_MAX) return -1;
            f = ent->element[1];
            for (k = 0; k + 1 < f->elements; k += 2) {
                const redisReply *name = f->element[k], *val = f->element[k + 1];
                if (name->len == 7 && !memcmp(name->str, "payload", 7)) {
                    if (lat && got < room) lat[got] = bench_now_ns() - bench_unstamp(val->str, val->len);
                    h->sink += (unsigned char)val->str[0] + val->len;
                    break;
                }
            }
            if (h->nids < 1024) {
                memcpy(h->ids[h->nids], ent->element[0]->str, ent->element[0]->len + 1);
                h->id_len[h->nids++] = ent->element[0]->len;
            }
            got++;
        }
    }
    return got;
}

static int hr_cons_open(hr_cons *h, const bench_ep *ep, const char *key, const char *group, int count,
                        int batch_ack, int block_ms) {
    memset(h, 0, sizeof *h);
    if (count < 1 || count > 1024) return -1;
    h->c = hr_connect(ep);
    if (!h->c) return -1;
    h->key = key;
    h->group = group;
    h->count = count;
    h->batch_ack = batch_ack;
    h->block_ms = block_ms;
    snprintf(h->cnt, sizeof h->cnt, "%d", count);
    snprintf(h->blk, sizeof h->blk, "%d", block_ms);
    h->ids = (char (*)[HR_ID_MAX])malloc((size_t)count * HR_ID_MAX);
    h->argv = (const char **)malloc(sizeof(char *) * (size_t)(count + 16));
    h->lens = (size_t *)malloc(sizeof(size_t) * (size_t)(count + 16));
    if (!h->ids || !h->argv || !h->lens) return -1;
    return 0;
}

/* Sends the last acks and closes. */
static int hr_cons_close(hr_cons *h) {
    int rc = 0;
    if (h->c && h->nids > 0) {
        int i;
        const char *a[4];
        size_t l[4];
        a[0] = "XACK"; l[0] = 4;
        a[1] = h->key; l[1] = strlen(h->key);
        a[2] = h->group; l[2] = strlen(h->group);
        for (i = 0; i < h->nids; i++) {
            a[3] = h->ids[i]; l[3] = h->id_len[i];
            if (redisAppendCommandArgv(h->c, 4, a, l) != REDIS_OK) rc = -1;
        }
        if (rc == 0 && hr_drain(h->c, h->nids) != 0) rc = -1;
    }
    if (h->c) redisFree(h->c);
    free(h->ids);
    free((void *)h->argv);
    free(h->lens);
    memset(h, 0, sizeof *h);
    return rc;
}

/* Consumes until `total` messages were handled. At `warm` messages (checked between
   batches) it calls the mark hook once. */
static int hr_cons_run(hr_cons *h, long total, uint64_t *lat, long warm, void (*mark)(void *, long), void *mark_ctx) {
    long got = 0;
    int marked = 0;
    while (got < total) {
        redisReply *r;
        long k;
        if (!marked && got >= warm) { marked = 1; if (mark) mark(mark_ctx, got); }
        r = hr_read_batch(h);
        if (!r) return -1;
        k = hr_handle(h, r, lat ? lat + got : NULL, total - got);
        freeReplyObject(r);
        if (k < 0) { fprintf(stderr, "hiredis: unexpected XREADGROUP reply\n"); return -1; }
        got += k;
    }
    return 0;
}

double hr_consume(const bench_ep *ep, const char *key, const char *group, long n, int count, int batch_ack) {
    hr_cons h;
    uint64_t t0;
    int rc;
    if (hr_cons_open(&h, ep, key, group, count, batch_ack, -1) != 0) { hr_cons_close(&h); return -1; }
    t0 = bench_now_ns();
    rc = hr_cons_run(&h, n, NULL, 0, NULL, NULL);
    if (hr_cons_close(&h) != 0) rc = -1;
    return rc == 0 ? (double)(bench_now_ns() - t0) / 1e9 : -1;
}

typedef struct hr_pub {
    redisContext *c;
    const char *argv[5];
    size_t lens[5];
} hr_pub;

void *hr_pub_open(const bench_ep *ep, const char *key) {
    hr_pub *p = (hr_pub *)calloc(1, sizeof *p);
    if (!p) return NULL;
    p->c = hr_connect(ep);
    if (!p->c) { free(p); return NULL; }
    hr_xadd_argv(p->argv, p->lens, key, "");
    return p;
}

int hr_pub_one(void *ctx, const char *payload) {
    hr_pub *p = (hr_pub *)ctx;
    p->argv[4] = payload;
    return hr_xadd_round(p->c, p->argv, p->lens, 1);
}

void hr_pub_close(void *ctx) {
    hr_pub *p = (hr_pub *)ctx;
    if (!p) return;
    redisFree(p->c);
    free(p);
}

int hr_latency(const bench_ep *ep, const char *key, const char *group, long n, int count, uint64_t *lat_ns) {
    hr_cons h;
    int rc;
    if (hr_cons_open(&h, ep, key, group, count, 1, 5000) != 0) { hr_cons_close(&h); return -1; }
    rc = hr_cons_run(&h, n, lat_ns, 0, NULL, NULL);
    if (hr_cons_close(&h) != 0) rc = -1;
    return rc;
}

long long hr_alloc_publish(const bench_ep *ep, const char *key, int depth, long warm, long total, long *counted) {
    const char *argv[5];
    size_t lens[5];
    char payload[BENCH_PAYLOAD];
    redisContext *c = hr_connect(ep);
    long done = 0;
    unsigned long long before = 0;
    int counting = 0;
    if (!c) return -1;
    memset(payload, 'x', sizeof payload);
    hr_xadd_argv(argv, lens, key, payload);
    bench_mc_enable(1);
    while (done < total) {
        int k = (int)(total - done < depth ? total - done : depth);
        if (done >= warm && !counting) { counting = 1; before = bench_mc_calls(); *counted = total - done; }
        if (hr_xadd_round(c, argv, lens, k) != 0) { bench_mc_enable(0); redisFree(c); return -1; }
        done += k;
    }
    bench_mc_enable(0);
    redisFree(c);
    return (long long)(bench_mc_calls() - before);
}

typedef struct hr_mark {
    unsigned long long calls;
    long at, rss;
} hr_mark;

static void hr_mark_fn(void *ctx, long got) {
    hr_mark *m = (hr_mark *)ctx;
    m->rss = bench_rss_kib(); /* first: reading statm allocates */
    m->calls = bench_mc_calls();
    m->at = got;
}

long long hr_alloc_consume(const bench_ep *ep, const char *key, const char *group, int count, long warm, long total,
                           long *counted, long *rss_warm, long *rss_end) {
    hr_cons h;
    hr_mark m;
    int rc;
    long long calls;
    memset(&m, 0, sizeof m);
    if (hr_cons_open(&h, ep, key, group, count, 1, -1) != 0) { hr_cons_close(&h); return -1; }
    bench_mc_enable(1);
    rc = hr_cons_run(&h, total, NULL, warm, hr_mark_fn, &m);
    bench_mc_enable(0);
    calls = (long long)(bench_mc_calls() - m.calls);
    *rss_end = bench_rss_kib();
    *rss_warm = m.rss;
    *counted = total - m.at;
    if (hr_cons_close(&h) != 0) rc = -1;
    return rc == 0 ? calls : -1;
}
