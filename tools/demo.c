/* demo.c - `make demo`: a private redis-server, a connection, an XADD and an XRANGE.
   The server runs from a temp dir on a free port and is stopped by its pid. */
#define _DEFAULT_SOURCE 1
#define RSQ_IMPLEMENTATION
#include "../rsq.h"
#include "../tests/server.h"
#include <stdio.h>

int main(void) {
    srv s;
    rsq_client_config cfg;
    rsq_client c;
    const rsq_reply *r;
    size_t i;
    int rc = 1;
    if (srv_start(&s, NULL) != 0) {
        fprintf(stderr, "demo: could not start redis-server\n");
        return 1;
    }
    printf("demo: private redis-server pid %d on %s\n", (int)s.pid, s.url);
    rsq_client_config_init(&cfg);
    cfg.url = s.url;
    cfg.name = "rsq-demo";
    if (rsq_client_init(&c, &cfg) != RSQ_OK || rsq_connect(&c) != RSQ_OK) {
        fprintf(stderr, "demo: %s\n", rsq_errstr(&c));
        goto out;
    }
    printf("demo: connected\n");
    for (i = 0; i < 3; i++) {
        char body[32];
        snprintf(body, sizeof body, "job %d", (int)i + 1);
        if (rsq_command(&c, &r, "XADD", "demo:jobs", "*", "payload", body, (char *)0) != RSQ_OK) {
            fprintf(stderr, "demo: XADD: %s\n", rsq_errstr(&c));
            goto out;
        }
        printf("demo: XADD demo:jobs -> %s\n", r->str);
    }
    if (rsq_command(&c, &r, "XRANGE", "demo:jobs", "-", "+", (char *)0) != RSQ_OK) {
        fprintf(stderr, "demo: XRANGE: %s\n", rsq_errstr(&c));
        goto out;
    }
    printf("demo: XRANGE demo:jobs - + -> %d entries\n", (int)r->len);
    for (i = 0; i < r->len; i++)
        printf("  %s payload=%s\n", r->element[i].element[0].str, r->element[i].element[1].element[1].str);
    rc = 0;
out:
    rsq_client_free(&c);
    srv_stop(&s, 0);
    printf("demo: server stopped\n");
    return rc;
}
