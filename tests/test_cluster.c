/* test_cluster.c - rsq on Redis Cluster: a private cluster of 3 masters with a replica
   each (redis-server with cluster-enabled on free ports, joined by redis-cli --cluster
   create, stopped by pid), slot routing, MOVED and ASK during a slot migration, and a
   sharded queue of 100k messages over 6 shards consumed by 3 worker processes while a
   slot migrates and a master is killed. */
#define _DEFAULT_SOURCE 1
#include "t.h"
#include "server.h"
#include "../rsq.h"
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NODES 6
static srv N[NODES];
static int have_cluster;
static char seed_url[64];

static long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void cfg_for(rsq_client_config *cfg, const char *url, int forever) {
    rsq_client_config_init(cfg);
    cfg->url = url;
    cfg->retry_base_ms = 20;
    cfg->retry_max_ms = 500;
    cfg->connect_timeout_ms = 1000;
    cfg->io_timeout_ms = 3000;
    if (forever) cfg->retry_attempts = RSQ_RETRY_FOREVER;
}

static int cluster_ok(int i) {
    char out[2048];
    if (N[i].pid <= 0) return 0;
    srv_cli(&N[i], out, sizeof out, "CLUSTER INFO");
    return strstr(out, "cluster_state:ok") != NULL && strstr(out, "cluster_slots_ok:16384") != NULL;
}

static int cluster_start(void) {
    char cmd[1024];
    size_t w = 0;
    int i, all;
    long long t0;
    if (!srv_which("redis-cli")) return 0;
    srand((unsigned)getpid());
    for (i = 0; i < NODES; i++) {
        int port = srv_free_cluster_port();
        if (!port || srv_start_at(&N[i], port, "cluster-enabled yes\ncluster-config-file nodes.conf\n"
                                                "cluster-node-timeout 1000\ncluster-replica-validity-factor 0\nappendonly yes\n") != 0)
            return 0;
    }
    w += (size_t)snprintf(cmd + w, sizeof cmd - w, "redis-cli --cluster create");
    for (i = 0; i < NODES; i++) w += (size_t)snprintf(cmd + w, sizeof cmd - w, " 127.0.0.1:%d", N[i].port);
    snprintf(cmd + w, sizeof cmd - w, " --cluster-replicas 1 --cluster-yes > %s/create.log 2>&1", N[0].dir);
    if (system(cmd) != 0) return 0;
    t0 = now_ms();
    do {
        usleep(100000);
        for (all = 1, i = 0; i < NODES; i++) all &= cluster_ok(i);
    } while (!all && now_ms() - t0 < 30000);
    snprintf(seed_url, sizeof seed_url, "redis://127.0.0.1:%d", N[0].port);
    return all;
}

static void cluster_stop(void) {
    int i;
    for (i = 0; i < NODES; i++) if (N[i].dir[0]) srv_stop(&N[i], 0);
}

/* The node index serving a slot, from CLUSTER SLOTS asked of a live node. */
static int owner_of(int slot) {
    int i, j;
    for (i = 0; i < NODES; i++) {
        rsq_client c;
        rsq_client_config cfg;
        const rsq_reply *r;
        char url[64];
        int found = -1;
        size_t k;
        if (N[i].pid <= 0) continue;
        snprintf(url, sizeof url, "redis://127.0.0.1:%d", N[i].port);
        cfg_for(&cfg, url, 0);
        cfg.retry_attempts = 1;
        rsq_client_init(&c, &cfg);
        if (rsq_command(&c, &r, "CLUSTER", "SLOTS", (char *)0) == RSQ_OK) {
            for (k = 0; k < r->len; k++) {
                const rsq_reply *e = &r->element[k];
                if (e->element[0].integer <= slot && slot <= e->element[1].integer)
                    for (j = 0; j < NODES; j++) if (N[j].port == e->element[2].element[1].integer) found = j;
            }
        }
        rsq_client_free(&c);
        if (found >= 0) return found;
    }
    return -1;
}

static void node_id(int i, char *out, size_t cap) {
    srv_cli(&N[i], out, cap, "CLUSTER MYID");
}

static int is_master(int i) {
    char out[256];
    if (N[i].pid <= 0) return 0;
    srv_cli(&N[i], out, sizeof out, "ROLE");
    return !strncmp(out, "master", 6);
}

/* Moves `slot` from node src to node dst, key by key; with `pause_ms` between the
   steps, so that clients meet ASK (keys already moved) and then MOVED. */
static int migrate_slot(int slot, int src, int dst, int pause_ms) {
    char sid[64], did[64], keys[8192], out[512];
    int i, guard = 0;
    node_id(src, sid, sizeof sid);
    node_id(dst, did, sizeof did);
    srv_cli(&N[dst], out, sizeof out, "CLUSTER SETSLOT %d IMPORTING %s", slot, sid);
    srv_cli(&N[src], out, sizeof out, "CLUSTER SETSLOT %d MIGRATING %s", slot, did);
    for (;;) {
        char *k, *save = NULL;
        srv_cli(&N[src], keys, sizeof keys, "CLUSTER GETKEYSINSLOT %d 100", slot);
        if (!keys[0] || ++guard > 100) break;
        for (k = strtok_r(keys, "\n", &save); k; k = strtok_r(NULL, "\n", &save)) {
            srv_cli(&N[src], out, sizeof out, "MIGRATE 127.0.0.1 %d '%s' 0 5000", N[dst].port, k);
            if (pause_ms) usleep((useconds_t)pause_ms * 1000);
        }
    }
    if (pause_ms) usleep((useconds_t)pause_ms * 1000);
    for (i = 0; i < NODES; i++)
        if (is_master(i)) srv_cli(&N[i], out, sizeof out, "CLUSTER SETSLOT %d NODE %s", slot, did);
    return 1;
}

static void test_cluster_slots_and_keys(void) {
    char k1[RSQ_KEY_MAX];
    CHECK_EQ_INT(rsq_key_slot("foo", 3), 12182);
    CHECK_EQ_INT(rsq_key_slot("somekey", 7), 11058);
    CHECK_EQ_INT(rsq_key_slot("{user1000}.following", 20), rsq_key_slot("{user1000}.followers", 20));
    CHECK_EQ_INT(rsq_key_slot("foo{}{bar}", 10), rsq_key_slot("foo{}{bar}", 10));
    CHECK(rsq_key_slot("{}x", 3) != rsq_key_slot("x", 1) || 1);
    /* the keys of one queue share a slot; shards differ */
    rsq_queue_key(k1, sizeof k1, "cq", 0, 2, RSQ_KEY_STREAM);
    CHECK_EQ_INT(rsq_key_slot(k1, strlen(k1)), rsq_key_slot("cq", 2));
    rsq_queue_key(k1, sizeof k1, "cq", 0, 0, RSQ_KEY_DEAD_LETTER);
    CHECK_EQ_INT(rsq_key_slot(k1, strlen(k1)), rsq_key_slot("cq", 2));
}

static void test_cluster_routing_moved_and_ask(void) {
    rsq_client c;
    rsq_client_config cfg;
    rsq_producer p;
    rsq_producer_config pc;
    const rsq_reply *r;
    int i, ok = 1, owners[NODES] = { 0 }, distinct = 0, src, dst = -1, slot;
    char key[32];
    REQUIRE(have_cluster);
    cfg_for(&cfg, seed_url, 0);
    REQUIRE(rsq_client_init(&c, &cfg) == RSQ_OK);
    for (i = 0; i < 50; i++) {
        char v[16];
        snprintf(key, sizeof key, "rk:%d", i);
        snprintf(v, sizeof v, "%d", i);
        ok &= rsq_command(&c, &r, "SET", key, v, (char *)0) == RSQ_OK;
    }
    CHECK(ok);
    CHECK(rsq_client_is_cluster(&c));
    for (i = 0, ok = 1; i < 50; i++) {
        char v[16];
        snprintf(key, sizeof key, "rk:%d", i);
        snprintf(v, sizeof v, "%d", i);
        ok &= rsq_command(&c, &r, "GET", key, (char *)0) == RSQ_OK && rsq_reply_is(r, v);
    }
    CHECK(ok);
    /* a sharded queue: the shards land on different masters, pipelines span them */
    rsq_producer_config_init(&pc);
    pc.queue = "cq:route";
    pc.shards = 6;
    REQUIRE(rsq_producer_init(&p, &c, &pc) == RSQ_OK);
    {
        rsq_outgoing m[600];
        rsq_result res[600];
        memset(m, 0, sizeof m);
        for (i = 0; i < 600; i++) { m[i].payload = "x"; m[i].payload_len = 1; }
        CHECK_RC(rsq_publish_batch(&p, m, 600, NULL, res), RSQ_OK);
    }
    for (i = 0; i < 6; i++) {
        long long len = -1;
        char k[RSQ_KEY_MAX];
        int o;
        rsq_queue_key(k, sizeof k, "cq:route", i, 0, RSQ_KEY_STREAM);
        CHECK_RC(rsq_stream_length(&c, k, &len), RSQ_OK);
        CHECK_EQ_INT(len, 100);
        o = owner_of(rsq_key_slot(k, strlen(k)));
        if (o >= 0 && !owners[o]++) distinct++;
    }
    CHECK(distinct >= 2);
    /* CROSSSLOT is the caller's error in cluster mode */
    CHECK_RC(rsq_command(&c, &r, "MSET", "rk:a", "1", "rk:b", "2", (char *)0), RSQ_ERR_SERVER);
    CHECK(strncmp(rsq_errstr(&c), "CROSSSLOT", 9) == 0);
    /* a slot migrating under the client: ASK while it moves, MOVED after */
    rsq_command(&c, &r, "SET", "mig:key", "before", (char *)0);
    slot = rsq_key_slot("mig:key", 7);
    src = owner_of(slot);
    for (i = 0; i < NODES; i++) if (i != src && is_master(i)) { dst = i; break; }
    REQUIRE(src >= 0 && dst >= 0);
    {
        char sid[64], did[64], out[256];
        node_id(src, sid, sizeof sid);
        node_id(dst, did, sizeof did);
        srv_cli(&N[dst], out, sizeof out, "CLUSTER SETSLOT %d IMPORTING %s", slot, sid);
        srv_cli(&N[src], out, sizeof out, "CLUSTER SETSLOT %d MIGRATING %s", slot, did);
        srv_cli(&N[src], out, sizeof out, "MIGRATE 127.0.0.1 %d mig:key 0 5000", N[dst].port);
        CHECK_RC(rsq_command(&c, &r, "GET", "mig:key", (char *)0), RSQ_OK); /* via ASK */
        CHECK(rsq_reply_is(r, "before"));
        CHECK_RC(rsq_command(&c, &r, "SET", "mig:key", "during", (char *)0), RSQ_OK);
        for (i = 0; i < NODES; i++) if (is_master(i)) srv_cli(&N[i], out, sizeof out, "CLUSTER SETSLOT %d NODE %s", slot, did);
        CHECK_RC(rsq_command(&c, &r, "GET", "mig:key", (char *)0), RSQ_OK); /* via MOVED */
        CHECK(rsq_reply_is(r, "during"));
        CHECK_EQ_INT(owner_of(slot), dst);
    }
    rsq_client_free(&c);
}

/* ---- the sharded queue under migration and failover ---- */
#define MSGS_FULL 100000
static long MSGS = MSGS_FULL; /* 10000 when RSQ_TEST_SLOW is set (valgrind) */
static rsq_consumer *g_cons;
static int g_log = -1;
static void on_term(int sig) { (void)sig; if (g_cons) rsq_consumer_stop(g_cons); }
static rsq_action log_and_ack(void *user, rsq_consumer *k, const rsq_message *m) {
    char line[32];
    int n = snprintf(line, sizeof line, "%.*s\n", (int)m->payload_len, m->payload ? m->payload : "");
    (void)user;
    (void)k;
    return write(g_log, line, (size_t)n) == n ? RSQ_ACTION_ACK : RSQ_ACTION_RETRY;
}

static pid_t worker(int i) {
    pid_t pid = fork();
    if (pid == 0) {
        rsq_client c;
        rsq_client_config cfg;
        rsq_consumer k;
        rsq_consumer_config cc;
        struct sigaction sa;
        char path[400], name[16];
        snprintf(path, sizeof path, "%s/w%d.log", N[0].dir, i);
        g_log = open(path, O_WRONLY | O_CREAT | O_APPEND, 0600);
        cfg_for(&cfg, seed_url, 1);
        rsq_client_init(&c, &cfg);
        rsq_consumer_config_init(&cc);
        snprintf(name, sizeof name, "w%d", i);
        cc.queue = "cq"; cc.group = "g"; cc.name = name; cc.shards = 6; cc.start = RSQ_START_ALL;
        cc.count = 64; cc.visibility_ms = 3000; cc.reclaim_interval_ms = 500; cc.max_deliveries = -1;
        if (rsq_consumer_init(&k, &c, &cc) != RSQ_OK) _exit(2);
        g_cons = &k;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_term;
        sigaction(SIGTERM, &sa, NULL);
        _exit(rsq_consumer_run(&k, log_and_ack, NULL) == RSQ_STOPPED ? 0 : 3);
    }
    return pid;
}

static pid_t producer_proc(void) {
    pid_t pid = fork();
    if (pid == 0) {
        rsq_client c;
        rsq_client_config cfg;
        rsq_producer p;
        rsq_producer_config pc;
        static rsq_outgoing m[500];
        static char body[500][24];
        rsq_result res[500];
        long next = 0;
        cfg_for(&cfg, seed_url, 1);
        rsq_client_init(&c, &cfg);
        rsq_producer_config_init(&pc);
        pc.queue = "cq";
        pc.shards = 6;
        pc.wait_replicas = 1; /* acknowledged writes are on a replica before we go on */
        pc.wait_timeout_ms = 500;
        if (rsq_producer_init(&p, &c, &pc) != RSQ_OK) { fprintf(stderr, "    producer: init: %s\n", rsq_errstr(&c)); _exit(2); }
        while (next < MSGS) {
            int n = 0, i;
            memset(m, 0, sizeof m);
            for (; n < 500 && next + n < MSGS; n++) {
                snprintf(body[n], sizeof body[n], "%ld", next + n);
                m[n].payload = body[n];
                m[n].payload_len = strlen(body[n]);
            }
            for (i = 0; i < 50; i++) {
                /* until the batch is confirmed; RSQ_ERR_REPLICAS means published but not
                   (yet) on a replica: after the failover the new master has none */
                rsq_result rc = rsq_publish_batch(&p, m, (size_t)n, NULL, res);
                /* a batch not confirmed on a replica may die with its master in the
                   failover: publish it again (at-least-once: duplicates allowed) */
                if (rc == RSQ_OK && rsq_producer_after_step(&p, NULL, NULL) == RSQ_OK) break;
                if (rc != RSQ_OK) fprintf(stderr, "    producer: batch at %ld: %s (%s), again\n", next, rsq_result_name(rc), rsq_errstr(&c));
                usleep(100000);
            }
            if (i == 50) { fprintf(stderr, "    producer: gave up at %ld\n", next); _exit(4); }
            next += n;
        }
        rsq_client_free(&c);
        _exit(0);
    }
    return pid;
}

/* Shard s of queue cq: its stream's figures and its group's; 0 when unknown. */
static int shard_stats(rsq_client *admin, int s, rsq_stream_info *si, rsq_group_info *g) {
    char k[RSQ_KEY_MAX];
    rsq_group_info gs[2];
    size_t n = 0;
    rsq_queue_key(k, sizeof k, "cq", s, 0, RSQ_KEY_STREAM);
    if (rsq_stream_stats(admin, k, si, gs, 2, &n) != RSQ_OK || n == 0) return 0;
    *g = gs[0];
    return 1;
}

static int drained(rsq_client *admin) {
    int s;
    for (s = 0; s < 6; s++) {
        rsq_stream_info si;
        rsq_group_info g;
        if (!shard_stats(admin, s, &si, &g) || g.pending || g.lag) return 0;
    }
    return 1;
}

static void test_cluster_sharded_queue_migration_and_failover(void) {
    pid_t w[3], prod;
    rsq_client admin;
    rsq_client_config cfg;
    int i, st, victim = -1, src, dst = -1, slot, done = 0, failed_over = 0;
    long long t0, unique = 0, lines = 0;
    char k1[RSQ_KEY_MAX], k3[RSQ_KEY_MAX];
    static unsigned char seen[MSGS_FULL];
    REQUIRE(have_cluster);
    cfg_for(&cfg, seed_url, 1);
    rsq_client_init(&admin, &cfg);
    for (i = 0; i < 3; i++) w[i] = worker(i);
    t0 = now_ms();
    prod = producer_proc();
    /* a shard's slot migrates while messages flow */
    usleep(800000);
    rsq_queue_key(k1, sizeof k1, "cq", 1, 0, RSQ_KEY_STREAM);
    slot = rsq_key_slot(k1, strlen(k1));
    src = owner_of(slot);
    for (i = 0; i < NODES; i++) if (i != src && is_master(i)) { dst = i; break; }
    CHECK(src >= 0 && dst >= 0);
    if (src >= 0 && dst >= 0) migrate_slot(slot, src, dst, 20);
    CHECK_EQ_INT(owner_of(slot), dst);
    /* then a master dies: its replica takes over */
    rsq_queue_key(k3, sizeof k3, "cq", 3, 0, RSQ_KEY_STREAM);
    victim = owner_of(rsq_key_slot(k3, strlen(k3)));
    CHECK(victim >= 0);
    if (victim >= 0) {
        long long tk = now_ms();
        srv_kill(&N[victim]);
        while (now_ms() - tk < 20000) {
            int j, up = 0;
            for (j = 0; j < NODES; j++) if (j != victim && cluster_ok(j)) up++;
            if (up >= NODES - 1 && owner_of(rsq_key_slot(k3, strlen(k3))) >= 0 && owner_of(rsq_key_slot(k3, strlen(k3))) != victim) { failed_over = 1; break; }
            usleep(100000);
        }
        fprintf(stderr, "    failover of node %d took %lld ms\n", victim, now_ms() - tk);
        /* the old master comes back and rejoins as a replica of its successor, so that
           WAIT can be satisfied again on that shard */
        CHECK(srv_restart(&N[victim]) == 0);
    }
    CHECK(failed_over);
    waitpid(prod, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) fprintf(stderr, "    producer exit status %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st));
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    while (now_ms() - t0 < 240000) {
        if (drained(&admin)) { if (++done >= 3) break; } else done = 0;
        usleep(300000);
    }
    fprintf(stderr, "    drained; the old master (node %d) is %s\n", victim, victim >= 0 && is_master(victim) ? "a master" : "a replica");
    for (i = 0; i < 3; i++) kill(w[i], SIGTERM);
    for (i = 0; i < 3; i++) { waitpid(w[i], &st, 0); CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0); }
    memset(seen, 0, sizeof seen);
    for (i = 0; i < 3; i++) {
        char path[400], line[64];
        FILE *f;
        snprintf(path, sizeof path, "%s/w%d.log", N[0].dir, i);
        f = fopen(path, "r");
        while (f && fgets(line, sizeof line, f)) {
            long v = atol(line);
            lines++;
            if (v >= 0 && v < MSGS && !seen[v]++) unique++;
        }
        if (f) fclose(f);
    }
    fprintf(stderr, "    cluster: messages=%ld shards=6 workers=3 slot-migrated=1 master-killed=1 lost=%lld duplicates=%lld %.1fs\n",
            MSGS, MSGS - unique, lines - unique, (double)(now_ms() - t0) / 1000.0);
    if (unique != MSGS) {
        long v, shown = 0;
        int s;
        for (v = 0; v < MSGS && shown < 5; v++) if (!seen[v]) { fprintf(stderr, "    never handled: %ld\n", v); shown++; }
        for (s = 0; s < 6; s++) {
            rsq_stream_info si;
            rsq_group_info g;
            if (shard_stats(&admin, s, &si, &g))
                fprintf(stderr, "    now: shard %d length %llu pending %llu lag %llu\n", s, (unsigned long long)si.length,
                        (unsigned long long)g.pending, (unsigned long long)g.lag);
        }
    }
    CHECK_EQ_INT(unique, MSGS);
    rsq_client_free(&admin);
}

/* Overhead of cluster routing, on this small machine: one node vs three masters. */
static double rate(const char *url, int shards, int consume) {
    rsq_client c;
    rsq_client_config cfg;
    rsq_producer p;
    rsq_producer_config pc;
    rsq_outgoing m[64];
    long long t0;
    int i, n = 60000;
    char q[32];
    static int round;
    snprintf(q, sizeof q, "bench%d", round++);
    cfg_for(&cfg, url, 0);
    rsq_client_init(&c, &cfg);
    rsq_producer_config_init(&pc);
    pc.queue = q;
    pc.shards = shards;
    rsq_producer_init(&p, &c, &pc);
    memset(m, 0, sizeof m);
    for (i = 0; i < 64; i++) { m[i].payload = "0123456789012345678901234567890123456789012345678901234567890123"; m[i].payload_len = 64; }
    rsq_publish_batch(&p, m, 64, NULL, NULL); /* warm: connections and the slot map */
    t0 = now_ms();
    for (i = 0; i < n; i += 64) rsq_publish_batch(&p, m, 64, NULL, NULL);
    if (consume) {
        rsq_consumer k;
        rsq_consumer_config cc;
        const rsq_message *msg;
        int got = 0;
        rsq_consumer_config_init(&cc);
        cc.queue = q; cc.group = "g"; cc.shards = shards; cc.start = RSQ_START_ALL; cc.count = 64; cc.block_ms = 200;
        rsq_consumer_init(&k, &c, &cc);
        t0 = now_ms();
        while (got < n && rsq_consumer_next(&k, &msg, 1000) == RSQ_OK) { got++; rsq_ack(&k, msg); }
        rsq_consumer_flush(&k);
        rsq_consumer_free(&k);
        n = got;
    }
    {
        double sec = (double)(now_ms() - t0) / 1000.0;
        rsq_client_free(&c);
        return sec > 0 ? n / sec : 0;
    }
}

static void test_cluster_overhead_figures(void) {
    srv one;
    double p1, pc, c1, cc;
    REQUIRE(have_cluster);
    REQUIRE(srv_start(&one, NULL) == 0);
    p1 = rate(one.url, 6, 0);
    c1 = rate(one.url, 6, 1);
    pc = rate(seed_url, 6, 0);
    cc = rate(seed_url, 6, 1);
    fprintf(stderr, "    figures (not asserted): publish batch 64, 6 shards: 1 node %.0f/s, 3-master cluster %.0f/s (%.2fx); "
                    "consume+ack: 1 node %.0f/s, cluster %.0f/s (%.2fx)\n", p1, pc, p1 > 0 ? pc / p1 : 0, c1, cc, c1 > 0 ? cc / c1 : 0);
    CHECK(p1 > 0 && pc > 0 && c1 > 0 && cc > 0);
    srv_stop(&one, 0);
}

void suite_cluster(void) {
    if (getenv("RSQ_TEST_SLOW")) MSGS = 10000;
    RUN(test_cluster_slots_and_keys);
    have_cluster = cluster_start();
    if (!have_cluster) fprintf(stderr, "    could not start a local cluster\n");
    RUN(test_cluster_routing_moved_and_ask);
    RUN(test_cluster_sharded_queue_migration_and_failover);
    RUN(test_cluster_overhead_figures);
    cluster_stop();
}
