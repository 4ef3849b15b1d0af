/* uart_transport.c - an rsq transport over the board's UART0 (CMSDK APB UART), the
   way a device reaches Redis through a serial line: a UART bridge, a modem in
   transparent mode, or here qemu's -serial tcp:HOST:PORT, which joins the UART to a
   TCP connection to redis-server.

   A serial line is not a connection, and it has no flow control. What that means for
   the transport contract of rsq.h (// >>transport):
   - Receiving: the UART holds one byte. Its receive interrupt moves each byte into a
     ring (FW_RING bytes); recv hands out what the ring holds: any count from 1 to
     len, or 0 when nothing came yet (the client then calls wait, or recv again: a
     reply arrives in pieces, and the client's reader takes them as they come). When
     the ring is full the interrupt is switched off and the byte stays in the UART
     until recv makes room: the next byte then overruns the UART on real hardware
     (qemu instead holds its input back). An overrun means bytes were lost: recv
     returns RSQ_ERR_IO, the client drops the "connection" and opens it again.
   - Waiting: wait sleeps (WFI) until a byte is there or the time is up (SysTick
     wakes the core every millisecond), so the client's deadlines hold: a server
     that never answers costs io_timeout_ms, never a hang.
   - Opening: nothing tells the far end that a connection ends. Replies to commands
     the client gave up on (a timeout) may still be on their way, and would be read as
     the replies of the next commands. So open resynchronises the byte stream: it
     empties the ring, sends DISCARD (ends a MULTI the last link left open) and ECHO
     with a fresh token, and discards every byte up to that token's reply. No answer
     within the open's timeout: RSQ_ERR_TIMEOUT (the client retries with backoff,
     then gives up with that error). Limits: the ECHO needs no password, so a server
     with one would need the port to send its AUTH first; and a command cut off in
     the middle of its write (the transmitter stalled past io_timeout_ms) leaves the
     server waiting for its rest: it reads the sync as that rest and fails it.
   - Sending: the UART takes one byte at a time; send spins on TXFULL per byte (a
     byte takes 87 us at 115200 baud) and returns what went out. */
#include "board.h"
#include "../../rsq.h"
#include <stdio.h>
#include <string.h>

#define FW_RING 1024u           /* receive ring, a power of two */
#define FW_TX_SPIN_MS 5u        /* longest send waits for the transmitter per byte */

static volatile uint8_t fw_ring[FW_RING];
static volatile uint32_t fw_head, fw_tail;   /* written by the interrupt / by recv */
static volatile int fw_paused, fw_overrun;
static fw_uart_stats fw_st;
static int fw_link_open;                     /* the one link's state (the handle) */
static unsigned long fw_sync_no;

static uint32_t fw_irq_off(void) {
    uint32_t primask;
    __asm__ volatile("mrs %0, primask\n cpsid i" : "=r"(primask)::"memory");
    return primask;
}
static void fw_irq_restore(uint32_t primask) { __asm__ volatile("msr primask, %0" ::"r"(primask) : "memory"); }

/* Moves bytes from the UART into the ring (interrupts masked or in the handler). */
static void fw_uart_pull(void) {
    if (UART0_STATE & UART_STATE_RXOVR) {
        UART0_STATE = UART_STATE_RXOVR; /* write 1 to clear */
        fw_overrun = 1;
        fw_st.overruns++;
    }
    while (UART0_STATE & UART_STATE_RXFULL) {
        uint32_t fill = fw_head - fw_tail;
        if (fill == FW_RING) { /* full: leave the byte where it is, stop the interrupt */
            if (!fw_paused) fw_st.rx_stalls++;
            fw_paused = 1;
            UART0_CTRL &= ~UART_CTRL_RXINT;
            return;
        }
        fw_ring[fw_head % FW_RING] = (uint8_t)UART0_DATA;
        fw_head++;
        if (fill + 1 > fw_st.ring_peak) fw_st.ring_peak = fill + 1;
    }
}

void fw_uart_rx_isr(void);
void fw_uart_rx_isr(void) {
    UART0_INTSTATUS = UART_INT_RX | UART_INT_RXOVR; /* clear first: a byte after the loop interrupts again */
    fw_uart_pull();
}

void fw_uart_init(void) {
    UART0_BAUDDIV = FW_SYSCLK_HZ / 115200u;
    UART0_CTRL = UART_CTRL_TXEN | UART_CTRL_RXEN | UART_CTRL_RXINT;
    NVIC_ICPR0 = 1u << UART0_RX_IRQ;
    NVIC_ISER0 = 1u << UART0_RX_IRQ;
    fw_st.ring_size = FW_RING;
}

/* Takes up to len bytes from the ring; re-arms the interrupt once there is room. */
static size_t fw_ring_take(uint8_t *out, size_t len) {
    uint32_t m = fw_irq_off();
    size_t n = 0;
    while (n < len && fw_tail != fw_head) out[n++] = fw_ring[fw_tail++ % FW_RING];
    if (fw_paused && fw_head - fw_tail < FW_RING) {
        fw_paused = 0;
        fw_uart_pull(); /* the byte held in the UART, and any behind it */
        if (!fw_paused) UART0_CTRL |= UART_CTRL_RXINT;
    }
    fw_irq_restore(m);
    return n;
}

/* Sleeps until the ring has a byte (or an overrun happened), or until `until`.
   1: ready; 0: time is up. WFI with interrupts masked still wakes on a pending one,
   so a byte that comes between the check and the WFI is not slept through. */
static int fw_wait_rx(uint64_t until) {
    for (;;) {
        uint32_t m = fw_irq_off();
        int ready = fw_tail != fw_head || fw_overrun;
        if (!ready && fw_millis() < until) __asm__ volatile("wfi");
        fw_irq_restore(m); /* the pending interrupt runs here */
        if (ready) return 1;
        if (fw_millis() >= until) return 0;
    }
}

static long fw_send_bytes(const uint8_t *p, size_t len) {
    size_t n = 0;
    while (n < len) {
        if (UART0_STATE & UART_STATE_TXFULL) {
            uint64_t until = fw_millis() + FW_TX_SPIN_MS;
            while ((UART0_STATE & UART_STATE_TXFULL) && fw_millis() < until) {}
            if (UART0_STATE & UART_STATE_TXFULL) break;
        }
        UART0_DATA = p[n++];
    }
    fw_st.bytes_out += n;
    return (long)n;
}

/* --------------------------------------------------------------------------------- */
/* The transport's functions. */

static uint64_t fw_tp_now(void *user) {
    (void)user;
    return fw_millis();
}

static void fw_tp_sleep(void *user, int ms) {
    (void)user;
    if (ms > 0) fw_delay_ms((uint32_t)ms);
}

static rsq_result fw_tp_open(void *user, const rsq_endpoint *ep, int timeout_ms, void **handle, char *err,
                             size_t errlen) {
    static const char discard[] = "*1\r\n$7\r\nDISCARD\r\n";
    char token[32], cmd[64], want[40];
    size_t wlen, matched = 0, sent = 0, clen;
    uint64_t until = fw_millis() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 1);
    uint32_t m;
    (void)user;
    *handle = NULL;
    if (ep->tls) {
        snprintf(err, errlen, "UART0 link: no TLS on a serial line");
        return RSQ_ERR_UNSUPPORTED;
    }
    fw_st.opens++;
    m = fw_irq_off(); /* whatever the line still carries from before is stale */
    fw_tail = fw_head;
    fw_overrun = 0;
    fw_irq_restore(m);
    fw_ring_take(NULL, 0);
    snprintf(token, sizeof token, "rsq-sync-%lu-%lu", ++fw_sync_no, (unsigned long)(fw_millis() & 0xffffffu));
    clen = (size_t)snprintf(cmd, sizeof cmd, "%s*2\r\n$4\r\nECHO\r\n$%u\r\n%s\r\n", discard,
                            (unsigned)strlen(token), token);
    wlen = (size_t)snprintf(want, sizeof want, "$%u\r\n%s\r\n", (unsigned)strlen(token), token);
    while (sent < clen && fw_millis() < until) sent += (size_t)fw_send_bytes((const uint8_t *)cmd + sent, clen - sent);
    /* Skip everything up to the token's reply. '$' starts it and occurs nowhere
       else in it, so a mismatch restarts the match at this byte or the next. */
    while (sent == clen && matched < wlen && fw_wait_rx(until)) {
        uint8_t b;
        if (fw_overrun) { fw_overrun = 0; matched = 0; }
        while (matched < wlen && fw_ring_take(&b, 1) == 1) {
            fw_st.bytes_in++;
            if ((char)b == want[matched]) matched++;
            else {
                fw_st.sync_skipped += matched + ((char)b != want[0]);
                matched = (char)b == want[0];
            }
        }
    }
    if (matched < wlen) {
        fw_st.syncs_failed++;
        snprintf(err, errlen, "no answer from the server over UART0 within %d ms (%s to %s:%d)", timeout_ms,
                 sent < clen ? "could not send the sync" : "sync ECHO", ep->host ? ep->host : "?", ep->port);
        return RSQ_ERR_TIMEOUT;
    }
    fw_link_open = 1;
    *handle = &fw_link_open;
    return RSQ_OK;
}

static long fw_tp_send(void *user, void *handle, const void *buf, size_t len) {
    (void)user;
    (void)handle;
    return fw_send_bytes((const uint8_t *)buf, len);
}

static long fw_tp_recv(void *user, void *handle, void *buf, size_t len) {
    size_t n;
    (void)user;
    (void)handle;
    fw_st.recv_calls++;
    if (fw_overrun) { /* bytes were lost: this byte stream cannot be parsed any more */
        fw_overrun = 0;
        return (long)RSQ_ERR_IO;
    }
    n = fw_ring_take((uint8_t *)buf, len);
    fw_st.bytes_in += n;
    if (n == 0) fw_st.recv_empty++;
    else if (n < len) fw_st.recv_short++;
    return (long)n;
}

static rsq_result fw_tp_wait(void *user, void *handle, int events, int timeout_ms) {
    uint64_t until = fw_millis() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
    (void)user;
    (void)handle;
    fw_st.waits++;
    if (events & RSQ_WANT_WRITE) { /* the transmitter frees up within a byte's time */
        while ((UART0_STATE & UART_STATE_TXFULL) && fw_millis() < until) {}
        if (!(UART0_STATE & UART_STATE_TXFULL)) return RSQ_OK;
    } else if (fw_wait_rx(until)) {
        return RSQ_OK;
    }
    fw_st.wait_timeouts++;
    return RSQ_ERR_TIMEOUT;
}

static void fw_tp_close(void *user, void *handle) {
    (void)user;
    (void)handle;
    fw_link_open = 0;
    fw_st.closes++;
}

static const rsq_transport fw_uart_tp = {
    fw_tp_open, fw_tp_send, fw_tp_recv, fw_tp_wait, fw_tp_close,
    NULL,        /* fd: no descriptor */
    fw_tp_now, fw_tp_sleep,
    NULL,        /* user */
};

const rsq_transport *fw_uart_transport(void) { return &fw_uart_tp; }

void fw_uart_get_stats(fw_uart_stats *out) { *out = fw_st; }
