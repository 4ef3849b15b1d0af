/* test_arena.c - no-malloc mode: the arena allocator alone, then a producer and a
   consumer living in a fixed arena, and a clean failure when the arena is too small. */
#include "t.h"
#include "server.h"
#include "../rsq.h"

static void test_arena_blocks(void) {
    static unsigned char buf[4096];
    rsq_arena a;
    rsq_allocator al;
    void *p[8];
    int i;
    rsq_arena_init(&a, buf + 3, sizeof buf - 3); /* unaligned start */
    al = rsq_arena_allocator(&a);
    CHECK(((uintptr_t)a.base & 15) == 0);
    for (i = 0; i < 8; i++) {
        p[i] = al.malloc_fn(100, al.user);
        CHECK(p[i] != NULL && ((uintptr_t)p[i] & 15) == 0);
        memset(p[i], i, 100);
    }
    CHECK(a.used == 8 * 128);
    al.free_fn(p[3], al.user);
    al.free_fn(p[4], al.user);
    p[3] = al.malloc_fn(200, al.user); /* fits the two merged holes */
    CHECK(p[3] != NULL && (unsigned char *)p[3] < (unsigned char *)p[5]);
    /* realloc keeps the bytes, in place when the next block is free */
    al.free_fn(p[6], al.user);
    p[5] = al.realloc_fn(p[5], 200, al.user);
    CHECK(p[5] != NULL && ((unsigned char *)p[5])[99] == 5);
    p[7] = al.realloc_fn(p[7], 1000, al.user);
    CHECK(p[7] != NULL && ((unsigned char *)p[7])[50] == 7);
    CHECK(al.malloc_fn(100000, al.user) == NULL);
    CHECK(a.failures == 1);
    for (i = 0; i < 8; i++) if (i != 4 && i != 6) al.free_fn(p[i], al.user);
    CHECK_EQ_INT(a.used, 0);
    CHECK(al.malloc_fn(4000, al.user) != NULL); /* everything merged back */
    al.free_fn(NULL, al.user);
}

static srv S;

static void test_arena_producer_and_consumer_in_a_fixed_arena(void) {
    static unsigned char mem[192 * 1024];
    rsq_arena a;
    rsq_client c;
    rsq_client_config cfg;
    rsq_producer p;
    rsq_producer_config pc;
    rsq_consumer k;
    rsq_consumer_config cc;
    const rsq_message *m;
    char body[100];
    int i, got = 0;
    REQUIRE(srv_start(&S, NULL) == 0);
    rsq_arena_init(&a, mem, sizeof mem);
    rsq_client_config_init(&cfg);
    cfg.url = S.url;
    cfg.allocator = rsq_arena_allocator(&a);
    cfg.limits.max_reply = 64 * 1024;
    cfg.limits.max_bulk = 16 * 1024;
    cfg.limits.max_elements = 4096;
    REQUIRE(rsq_client_init(&c, &cfg) == RSQ_OK);
    rsq_producer_config_init(&pc);
    pc.queue = "arena:q";
    pc.max_payload = 1024;
    REQUIRE(rsq_producer_init(&p, &c, &pc) == RSQ_OK);
    memset(body, 'x', sizeof body);
    for (i = 0; i < 2000; i++) CHECK_RC(rsq_publish(&p, body, sizeof body, NULL), RSQ_OK);
    rsq_consumer_config_init(&cc);
    cc.queue = "arena:q"; cc.group = "g"; cc.start = RSQ_START_ALL; cc.count = 32; cc.block_ms = 100;
    REQUIRE(rsq_consumer_init(&k, &c, &cc) == RSQ_OK);
    while (rsq_consumer_next(&k, &m, 300) == RSQ_OK) {
        got += m->payload_len == sizeof body;
        rsq_ack(&k, m);
    }
    CHECK_RC(rsq_consumer_flush(&k), RSQ_OK);
    CHECK_EQ_INT(got, 2000);
    CHECK(a.used > 0 && a.peak <= sizeof mem && a.failures == 0);
    fprintf(stderr, "    arena peak %zu bytes of %zu\n", a.peak, sizeof mem);
    rsq_consumer_free(&k);
    rsq_client_free(&c);
    CHECK_EQ_INT(a.used, 0); /* everything given back */
}

static void test_arena_too_small_is_a_clean_error(void) {
    static unsigned char mem[8 * 1024];
    rsq_arena a;
    rsq_client c;
    rsq_client_config cfg;
    const rsq_reply *r;
    REQUIRE(S.pid > 0);
    rsq_arena_init(&a, mem, sizeof mem);
    rsq_client_config_init(&cfg);
    cfg.url = S.url;
    cfg.allocator = rsq_arena_allocator(&a);
    cfg.retry_attempts = 1;
    REQUIRE(rsq_client_init(&c, &cfg) == RSQ_OK);
    CHECK_RC(rsq_command(&c, &r, "PING", (char *)0), RSQ_ERR_NOMEM);
    CHECK(strstr(rsq_errstr(&c), "memory") != NULL);
    CHECK(a.failures > 0);
    rsq_client_free(&c);
    CHECK_EQ_INT(a.used, 0);
    srv_stop(&S, 0);
}

void suite_arena(void) {
    RUN(test_arena_blocks);
    RUN(test_arena_producer_and_consumer_in_a_fixed_arena);
    RUN(test_arena_too_small_is_a_clean_error);
}
