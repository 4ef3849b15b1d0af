/* poll_loop.c - rsq in an event loop: one thread, one poll(), two clients, no blocking.
   Build: cc examples/poll_loop.c -o poll_loop
   Run:   ./poll_loop [redis://127.0.0.1:6379] [MESSAGES]

   A publisher client appends XADDs in small batches on a timer, writes them with
   rsq_flush(c, RSQ_TIMEOUT_NONBLOCK) and collects the IDs with rsq_read_reply(...,
   RSQ_TIMEOUT_NONBLOCK). A subscriber client keeps one `XREAD BLOCK` outstanding and
   prints what arrives; when a read comes back (entries, or nil after the BLOCK time)
   it issues the next one. Both sit in one poll() on rsq_client_fd(), asking for the
   events rsq_client_wants() names. The loop ends once MESSAGES entries (default 50)
   have gone all the way round: published, confirmed, and received in order.

   The rules of the non-blocking API, as used here:
   - rsq_append only buffers (it connects if needed: connect first, outside the loop,
     since connecting blocks up to connect_timeout_ms).
   - rsq_flush(c, RSQ_TIMEOUT_NONBLOCK) writes what the socket takes: RSQ_OK when the
     buffer is out, RSQ_AGAIN when bytes remain (rsq_client_wants then has WANT_WRITE).
   - rsq_read_reply(c, &r, RSQ_TIMEOUT_NONBLOCK): RSQ_OK with a reply, RSQ_AGAIN when
     none is complete yet. Call it until RSQ_AGAIN after each wake-up: replies already
     buffered inside the client do not make the descriptor readable again. Call it
     only while rsq_pending_replies(c) > 0 (else RSQ_ERR_STATE).
   - Errors (RSQ_ERR_IO...) close the connection; the next rsq_append reconnects. */
#define RSQ_IMPLEMENTATION
#include "../rsq.h" /* first: it enables the POSIX names this file uses, too */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define STREAM "poll_loop:events"
#define BATCH 5        /* XADDs per timer tick */
#define TICK_MS 10     /* publisher timer */
#define BLOCK_MS "500" /* subscriber's XREAD BLOCK time */
#define GIVE_UP_MS 20000

static long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static short poll_events(int wants) {
    return (short)(((wants & RSQ_WANT_READ) ? POLLIN : 0) | ((wants & RSQ_WANT_WRITE) ? POLLOUT : 0));
}

static int open_client(rsq_client *c, const char *url) {
    rsq_client_config cfg;
    rsq_client_config_init(&cfg);
    cfg.url = url;
    if (rsq_client_init(c, &cfg) != RSQ_OK || rsq_connect(c) != RSQ_OK) {
        fprintf(stderr, "poll_loop: %s: %s\n", url, rsq_errstr(c));
        return -1;
    }
    return 0;
}

int main(int argc, char **argv) {
    const char *url = argc > 1 ? argv[1] : "redis://127.0.0.1:6379";
    int total = argc > 2 ? atoi(argv[2]) : 50;
    rsq_client pub, sub;
    const rsq_reply *r;
    rsq_result rc = RSQ_OK;
    int published = 0, confirmed = 0, received = 0, reading = 0, wakeups = 0, status = 1;
    long long next_tick, start;
    char last_id[64] = "0-0"; /* the subscriber reads everything after this ID */
    const char *who = "subscriber";

    if (total <= 0) {
        fprintf(stderr, "usage: poll_loop [URL] [MESSAGES]\n");
        return 2;
    }
    if (open_client(&pub, url) != 0) { rsq_client_free(&pub); return 1; }
    if (open_client(&sub, url) != 0) { rsq_client_free(&pub); rsq_client_free(&sub); return 1; }
    /* a fresh stream, so that "0-0" means "from our first message" (setup may block) */
    who = "publisher";
    if ((rc = rsq_command(&pub, &r, "DEL", STREAM, (char *)0)) != RSQ_OK) goto done;

    start = now_ms();
    next_tick = start;
    while (received < total || confirmed < total) {
        struct pollfd pfd[2];
        long long now = now_ms();
        int timeout, i;

        if (now - start > GIVE_UP_MS) {
            fprintf(stderr, "poll_loop: gave up after %d ms: %d published, %d confirmed, %d received\n",
                    GIVE_UP_MS, published, confirmed, received);
            goto done;
        }
        /* publisher: on each tick, buffer a batch of XADDs and push out what the socket takes */
        if (published < total && now >= next_tick) {
            for (i = 0; i < BATCH && published < total; i++) {
                char body[32];
                snprintf(body, sizeof body, "event %d", published + 1);
                who = "publisher";
                if ((rc = rsq_append(&pub, "XADD", STREAM, "*", "payload", body, (char *)0)) != RSQ_OK) goto done;
                published++;
            }
            next_tick = now + TICK_MS;
        }
        who = "publisher";
        rc = rsq_flush(&pub, RSQ_TIMEOUT_NONBLOCK);
        if (rc != RSQ_OK && rc != RSQ_AGAIN) goto done;
        /* subscriber: always one XREAD BLOCK in flight */
        if (!reading && received < total) {
            who = "subscriber";
            rc = rsq_append(&sub, "XREAD", "COUNT", "100", "BLOCK", BLOCK_MS, "STREAMS", STREAM, last_id, (char *)0);
            if (rc != RSQ_OK) goto done;
            reading = 1;
        }
        who = "subscriber";
        rc = rsq_flush(&sub, RSQ_TIMEOUT_NONBLOCK);
        if (rc != RSQ_OK && rc != RSQ_AGAIN) goto done;

        /* sleep until a socket is ready or the publisher's next tick */
        pfd[0].fd = rsq_client_fd(&pub);
        pfd[0].events = poll_events(rsq_client_wants(&pub));
        pfd[1].fd = rsq_client_fd(&sub);
        pfd[1].events = poll_events(rsq_client_wants(&sub));
        pfd[0].revents = pfd[1].revents = 0;
        timeout = published < total ? (int)(next_tick > now ? next_tick - now : 0) : 1000;
        if (poll(pfd, 2, timeout) < 0) { perror("poll_loop: poll"); goto done; }
        wakeups++;

        /* publisher: collect the IDs of confirmed XADDs */
        who = "publisher";
        while (rsq_pending_replies(&pub) > 0 && (rc = rsq_read_reply(&pub, &r, RSQ_TIMEOUT_NONBLOCK)) == RSQ_OK)
            confirmed++;
        if (rc != RSQ_OK && rc != RSQ_AGAIN) goto done;

        /* subscriber: a read came back? print its entries, then the next read goes out */
        who = "subscriber";
        while (rsq_pending_replies(&sub) > 0 && (rc = rsq_read_reply(&sub, &r, RSQ_TIMEOUT_NONBLOCK)) == RSQ_OK) {
            reading = 0;
            if (r->type == RSQ_REPLY_NIL) continue; /* BLOCK time passed with nothing new */
            /* [[stream, [[id, [field, value, ...]], ...]]] */
            for (i = 0; i < (int)r->element[0].element[1].len; i++) {
                const rsq_reply *e = &r->element[0].element[1].element[i];
                const rsq_reply *payload = rsq_reply_get(&e->element[1], "payload");
                char want[32];
                snprintf(want, sizeof want, "event %d", received + 1);
                if (!payload || strcmp(payload->str, want) != 0) {
                    fprintf(stderr, "poll_loop: expected \"%s\", got \"%s\" (out of order?)\n", want,
                            payload ? payload->str : "(no payload)");
                    goto done;
                }
                printf("received %s %s\n", e->element[0].str, payload->str);
                snprintf(last_id, sizeof last_id, "%s", e->element[0].str);
                received++;
            }
        }
        if (rc != RSQ_OK && rc != RSQ_AGAIN) goto done;
    }
    printf("round trip: %d published, %d confirmed, %d received (%d poll wake-ups)\n", published, confirmed,
           received, wakeups);
    status = 0;
done:
    if (status && rc != RSQ_OK && rc != RSQ_AGAIN)
        fprintf(stderr, "poll_loop: %s: %s\n", who, rsq_errstr(who[0] == 'p' ? &pub : &sub));
    rsq_client_free(&pub);
    rsq_client_free(&sub);
    return status;
}
