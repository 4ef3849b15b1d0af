/* cross_fw.c - a minimal firmware image around rsq.h, for the cross build (make cross):
   linked for a Cortex-M4 with newlib and no operating system, it shows that everything
   the client needs exists on such a target, and how much of it a program pulls in.
   The transport is a stand-in for a device's network stack: it answers every command
   with +OK. Not meant to run; it must compile, link and stay small. */
#define RSQ_NO_SOCKETS
#define RSQ_IMPLEMENTATION
#include "../rsq.h"

static volatile uint32_t fw_ticks; /* a device: incremented by a 1 ms timer interrupt */
static int fw_link;                /* the single connection's state */
static unsigned fw_owed, fw_pos;   /* replies owed; position in the current one */

static uint64_t fw_now(void *user) { (void)user; return fw_ticks; }

static rsq_result fw_open(void *user, const rsq_endpoint *ep, int timeout_ms, void **handle, char *err, size_t errlen) {
    (void)user; (void)ep; (void)timeout_ms; (void)err; (void)errlen;
    fw_owed = fw_pos = 0;
    *handle = &fw_link;
    return RSQ_OK;
}

/* Takes everything; each send is one command here (true for this program). */
static long fw_send(void *user, void *handle, const void *buf, size_t len) {
    (void)user; (void)handle; (void)buf;
    fw_owed++;
    return (long)len;
}

static long fw_recv(void *user, void *handle, void *buf, size_t len) {
    static const char ok[] = "+OK\r\n";
    size_t n = 0;
    (void)user; (void)handle;
    while (n < len && fw_owed) {
        ((char *)buf)[n++] = ok[fw_pos++];
        if (fw_pos == 5) { fw_pos = 0; fw_owed--; }
    }
    return (long)n;
}

static void fw_close(void *user, void *handle) { (void)user; (void)handle; }

int main(void);
int main(void) {
    static rsq_client c;
    rsq_client_config cfg;
    rsq_transport tp;
    const rsq_reply *r;
    memset(&tp, 0, sizeof tp); /* no wait, fd or sleep_ms */
    tp.open = fw_open;
    tp.send = fw_send;
    tp.recv = fw_recv;
    tp.close = fw_close;
    tp.now_ms = fw_now;
    rsq_client_config_init(&cfg);
    cfg.url = "redis://10.0.0.2:6379";
    cfg.transport = &tp;
    if (rsq_client_init(&c, &cfg) != RSQ_OK) return 1;
    if (rsq_command(&c, &r, "XADD", "telemetry", "*", "payload", "21.5", (char *)0) != RSQ_OK) return 2;
    rsq_client_free(&c);
    return 0;
}
