/* fuzz_reader.c - a fuzz target (LLVMFuzzerTestOneInput) for the RESP reader.

   Input: 4 control bytes, then the byte stream the "server" sends.
     c[0]  max_depth = 1 + (c[0] & 15)            max_bulk  = 8 << (c[0] >> 4)
     c[1]  max_elements = 2 << (c[1] & 15)        max_reply = 64 << (c[1] >> 4)
     c[2]  0: the stream in one piece; else pieces of 1..c[2] bytes, sizes drawn
           from a generator seeded by c[2] and c[3]
     c[3]  bit 0: receive through rsq_reader_space/rsq_reader_commit, not _feed
           bit 1: after an error, rsq_reader_reset and go on with the rest
   After every piece the reader is drained; every reply tree is walked and every byte
   of every string read, with its shape checked. Then the same stream is fed a byte at
   a time and must give the same replies and, like the first pass, end in an error or
   not ("any split of the byte stream gives the same replies"). A broken invariant
   aborts. Build: clang -g -O1 -fsanitize=fuzzer,address,undefined (make fuzz). */
#define RSQ_IMPLEMENTATION
#include "../../rsq.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FZ_CHECK(x) do { if (!(x)) { fprintf(stderr, "fuzz_reader: check failed: %s (line %d)\n", #x, __LINE__); abort(); } } while (0)

static uint64_t fz_mix(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = (const unsigned char *)p;
    size_t i;
    for (i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ULL; /* FNV-1a */
    return h;
}

/* Walks a reply tree: reads every byte, checks every shape, folds it into a digest. */
static uint64_t fz_walk(const rsq_reply *r, int depth, uint64_t h) {
    size_t i;
    int t = (int)r->type;
    FZ_CHECK(depth <= RSQ_MAX_DEPTH_CAP);
    h = fz_mix(h, &t, sizeof t);
    h = fz_mix(h, &r->len, sizeof r->len);
    switch (r->type) {
    case RSQ_REPLY_ARRAY: case RSQ_REPLY_MAP: case RSQ_REPLY_SET: case RSQ_REPLY_PUSH:
        FZ_CHECK(r->str == NULL);
        FZ_CHECK(r->len == 0 || r->element != NULL);
        if (r->type == RSQ_REPLY_MAP) FZ_CHECK(r->len % 2 == 0);
        for (i = 0; i < r->len; i++) h = fz_walk(&r->element[i], depth + 1, h);
        break;
    case RSQ_REPLY_STRING: case RSQ_REPLY_STATUS: case RSQ_REPLY_ERROR: case RSQ_REPLY_DOUBLE:
    case RSQ_REPLY_BIGNUM: case RSQ_REPLY_VERBATIM:
        FZ_CHECK(r->str != NULL);
        FZ_CHECK(r->element == NULL);
        h = fz_mix(h, r->str, r->len);
        FZ_CHECK(r->str[r->len] == '\0');
        if (r->type == RSQ_REPLY_VERBATIM) {
            FZ_CHECK(r->str[-1] == ':');
            h = fz_mix(h, r->str - 4, 3);
        }
        if (r->type == RSQ_REPLY_DOUBLE) {
            double d = r->dbl;
            if (d == d) h = fz_mix(h, &d, sizeof d); /* NaN payloads may differ: skip */
        }
        break;
    case RSQ_REPLY_INTEGER:
        h = fz_mix(h, &r->integer, sizeof r->integer);
        break;
    case RSQ_REPLY_BOOL:
        FZ_CHECK(r->integer == 0 || r->integer == 1);
        h = fz_mix(h, &r->integer, sizeof r->integer);
        break;
    case RSQ_REPLY_NIL:
        FZ_CHECK(r->str == NULL && r->element == NULL && r->len == 0);
        break;
    default:
        FZ_CHECK(!"unknown reply type");
    }
    /* the helpers must cope with any reply */
    {
        long long v;
        (void)rsq_reply_int(r, &v);
        (void)rsq_reply_is(r, "OK");
        (void)rsq_reply_get(r, "payload");
    }
    return h;
}

typedef struct fz_result {
    uint64_t digest;  /* replies up to the first error */
    size_t replies;
    int failed;       /* the first error seen, or 0 */
} fz_result;

/* Drains the reader. Returns 0, or the error (sticky: checked). */
static rsq_result fz_drain(rsq_reader *rd, fz_result *res, int counting) {
    for (;;) {
        const rsq_reply *r;
        rsq_result rc = rsq_reader_next(rd, &r);
        if (rc == RSQ_EMPTY) { FZ_CHECK(r == NULL); return RSQ_OK; }
        if (rc != RSQ_OK) {
            const rsq_reply *again;
            FZ_CHECK(r == NULL);
            FZ_CHECK(rc == RSQ_ERR_PROTOCOL || rc == RSQ_ERR_LIMIT || rc == RSQ_ERR_NOMEM);
            FZ_CHECK(rsq_reader_errstr(rd)[0] != '\0');
            FZ_CHECK(rsq_reader_next(rd, &again) == rc && again == NULL); /* sticky */
            return rc;
        }
        FZ_CHECK(r != NULL);
        if (counting) {
            res->digest = fz_walk(r, 0, res->digest);
            res->replies++;
        } else {
            (void)fz_walk(r, 0, 0);
        }
    }
}

/* Feeds data[0..n) in pieces (piece_max 0: one piece; 1: byte at a time). */
static fz_result fz_run(const uint8_t *data, size_t n, const rsq_limits *lim, unsigned piece_max, uint32_t seed,
                        int zero_copy, int go_on) {
    rsq_reader rd;
    fz_result res;
    size_t off = 0;
    memset(&res, 0, sizeof res);
    res.digest = 0xcbf29ce484222325ULL;
    FZ_CHECK(rsq_reader_init(&rd, lim, NULL) == RSQ_OK);
    while (off < n) {
        size_t k = n - off;
        rsq_result rc;
        if (piece_max) {
            seed = seed * 1103515245u + 12345u;
            k = 1 + (seed >> 16) % piece_max;
            if (k > n - off) k = n - off;
        }
        if (zero_copy) {
            char *buf;
            size_t avail;
            rc = rsq_reader_space(&rd, k, &buf, &avail);
            if (rc == RSQ_OK) {
                FZ_CHECK(avail >= k);
                memcpy(buf, data + off, k);
                rsq_reader_commit(&rd, k);
            }
        } else {
            rc = rsq_reader_feed(&rd, data + off, k);
        }
        off += k;
        if (rc == RSQ_OK) rc = fz_drain(&rd, &res, !res.failed);
        else FZ_CHECK(rc == RSQ_ERR_PROTOCOL || rc == RSQ_ERR_LIMIT || rc == RSQ_ERR_NOMEM);
        if (rc != RSQ_OK) {
            if (!res.failed) res.failed = (int)rc;
            if (!go_on) break;
            rsq_reader_reset(&rd);
            FZ_CHECK(rsq_reader_buffered(&rd) == 0 && rsq_reader_errstr(&rd)[0] == '\0');
        }
        FZ_CHECK(rsq_reader_buffered(&rd) <= n);
    }
    rsq_reader_free(&rd);
    rsq_reader_free(&rd); /* twice is safe */
    return res;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    rsq_limits lim;
    fz_result a, b;
    unsigned piece_max;
    uint32_t seed;
    int zero_copy, go_on;
    if (size < 4) return 0;
    memset(&lim, 0, sizeof lim);
    lim.max_depth = 1 + (data[0] & 15);
    lim.max_bulk = (size_t)8 << (data[0] >> 4);
    lim.max_elements = (size_t)2 << (data[1] & 15);
    lim.max_reply = (size_t)64 << (data[1] >> 4);
    piece_max = data[2];
    seed = ((uint32_t)data[2] << 8) | data[3];
    zero_copy = data[3] & 1;
    go_on = (data[3] >> 1) & 1;
    a = fz_run(data + 4, size - 4, &lim, piece_max, seed, zero_copy, go_on);
    if (size - 4 <= 8192) {
        b = fz_run(data + 4, size - 4, &lim, 1, 0, 0, 0);
        if (a.replies != b.replies || a.digest != b.digest || (a.failed != 0) != (b.failed != 0)) {
            fprintf(stderr, "fuzz_reader: split-dependent result: %zu replies (error %d) in pieces, "
                            "%zu (error %d) a byte at a time\n", a.replies, a.failed, b.replies, b.failed);
            abort();
        }
    }
    return 0;
}
