/* fuzz_url.c - a fuzz target (LLVMFuzzerTestOneInput) for rsq_url_parse.

   Input: 1 control byte (the size of the error buffer: 0, 1, 8 or 160, and whether it
   is NULL), then the URL text, copied to a heap block that ends right after its NUL so
   that any read past it is caught. Checks: every result is RSQ_OK or RSQ_ERR_URL with a
   terminated reason; on RSQ_OK every field is terminated and in range, and the URL
   rebuilt from the fields (percent-encoding user and password) parses to the same
   fields. rsq_client_init takes the same URL to the same verdict. */
#define RSQ_IMPLEMENTATION
#include "../../rsq.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FZ_CHECK(x) do { if (!(x)) { fprintf(stderr, "fuzz_url: check failed: %s (line %d)\n", #x, __LINE__); abort(); } } while (0)

static size_t fz_put(char *out, size_t w, size_t cap, const char *s, size_t n) {
    FZ_CHECK(w + n < cap);
    memcpy(out + w, s, n);
    out[w + n] = '\0';
    return w + n;
}

/* Percent-encodes every byte but letters and digits. */
static size_t fz_put_enc(char *out, size_t w, size_t cap, const char *s) {
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9')) {
            w = fz_put(out, w, cap, (const char *)&ch, 1);
        } else {
            char e[3];
            e[0] = '%';
            e[1] = hex[ch >> 4];
            e[2] = hex[ch & 15];
            w = fz_put(out, w, cap, e, 3);
        }
    }
    return w;
}

static void fz_terminated(const char *field, size_t cap) { FZ_CHECK(memchr(field, '\0', cap) != NULL); }

static void fz_same(const rsq_url *a, const rsq_url *b) {
    FZ_CHECK(a->tls == b->tls && a->is_unix == b->is_unix && a->port == b->port && a->db == b->db);
    FZ_CHECK(a->has_password == b->has_password);
    FZ_CHECK(!strcmp(a->host, b->host) && !strcmp(a->path, b->path));
    FZ_CHECK(!strcmp(a->user, b->user) && !strcmp(a->password, b->password));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const size_t errcaps[4] = { 0, 1, 8, 160 };
    char errbuf[160], again[12000], num[32];
    char *url;
    size_t errlen, w = 0;
    int null_err;
    rsq_url u, v;
    rsq_result rc;
    if (size < 1) return 0;
    errlen = errcaps[data[0] & 3];
    null_err = (data[0] >> 2) & 1;
    url = (char *)malloc(size); /* size - 1 bytes of text and the NUL */
    if (!url) return 0;
    memcpy(url, data + 1, size - 1);
    url[size - 1] = '\0';
    memset(errbuf, 'E', sizeof errbuf);
    rc = rsq_url_parse(&u, url, null_err ? NULL : errbuf, errlen);
    FZ_CHECK(rc == RSQ_OK || rc == RSQ_ERR_URL);
    if (!null_err && errlen > 0) {
        FZ_CHECK(memchr(errbuf, '\0', errlen) != NULL);
        if (rc == RSQ_OK) FZ_CHECK(errbuf[0] == '\0');
        if (rc != RSQ_OK && errlen > 1) FZ_CHECK(errbuf[0] != '\0');
    }
    if (!null_err && errlen < sizeof errbuf) FZ_CHECK(errbuf[errlen] == 'E'); /* nothing past errlen */
    {   /* the client takes the URL to the same verdict */
        rsq_client c;
        rsq_client_config cfg;
        rsq_client_config_init(&cfg);
        cfg.url = url;
        FZ_CHECK(rsq_client_init(&c, &cfg) == rc);
        rsq_client_free(&c);
    }
    if (rc != RSQ_OK) { free(url); return 0; }

    fz_terminated(u.host, sizeof u.host);
    fz_terminated(u.path, sizeof u.path);
    fz_terminated(u.user, sizeof u.user);
    fz_terminated(u.password, sizeof u.password);
    FZ_CHECK(u.db >= 0 && u.db <= 1000000);
    FZ_CHECK(!u.user[0] || u.has_password);
    if (u.is_unix) {
        FZ_CHECK(u.path[0] == '/' && !u.host[0] && !u.tls);
        FZ_CHECK(strchr(u.path, '?') == NULL);
        w = fz_put(again, w, sizeof again, "unix://", 7);
        w = fz_put(again, w, sizeof again, u.path, strlen(u.path));
        w = fz_put(again, w, sizeof again, "?db=", 4);
        snprintf(num, sizeof num, "%ld", u.db);
        w = fz_put(again, w, sizeof again, num, strlen(num));
        if (u.user[0]) {
            w = fz_put(again, w, sizeof again, "&user=", 6);
            w = fz_put_enc(again, w, sizeof again, u.user);
        }
        if (u.has_password) {
            w = fz_put(again, w, sizeof again, "&password=", 10);
            w = fz_put_enc(again, w, sizeof again, u.password);
        }
    } else {
        FZ_CHECK(u.host[0] && !u.path[0]);
        FZ_CHECK(u.port >= 1 && u.port <= 65535);
        w = fz_put(again, w, sizeof again, u.tls ? "rediss://" : "redis://", u.tls ? 9 : 8);
        if (u.has_password) {
            w = fz_put_enc(again, w, sizeof again, u.user);
            w = fz_put(again, w, sizeof again, ":", 1);
            w = fz_put_enc(again, w, sizeof again, u.password);
            w = fz_put(again, w, sizeof again, "@", 1);
        }
        w = fz_put(again, w, sizeof again, "[", 1);
        w = fz_put(again, w, sizeof again, u.host, strlen(u.host));
        snprintf(num, sizeof num, "]:%d/%ld", u.port, u.db);
        w = fz_put(again, w, sizeof again, num, strlen(num));
    }
    rc = rsq_url_parse(&v, again, errbuf, sizeof errbuf);
    if (rc != RSQ_OK) {
        fprintf(stderr, "fuzz_url: rebuilt URL \"%s\" refused: %s\n", again, errbuf);
        abort();
    }
    fz_same(&u, &v);
    free(url);
    return 0;
}
