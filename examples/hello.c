/* hello.c - connect, append one entry to a stream, read the stream back.
   Build: cc examples/hello.c -o hello
   Run:   ./hello [redis://127.0.0.1:6379] */
#define RSQ_IMPLEMENTATION
#include "../rsq.h"
#include <stdio.h>

int main(int argc, char **argv) {
    rsq_client_config cfg;
    rsq_client c;
    const rsq_reply *r;
    size_t i;
    rsq_client_config_init(&cfg);
    cfg.url = argc > 1 ? argv[1] : "redis://127.0.0.1:6379";
    if (rsq_client_init(&c, &cfg) != RSQ_OK) {
        fprintf(stderr, "hello: %s\n", rsq_errstr(&c));
        return 1;
    }
    if (rsq_command(&c, &r, "XADD", "hello", "*", "payload", "hello, streams", (char *)0) != RSQ_OK) {
        fprintf(stderr, "hello: XADD: %s\n", rsq_errstr(&c));
        rsq_client_free(&c);
        return 1;
    }
    printf("added %s\n", r->str);
    if (rsq_command(&c, &r, "XRANGE", "hello", "-", "+", (char *)0) != RSQ_OK) {
        fprintf(stderr, "hello: XRANGE: %s\n", rsq_errstr(&c));
        rsq_client_free(&c);
        return 1;
    }
    for (i = 0; i < r->len; i++) {
        const rsq_reply *e = &r->element[i];
        printf("%s %s=%s\n", e->element[0].str, e->element[1].element[0].str, e->element[1].element[1].str);
    }
    rsq_client_free(&c);
    return 0;
}
