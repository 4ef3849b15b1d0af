/* test_tool.c - the `rsq` command-line tool, run as a program against a private
   redis-server: the command line of DESIGN.md, exit codes, output. */
#define _DEFAULT_SOURCE 1
#include "t.h"
#include "server.h"
#include "../rsq.h"
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <fcntl.h>
#include <stdarg.h>

static srv S;
static int have_server;
static char errfile[512];

/* Runs a shell command line with RSQ_URL set; stdout into out; returns the exit code. */
static int run(char *out, size_t cap, const char *fmt, ...) {
    char cmd[5200], body[3500];
    va_list ap;
    FILE *p;
    size_t n = 0;
    int st;
    va_start(ap, fmt);
    vsnprintf(body, sizeof body, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "export RSQ_URL='%s'; ( %s ) 2>%s", S.unix_url, body, errfile);
    p = popen(cmd, "r");
    if (!p) return -1;
    if (out && cap) {
        n = fread(out, 1, cap - 1, p);
        out[n] = '\0';
    } else {
        char sink[512];
        while (fread(sink, 1, sizeof sink, p) > 0) {}
    }
    st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int err_lines(char *buf, size_t cap) {
    FILE *f = fopen(errfile, "r");
    size_t n;
    int lines = 0;
    buf[0] = '\0';
    if (!f) return -1;
    n = fread(buf, 1, cap - 1, f);
    buf[n] = '\0';
    fclose(f);
    for (n = 0; buf[n]; n++) lines += buf[n] == '\n';
    return lines;
}

static void test_tool_version_help_usage(void) {
    char out[4096], err[4096];
    REQUIRE(have_server);
    CHECK_EQ_INT(run(out, sizeof out, "./rsq --version"), 0);
    CHECK(strncmp(out, "rsq ", 4) == 0);
    CHECK_EQ_INT(run(out, sizeof out, "./rsq --help"), 0);
    CHECK(strstr(out, "pub STREAM") && strstr(out, "work STREAM") && strstr(out, "stats STREAM") && strstr(out, "dlq STREAM"));
    CHECK_EQ_INT(run(out, sizeof out, "./rsq work --help"), 0);
    CHECK(strstr(out, "--idle-exit") && strstr(out, "--exec"));
    CHECK_EQ_INT(run(out, sizeof out, "./rsq"), 2);
    CHECK_EQ_INT(run(out, sizeof out, "./rsq frobnicate"), 2);
    CHECK_EQ_INT(run(out, sizeof out, "./rsq pub"), 2);
    CHECK_EQ_INT(run(out, sizeof out, "./rsq pub s --priority x"), 2);
    CHECK_EQ_INT(run(out, sizeof out, "./rsq pub s -H novalue"), 2);
    CHECK_EQ_INT(run(out, sizeof out, "./rsq work s"), 2); /* no -g */
    CHECK_EQ_INT(run(out, sizeof out, "./rsq work s -g g --from yesterday"), 2);
    CHECK_EQ_INT(run(out, sizeof out, "./rsq dlq s purge"), 2);
    CHECK_EQ_INT(run(out, sizeof out, "./rsq stats s --bogus"), 2);
    /* errors: exit 1 and one line on stderr */
    CHECK_EQ_INT(run(out, sizeof out, "./rsq -u redis://127.0.0.1:1 pub s hello"), 1);
    CHECK_EQ_INT(err_lines(err, sizeof err), 1);
    CHECK(strstr(err, "refused") != NULL);
    CHECK_EQ_INT(run(out, sizeof out, "./rsq -u http://nope pub s hello"), 1);
    CHECK_EQ_INT(err_lines(err, sizeof err), 1);
    CHECK_EQ_INT(run(out, sizeof out, "./rsq pub s -H payload=x hello"), 1); /* reserved header name */
    CHECK_EQ_INT(err_lines(err, sizeof err), 1);
}

static void test_tool_pub_one_and_stdin(void) {
    char out[1 << 16], cli[1024];
    int lines = 0;
    size_t i;
    REQUIRE(have_server);
    CHECK_EQ_INT(run(out, sizeof out, "./rsq pub t:pub 'hello there' -H trace=abc -H tenant=7"), 0);
    CHECK(strchr(out, '-') != NULL);
    srv_cli(&S, cli, sizeof cli, "XRANGE t:pub - +");
    CHECK(strstr(cli, "payload\nhello there\ntrace\nabc\ntenant\n7") != NULL);
    CHECK_EQ_INT(run(out, sizeof out, "seq 1 1000 | ./rsq pub t:lines"), 0);
    for (i = 0; out[i]; i++) lines += out[i] == '\n';
    CHECK_EQ_INT(lines, 1000);
    srv_cli(&S, cli, sizeof cli, "XLEN t:lines");
    CHECK_STR(cli, "1000");
    srv_cli(&S, cli, sizeof cli, "XREVRANGE t:lines + - COUNT 1");
    CHECK(strstr(cli, "payload\n1000") != NULL);
    CHECK_EQ_INT(run(out, sizeof out, "./rsq pub t:prio urgent --priority 2"), 0);
    srv_cli(&S, cli, sizeof cli, "XLEN {t:prio}:p2");
    CHECK_STR(cli, "1");
    CHECK_EQ_INT(run(out, sizeof out, "seq 1 20 | ./rsq pub t:cap --maxlen 5"), 0);
    srv_cli(&S, cli, sizeof cli, "XLEN t:cap");
    CHECK_STR(cli, "5");
    CHECK_EQ_INT(run(out, sizeof out, "seq 1 10 | ./rsq pub t:shard --shards 2"), 0);
    srv_cli(&S, cli, sizeof cli, "XLEN {t:shard:s1}");
    CHECK_STR(cli, "5");
}

static void test_tool_work_stdout_max_idle(void) {
    char out[1 << 16], cli[256];
    REQUIRE(have_server);
    run(NULL, 0, "seq 1 50 | ./rsq pub t:work >/dev/null");
    CHECK_EQ_INT(run(out, sizeof out, "./rsq work t:work -g g --from 0 --max 3"), 0);
    CHECK_STR(out, "1\n2\n3\n");
    CHECK_EQ_INT(run(out, sizeof out, "./rsq work t:work -g g -n w2 --idle-exit 1"), 0);
    CHECK(strncmp(out, "4\n5\n", 4) == 0);
    CHECK(strstr(out, "\n50\n") != NULL);
    srv_cli(&S, cli, sizeof cli, "XPENDING t:work g");
    CHECK(strncmp(cli, "0", 1) == 0);
    /* a group started at $ sees only what comes after it */
    CHECK_EQ_INT(run(out, sizeof out, "./rsq work t:work -g late --from '$' --idle-exit 1"), 0);
    CHECK_STR(out, "");
}

static void test_tool_work_exec_dead_letters_and_replay(void) {
    char out[8192], cli[2048], path[600];
    FILE *f;
    REQUIRE(have_server);
    snprintf(path, sizeof path, "%s/exec-out.txt", S.dir);
    run(NULL, 0, "printf 'good\\nbad\\ngood2\\n' | ./rsq pub t:exec >/dev/null");
    /* the command fails on "bad": nacked, redelivered, dead-lettered after 2 deliveries */
    CHECK_EQ_INT(run(out, sizeof out,
        "./rsq work t:exec -g g --from 0 --max-deliveries 2 --idle-exit 1 --exec "
        "'read line; [ \"$line\" != bad ] && echo \"$line $RSQ_DELIVERIES\" >> %s'", path), 0);
    f = fopen(path, "r");
    REQUIRE(f != NULL);
    {
        size_t n = fread(cli, 1, sizeof cli - 1, f);
        cli[n] = '\0';
        fclose(f);
    }
    CHECK_STR(cli, "good 1\ngood2 1\n");
    srv_cli(&S, cli, sizeof cli, "XPENDING t:exec g");
    CHECK(strncmp(cli, "0", 1) == 0);
    CHECK_EQ_INT(run(out, sizeof out, "./rsq dlq t:exec list"), 0);
    CHECK(strstr(out, "deliveries=2") != NULL && strstr(out, "payload=bad") != NULL && strstr(out, "exit status 1") != NULL);
    CHECK_EQ_INT(run(out, sizeof out, "./rsq dlq t:exec replay"), 0);
    CHECK_STR(out, "replayed 1\n");
    srv_cli(&S, cli, sizeof cli, "XLEN {t:exec}:dlq");
    CHECK_STR(cli, "0");
    srv_cli(&S, cli, sizeof cli, "XREVRANGE t:exec + - COUNT 1");
    CHECK(strstr(cli, "payload\nbad") != NULL && strstr(cli, "dlq-") == NULL);
}

static void test_tool_work_sigterm_exits_zero(void) {
    pid_t pid;
    int st;
    char cmd[600];
    REQUIRE(have_server);
    snprintf(cmd, sizeof cmd, "%s", S.unix_url);
    pid = fork();
    if (pid == 0) {
        int fd = open("/dev/null", 1);
        dup2(fd, 1);
        setenv("RSQ_URL", cmd, 1);
        execl("./rsq", "rsq", "work", "t:sig", "-g", "g", (char *)NULL);
        _exit(127);
    }
    usleep(300000);
    kill(pid, SIGTERM);
    waitpid(pid, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void test_tool_stats(void) {
    char out[4096];
    REQUIRE(have_server);
    run(NULL, 0, "seq 1 10 | ./rsq pub t:stats >/dev/null");
    run(NULL, 0, "./rsq work t:stats -g readers --from 0 --max 4 >/dev/null");
    run(NULL, 0, "redis-cli -s %s XGROUP CREATE t:stats idle 0 >/dev/null", S.sock);
    run(NULL, 0, "redis-cli -s %s XREADGROUP GROUP idle holder COUNT 2 STREAMS t:stats '>' >/dev/null", S.sock);
    CHECK_EQ_INT(run(out, sizeof out, "./rsq stats t:stats"), 0);
    CHECK(strstr(out, "length 10") != NULL);
    CHECK(strstr(out, "readers") != NULL && strstr(out, "idle") != NULL);
    {
        const char *l = strstr(out, "\nidle");
        long long pending = -1, lag = -1, consumers = -1;
        REQUIRE(l != NULL);
        CHECK(sscanf(l + 5, "%lld %lld %lld", &pending, &lag, &consumers) == 3);
        CHECK(pending == 2 && lag == 8 && consumers == 1);
    }
    CHECK_EQ_INT(run(out, sizeof out, "timeout --preserve-status -s INT 1.5 ./rsq stats t:stats --watch 1"), 0);
    CHECK(strstr(out, "rsq stats") != NULL);
    CHECK_EQ_INT(run(out, sizeof out, "./rsq stats t:nothing"), 0);
    CHECK(strstr(out, "does not exist") != NULL);
}

void suite_tool(void) {
    if (access("./rsq", X_OK) != 0) {
        fprintf(stderr, "    ./rsq not built: run make first\n");
    }
    have_server = access("./rsq", X_OK) == 0 && srv_start(&S, NULL) == 0;
    if (have_server) snprintf(errfile, sizeof errfile, "%s/stderr.txt", S.dir);
    RUN(test_tool_version_help_usage);
    RUN(test_tool_pub_one_and_stdin);
    RUN(test_tool_work_stdout_max_idle);
    RUN(test_tool_work_exec_dead_letters_and_replay);
    RUN(test_tool_work_sigterm_exits_zero);
    RUN(test_tool_stats);
    if (have_server) srv_stop(&S, 0);
}
