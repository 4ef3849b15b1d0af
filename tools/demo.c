/* demo.c - `make demo`: rsq end to end on a private redis-server.

   1. starts redis-server from a temp dir on a free port (stopped by its pid at the end)
   2. publishes a batch of jobs, three of them poison
   3. runs two workers in one consumer group
   4. SIGKILLs worker A in the middle of its work, holding unacknowledged jobs
   5. worker B reclaims A's jobs after the visibility timeout and finishes everything;
      the poison jobs end in the dead-letter stream after 3 deliveries
   6. prints a summary and stops the server */
#define _DEFAULT_SOURCE 1
#define RSQ_IMPLEMENTATION
#include "../rsq.h"
#include "../tests/server.h"
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define JOBS 2000
#define VISIBILITY_MS 1500

static rsq_consumer *g_worker;
static int g_report = -1;
static char g_name = '?';

static void on_term(int sig) { (void)sig; if (g_worker) rsq_consumer_stop(g_worker); }

/* A job takes about a millisecond; "poison" jobs always fail. */
static rsq_action handle(void *user, rsq_consumer *k, const rsq_message *m) {
    char line[64];
    int n;
    (void)user;
    usleep(1000);
    if (m->payload && !strcmp(m->payload, "poison")) {
        rsq_consumer_set_error(k, "cannot parse job");
        return RSQ_ACTION_RETRY;
    }
    n = snprintf(line, sizeof line, "%c %s\n", g_name, m->payload ? m->payload : "");
    if (write(g_report, line, (size_t)n) != n) return RSQ_ACTION_RETRY;
    return RSQ_ACTION_ACK;
}

static pid_t start_worker(const char *url, char name, int report) {
    pid_t pid = fork();
    if (pid == 0) {
        rsq_client c;
        rsq_client_config cfg;
        rsq_consumer k;
        rsq_consumer_config cc;
        rsq_consumer_stats st;
        char cname[16], line[128];
        struct sigaction sa;
        int n;
        g_name = name;
        g_report = report;
        rsq_client_config_init(&cfg);
        cfg.url = url;
        rsq_consumer_config_init(&cc);
        snprintf(cname, sizeof cname, "worker-%c", name);
        cc.queue = "demo:jobs";
        cc.group = "workers";
        cc.name = cname;
        cc.start = RSQ_START_ALL;
        cc.visibility_ms = VISIBILITY_MS;
        cc.reclaim_interval_ms = 250;
        cc.max_deliveries = 3;
        if (rsq_client_init(&c, &cfg) != RSQ_OK || rsq_consumer_init(&k, &c, &cc) != RSQ_OK) _exit(2);
        g_worker = &k;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_term;
        sigaction(SIGTERM, &sa, NULL);
        rsq_consumer_run(&k, handle, NULL);
        rsq_consumer_get_stats(&k, &st);
        n = snprintf(line, sizeof line, "stats %c %llu %llu\n", name,
                     (unsigned long long)st.reclaimed, (unsigned long long)st.dead_lettered);
        if (write(report, line, (size_t)n) != n) _exit(3);
        rsq_consumer_free(&k);
        rsq_client_free(&c);
        _exit(0);
    }
    return pid;
}

static long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int main(void) {
    srv s;
    rsq_client c;
    rsq_client_config cfg;
    rsq_producer p;
    rsq_producer_config pc;
    static rsq_outgoing jobs[JOBS];
    static char bodies[JOBS][16];
    static int seen[JOBS];
    int fds[2], i, rc = 1, by_a = 0, by_b = 0, unique = 0, dups = 0, killed = 0;
    unsigned long long reclaimed = 0, dead = 0;
    pid_t a, b;
    char buf[8192], carry[64] = "";
    long long t0, dlq_len = 0;

    signal(SIGPIPE, SIG_IGN);
    if (srv_start(&s, NULL) != 0) { fprintf(stderr, "demo: could not start redis-server\n"); return 1; }
    printf("demo: private redis-server (pid %d) on %s\n", (int)s.pid, s.url);
    rsq_client_config_init(&cfg);
    cfg.url = s.url;
    rsq_client_init(&c, &cfg);
    rsq_producer_config_init(&pc);
    pc.queue = "demo:jobs";
    if (rsq_producer_init(&p, &c, &pc) != RSQ_OK) { fprintf(stderr, "demo: %s\n", rsq_errstr(&c)); goto out; }

    memset(jobs, 0, sizeof jobs);
    for (i = 0; i < JOBS; i++) {
        if (i == 100 || i == 900 || i == 1500) strcpy(bodies[i], "poison");
        else snprintf(bodies[i], sizeof bodies[i], "%d", i);
        jobs[i].payload = bodies[i];
        jobs[i].payload_len = strlen(bodies[i]);
    }
    t0 = now_ms();
    if (rsq_publish_batch(&p, jobs, JOBS, NULL, NULL) != RSQ_OK) { fprintf(stderr, "demo: publish: %s\n", rsq_errstr(&c)); goto out; }
    printf("demo: published %d jobs (3 of them poison) in one pipelined batch, %lld ms\n", JOBS, now_ms() - t0);

    if (pipe(fds) != 0) goto out;
    a = start_worker(s.url, 'A', fds[1]);
    b = start_worker(s.url, 'B', fds[1]);
    close(fds[1]);
    printf("demo: workers A (pid %d) and B (pid %d) share the group \"workers\" (visibility %d ms)\n",
           (int)a, (int)b, VISIBILITY_MS);

    /* read progress lines; kill A after it has done 300 jobs; stop B when all is done */
    t0 = now_ms();
    for (;;) {
        struct pollfd pfd;
        ssize_t n;
        pfd.fd = fds[0];
        pfd.events = POLLIN;
        if (poll(&pfd, 1, 200) > 0) {
            char *line, *nl;
            size_t have = strlen(carry);
            n = read(fds[0], buf + have, sizeof buf - 1 - have);
            if (n <= 0) break;
            memcpy(buf, carry, have);
            buf[have + (size_t)n] = '\0';
            line = buf;
            while ((nl = strchr(line, '\n'))) {
                *nl = '\0';
                if (!strncmp(line, "stats ", 6)) {
                    unsigned long long r = 0, d = 0;
                    char who = '?';
                    if (sscanf(line + 6, "%c %llu %llu", &who, &r, &d) == 3) { reclaimed += r; dead += d; }
                } else if (line[0] == 'A' || line[0] == 'B') {
                    int v = atoi(line + 2);
                    if (line[0] == 'A') by_a++; else by_b++;
                    if (v >= 0 && v < JOBS) { if (seen[v]++) dups++; else unique++; }
                }
                line = nl + 1;
            }
            {   /* keep a partial last line for the next read */
                size_t rest = strlen(line);
                if (rest >= sizeof carry) rest = sizeof carry - 1;
                memcpy(carry, line, rest);
                carry[rest] = '\0';
            }
        }
        if (!killed && by_a >= 300) {
            kill(a, SIGKILL);
            waitpid(a, NULL, 0);
            killed = 1;
            printf("demo: SIGKILLed worker A after %d jobs, while it held unacknowledged jobs\n", by_a);
        }
        if (killed == 1 && unique >= JOBS - 3) {
            /* all good jobs done; give the poison jobs their last deliveries, then stop B */
            rsq_stream_length(&c, "{demo:jobs}:dlq", &dlq_len);
            if (dlq_len >= 3 || now_ms() - t0 > 60000) { kill(b, SIGTERM); killed = 2; }
        }
        if (now_ms() - t0 > 90000) { fprintf(stderr, "demo: timed out\n"); kill(b, SIGKILL); break; }
    }
    waitpid(b, NULL, 0);
    close(fds[0]);
    rsq_stream_length(&c, "{demo:jobs}:dlq", &dlq_len);
    {
        rsq_stream_info si;
        rsq_group_info g[2];
        size_t ng = 0;
        rsq_stream_stats(&c, "demo:jobs", &si, g, 2, &ng);
        printf("\nsummary\n");
        printf("  published       %d\n", JOBS);
        printf("  handled         %d distinct (A %d, B %d; %d handled twice: A was killed between\n"
               "                  handling and acking them, at-least-once)\n", unique, by_a, by_b, dups);
        printf("  reclaimed       %llu jobs taken over by B from the killed worker A\n", reclaimed);
        printf("  dead-lettered   %lld poison jobs, after 3 deliveries each (stream {demo:jobs}:dlq)\n", dlq_len);
        (void)dead; /* per-worker counts: a killed worker takes its own with it */
        printf("  still pending   %lld\n", ng ? g[0].pending : -1LL);
        rc = (unique == JOBS - 3 && dlq_len == 3 && reclaimed > 0 && ng && g[0].pending == 0) ? 0 : 1;
        printf("  lost            %d\n", JOBS - 3 - unique);
    }
out:
    rsq_client_free(&c);
    srv_stop(&s, 0);
    printf("demo: server stopped%s\n", rc ? " (demo FAILED)" : "");
    return rc;
}
