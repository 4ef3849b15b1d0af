/* test_codec.c - offline tests of the RESP reader and encoder: every RESP2/RESP3 type,
   any split of the input, every limit, malformed input, no read past the input. */
#define _DEFAULT_SOURCE 1
#include "t.h"
#include "../rsq.h"
#include <math.h>
#include <sys/mman.h>
#include <unistd.h>

/* Canonical text of a reply tree, for comparisons. */
static void dump(const rsq_reply *r, char *out, size_t cap, size_t *w) {
    size_t i;
#define PUT(...) do { int n_ = snprintf(out + *w, cap - *w, __VA_ARGS__); if (n_ > 0) *w += (size_t)n_ < cap - *w ? (size_t)n_ : cap - *w - 1; } while (0)
    switch (r->type) {
    case RSQ_REPLY_STRING: PUT("s%zu:", r->len); for (i = 0; i < r->len; i++) PUT("%02x", (unsigned char)r->str[i]); break;
    case RSQ_REPLY_STATUS: PUT("+%.*s", (int)r->len, r->str); break;
    case RSQ_REPLY_ERROR: PUT("-%.*s", (int)r->len, r->str); break;
    case RSQ_REPLY_INTEGER: PUT(":%lld", r->integer); break;
    case RSQ_REPLY_NIL: PUT("nil"); break;
    case RSQ_REPLY_DOUBLE: PUT(",%g", r->dbl); break;
    case RSQ_REPLY_BOOL: PUT("#%lld", r->integer); break;
    case RSQ_REPLY_BIGNUM: PUT("(%.*s", (int)r->len, r->str); break;
    case RSQ_REPLY_VERBATIM: PUT("=%.3s:%.*s", r->str - 4, (int)r->len, r->str); break;
    default:
        PUT("%c%zu[", r->type == RSQ_REPLY_ARRAY ? '*' : r->type == RSQ_REPLY_MAP ? '%' : r->type == RSQ_REPLY_SET ? '~' : '>', r->len);
        for (i = 0; i < r->len; i++) { dump(&r->element[i], out, cap, w); PUT(i + 1 < r->len ? "," : ""); }
        PUT("]");
    }
#undef PUT
}

/* Feeds `in` in pieces of `step` bytes (0: all at once) and dumps every reply,
   separated by '|'. Returns the last result (RSQ_EMPTY at a clean end). */
static rsq_result feed_all(const char *in, size_t len, size_t step, const rsq_limits *lim, char *out, size_t cap) {
    rsq_reader rd;
    size_t off = 0, w = 0;
    rsq_result rc = RSQ_EMPTY;
    const rsq_reply *r;
    out[0] = '\0';
    rsq_reader_init(&rd, lim, NULL);
    while (off < len) {
        size_t n = step ? (len - off < step ? len - off : step) : len;
        rc = rsq_reader_feed(&rd, in + off, n);
        off += n;
        if (rc != RSQ_OK) break;
        while ((rc = rsq_reader_next(&rd, &r)) == RSQ_OK) {
            dump(r, out, cap, &w);
            w += (size_t)snprintf(out + w, cap - w, "|");
        }
        if (rc != RSQ_EMPTY) break;
    }
    rsq_reader_free(&rd);
    return rc;
}

static rsq_result one(const char *in, char *out, size_t cap) { return feed_all(in, strlen(in), 0, NULL, out, cap); }

static void test_codec_resp2_types(void) {
    char out[1024];
    CHECK_RC(one("+OK\r\n", out, sizeof out), RSQ_EMPTY); CHECK_STR(out, "+OK|");
    CHECK_RC(one("-ERR bad thing\r\n", out, sizeof out), RSQ_EMPTY); CHECK_STR(out, "-ERR bad thing|");
    CHECK_RC(one(":0\r\n:-42\r\n:9223372036854775807\r\n:-9223372036854775808\r\n", out, sizeof out), RSQ_EMPTY);
    CHECK_STR(out, ":0|:-42|:9223372036854775807|:-9223372036854775808|");
    CHECK_RC(one("$5\r\nhello\r\n$0\r\n\r\n$-1\r\n", out, sizeof out), RSQ_EMPTY);
    CHECK_STR(out, "s5:68656c6c6f|s0:|nil|");
    CHECK_RC(one("*-1\r\n*0\r\n*2\r\n$1\r\na\r\n*1\r\n:1\r\n", out, sizeof out), RSQ_EMPTY);
    CHECK_STR(out, "nil|*0[]|*2[s1:61,*1[:1]]|");
}

static void test_codec_resp3_types(void) {
    char out[1024];
    CHECK_RC(one("%2\r\n+a\r\n:1\r\n+b\r\n_\r\n", out, sizeof out), RSQ_EMPTY); CHECK_STR(out, "%4[+a,:1,+b,nil]|");
    CHECK_RC(one("~2\r\n#t\r\n#f\r\n", out, sizeof out), RSQ_EMPTY); CHECK_STR(out, "~2[#1,#0]|");
    CHECK_RC(one(">2\r\n+message\r\n$2\r\nhi\r\n", out, sizeof out), RSQ_EMPTY); CHECK_STR(out, ">2[+message,s2:6869]|");
    CHECK_RC(one(",3.25\r\n,-1.5e3\r\n,inf\r\n,-inf\r\n,10\r\n", out, sizeof out), RSQ_EMPTY);
    CHECK_STR(out, ",3.25|,-1500|,inf|,-inf|,10|");
    CHECK_RC(one("(3492890328409238509324850943850943825024385\r\n", out, sizeof out), RSQ_EMPTY);
    CHECK_STR(out, "(3492890328409238509324850943850943825024385|");
    CHECK_RC(one("=15\r\ntxt:Some string\r\n", out, sizeof out), RSQ_EMPTY); CHECK_STR(out, "=txt:Some string|");
    CHECK_RC(one("!21\r\nSYNTAX invalid syntax\r\n", out, sizeof out), RSQ_EMPTY); CHECK_STR(out, "-SYNTAX invalid syntax|");
    /* attributes are skipped, at top level and nested, including nested aggregates */
    CHECK_RC(one("|1\r\n+key-popularity\r\n%1\r\n$1\r\na\r\n,0.19\r\n:7\r\n", out, sizeof out), RSQ_EMPTY);
    CHECK_STR(out, ":7|");
    CHECK_RC(one("*2\r\n|1\r\n+k\r\n*2\r\n:1\r\n:2\r\n:10\r\n:20\r\n", out, sizeof out), RSQ_EMPTY);
    CHECK_STR(out, "*2[:10,:20]|");
    CHECK_RC(one("|0\r\n+x\r\n", out, sizeof out), RSQ_EMPTY); CHECK_STR(out, "+x|");
    {   /* nan */
        rsq_reader rd; const rsq_reply *r;
        rsq_reader_init(&rd, NULL, NULL);
        rsq_reader_feed(&rd, ",nan\r\n", 6);
        CHECK_RC(rsq_reader_next(&rd, &r), RSQ_OK);
        CHECK(r && r->type == RSQ_REPLY_DOUBLE && isnan(r->dbl));
        rsq_reader_free(&rd);
    }
}

static void test_codec_strings_nul_terminated_and_binary(void) {
    rsq_reader rd;
    const rsq_reply *r;
    const char in[] = "$6\r\na\0b\r\nc\r\n";
    rsq_reader_init(&rd, NULL, NULL);
    CHECK_RC(rsq_reader_feed(&rd, in, sizeof in - 1), RSQ_OK);
    CHECK_RC(rsq_reader_next(&rd, &r), RSQ_OK);
    REQUIRE(r != NULL);
    CHECK_EQ_INT(r->len, 6);
    CHECK(memcmp(r->str, "a\0b\r\nc", 6) == 0);
    CHECK(r->str[6] == '\0');
    CHECK_RC(rsq_reader_next(&rd, &r), RSQ_EMPTY);
    CHECK(r == NULL);
    rsq_reader_free(&rd);
}

/* A stream of many replies gives the same result for every split size. */
static const char stream_in[] =
    "+OK\r\n-ERR x\r\n:12345\r\n$12\r\nhello\r\nworld\r\n$-1\r\n*3\r\n$1\r\na\r\n*2\r\n:1\r\n:2\r\n%1\r\n+k\r\n+v\r\n"
    "%2\r\n+first\r\n*1\r\n$3\r\n1-0\r\n+second\r\n~1\r\n#t\r\n>3\r\n+pubsub\r\n+ch\r\n$2\r\nhi\r\n,1.5\r\n(123\r\n"
    "=8\r\nmkd:# hi\r\n!3\r\nBAD\r\n_\r\n|1\r\n+a\r\n+b\r\n*1\r\n*1\r\n*1\r\n*0\r\n";

static void test_codec_any_split_same_result(void) {
    char whole[4096], part[4096];
    size_t step;
    CHECK_RC(feed_all(stream_in, sizeof stream_in - 1, 0, NULL, whole, sizeof whole), RSQ_EMPTY);
    CHECK(strlen(whole) > 100);
    for (step = 1; step <= 40; step++) {
        rsq_result rc = feed_all(stream_in, sizeof stream_in - 1, step, NULL, part, sizeof part);
        CHECK_RC(rc, RSQ_EMPTY);
        if (strcmp(whole, part)) { CHECK_STR(part, whole); break; }
    }
}

/* Random splits through rsq_reader_space/commit, the path the client uses. */
static void test_codec_random_splits_zero_copy(void) {
    char whole[4096], got[4096];
    unsigned seed = 12345;
    int round;
    feed_all(stream_in, sizeof stream_in - 1, 0, NULL, whole, sizeof whole);
    for (round = 0; round < 300; round++) {
        rsq_reader rd;
        const rsq_reply *r;
        size_t off = 0, w = 0, len = sizeof stream_in - 1;
        rsq_result rc = RSQ_OK;
        got[0] = '\0';
        rsq_reader_init(&rd, NULL, NULL);
        while (off < len) {
            char *buf;
            size_t avail, n;
            seed = seed * 1103515245u + 12345u;
            n = 1 + (seed >> 16) % 23;
            if (n > len - off) n = len - off;
            CHECK_RC(rsq_reader_space(&rd, n, &buf, &avail), RSQ_OK);
            memcpy(buf, stream_in + off, n);
            rsq_reader_commit(&rd, n);
            off += n;
            while ((rc = rsq_reader_next(&rd, &r)) == RSQ_OK) {
                dump(r, got, sizeof got, &w);
                w += (size_t)snprintf(got + w, sizeof got - w, "|");
            }
        }
        CHECK_RC(rc, RSQ_EMPTY);
        rsq_reader_free(&rd);
        if (strcmp(whole, got)) { CHECK_STR(got, whole); break; }
    }
}

static rsq_result first_result(const char *in, size_t len, const rsq_limits *lim) {
    char out[256];
    return feed_all(in, len, 0, lim, out, sizeof out);
}

static void test_codec_limits(void) {
    rsq_limits lim;
    memset(&lim, 0, sizeof lim);
    lim.max_bulk = 10;
    CHECK_RC(first_result("$10\r\n0123456789\r\n", 17, &lim), RSQ_EMPTY);
    /* rejected on the header alone, before the body is buffered */
    CHECK_RC(first_result("$11\r\n", 5, &lim), RSQ_ERR_LIMIT);
    CHECK_RC(first_result("$99999999999999\r\n", 17, NULL), RSQ_ERR_LIMIT);
    CHECK_RC(first_result("+0123456789A\r\n", 14, &lim), RSQ_ERR_LIMIT);
    memset(&lim, 0, sizeof lim);
    lim.max_elements = 3;
    CHECK_RC(first_result("*2\r\n:1\r\n:2\r\n", 12, &lim), RSQ_EMPTY);
    CHECK_RC(first_result("*4\r\n", 4, &lim), RSQ_ERR_LIMIT);
    CHECK_RC(first_result("*2\r\n*2\r\n", 8, &lim), RSQ_ERR_LIMIT); /* 1 + 2 + 2 elements in all */
    CHECK_RC(first_result("%2\r\n", 4, &lim), RSQ_ERR_LIMIT);
    CHECK_RC(first_result("*999999999999\r\n", 15, NULL), RSQ_ERR_LIMIT);
    memset(&lim, 0, sizeof lim);
    lim.max_depth = 2;
    CHECK_RC(first_result("*1\r\n*1\r\n:1\r\n", 12, &lim), RSQ_EMPTY);
    CHECK_RC(first_result("*1\r\n*1\r\n*1\r\n", 12, &lim), RSQ_ERR_LIMIT);
    memset(&lim, 0, sizeof lim);
    lim.max_reply = 64;
    lim.max_bulk = 1000;
    CHECK_RC(first_result("$100\r\n", 6, &lim), RSQ_ERR_LIMIT); /* bulk alone is over max_reply */
    {
        char big[200];
        size_t n = 0;
        int i;
        n += (size_t)snprintf(big + n, sizeof big - n, "*30\r\n");
        for (i = 0; i < 30; i++) n += (size_t)snprintf(big + n, sizeof big - n, ":%d\r\n", i);
        CHECK_RC(first_result(big, n, &lim), RSQ_ERR_LIMIT);
    }
    /* a deep nest with the default depth limit (16) */
    {
        char deep[400];
        size_t n = 0;
        int i;
        for (i = 0; i < 40; i++) n += (size_t)snprintf(deep + n, sizeof deep - n, "*1\r\n");
        CHECK_RC(first_result(deep, n, NULL), RSQ_ERR_LIMIT);
    }
}

/* Counting allocator: the reader's memory stays bounded by its limits. */
static size_t peak_bytes, cur_bytes;
static void *cnt_malloc(size_t n, void *u) { size_t *p = (size_t *)malloc(n + 16); (void)u; if (!p) return NULL; *p = n; cur_bytes += n; if (cur_bytes > peak_bytes) peak_bytes = cur_bytes; return (char *)p + 16; }
static void cnt_free(void *q, void *u) { (void)u; if (q) { size_t *p = (size_t *)((char *)q - 16); cur_bytes -= *p; free(p); } }
static void *cnt_realloc(void *q, size_t n, void *u) {
    size_t *p;
    if (!q) return cnt_malloc(n, u);
    p = (size_t *)((char *)q - 16);
    cur_bytes -= *p;
    p = (size_t *)realloc(p, n + 16);
    if (!p) return NULL;
    *p = n; cur_bytes += n; if (cur_bytes > peak_bytes) peak_bytes = cur_bytes;
    return (char *)p + 16;
}

static void test_codec_memory_bounded_by_limits(void) {
    rsq_allocator a = { cnt_malloc, cnt_realloc, cnt_free, NULL };
    rsq_limits lim;
    rsq_reader rd;
    const rsq_reply *r;
    char chunk[4096];
    int i;
    rsq_result rc = RSQ_OK;
    memset(&lim, 0, sizeof lim);
    lim.max_reply = 100000;
    lim.max_bulk = 1 << 30;
    peak_bytes = cur_bytes = 0;
    rsq_reader_init(&rd, &lim, &a);
    /* a server announcing a 1 GiB bulk then streaming bytes */
    CHECK_RC(rsq_reader_feed(&rd, "$1000000000\r\n", 13), RSQ_OK);
    memset(chunk, 'x', sizeof chunk);
    for (i = 0; i < 1000 && rc == RSQ_OK; i++) {
        rc = rsq_reader_feed(&rd, chunk, sizeof chunk);
        if (rc == RSQ_OK) rc = rsq_reader_next(&rd, &r) == RSQ_EMPTY ? RSQ_OK : rd.err;
    }
    CHECK_RC(rc, RSQ_ERR_LIMIT);
    CHECK(peak_bytes <= lim.max_reply + 3 * 16384);
    rsq_reader_free(&rd);
    CHECK_EQ_INT(cur_bytes, 0);
}

static void test_codec_malformed(void) {
    static const char *bad[] = {
        "?\r\n", ":12a\r\n", ":\r\n", "$abc\r\n", "$-2\r\n", "$3\r\nabcXY", "+OK\rX", "#x\r\n", "#\r\n",
        "_x\r\n", "*-2\r\n", "%-1\r\n", "~-1\r\n", ":99999999999999999999\r\n", "\r\n", ",1.2.x\r\n",
        "(12a\r\n", "(\r\n", "=3\r\nabc\r\n", "=5\r\ntxtXa\r\n", "!-1\r\n", "$3\r\nabc\n\n", "*1\r\n?\r\n",
    };
    size_t i;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rsq_result rc = first_result(bad[i], strlen(bad[i]), NULL);
        if (rc != RSQ_ERR_PROTOCOL) { fprintf(stderr, "    input #%zu\n", i); CHECK_RC(rc, RSQ_ERR_PROTOCOL); }
    }
    {   /* a line with no CR, longer than RSQ_MAX_LINE */
        size_t n = 70000;
        char *s = (char *)malloc(n);
        memset(s, 'a', n);
        s[0] = '+';
        CHECK_RC(first_result(s, n, NULL), RSQ_ERR_PROTOCOL);
        free(s);
    }
}

static void test_codec_sticky_error_and_reset(void) {
    rsq_reader rd;
    const rsq_reply *r;
    rsq_reader_init(&rd, NULL, NULL);
    rsq_reader_feed(&rd, "?bad\r\n", 6);
    CHECK_RC(rsq_reader_next(&rd, &r), RSQ_ERR_PROTOCOL);
    CHECK(strlen(rsq_reader_errstr(&rd)) > 0);
    CHECK_RC(rsq_reader_feed(&rd, "+OK\r\n", 5), RSQ_ERR_PROTOCOL);
    CHECK_RC(rsq_reader_next(&rd, &r), RSQ_ERR_PROTOCOL);
    rsq_reader_reset(&rd);
    CHECK_RC(rsq_reader_feed(&rd, "+OK\r\n", 5), RSQ_OK);
    CHECK_RC(rsq_reader_next(&rd, &r), RSQ_OK);
    CHECK(rsq_reply_is(r, "OK"));
    rsq_reader_free(&rd);
}

/* Guard-page allocator: each block ends at an inaccessible page, so any read past
   the bytes the reader holds crashes the test. */
static struct { char *user, *base; size_t total, n; } g_tab[16];
static void *g_malloc(size_t n, void *u) {
    size_t pg = (size_t)sysconf(_SC_PAGESIZE), total = ((n + pg - 1) / pg + 1) * pg;
    char *base = (char *)mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    int i;
    (void)u;
    if (base == MAP_FAILED) return NULL;
    mprotect(base + total - pg, pg, PROT_NONE);
    for (i = 0; i < 16; i++)
        if (!g_tab[i].user) {
            g_tab[i].user = base + total - pg - n; g_tab[i].base = base; g_tab[i].total = total; g_tab[i].n = n;
            return g_tab[i].user;
        }
    munmap(base, total);
    return NULL;
}
static int g_find(void *p) { int i; for (i = 0; i < 16; i++) if (g_tab[i].user == p) return i; return -1; }
static void g_free(void *p, void *u) {
    int i = g_find(p);
    (void)u;
    if (i < 0) return;
    munmap(g_tab[i].base, g_tab[i].total);
    g_tab[i].user = NULL;
}
static void *g_realloc(void *p, size_t n, void *u) {
    char *q = (char *)g_malloc(n, u);
    int i = p ? g_find(p) : -1;
    if (!q || i < 0) return q;
    memcpy(q, p, g_tab[i].n < n ? g_tab[i].n : n);
    g_free(p, u);
    return q;
}

static void test_codec_no_read_past_input_guard_page(void) {
    rsq_allocator a = { g_malloc, g_realloc, g_free, NULL };
    static const char *partial[] = { ":123", "+OK\r", "$5\r\nhel", "*2\r\n:1\r\n", "$5", "%1\r\n+a\r\n", ",1.5", "=8\r\ntxt:" };
    size_t i;
    for (i = 0; i < sizeof partial / sizeof partial[0]; i++) {
        rsq_reader rd;
        const rsq_reply *r;
        char *buf;
        size_t avail, n = strlen(partial[i]);
        rsq_reader_init(&rd, NULL, &a);
        /* fill the buffer to its very end so the input's last byte abuts the guard page */
        CHECK_RC(rsq_reader_space(&rd, 1, &buf, &avail), RSQ_OK);
        REQUIRE(avail >= n + 5);
        memset(buf, 0, avail);
        {
            size_t pad = avail - n, k = 0;
            /* pad with complete ":0\r\n" replies, then a "+" line of filler */
            while (pad - k > 8 + 4) { memcpy(buf + k, ":0\r\n", 4); k += 4; }
            buf[k] = '+';
            memset(buf + k + 1, 'z', pad - k - 3);
            memcpy(buf + pad - 2, "\r\n", 2);
            memcpy(buf + pad, partial[i], n);
        }
        rsq_reader_commit(&rd, avail);
        while (rsq_reader_next(&rd, &r) == RSQ_OK) {}
        CHECK_RC(rsq_reader_next(&rd, &r), RSQ_EMPTY);
        rsq_reader_free(&rd);
    }
}

static void test_codec_encoder_binary_safe(void) {
    const char *argv[3] = { "SET", "k\r\n", "a\0b" };
    size_t lens[3] = { 3, 3, 3 };
    char out[64];
    size_t n = rsq_encode_argv(out, sizeof out, 3, argv, lens);
    const char want[] = "*3\r\n$3\r\nSET\r\n$3\r\nk\r\n\r\n$3\r\na\0b\r\n";
    CHECK_EQ_INT(n, sizeof want - 1);
    CHECK(memcmp(out, want, n) == 0);
    CHECK_EQ_INT(rsq_encode_argv(out, 4, 3, argv, lens), sizeof want - 1); /* too small: size only */
    {
        const char *cs[2] = { "GET", "" };
        n = rsq_encode_argv(out, sizeof out, 2, cs, NULL);
        CHECK(n == 19 && memcmp(out, "*2\r\n$3\r\nGET\r\n$0\r\n\r\n", 19) == 0);
    }
}

static void test_codec_reply_helpers(void) {
    rsq_reader rd;
    const rsq_reply *r;
    long long v = 0;
    rsq_reader_init(&rd, NULL, NULL);
    {
        const char *in = "*4\r\n$4\r\nname\r\n$1\r\ng\r\n$7\r\npending\r\n:3\r\n";
        rsq_reader_feed(&rd, in, strlen(in));
    }
    CHECK_RC(rsq_reader_next(&rd, &r), RSQ_OK);
    CHECK(rsq_reply_is(rsq_reply_get(r, "name"), "g"));
    CHECK(rsq_reply_int(rsq_reply_get(r, "pending"), &v) && v == 3);
    CHECK(rsq_reply_get(r, "nope") == NULL);
    rsq_reader_feed(&rd, "%1\r\n+lag\r\n$2\r\n17\r\n", 18);
    CHECK_RC(rsq_reader_next(&rd, &r), RSQ_OK);
    CHECK(rsq_reply_int(rsq_reply_get(r, "lag"), &v) && v == 17);
    CHECK(rsq_reply_get(NULL, "x") == NULL);
    rsq_reader_free(&rd);
}

/* Mutated inputs never crash and always end in a clean result. */
static void test_codec_mutations_never_crash(void) {
    unsigned seed = 99;
    char buf[sizeof stream_in];
    int i, errors = 0;
    for (i = 0; i < 20000; i++) {
        char out[8192];
        size_t len = sizeof stream_in - 1, k, step;
        rsq_result rc;
        memcpy(buf, stream_in, len);
        for (k = 0; k < 3; k++) {
            seed = seed * 1103515245u + 12345u;
            buf[(seed >> 8) % len] = (char)(seed >> 20);
        }
        seed = seed * 1103515245u + 12345u;
        step = (seed >> 16) % 7;
        rc = feed_all(buf, len, step, NULL, out, sizeof out);
        CHECK(rc == RSQ_EMPTY || rc == RSQ_ERR_PROTOCOL || rc == RSQ_ERR_LIMIT);
        errors += rc != RSQ_EMPTY;
    }
    CHECK(errors > 1000);
}

/* Doubles: exact enough for long mantissas and huge exponents, never slow. */
static void test_codec_double_edges(void) {
    static const struct { const char *text; double want; } cases[] = {
        { ",1e-301\r\n", 1e-301 }, { ",1e308\r\n", 1e308 }, { ",2.5e-3\r\n", 2.5e-3 }, { ",-0.125\r\n", -0.125 },
        { ",123456789012345678901234567890\r\n", 1.2345678901234568e29 }, { ",1e99999\r\n", HUGE_VAL },
        { ",1e-99999\r\n", 0.0 }, { ",0.000000000000000000000000000001\r\n", 1e-30 },
    };
    char longm[200];
    size_t i;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rsq_reader rd;
        const rsq_reply *r;
        rsq_reader_init(&rd, NULL, NULL);
        rsq_reader_feed(&rd, cases[i].text, strlen(cases[i].text));
        CHECK_RC(rsq_reader_next(&rd, &r), RSQ_OK);
        if (r) {
            double d = r->dbl, w = cases[i].want;
            int ok = (w == 0.0 || isinf(w)) ? d == w : fabs(d - w) <= fabs(w) * 1e-15;
            if (!ok) { fprintf(stderr, "    %s parsed as %.17g\n", cases[i].text, d); CHECK(0); }
        }
        rsq_reader_free(&rd);
    }
    /* "1" followed by 100 zeros, times 1e-401: 1e-301 */
    memset(longm, 0, sizeof longm);
    longm[0] = ','; longm[1] = '1';
    memset(longm + 2, '0', 100);
    strcat(longm, "e-401\r\n");
    {
        rsq_reader rd;
        const rsq_reply *r;
        rsq_reader_init(&rd, NULL, NULL);
        rsq_reader_feed(&rd, longm, strlen(longm));
        CHECK_RC(rsq_reader_next(&rd, &r), RSQ_OK);
        CHECK(r && fabs(r->dbl - 1e-301) <= 1e-315);
        rsq_reader_free(&rd);
    }
}

static void test_codec_result_table(void) {
    CHECK_STR(rsq_result_str(RSQ_OK), "ok");
    CHECK_STR(rsq_result_name(RSQ_ERR_IO), "RSQ_ERR_IO");
    CHECK_STR(rsq_result_str((rsq_result)-77), "unknown result");
    CHECK(rsq_result_is_server_error(RSQ_ERR_WRONGTYPE));
    CHECK(!rsq_result_is_server_error(RSQ_ERR_IO));
    CHECK(!rsq_result_is_server_error(RSQ_OK));
    CHECK_STR(rsq_log_item_str(RSQ_LOGI_CONNECTED), "connected");
}

void suite_codec(void) {
    RUN(test_codec_resp2_types);
    RUN(test_codec_resp3_types);
    RUN(test_codec_strings_nul_terminated_and_binary);
    RUN(test_codec_any_split_same_result);
    RUN(test_codec_random_splits_zero_copy);
    RUN(test_codec_limits);
    RUN(test_codec_memory_bounded_by_limits);
    RUN(test_codec_malformed);
    RUN(test_codec_sticky_error_and_reset);
    RUN(test_codec_no_read_past_input_guard_page);
    RUN(test_codec_encoder_binary_safe);
    RUN(test_codec_reply_helpers);
    RUN(test_codec_mutations_never_crash);
    RUN(test_codec_double_edges);
    RUN(test_codec_result_table);
}
