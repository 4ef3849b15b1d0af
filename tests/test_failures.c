/* test_failures.c - the rows of the failure table not covered elsewhere: retry-class
   server errors back off and retry (BUSY from a long script, READONLY on a replica),
   NOAUTH is final, and no log line or error text ever carries a password. */
#define _DEFAULT_SOURCE 1
#include "t.h"
#include "server.h"
#include "../rsq.h"
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static char log_all[8192];
static size_t log_len;
static void keep_log(void *user, rsq_log_level lvl, rsq_log_item item, const char *msg) {
    (void)user; (void)lvl; (void)item;
    log_len += (size_t)snprintf(log_all + log_len, sizeof log_all - log_len, "%s\n", msg);
    if (log_len >= sizeof log_all) log_len = sizeof log_all - 1;
}

/* A script running past busy-reply-threshold makes the server answer BUSY: the
   client backs off and retries until the script is done. */
static void test_failures_busy_is_retried(void) {
    srv s;
    rsq_client c;
    rsq_client_config cfg;
    const rsq_reply *r;
    rsq_client_stats st;
    pid_t busy;
    REQUIRE(srv_start(&s, "busy-reply-threshold 100\n") == 0);
    busy = fork();
    if (busy == 0) { /* a script that spins for about 1.5 s */
        char cmd[600];
        snprintf(cmd, sizeof cmd, "redis-cli -s '%s' EVAL \"local t = redis.call('TIME') "
                 "while true do local n = redis.call('TIME') if (n[1] - t[1]) * 1000000 + (n[2] - t[2]) > 1500000 then break end end "
                 "return 1\" 0 >/dev/null 2>&1", s.sock);
        _exit(system(cmd) == 0 ? 0 : 1);
    }
    usleep(400000);
    rsq_client_config_init(&cfg);
    cfg.url = s.url;
    cfg.retry_base_ms = 50;
    cfg.retry_max_ms = 400;
    cfg.retry_attempts = 20;
    rsq_client_init(&c, &cfg);
    CHECK_RC(rsq_command(&c, &r, "SET", "k", "v", (char *)0), RSQ_OK);
    rsq_client_get_stats(&c, &st);
    CHECK(st.server_retries > 0);
    waitpid(busy, NULL, 0);
    rsq_client_free(&c);
    srv_stop(&s, 0);
}

/* A primary and its replica, each a private redis-server. */
static int start_pair(srv *primary, srv *replica) {
    char extra[128];
    if (srv_start(primary, NULL) != 0) return -1;
    snprintf(extra, sizeof extra, "replicaof 127.0.0.1 %d\n", primary->port);
    if (srv_start(replica, extra) != 0) { srv_stop(primary, 0); return -1; }
    return 0;
}

/* READONLY (a write to a replica) is retry-class: retried, then reported as such. */
static void test_failures_readonly_is_retried_then_reported(void) {
    srv primary, replica;
    rsq_client c;
    rsq_client_config cfg;
    const rsq_reply *r;
    rsq_client_stats st;
    REQUIRE(start_pair(&primary, &replica) == 0);
    rsq_client_config_init(&cfg);
    cfg.url = replica.url;
    cfg.retry_base_ms = 5;
    cfg.retry_max_ms = 20;
    cfg.retry_attempts = 4;
    rsq_client_init(&c, &cfg);
    CHECK_RC(rsq_command(&c, &r, "XADD", "ro", "*", "payload", "x", (char *)0), RSQ_ERR_RETRY);
    CHECK(strncmp(rsq_errstr(&c), "READONLY", 8) == 0);
    rsq_client_get_stats(&c, &st);
    CHECK_EQ_INT(st.server_retries, 3);
    CHECK(rsq_is_connected(&c)); /* a server error: the connection is fine */
    rsq_client_free(&c);
    srv_stop(&replica, 0);
    srv_stop(&primary, 0);
}

/* WAIT covers only the writes of its own connection: publishes written on a connection
   that was then lost are not confirmed by a WAIT on the next one (a cluster failover
   lost confirmed messages that way), so the after-step says RSQ_ERR_REPLICAS. */
static void test_failures_wait_after_lost_connection(void) {
    srv primary, replica;
    rsq_client c, admin;
    rsq_client_config cfg;
    rsq_producer quick, safe;
    rsq_producer_config pc;
    const rsq_reply *r;
    const char *text = NULL;
    int i;
    REQUIRE(start_pair(&primary, &replica) == 0);
    rsq_client_config_init(&cfg);
    cfg.url = primary.url;
    cfg.name = "wl-admin";
    rsq_client_init(&admin, &cfg);
    for (i = 0; i < 100; i++) { /* the replica is in sync */
        if (rsq_command(&admin, &r, "WAIT", "1", "100", (char *)0) == RSQ_OK && r->integer == 1) break;
        usleep(50000);
    }
    REQUIRE(i < 100);
    cfg.name = "wl-pub";
    rsq_client_init(&c, &cfg);
    rsq_producer_config_init(&pc);
    pc.queue = "wl";
    REQUIRE(rsq_producer_init(&quick, &c, &pc) == RSQ_OK);
    pc.wait_replicas = 1;
    pc.wait_timeout_ms = 2000;
    REQUIRE(rsq_producer_init(&safe, &c, &pc) == RSQ_OK);
    CHECK_RC(rsq_publish(&safe, "a", 1, NULL), RSQ_OK);
    CHECK_RC(rsq_producer_after_step(&safe, NULL, NULL), RSQ_OK); /* in step: confirmed */
    CHECK_RC(rsq_publish(&quick, "b", 1, NULL), RSQ_OK);           /* written, no WAIT */
    CHECK_RC(rsq_command(&admin, &r, "CLIENT", "KILL", "SKIPME", "yes", "TYPE", "normal", (char *)0), RSQ_OK);
    usleep(100000);
    CHECK_RC(rsq_publish(&safe, "c", 1, NULL), RSQ_OK); /* on a new connection */
    CHECK_RC(rsq_producer_after_step(&safe, &text, NULL), RSQ_ERR_REPLICAS);
    CHECK(text && strstr(text, "lost before WAIT") != NULL);
    CHECK_RC(rsq_publish(&safe, "d", 1, NULL), RSQ_OK); /* and then in step again */
    CHECK_RC(rsq_producer_after_step(&safe, NULL, NULL), RSQ_OK);
    rsq_client_free(&c);
    rsq_client_free(&admin);
    srv_stop(&replica, 0);
    srv_stop(&primary, 0);
}

/* NOAUTH and WRONGPASS are final; the password appears in no log line or error. */
static void test_failures_noauth_final_and_no_credentials_in_logs(void) {
    srv s;
    rsq_client c;
    rsq_client_config cfg;
    const rsq_reply *r;
    char url[256];
    rsq_client_stats st;
    REQUIRE(srv_start(&s, "requirepass s3cret-Pa55\n") == 0);
    rsq_client_config_init(&cfg);
    cfg.url = s.url; /* no password */
    cfg.retry_attempts = 5;
    cfg.logger.func = keep_log;
    cfg.logger.level = RSQ_LOG_DEBUG;
    log_len = 0;
    log_all[0] = '\0';
    rsq_client_init(&c, &cfg);
    CHECK_RC(rsq_command(&c, &r, "PING", (char *)0), RSQ_ERR_AUTH);
    CHECK(strncmp(rsq_errstr(&c), "NOAUTH", 6) == 0);
    rsq_client_get_stats(&c, &st);
    CHECK_EQ_INT(st.server_retries, 0);
    rsq_client_free(&c);
    snprintf(url, sizeof url, "redis://:wrong-Pa55-word@127.0.0.1:%d", s.port);
    cfg.url = url;
    rsq_client_init(&c, &cfg);
    CHECK_RC(rsq_command(&c, &r, "PING", (char *)0), RSQ_ERR_AUTH);
    CHECK(strstr(rsq_errstr(&c), "wrong-Pa55-word") == NULL);
    rsq_client_free(&c);
    snprintf(url, sizeof url, "redis://:s3cret-Pa55@127.0.0.1:%d", s.port);
    cfg.url = url;
    rsq_client_init(&c, &cfg);
    CHECK_RC(rsq_command(&c, &r, "PING", (char *)0), RSQ_OK);
    rsq_disconnect(&c);
    CHECK_RC(rsq_command(&c, &r, "PING", (char *)0), RSQ_OK); /* reconnect replays AUTH */
    rsq_client_free(&c);
    CHECK(log_len > 0);
    CHECK(strstr(log_all, "s3cret-Pa55") == NULL && strstr(log_all, "wrong-Pa55-word") == NULL);
    srv_stop(&s, 0);
}

void suite_failures(void) {
    RUN(test_failures_busy_is_retried);
    RUN(test_failures_readonly_is_retried_then_reported);
    RUN(test_failures_noauth_final_and_no_credentials_in_logs);
    RUN(test_failures_wait_after_lost_connection);
}
