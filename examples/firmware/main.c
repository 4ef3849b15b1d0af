/* main.c - the firmware example: a bare-metal Cortex-M4 program (no operating system,
   no heap) that talks to Redis through rsq over its UART.
     1. publishes FW_TELEMETRY telemetry entries to the stream fw:telemetry: half one
        by one (rsq_publish), half in one pipelined batch (rsq_publish_batch);
     2. consumes commands from the stream fw:commands in the group "fw" (consumer
        "fw-1"): "add A B", "mul A B" and "echo TEXT" are answered with an entry in
        fw:replies (payload: the result; field cmd-id: the command's entry ID) and
        acked; "flaky" is nacked (redelivered at once) until its deliveries reach
        max_deliveries (3), when rsq moves it to the dead-letter stream
        {fw:commands}:dlq; anything else goes there at once ("unknown command").
        It stops when no command has come for FW_IDLE_MS;
     3. checks the resynchronisation of its serial link: a blocking XREAD whose reply
        it stops waiting for (the client drops the link) must not be taken for the
        reply of the next command (the transport's open discards it);
     4. prints its figures (arena peak, stack high-water marks, UART counters) and
        exits through semihosting: 0 when everything went as it should.
   Exit codes: 0 ok; 2 setup refused; 3 publishing failed; 4 consuming failed;
   5 memory (a heap request, a call of rsq's default allocator, an arena refusal, or
   arena bytes left after the frees);
   6 an error text of rsq.h came out wrong with this C library; 7 the link did not
   resynchronise after a reply it gave up on;
   90 fault; 91 unexpected exception; 92 rsq.h assertion.
   Build and run: make test-firmware (examples/firmware/firmware.mk). */
#include "board.h"
#include "../../rsq.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FW_TELEMETRY 20
#define FW_IDLE_MS 600
#define FW_ARENA_SIZE (16 * 1024)

static unsigned char fw_arena_mem[FW_ARENA_SIZE] __attribute__((aligned(16)));
static rsq_arena fw_arena;
static rsq_client fw_client;
static rsq_producer fw_telemetry, fw_replies;
static rsq_consumer fw_commands;
static size_t fw_arena_after_publish;

static uint32_t fw_sp(void) {
    uint32_t sp;
    __asm__ volatile("mov %0, sp" : "=r"(sp));
    return sp;
}

static int fw_fail(int code, const char *step, rsq_result rc) {
    fw_printf("fw: FAIL: %s: %s: %s\n", step, rsq_result_name(rc), rsq_errstr(&fw_client));
    return code;
}

/* ---------------------------------------------------------------------------------- */
/* Telemetry: a reading every call; the first half one publish each, the rest in one
   pipelined batch. The test checks every entry's "seq=N temp_mC=T". */
static int fw_temp_mc(int seq) { return 21000 + (seq * 37) % 500; }

static int fw_publish_telemetry(void) {
    static char body[FW_TELEMETRY][48];
    static rsq_outgoing batch[FW_TELEMETRY];
    static rsq_id ids[FW_TELEMETRY];
    static rsq_result results[FW_TELEMETRY];
    rsq_producer_config pc;
    rsq_result rc;
    int i, half = FW_TELEMETRY / 2;
    rsq_producer_config_init(&pc);
    pc.queue = "fw:telemetry";
    pc.max_payload = 256;
    if ((rc = rsq_producer_init(&fw_telemetry, &fw_client, &pc)) != RSQ_OK) return fw_fail(2, "producer init", rc);
    for (i = 0; i < FW_TELEMETRY; i++)
        snprintf(body[i], sizeof body[i], "seq=%d temp_mC=%d uptime_ms=%lu", i, fw_temp_mc(i),
                 (unsigned long)fw_millis());
    for (i = 0; i < half; i++) {
        rc = rsq_publish(&fw_telemetry, body[i], strlen(body[i]), &ids[i]);
        if (rc != RSQ_OK) return fw_fail(3, "publish", rc);
    }
    for (i = half; i < FW_TELEMETRY; i++) {
        memset(&batch[i], 0, sizeof batch[i]);
        batch[i].payload = body[i];
        batch[i].payload_len = strlen(body[i]);
    }
    rc = rsq_publish_batch(&fw_telemetry, batch + half, (size_t)(FW_TELEMETRY - half), ids + half, results + half);
    if (rc != RSQ_OK) return fw_fail(3, "publish batch", rc);
    fw_arena_after_publish = fw_arena.peak;
    for (i = 1; i < FW_TELEMETRY; i++)
        if (rsq_id_cmp(ids[i - 1], ids[i]) >= 0) {
            fw_printf("fw: FAIL: entry IDs out of order at %d\n", i);
            return 3;
        }
    {
        char first[RSQ_ID_STRLEN], last[RSQ_ID_STRLEN];
        rsq_id_format(ids[0], first);
        rsq_id_format(ids[FW_TELEMETRY - 1], last);
        fw_printf("fw: published %d telemetry entries to fw:telemetry (%d one by one, %d in one batch), %s .. %s\n",
                  FW_TELEMETRY, half, FW_TELEMETRY - half, first, last);
    }
    return 0;
}

/* ---------------------------------------------------------------------------------- */
/* Commands: "add A B", "mul A B", "echo TEXT". 1 with the answer in out, 0 unknown. */
static int fw_run_command(const char *cmd, size_t len, char *out, size_t cap) {
    char buf[96], *rest, *end;
    long a, b;
    if (len >= sizeof buf) return 0;
    memcpy(buf, cmd, len);
    buf[len] = '\0';
    if (!strncmp(buf, "echo ", 5)) {
        snprintf(out, cap, "%s", buf + 5);
        return 1;
    }
    if (strncmp(buf, "add ", 4) && strncmp(buf, "mul ", 4)) return 0;
    rest = buf + 4;
    a = strtol(rest, &end, 10);
    if (end == rest || *end != ' ') return 0;
    rest = end + 1;
    b = strtol(rest, &end, 10);
    if (end == rest || *end) return 0;
    snprintf(out, cap, "%ld", buf[0] == 'a' ? a + b : a * b);
    return 1;
}

static int fw_consume_commands(unsigned *answered, unsigned *dead) {
    rsq_consumer_config cc;
    rsq_producer_config pc;
    rsq_result rc;
    const rsq_message *m;
    rsq_consumer_config_init(&cc);
    cc.queue = "fw:commands";
    cc.group = "fw";
    cc.name = "fw-1";
    cc.count = 4;
    cc.block_ms = 300;
    cc.max_deliveries = 3;
    if ((rc = rsq_consumer_init(&fw_commands, &fw_client, &cc)) != RSQ_OK) return fw_fail(2, "consumer init", rc);
    rsq_producer_config_init(&pc);
    pc.queue = "fw:replies";
    pc.max_payload = 128;
    if ((rc = rsq_producer_init(&fw_replies, &fw_client, &pc)) != RSQ_OK) return fw_fail(2, "producer init", rc);
    while ((rc = rsq_consumer_next(&fw_commands, &m, FW_IDLE_MS)) == RSQ_OK) {
        char answer[96];
        rsq_field hdr[1];
        rsq_outgoing out;
        if (m->payload && m->payload_len == 5 && !memcmp(m->payload, "flaky", 5)) {
            long n = (long)m->deliveries; /* read first: a nack updates the message it requeues */
            int last = n >= 3;              /* max_deliveries: this nack dead-letters it */
            if ((rc = rsq_nack(&fw_commands, m, 0, NULL)) != RSQ_OK) return fw_fail(4, "nack", rc);
            fw_printf("fw: command %s \"flaky\": delivery %ld, %s\n", m->id_str, n,
                      last ? "dead-lettered by rsq_nack" : "nacked");
            *dead += last;
            continue;
        }
        if (!m->payload || !fw_run_command(m->payload, m->payload_len, answer, sizeof answer)) {
            rc = rsq_dead_letter(&fw_commands, m, "unknown command");
            if (rc != RSQ_OK) return fw_fail(4, "dead letter", rc);
            fw_printf("fw: command %s \"%.*s\": unknown, dead-lettered\n", m->id_str, (int)m->payload_len,
                      m->payload ? m->payload : "");
            (*dead)++;
            continue;
        }
        memset(&out, 0, sizeof out);
        hdr[0].name = "cmd-id";
        hdr[0].name_len = 0;
        hdr[0].value = m->id_str;
        hdr[0].value_len = 0;
        out.payload = answer;
        out.payload_len = strlen(answer);
        out.headers = hdr;
        out.header_count = 1;
        if ((rc = rsq_publish_msg(&fw_replies, &out, NULL)) != RSQ_OK) return fw_fail(4, "publish reply", rc);
        if ((rc = rsq_ack(&fw_commands, m)) != RSQ_OK) return fw_fail(4, "ack", rc);
        fw_printf("fw: command %s \"%.*s\" -> \"%s\"\n", m->id_str, (int)m->payload_len, m->payload, answer);
        (*answered)++;
    }
    if (rc != RSQ_EMPTY) return fw_fail(4, "next command", rc);
    if ((rc = rsq_consumer_flush(&fw_commands)) != RSQ_OK) return fw_fail(4, "flush acks", rc);
    return 0;
}

/* ---------------------------------------------------------------------------------- */
/* A reply given up on: XREAD BLOCK 300 on a stream nobody writes, read with a 50 ms
   timeout. The client closes the link (RSQ_ERR_TIMEOUT); the server still answers
   (nil, 300 ms later) down the same line. The next command opens the link again: the
   transport's sync must skip that nil, so that ECHO gets its own reply. */
static int fw_check_resync(void) {
    const rsq_reply *r;
    fw_uart_stats before, after;
    rsq_result rc;
    fw_uart_get_stats(&before);
    if ((rc = rsq_append(&fw_client, "XREAD", "BLOCK", "300", "STREAMS", "fw:nothing", "$", (char *)0)) != RSQ_OK)
        return fw_fail(7, "resync: append XREAD", rc);
    if ((rc = rsq_read_reply(&fw_client, &r, 50)) != RSQ_ERR_TIMEOUT) return fw_fail(7, "resync: XREAD, 50 ms", rc);
    if ((rc = rsq_command(&fw_client, &r, "ECHO", "after-timeout", (char *)0)) != RSQ_OK)
        return fw_fail(7, "resync: ECHO", rc);
    fw_uart_get_stats(&after);
    if (!rsq_reply_is(r, "after-timeout") || after.opens != before.opens + 1) {
        fw_printf("fw: FAIL: resync: ECHO after the timeout gave \"%s\" with %lu new opens (expected "
                  "after-timeout, 1)\n", r->str ? r->str : "(not a string)", after.opens - before.opens);
        return 7;
    }
    fw_printf("fw: resync: XREAD given up after 50 ms; the next open skipped %lu stale bytes; ECHO got its reply\n",
              after.sync_skipped - before.sync_skipped);
    return 0;
}

/* ---------------------------------------------------------------------------------- */
int main(void) {
    rsq_client_config cfg;
    rsq_client_stats cs;
    rsq_consumer_stats ks;
    fw_uart_stats us;
    rsq_result rc;
    uint64_t t0;
    uint32_t main_sp;
    size_t stack_publish, stack_consume, stack_rest, main_depth;
    unsigned answered = 0, dead = 0;
    int status;

    fw_uart_init();
    fw_printf("fw: rsq %s on a Cortex-M4 (mps2-an386), UART0 to Redis, no heap (arena %u bytes)\n", RSQ_VERSION,
              (unsigned)FW_ARENA_SIZE);
    rsq_arena_init(&fw_arena, fw_arena_mem, sizeof fw_arena_mem);
    rsq_client_config_init(&cfg);
    cfg.url = "redis://uart0:6379"; /* the host names the link in messages; the UART leads to the server */
    cfg.transport = fw_uart_transport();
    cfg.allocator = rsq_arena_allocator(&fw_arena);
    cfg.connect_timeout_ms = 2000; /* the sync's ECHO must come back within this */
    cfg.io_timeout_ms = 10000;
    cfg.block_margin_ms = 2000;
    cfg.retry_attempts = 3;
    cfg.retry_base_ms = 100;
    cfg.retry_max_ms = 500;
    cfg.limits.max_reply = 4096;
    cfg.limits.max_bulk = 1024;
    cfg.limits.max_elements = 256;
    cfg.limits.max_depth = 8;
    if ((rc = rsq_client_init(&fw_client, &cfg)) != RSQ_OK) return fw_fail(2, "client init", rc);

    /* newlib-nano's printf family has no %zu, %lld or %j (it prints "zu" and takes the
       wrong argument for what follows), so rsq.h's texts must not use them: checked on
       a text that carries sizes, before anything is sent */
    {
        static const char want[] = "message 0: payload of 300 bytes exceeds max_payload (256)";
        static char big[300];
        rsq_producer_config pc;
        rsq_producer_config_init(&pc);
        pc.queue = "fw:telemetry";
        pc.max_payload = 256;
        rc = rsq_producer_init(&fw_telemetry, &fw_client, &pc);
        if (rc == RSQ_OK) rc = rsq_publish(&fw_telemetry, big, sizeof big, NULL);
        if (rc != RSQ_ERR_TOO_LARGE || strcmp(rsq_errstr(&fw_client), want)) {
            fw_printf("fw: FAIL: an oversized publish gave %s \"%s\", expected RSQ_ERR_TOO_LARGE \"%s\"\n",
                      rsq_result_name(rc), rsq_errstr(&fw_client), want);
            return 6;
        }
    }

    t0 = fw_millis();
    main_sp = fw_sp();
    fw_stack_paint();
    status = fw_publish_telemetry();
    stack_publish = fw_stack_peak();
    if (status == 0) {
        fw_stack_paint();
        status = fw_consume_commands(&answered, &dead);
        stack_consume = fw_stack_peak();
        if (status == 0) status = fw_check_resync();
    } else {
        stack_consume = 0;
    }
    stack_rest = fw_stack_peak(); /* the consume phase, the resync check, and since */
    rsq_client_get_stats(&fw_client, &cs);
    rsq_consumer_get_stats(&fw_commands, &ks);
    rsq_consumer_free(&fw_commands);
    rsq_client_free(&fw_client);
    fw_uart_get_stats(&us);

    fw_printf("fw: commands: %u answered, %u dead-lettered; consumer: delivered %lu acked %lu dead_lettered %lu\n",
              answered, dead, (unsigned long)ks.delivered, (unsigned long)ks.acked, (unsigned long)ks.dead_lettered);
    fw_printf("fw: client: connects %lu reconnects %lu commands %lu replies %lu bytes out %lu in %lu\n",
              (unsigned long)cs.connects, (unsigned long)cs.reconnects, (unsigned long)cs.commands,
              (unsigned long)cs.replies, (unsigned long)cs.bytes_out, (unsigned long)cs.bytes_in);
    fw_printf("fw: uart: opens %lu closes %lu failed syncs %lu (stale bytes skipped %lu); bytes out %lu in %lu; "
              "recv calls %lu (empty %lu, partial %lu); waits %lu (timed out %lu); ring peak %u of %u, stalls %lu, "
              "overruns %lu\n",
              us.opens, us.closes, us.syncs_failed, us.sync_skipped, us.bytes_out, us.bytes_in, us.recv_calls,
              us.recv_empty, us.recv_short, us.waits, us.wait_timeouts, us.ring_peak, us.ring_size, us.rx_stalls, us.overruns);
    fw_printf("fw: arena: peak %lu of %lu bytes (%lu after publishing), refused %lu, left after free %lu; "
              "heap requests %lu, default allocator calls %lu\n",
              (unsigned long)fw_arena.peak, (unsigned long)fw_arena.size, (unsigned long)fw_arena_after_publish,
              (unsigned long)fw_arena.failures, (unsigned long)fw_arena.used, (unsigned long)fw_sbrk_calls(),
              fw_default_alloc_calls());
    main_depth = fw_stack_size() - fw_stack_left_at(main_sp);
    fw_printf("fw: stack: peak %lu of %lu bytes; publish phase %lu, consume phase %lu; main's frame and the "
              "startup's above it: %lu, so rsq's deepest path: publish %lu, consume %lu\n",
              (unsigned long)(stack_rest > stack_publish ? stack_rest : stack_publish),
              (unsigned long)fw_stack_size(), (unsigned long)stack_publish,
              (unsigned long)stack_consume, (unsigned long)main_depth, (unsigned long)(stack_publish - main_depth),
              (unsigned long)(stack_consume ? stack_consume - main_depth : 0));
    fw_printf("fw: run time %lu ms\n", (unsigned long)(fw_millis() - t0));
    if (status) return status;
    if (fw_sbrk_calls() || fw_default_alloc_calls() || fw_arena.failures || fw_arena.used) {
        fw_printf("fw: FAIL: memory: heap requests %lu, default allocator calls %lu, arena refusals %lu, arena "
                  "bytes left %lu\n", (unsigned long)fw_sbrk_calls(), fw_default_alloc_calls(),
                  (unsigned long)fw_arena.failures, (unsigned long)fw_arena.used);
        return 5;
    }
    fw_puts("fw: done: ok\n");
    return 0;
}
