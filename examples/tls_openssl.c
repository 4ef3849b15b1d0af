/* tls_openssl.c - rsq over TLS: an rsq_transport built on OpenSSL, then PING, XADD, XRANGE.
   Build: cc examples/tls_openssl.c -o tls_openssl -lssl -lcrypto
   Run:   ./tls_openssl rediss://127.0.0.1:6380 ca.crt [client.crt client.key]

   OpenSSL is this example's dependency, not rsq.h's: the header only knows the
   rsq_transport table. Copy tls_transport_* below into your program to speak rediss://.
   What the transport does:
   - open:  resolves ep->host, connects a non-blocking TCP socket, then runs the TLS
            handshake without blocking, all within the client's connect timeout. It sends
            SNI for host names (not for IP literals) and verifies the server certificate
            against the CA file of tls_options, including that the certificate names
            ep->host (DNS name or IP address in subjectAltName). With a certificate
            and key in tls_options it presents them when the server asks for a client
            certificate (redis-server's tls-auth-clients).
   - send/recv: SSL_write/SSL_read. SSL_ERROR_WANT_READ/WANT_WRITE mean "would block"
            (return 0). An alert from the server (TLS 1.3 servers that require a client
            certificate send "certificate required" after the handshake, at the first
            read), or any failure before the first byte came back on a connection whose
            server asked for a certificate this transport does not have, is RSQ_ERR_TLS:
            the client then says that the server closed the TLS session, likely for a
            missing client certificate, and does not retry. Any other error, or the peer
            closing, is RSQ_ERR_IO.
   - wait:  poll() on the socket, but first looks at SSL_pending: bytes OpenSSL has
            already decrypted are ready even when the socket is quiet.
   - close: a best-effort close_notify (SSL_shutdown, never blocking), then frees all.
   - fd:    the socket, for poll/epoll loops (rsq_client_fd).
   A certificate that fails verification is reported as RSQ_ERR_TLS (the server could
   not prove who it is), which the client does not retry; so is a handshake the server
   refuses after asking for a client certificate this transport does not have (TLS 1.2);
   other handshake failures are RSQ_ERR_CONNECT and are retried with backoff like any
   failed connect.
   Writing to a socket the peer closed raises SIGPIPE on some systems: main ignores it. */
#define RSQ_IMPLEMENTATION
#include "../rsq.h" /* first: it enables the POSIX names this file uses, too */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

/* The transport's own configuration; transport.user points to it. */
typedef struct tls_options {
    const char *ca_file;   /* PEM file of the CA(s) that signed the server's certificate */
    const char *cert_file; /* this client's certificate (PEM), or NULL for none */
    const char *key_file;  /* its private key (PEM) */
    SSL_CTX *ctx;          /* made by tls_options_init */
} tls_options;

/* One connection: the handle that open returns. */
typedef struct tls_conn {
    int fd;
    SSL *ssl;
    int write_wants_read; /* the last SSL_write asked for readability (TLS can do that) */
    int read_wants_write; /* the last SSL_read asked for writability */
    int cert_asked;       /* the server asked for a client certificate; we have none */
    int got_data;         /* a byte came back: the session was accepted */
} tls_conn;

/* OpenSSL calls this when the server asks for a client certificate and none is
   configured: no certificate is sent, and the connection remembers that it was asked. */
static int tls_no_client_cert(SSL *ssl, X509 **x509, EVP_PKEY **pkey) {
    tls_conn *t = (tls_conn *)SSL_get_app_data(ssl);
    (void)x509;
    (void)pkey;
    if (t) t->cert_asked = 1;
    return 0;
}

/* Prepares the SSL context: TLS 1.2 or later, peer verification against ca_file, and
   the client certificate when cert_file and key_file are given (else NULL).
   Returns 0, or -1 with a one-line reason in err. */
static int tls_options_init(tls_options *o, const char *ca_file, const char *cert_file, const char *key_file, char *err,
                            size_t errlen) {
    memset(o, 0, sizeof *o);
    o->ca_file = ca_file;
    o->cert_file = cert_file;
    o->key_file = key_file;
    o->ctx = SSL_CTX_new(TLS_client_method());
    if (!o->ctx) {
        snprintf(err, errlen, "SSL_CTX_new failed");
        return -1;
    }
    SSL_CTX_set_min_proto_version(o->ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(o->ctx, SSL_VERIFY_PEER, NULL);
    /* rsq resends the unsent tail of its write buffer, which may have moved or grown */
    SSL_CTX_set_mode(o->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (SSL_CTX_load_verify_locations(o->ctx, ca_file, NULL) != 1) {
        snprintf(err, errlen, "cannot load CA file %s", ca_file);
        SSL_CTX_free(o->ctx);
        o->ctx = NULL;
        return -1;
    }
    if (cert_file && (SSL_CTX_use_certificate_chain_file(o->ctx, cert_file) != 1 ||
                      SSL_CTX_use_PrivateKey_file(o->ctx, key_file ? key_file : cert_file, SSL_FILETYPE_PEM) != 1 ||
                      SSL_CTX_check_private_key(o->ctx) != 1)) {
        snprintf(err, errlen, "cannot load the client certificate %s and its key %s", cert_file, key_file ? key_file : cert_file);
        SSL_CTX_free(o->ctx);
        o->ctx = NULL;
        return -1;
    }
    SSL_CTX_set_client_cert_cb(o->ctx, tls_no_client_cert); /* called only when we have none */
    return 0;
}

static void tls_options_free(tls_options *o) {
    if (o->ctx) SSL_CTX_free(o->ctx);
    o->ctx = NULL;
}

/* Waits on fd for POLLIN/POLLOUT up to timeout_ms: 1 ready, 0 timed out, -1 error. */
static int tls_poll(int fd, short events, int timeout_ms) {
    struct pollfd p;
    int rc;
    p.fd = fd;
    p.events = events;
    p.revents = 0;
    rc = poll(&p, 1, timeout_ms < 0 ? 0 : timeout_ms);
    if (rc < 0) return errno == EINTR ? 1 : -1;
    return rc > 0;
}

static uint64_t tls_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Milliseconds left until deadline. */
static int tls_left(uint64_t deadline) {
    uint64_t now = tls_now_ms();
    return now >= deadline ? 0 : (int)(deadline - now);
}

/* Non-blocking TCP connect to host:port before deadline. Returns the fd or -1. */
static int tls_tcp_connect(const rsq_endpoint *ep, uint64_t deadline, rsq_result *rc, char *err, size_t errlen) {
    struct addrinfo hints, *res = NULL, *ai;
    char port[16];
    int fd = -1, gai, e = 0;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    snprintf(port, sizeof port, "%d", ep->port);
    gai = getaddrinfo(ep->host, port, &hints, &res);
    if (gai != 0 || !res) {
        snprintf(err, errlen, "cannot resolve %s: %s", ep->host, gai_strerror(gai));
        *rc = RSQ_ERR_RESOLVE;
        return -1;
    }
    *rc = RSQ_ERR_CONNECT;
    for (ai = res; ai; ai = ai->ai_next) {
        int left = tls_left(deadline), soerr = 0, r;
        socklen_t len = sizeof soerr;
        if (left == 0) { *rc = RSQ_ERR_TIMEOUT; break; }
        fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0) { e = errno; continue; }
        if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL, 0) | O_NONBLOCK) < 0) { e = errno; close(fd); fd = -1; continue; }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) break;
        if (errno != EINPROGRESS) { e = errno; close(fd); fd = -1; continue; }
        r = tls_poll(fd, POLLOUT, left);
        if (r == 0) { *rc = RSQ_ERR_TIMEOUT; close(fd); fd = -1; break; }
        if (r < 0) soerr = errno;
        else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0) soerr = errno;
        if (soerr == 0) break;
        e = soerr;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        if (*rc == RSQ_ERR_TIMEOUT) snprintf(err, errlen, "connect to %s:%d timed out", ep->host, ep->port);
        else snprintf(err, errlen, "connect to %s:%d: %s", ep->host, ep->port, strerror(e));
        return -1;
    }
    {
        int one = 1;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        (void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
    }
    return fd;
}

static int tls_is_ip_literal(const char *host) {
    unsigned char buf[16];
    return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

static rsq_result tls_open(void *user, const rsq_endpoint *ep, int timeout_ms, void **handle, char *err, size_t errlen) {
    tls_options *o = (tls_options *)user;
    uint64_t deadline = tls_now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
    tls_conn *t;
    rsq_result rc;
    int fd;
    *handle = NULL;
    if (!o || !o->ctx) {
        snprintf(err, errlen, "TLS transport used before tls_options_init");
        return RSQ_ERR_ARG;
    }
    if (!ep->tls || !ep->host) {
        snprintf(err, errlen, "the TLS transport serves rediss:// URLs only");
        return RSQ_ERR_UNSUPPORTED;
    }
    fd = tls_tcp_connect(ep, deadline, &rc, err, errlen);
    if (fd < 0) return rc;
    t = (tls_conn *)calloc(1, sizeof *t);
    if (!t) { close(fd); snprintf(err, errlen, "out of memory"); return RSQ_ERR_NOMEM; }
    t->fd = fd;
    ERR_clear_error();
    t->ssl = SSL_new(o->ctx);
    if (!t->ssl || SSL_set_fd(t->ssl, fd) != 1) {
        snprintf(err, errlen, "SSL_new failed");
        rc = RSQ_ERR_NOMEM;
        goto fail;
    }
    SSL_set_app_data(t->ssl, t);
    /* SNI names hosts only; an IP address is checked against the certificate instead */
    if (!tls_is_ip_literal(ep->host)) {
        SSL_set_tlsext_host_name(t->ssl, ep->host);
        if (SSL_set1_host(t->ssl, ep->host) != 1) { snprintf(err, errlen, "bad host name"); rc = RSQ_ERR_ARG; goto fail; }
    } else if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), ep->host) != 1) {
        snprintf(err, errlen, "bad IP address");
        rc = RSQ_ERR_ARG;
        goto fail;
    }
    for (;;) {
        int r = SSL_connect(t->ssl), left, ready;
        short ev;
        if (r == 1) break;
        switch (SSL_get_error(t->ssl, r)) {
        case SSL_ERROR_WANT_READ: ev = POLLIN; break;
        case SSL_ERROR_WANT_WRITE: ev = POLLOUT; break;
        default: {
            long v = SSL_get_verify_result(t->ssl);
            unsigned long e = ERR_peek_last_error();
            if (v != X509_V_OK) {
                snprintf(err, errlen, "TLS handshake with %s:%d: certificate verify failed: %s", ep->host, ep->port,
                         X509_verify_cert_error_string(v));
                rc = RSQ_ERR_TLS; /* the server's identity is not proven: do not retry */
            } else if (t->cert_asked) {
                char why[160];
                if (e) ERR_error_string_n(e, why, sizeof why);
                else snprintf(why, sizeof why, "connection closed");
                snprintf(err, errlen, "TLS handshake with %s:%d: the server closed the TLS session after asking for a "
                         "client certificate, and none is configured (%s)", ep->host, ep->port, why);
                rc = RSQ_ERR_TLS; /* retrying will not make one */
            } else {
                char why[160];
                if (e) ERR_error_string_n(e, why, sizeof why);
                else snprintf(why, sizeof why, "connection closed by the server");
                snprintf(err, errlen, "TLS handshake with %s:%d: %s", ep->host, ep->port, why);
                rc = RSQ_ERR_CONNECT;
            }
            goto fail;
        }
        }
        left = tls_left(deadline);
        ready = left > 0 ? tls_poll(fd, ev, left) : 0;
        if (ready == 0) {
            snprintf(err, errlen, "TLS handshake with %s:%d timed out after %d ms", ep->host, ep->port, timeout_ms);
            rc = RSQ_ERR_TIMEOUT;
            goto fail;
        }
        if (ready < 0) {
            snprintf(err, errlen, "TLS handshake with %s:%d: %s", ep->host, ep->port, strerror(errno));
            rc = RSQ_ERR_CONNECT;
            goto fail;
        }
    }
    *handle = t;
    return RSQ_OK;
fail:
    if (t->ssl) SSL_free(t->ssl);
    close(fd);
    free(t);
    ERR_clear_error();
    return rc;
}

/* A failed SSL_read/SSL_write: RSQ_ERR_TLS when the server ended the session with an
   alert (OpenSSL reports the alert it received as an error reason from
   SSL_AD_REASON_OFFSET on), or when, before any byte came back, it fails on a
   connection whose server asked for a client certificate we do not have (a reset may
   come before, and instead of, its alert); else RSQ_ERR_IO. */
static long tls_failed(tls_conn *t, int ssl_error) {
    unsigned long e = ERR_peek_last_error();
    if (ssl_error == SSL_ERROR_SSL && e && ERR_GET_LIB(e) == ERR_LIB_SSL && ERR_GET_REASON(e) >= SSL_AD_REASON_OFFSET)
        return (long)RSQ_ERR_TLS;
    if (t->cert_asked && !t->got_data) return (long)RSQ_ERR_TLS;
    return (long)RSQ_ERR_IO;
}

static long tls_send(void *user, void *handle, const void *buf, size_t len) {
    tls_conn *t = (tls_conn *)handle;
    int n, want = len > 0x40000000u ? 0x40000000 : (int)len;
    (void)user;
    ERR_clear_error();
    n = SSL_write(t->ssl, buf, want);
    t->write_wants_read = 0;
    if (n > 0) return n;
    switch (n = SSL_get_error(t->ssl, n)) {
    case SSL_ERROR_WANT_WRITE: return 0;
    case SSL_ERROR_WANT_READ: t->write_wants_read = 1; return 0;
    default: return tls_failed(t, n);
    }
}

static long tls_recv(void *user, void *handle, void *buf, size_t len) {
    tls_conn *t = (tls_conn *)handle;
    int n, want = len > 0x40000000u ? 0x40000000 : (int)len;
    (void)user;
    ERR_clear_error();
    n = SSL_read(t->ssl, buf, want);
    t->read_wants_write = 0;
    if (n > 0) {
        t->got_data = 1;
        return n;
    }
    switch (n = SSL_get_error(t->ssl, n)) {
    case SSL_ERROR_WANT_READ: return 0;
    case SSL_ERROR_WANT_WRITE: t->read_wants_write = 1; return 0;
    default: return tls_failed(t, n); /* includes SSL_ERROR_ZERO_RETURN: the peer closed */
    }
}

static rsq_result tls_wait(void *user, void *handle, int events, int timeout_ms) {
    tls_conn *t = (tls_conn *)handle;
    short ev = 0;
    int r;
    (void)user;
    /* decrypted bytes already inside OpenSSL: poll() would not see them */
    if ((events & RSQ_WANT_READ) && SSL_pending(t->ssl) > 0) return RSQ_OK;
    if (events & RSQ_WANT_READ) ev |= t->read_wants_write ? POLLOUT : POLLIN;
    if (events & RSQ_WANT_WRITE) ev |= t->write_wants_read ? POLLIN : POLLOUT;
    r = tls_poll(t->fd, ev, timeout_ms);
    if (r > 0) return RSQ_OK;
    return r == 0 ? RSQ_ERR_TIMEOUT : RSQ_ERR_IO;
}

static void tls_close(void *user, void *handle) {
    tls_conn *t = (tls_conn *)handle;
    (void)user;
    if (!t) return;
    ERR_clear_error();
    (void)SSL_shutdown(t->ssl); /* sends close_notify if it can; the socket never blocks */
    SSL_free(t->ssl);
    close(t->fd);
    free(t);
    ERR_clear_error();
}

static int tls_fd(void *user, void *handle) {
    (void)user;
    return handle ? ((tls_conn *)handle)->fd : -1;
}

/* The transport table; the client copies it. now_ms/sleep_ms NULL: the built-in ones. */
static rsq_transport tls_transport(tls_options *o) {
    rsq_transport t;
    memset(&t, 0, sizeof t);
    t.open = tls_open;
    t.send = tls_send;
    t.recv = tls_recv;
    t.wait = tls_wait;
    t.close = tls_close;
    t.fd = tls_fd;
    t.user = o;
    return t;
}

int main(int argc, char **argv) {
    tls_options opts;
    rsq_transport tp;
    rsq_client_config cfg;
    rsq_client c;
    const rsq_reply *r;
    const char *step = "connect";
    char err[256];
    int status = 1;
    size_t i;
    if (argc != 3 && argc != 5) {
        fprintf(stderr, "usage: tls_openssl rediss://HOST:PORT CA.pem [CLIENT.crt CLIENT.key]\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    if (tls_options_init(&opts, argv[2], argc == 5 ? argv[3] : NULL, argc == 5 ? argv[4] : NULL, err, sizeof err) != 0) {
        fprintf(stderr, "tls_openssl: %s\n", err);
        return 1;
    }
    tp = tls_transport(&opts);
    rsq_client_config_init(&cfg);
    cfg.url = argv[1];
    cfg.transport = &tp;
    cfg.connect_timeout_ms = 3000;
    cfg.retry_attempts = 3;
    if (rsq_client_init(&c, &cfg) != RSQ_OK) { step = "config"; goto done; }
    if (rsq_connect(&c) != RSQ_OK) goto done;
    step = "PING";
    if (rsq_command(&c, &r, "PING", (char *)0) != RSQ_OK) goto done;
    printf("PING: %s\n", r->str);
    step = "XADD";
    if (rsq_command(&c, &r, "XADD", "tls:demo", "*", "payload", "hello over TLS", (char *)0) != RSQ_OK) goto done;
    printf("added %s\n", r->str);
    step = "XRANGE";
    if (rsq_command(&c, &r, "XRANGE", "tls:demo", "-", "+", (char *)0) != RSQ_OK) goto done;
    for (i = 0; i < r->len; i++) {
        const rsq_reply *e = &r->element[i], *f = &e->element[1];
        size_t k;
        printf("%s", e->element[0].str);
        for (k = 0; k + 1 < f->len; k += 2) printf(" %s=%s", f->element[k].str, f->element[k + 1].str);
        printf("\n");
    }
    status = 0;
done:
    if (status) fprintf(stderr, "tls_openssl: %s: %s\n", step, rsq_errstr(&c));
    rsq_client_free(&c);
    tls_options_free(&opts);
    return status;
}
