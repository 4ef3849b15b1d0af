/* size_core.c - what a firmware pays for rsq's core (make size): publish, consume in a
   group (resume and reclaim run inside), ack, nack, dead letters. Linked, never run:
   the transport is a stand-in. */
#include "../rsq.h"
#include <string.h>

static volatile uint32_t ticks;
static int link_;
static uint64_t now(void *u) { (void)u; return ticks; }
static rsq_result op(void *u, const rsq_endpoint *ep, int t, void **h, char *e, size_t el) { (void)u; (void)ep; (void)t; (void)e; (void)el; *h = &link_; return RSQ_OK; }
static long snd(void *u, void *h, const void *b, size_t n) { (void)u; (void)h; (void)b; return (long)n; }
static long rcv(void *u, void *h, void *b, size_t n) { (void)u; (void)h; (void)b; (void)n; return 0; }
static void cl(void *u, void *h) { (void)u; (void)h; }

int main(void);
int main(void) {
    static rsq_client c; static rsq_producer p; static rsq_consumer k;
    static unsigned char heap[16384]; static rsq_arena a;
    rsq_client_config cfg; rsq_producer_config pc; rsq_consumer_config cc; rsq_transport tp;
    const rsq_message *m; rsq_id id;
    memset(&tp, 0, sizeof tp);
    tp.open = op; tp.send = snd; tp.recv = rcv; tp.close = cl; tp.now_ms = now;
    rsq_arena_init(&a, heap, sizeof heap);
    rsq_client_config_init(&cfg);
    cfg.url = "redis://10.0.0.2:6379"; cfg.transport = &tp; cfg.allocator = rsq_arena_allocator(&a);
    if (rsq_client_init(&c, &cfg) != RSQ_OK) return 1;
    rsq_producer_config_init(&pc); pc.queue = "telemetry";
    if (rsq_producer_init(&p, &c, &pc) != RSQ_OK) return 2;
    if (rsq_publish(&p, "21.5", 4, &id) != RSQ_OK) return 3;
    rsq_consumer_config_init(&cc); cc.queue = "commands"; cc.group = "dev";
    if (rsq_consumer_init(&k, &c, &cc) != RSQ_OK) return 4;
    while (rsq_consumer_next(&k, &m, 1000) == RSQ_OK) {
        if (m->payload_len == 0) rsq_dead_letter(&k, m, "empty");
        else if (m->payload[0] == 'r') rsq_nack(&k, m, 0, "retry");
        else rsq_ack(&k, m);
    }
    rsq_consumer_free(&k);
    rsq_client_free(&c);
    return 0;
}
