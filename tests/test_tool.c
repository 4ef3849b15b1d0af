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
#include <time.h>
#include <sys/stat.h>

static srv S;
static int have_server;
static char errfile[512];
static size_t out_len; /* bytes the last run() read into out */

/* Runs a shell command line with RSQ_URL=url; stdout into out (out_len bytes, NUL
   added), stderr into errfile; returns the exit code. */
static int vrun_at(const char *url, char *out, size_t cap, const char *fmt, va_list ap) {
    char cmd[5200], body[3500];
    FILE *p;
    size_t n = 0;
    int st;
    vsnprintf(body, sizeof body, fmt, ap);
    snprintf(cmd, sizeof cmd, "export RSQ_URL='%s'; ( %s ) 2>%s", url, body, errfile);
    out_len = 0;
    p = popen(cmd, "r");
    if (!p) return -1;
    if (out && cap) {
        n = fread(out, 1, cap - 1, p);
        out[n] = '\0';
        out_len = n;
    } else {
        char sink[512];
        while (fread(sink, 1, sizeof sink, p) > 0) {}
    }
    st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int run_at(const char *url, char *out, size_t cap, const char *fmt, ...) {
    va_list ap;
    int rc;
    va_start(ap, fmt);
    rc = vrun_at(url, out, cap, fmt, ap);
    va_end(ap);
    return rc;
}

static int run(char *out, size_t cap, const char *fmt, ...) {
    va_list ap;
    int rc;
    va_start(ap, fmt);
    rc = vrun_at(S.unix_url, out, cap, fmt, ap);
    va_end(ap);
    return rc;
}

static long long mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Whole file into buf (NUL added); its length, or -1. */
static long read_file(const char *path, char *buf, size_t cap) {
    FILE *f = fopen(path, "rb");
    size_t n;
    buf[0] = '\0';
    if (!f) return -1;
    n = fread(buf, 1, cap - 1, f);
    buf[n] = '\0';
    fclose(f);
    return (long)n;
}

/* Waits up to ms for the file to contain needle. */
static int wait_for(const char *path, const char *needle, int ms) {
    static char buf[1 << 16];
    long long until = mono_ms() + ms;
    do {
        if (read_file(path, buf, sizeof buf) >= 0 && strstr(buf, needle)) return 1;
        usleep(50000);
    } while (mono_ms() < until);
    return 0;
}

/* Lines of the file that contain needle. */
static int count_lines(const char *path, const char *needle) {
    static char buf[1 << 16];
    char *line, *save = NULL;
    int n = 0;
    if (read_file(path, buf, sizeof buf) < 0) return -1;
    for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) n += strstr(line, needle) != NULL;
    return n;
}

/* `exec CMD >out 2>err` in the background with RSQ_URL=url: the pid is rsq's own. */
static pid_t spawn_at(const char *url, const char *out, const char *err, const char *cmd) {
    pid_t pid = fork();
    if (pid == 0) {
        char line[2048];
        snprintf(line, sizeof line, "exec %s >'%s' 2>'%s'", cmd, out, err);
        setenv("RSQ_URL", url, 1);
        execl("/bin/sh", "sh", "-c", line, (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* Waits up to ms for pid to exit; the time it took, or -1 (then it is killed). */
static long long wait_exit(pid_t pid, int ms, int *st) {
    long long t0 = mono_ms();
    *st = -1;
    while (mono_ms() - t0 < ms) {
        if (waitpid(pid, st, WNOHANG) == pid) return mono_ms() - t0;
        usleep(10000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, st, 0);
    return -1;
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
    /* the command fails on "bad": nacked, redelivered (after 100 ms), dead-lettered
       after 2 deliveries */
    CHECK_EQ_INT(run(out, sizeof out,
        "./rsq work t:exec -g g --from 0 --max-deliveries 2 --retry-delay 100 --idle-exit 2 --exec "
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
        dup2(fd, 2);
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

/* DESIGN: long-running commands ride out outages. `rsq work` keeps running while the
   server is down (3 s), says once that it is reconnecting and once that it is back,
   then handles what comes after (the restarted server lost its data: the group is made
   again at 0, and the message published after the restart is printed); SIGTERM then
   ends it at once with 0. */
static void test_tool_work_rides_outage(void) {
    srv O;
    char out[700], err[700], cli[256];
    pid_t pid;
    int st;
    long long ms, t_stop;
    REQUIRE(have_server);
    REQUIRE(srv_start(&O, NULL) == 0);
    snprintf(out, sizeof out, "%s/work-out.txt", O.dir);
    snprintf(err, sizeof err, "%s/work-err.txt", O.dir);
    pid = spawn_at(O.unix_url, out, err, "./rsq work t:ride -g g -n w1");
    CHECK_EQ_INT(run_at(O.unix_url, NULL, 0, "./rsq pub t:ride before >/dev/null"), 0);
    CHECK(wait_for(out, "before\n", 10000));
    srv_stop(&O, 1);
    t_stop = mono_ms();
    CHECK(wait_for(err, "reconnecting", 3000)); /* said while the server is away */
    while (mono_ms() - t_stop < 3000) usleep(50000); /* away for 3 s */
    CHECK(waitpid(pid, &st, WNOHANG) == 0); /* still running */
    REQUIRE(srv_restart(&O) == 0);
    CHECK_EQ_INT(run_at(O.unix_url, NULL, 0, "./rsq pub t:ride after >/dev/null"), 0);
    CHECK(wait_for(out, "before\nafter\n", 20000));
    CHECK(wait_for(err, "reconnected", 5000));
    CHECK_EQ_INT(count_lines(err, "reconnecting"), 1);
    CHECK_EQ_INT(count_lines(err, "reconnected"), 1);
    kill(pid, SIGTERM);
    ms = wait_exit(pid, 10000, &st);
    CHECK(ms >= 0 && ms < 2000);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    srv_cli(&O, cli, sizeof cli, "XPENDING t:ride g");
    CHECK(strncmp(cli, "0", 1) == 0); /* "after" was acked */

    /* SIGTERM while the server is away stops it at once (nothing in hand: exit 0);
       fresh files, so that the first run's lines cannot stand for this one's */
    snprintf(out, sizeof out, "%s/work-out2.txt", O.dir);
    snprintf(err, sizeof err, "%s/work-err2.txt", O.dir);
    pid = spawn_at(O.unix_url, out, err, "./rsq work t:ride -g g -n w1");
    CHECK_EQ_INT(run_at(O.unix_url, NULL, 0, "./rsq pub t:ride third >/dev/null"), 0);
    CHECK(wait_for(out, "third\n", 10000));
    usleep(300000); /* its ack goes out with the next read */
    srv_stop(&O, 1);
    CHECK(wait_for(err, "reconnecting", 3000));
    kill(pid, SIGTERM);
    ms = wait_exit(pid, 10000, &st);
    CHECK(ms >= 0 && ms < 1500);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    srv_stop(&O, 0);
}

/* The same for `rsq stats --watch`; SIGINT in the middle of an outage ends it at once. */
static void test_tool_stats_watch_rides_outage(void) {
    srv O;
    char out[700], err[700];
    pid_t pid;
    int st;
    long long ms, t_stop;
    REQUIRE(have_server);
    REQUIRE(srv_start(&O, NULL) == 0);
    snprintf(out, sizeof out, "%s/watch-out.txt", O.dir);
    snprintf(err, sizeof err, "%s/watch-err.txt", O.dir);
    CHECK_EQ_INT(run_at(O.unix_url, NULL, 0, "seq 3 | ./rsq pub t:watch >/dev/null"), 0);
    pid = spawn_at(O.unix_url, out, err, "./rsq stats t:watch --watch 1");
    CHECK(wait_for(out, "length 3", 10000));
    srv_stop(&O, 1);
    t_stop = mono_ms();
    CHECK(wait_for(err, "reconnecting", 4000));
    while (mono_ms() - t_stop < 3000) usleep(50000);
    CHECK(waitpid(pid, &st, WNOHANG) == 0);
    REQUIRE(srv_restart(&O) == 0);
    CHECK_EQ_INT(run_at(O.unix_url, NULL, 0, "./rsq pub t:watch again >/dev/null"), 0); /* the data was lost */
    CHECK(wait_for(out, "length 1", 20000));
    CHECK_EQ_INT(count_lines(err, "reconnecting"), 1);
    CHECK_EQ_INT(count_lines(err, "reconnected"), 1);
    kill(pid, SIGTERM);
    ms = wait_exit(pid, 10000, &st);
    CHECK(ms >= 0 && ms < 1500);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);

    /* fresh files: the first run's lines must not stand for this one's (a SIGINT
       sent before the new process has its handler would kill it) */
    snprintf(out, sizeof out, "%s/watch-out2.txt", O.dir);
    snprintf(err, sizeof err, "%s/watch-err2.txt", O.dir);
    pid = spawn_at(O.unix_url, out, err, "./rsq stats t:watch --watch 1");
    CHECK(wait_for(out, "length 1", 10000));
    srv_stop(&O, 1);
    CHECK(wait_for(err, "reconnecting", 4000));
    kill(pid, SIGINT);
    ms = wait_exit(pid, 10000, &st);
    CHECK(ms >= 0 && ms < 1000);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) { /* say why: it has been seen once under load */
        char line[512];
        FILE *f = fopen(err, "r");
        fprintf(stderr, "    exit status %d (signal %d); its stderr:\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1,
                WIFSIGNALED(st) ? WTERMSIG(st) : 0);
        while (f && fgets(line, sizeof line, f)) fprintf(stderr, "      %s", line);
        if (f) fclose(f);
    }

    /* one-shot commands fail fast: exit 1, one line, within a short budget */
    {
        static const char *const cmds[] = { "./rsq stats t:watch", "./rsq pub t:watch x", "./rsq dlq t:watch list",
                                            "./rsq dlq t:watch replay" };
        char e[2048];
        size_t i;
        for (i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
            long long t0 = mono_ms();
            CHECK_EQ_INT(run_at(O.unix_url, NULL, 0, "%s", cmds[i]), 1);
            CHECK(mono_ms() - t0 < 3000);
            CHECK_EQ_INT(err_lines(e, sizeof e), 1);
        }
    }
    srv_stop(&O, 0);
}

/* Sends one command with binary-safe arguments over the library (the test's own
   client, not the tool). */
static int lib_cmd(const char *url, int argc, const char *const *argv, const size_t *lens) {
    rsq_client c;
    rsq_client_config cfg;
    const rsq_reply *r;
    rsq_result rc;
    rsq_client_config_init(&cfg);
    cfg.url = url;
    if (rsq_client_init(&c, &cfg) != RSQ_OK) { rsq_client_free(&c); return -1; }
    rc = rsq_command_argv(&c, &r, argc, argv, lens);
    rsq_client_free(&c);
    return rc == RSQ_OK ? 0 : -1;
}

/* Whether buf[0..n) holds the C string needle (buf may hold NUL bytes). */
static int mem_has(const char *buf, size_t n, const char *needle, size_t k) {
    size_t i;
    for (i = 0; i + k <= n; i++)
        if (!memcmp(buf + i, needle, k)) return 1;
    return 0;
}

static int has_control_bytes(const char *s, size_t n) {
    size_t i;
    for (i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if ((ch < 0x20 && ch != '\n') || ch == 0x7f) return 1;
    }
    return 0;
}

/* DESIGN: what the tool prints from the server for people has its control bytes
   escaped; work's standard output stays byte-exact. */
static void test_tool_output_escaped(void) {
    static const char gname[] = "g\x1b[31m\nfake row";
    static const char payload[] = "a\0b\x1b[2Jc";
    static const char dpayload[] = "p\0q\x1b]0;title\x07";
    static const char derror[] = "boom\r\nforged 9-9 stream=x";
    char out[8192], path[600], buf[256];
    long n;
    REQUIRE(have_server);
    {
        const char *a[] = { "XADD", "t:esc", "*", "payload", payload };
        size_t l[] = { 4, 5, 1, 7, sizeof payload - 1 };
        REQUIRE(lib_cmd(S.unix_url, 5, a, l) == 0);
    }
    {
        const char *a[] = { "XGROUP", "CREATE", "t:esc", gname, "0" };
        size_t l[] = { 6, 6, 5, sizeof gname - 1, 1 };
        REQUIRE(lib_cmd(S.unix_url, 5, a, l) == 0);
    }
    {
        const char *a[] = { "XADD", "{t:esc}:dlq", "*", "payload", dpayload, "dlq-stream", "t:esc", "dlq-id", "1-1",
                            "dlq-deliveries", "3", "dlq-error", derror };
        size_t l[13];
        int i;
        for (i = 0; i < 13; i++) l[i] = strlen(a[i]);
        l[4] = sizeof dpayload - 1;
        REQUIRE(lib_cmd(S.unix_url, 13, a, l) == 0);
    }
    CHECK_EQ_INT(run(out, sizeof out, "./rsq stats t:esc"), 0);
    CHECK(!has_control_bytes(out, out_len));
    CHECK(strstr(out, "g\\x1b[31m\\nfake row") != NULL);
    CHECK(strstr(out, "\nfake row") == NULL); /* no forged row */
    CHECK(strstr(out, "dead-letters 1") != NULL);
    CHECK_EQ_INT(run(out, sizeof out, "./rsq dlq t:esc list"), 0);
    CHECK(!has_control_bytes(out, out_len));
    CHECK(strchr(out, '\n') == out + out_len - 1); /* one line per dead letter */
    CHECK(strstr(out, " stream=t:esc origin=1-1 deliveries=3 error=\"boom\\r\\nforged 9-9 stream=x\" payload=p\\x00q\\x1b]0;title\\x07\n") != NULL);
    /* work: the payload byte for byte */
    snprintf(path, sizeof path, "%s/esc-work.bin", S.dir);
    CHECK_EQ_INT(run(NULL, 0, "./rsq work t:esc -g plain --max 1 > %s", path), 0);
    n = read_file(path, buf, sizeof buf);
    CHECK_EQ_INT(n, (long)sizeof payload);
    CHECK(n == (long)sizeof payload && memcmp(buf, payload, sizeof payload - 1) == 0 && buf[n - 1] == '\n');
}

/* DESIGN: replay writes only into the queue's own streams. A dead letter whose
   dlq-stream field names another key is left in the dead-letter stream and reported
   (exit 1); the others are replayed to their own stream. */
static void test_tool_dlq_replay_only_own_streams(void) {
    char out[4096], err[2048], cli[2048];
    REQUIRE(have_server);
    srv_cli(&S, NULL, 0, "XADD {t:rep}:dlq '*' payload good0 dlq-stream t:rep dlq-id 1-1 dlq-deliveries 3 dlq-error e");
    srv_cli(&S, NULL, 0, "XADD {t:rep}:dlq '*' payload evil dlq-stream other:stream dlq-id 2-1 dlq-deliveries 3 dlq-error e");
    srv_cli(&S, NULL, 0, "XADD {t:rep}:dlq '*' payload good1 dlq-stream {t:rep}:p1 dlq-id 3-1 dlq-deliveries 3 dlq-error e");
    srv_cli(&S, NULL, 0, "XADD {t:rep}:dlq '*' payload loop dlq-stream {t:rep}:dlq dlq-id 4-1");
    srv_cli(&S, NULL, 0, "XADD {t:rep}:dlq '*' payload nowhere dlq-id 5-1");
    CHECK_EQ_INT(run(out, sizeof out, "./rsq dlq t:rep replay"), 1);
    CHECK_STR(out, "replayed 2\n");
    CHECK_EQ_INT(err_lines(err, sizeof err), 1);
    CHECK(strstr(err, "left 3 dead letters") != NULL && strstr(err, "other:stream") != NULL);
    srv_cli(&S, cli, sizeof cli, "EXISTS other:stream");
    CHECK_STR(cli, "0");
    srv_cli(&S, cli, sizeof cli, "XLEN {t:rep}:dlq");
    CHECK_STR(cli, "3");
    srv_cli(&S, cli, sizeof cli, "XRANGE t:rep - +");
    CHECK(strstr(cli, "payload\ngood0") != NULL && strstr(cli, "dlq-") == NULL && strstr(cli, "evil") == NULL);
    srv_cli(&S, cli, sizeof cli, "XRANGE {t:rep}:p1 - +");
    CHECK(strstr(cli, "payload\ngood1") != NULL && strstr(cli, "dlq-") == NULL);
    srv_cli(&S, cli, sizeof cli, "XRANGE {t:rep}:dlq - +");
    CHECK(strstr(cli, "evil") != NULL && strstr(cli, "loop") != NULL && strstr(cli, "nowhere") != NULL);
    /* again: nothing more to replay, the foreign ones stay */
    CHECK_EQ_INT(run(out, sizeof out, "./rsq dlq t:rep replay --max 5"), 1);
    CHECK_STR(out, "replayed 0\n");
    srv_cli(&S, cli, sizeof cli, "XLEN {t:rep}:dlq");
    CHECK_STR(cli, "3");
}

/* issue 20: `rsq dlq replay` without scripting (EVAL, EVALSHA, SCRIPT renamed away,
   as some providers do; or an ACL user without +eval) moves each dead letter with
   WATCH/MULTI/EXEC: replayed to the queue's own streams, removed from the dead
   letters, foreign ones left and reported; a user without +eval and +multi moves
   nothing and the error names MULTI. */
static void test_tool_dlq_replay_without_scripting(void) {
    srv P;
    char out[4096], err[2048], cli[2048], url[800];
    REQUIRE(have_server);
    REQUIRE(srv_start(&P, "rename-command EVAL \"\"\nrename-command EVALSHA \"\"\nrename-command SCRIPT \"\"") == 0);
    srv_cli(&P, NULL, 0, "XADD {t:ns}:dlq '*' payload one dlq-stream t:ns dlq-id 1-1 dlq-deliveries 3 dlq-error e");
    srv_cli(&P, NULL, 0, "XADD {t:ns}:dlq '*' payload evil dlq-stream other:stream dlq-id 2-1");
    srv_cli(&P, NULL, 0, "XADD {t:ns}:dlq '*' payload two h v dlq-stream {t:ns}:p1 dlq-id 3-1");
    CHECK_EQ_INT(run_at(P.unix_url, out, sizeof out, "./rsq dlq t:ns replay"), 1);
    CHECK_STR(out, "replayed 2\n");
    CHECK_EQ_INT(err_lines(err, sizeof err), 1);
    CHECK(strstr(err, "left 1 dead letter") != NULL && strstr(err, "other:stream") != NULL);
    srv_cli(&P, cli, sizeof cli, "XRANGE t:ns - +");
    CHECK(strstr(cli, "payload\none") != NULL && strstr(cli, "dlq-") == NULL);
    srv_cli(&P, cli, sizeof cli, "XRANGE {t:ns}:p1 - +");
    CHECK(strstr(cli, "payload\ntwo\nh\nv") != NULL && strstr(cli, "dlq-") == NULL);
    srv_cli(&P, cli, sizeof cli, "XLEN {t:ns}:dlq");
    CHECK_STR(cli, "1");
    CHECK_EQ_INT(run_at(P.unix_url, out, sizeof out, "./rsq dlq t:ns replay"), 1); /* nothing more: the foreign one stays */
    CHECK_STR(out, "replayed 0\n");
    srv_stop(&P, 0);
    /* ACL users (Redis >= 6.0): without +eval the same; without +multi too, nothing moves */
    if (srv_cli(&S, cli, sizeof cli, "ACL SETUSER t-noeval on '>pw' '~*' '+@all' '-eval' '-evalsha'") != 0 || strcmp(cli, "OK"))
        return; /* Redis 5.0: the renamed server above showed it */
    srv_cli(&S, NULL, 0, "ACL SETUSER t-nomulti on '>pw' '~*' '+@all' '-eval' '-evalsha' '-multi'");
    srv_cli(&S, NULL, 0, "XADD {t:ns}:dlq '*' payload a dlq-stream t:ns dlq-id 1-1");
    snprintf(url, sizeof url, "unix://t-nomulti:pw@%s", S.sock);
    CHECK_EQ_INT(run_at(url, out, sizeof out, "./rsq dlq t:ns replay"), 1);
    CHECK_STR(out, "replayed 0\n");
    CHECK_EQ_INT(err_lines(err, sizeof err), 1);
    CHECK(strstr(err, "MULTI") != NULL && strstr(err, "NOPERM") != NULL && strstr(err, "nothing was moved") != NULL);
    srv_cli(&S, cli, sizeof cli, "XLEN {t:ns}:dlq");
    CHECK_STR(cli, "1");
    srv_cli(&S, cli, sizeof cli, "EXISTS t:ns");
    CHECK_STR(cli, "0");
    snprintf(url, sizeof url, "unix://t-noeval:pw@%s", S.sock);
    CHECK_EQ_INT(run_at(url, out, sizeof out, "./rsq dlq t:ns replay"), 0);
    CHECK_STR(out, "replayed 1\n");
    srv_cli(&S, cli, sizeof cli, "XLEN {t:ns}:dlq");
    CHECK_STR(cli, "0");
    srv_cli(&S, cli, sizeof cli, "XLEN t:ns");
    CHECK_STR(cli, "1");
    srv_cli(&S, NULL, 0, "ACL DELUSER t-noeval t-nomulti");
}

/* issue 20: optional commands are optional. With INFO and TIME renamed away, `work`
   consumes and reclaims (an entry idle on a dead consumer comes to the live one) and
   `stats` shows the right figures. */
static void test_tool_without_info_and_time(void) {
    srv P;
    char out[4096], err[2048], cli[2048];
    REQUIRE(have_server);
    REQUIRE(srv_start(&P, "rename-command INFO \"\"\nrename-command TIME \"\"") == 0);
    CHECK_EQ_INT(run_at(P.unix_url, NULL, 0, "printf 'i1\\ni2\\n' | ./rsq pub t:ni >/dev/null"), 0);
    srv_cli(&P, NULL, 0, "XGROUP CREATE t:ni g 0");
    srv_cli(&P, cli, sizeof cli, "XREADGROUP GROUP g dead COUNT 1 STREAMS t:ni '>'"); /* i1 pending on "dead" */
    usleep(300000);
    CHECK_EQ_INT(run_at(P.unix_url, out, sizeof out, "./rsq work t:ni -g g -n live --visibility 200 --idle-exit 2"), 0);
    CHECK(!strcmp(out, "i1\ni2\n") || !strcmp(out, "i2\ni1\n"));
    CHECK_EQ_INT(err_lines(err, sizeof err), 0);
    srv_cli(&P, cli, sizeof cli, "XPENDING t:ni g");
    CHECK(strncmp(cli, "0", 1) == 0);
    CHECK_EQ_INT(run_at(P.unix_url, out, sizeof out, "./rsq stats t:ni"), 0);
    CHECK(strstr(out, "length 2") != NULL && strstr(out, "dead-letters 0") != NULL);
    srv_stop(&P, 0);
}

/* DESIGN: a password from outside the command line, never passed on to --exec
   children; --help warns about -u. */
static void test_tool_secrets(void) {
    srv P;
    char out[4096], err[2048], pwfile[600], badfile[600], envfile[600], url[800], env[1 << 15];
    FILE *f;
    REQUIRE(have_server);
    REQUIRE(srv_start(&P, "requirepass s3cr3t-pw-42") == 0);
    snprintf(pwfile, sizeof pwfile, "%s/pw.txt", P.dir);
    snprintf(badfile, sizeof badfile, "%s/bad.txt", P.dir);
    snprintf(envfile, sizeof envfile, "%s/env.txt", P.dir);
    f = fopen(pwfile, "w");
    REQUIRE(f != NULL);
    fputs("s3cr3t-pw-42\n", f);
    fclose(f);
    f = fopen(badfile, "w");
    REQUIRE(f != NULL);
    fputs("wrong-pw-77\n", f);
    fclose(f);
    CHECK_EQ_INT(run_at(P.unix_url, out, sizeof out, "./rsq pub t:sec hello"), 1); /* no password */
    CHECK_EQ_INT(err_lines(err, sizeof err), 1);
    CHECK_EQ_INT(run_at(P.unix_url, out, sizeof out, "./rsq --password-file %s pub t:sec hello", pwfile), 0);
    CHECK_EQ_INT(run_at(P.unix_url, out, sizeof out, "./rsq pub t:sec hello --password-file %s", pwfile), 0);
    snprintf(url, sizeof url, "unix://default@%s", P.sock); /* the user only */
    CHECK_EQ_INT(run_at(url, out, sizeof out, "./rsq --password-file %s pub t:sec hello", pwfile), 0);
    CHECK_EQ_INT(run_at(P.unix_url, out, sizeof out, "./rsq --password-file %s pub t:sec hello", badfile), 1);
    CHECK_EQ_INT(err_lines(err, sizeof err), 1);
    CHECK(strstr(err, "wrong-pw-77") == NULL);
    CHECK_EQ_INT(run_at(P.unix_url, out, sizeof out, "./rsq --password-file %s/none pub t:sec hello", P.dir), 1);
    CHECK_EQ_INT(run_at(P.unix_url, out, sizeof out, "REDISCLI_AUTH=s3cr3t-pw-42 ./rsq pub t:sec hello"), 0);
    snprintf(url, sizeof url, "unix://:s3cr3t-pw-42@%s", P.sock);
    CHECK_EQ_INT(run_at(url, out, sizeof out, "./rsq --password-file %s pub t:sec hello", pwfile), 2); /* two passwords */
    /* the --exec child: neither RSQ_URL, REDISCLI_AUTH nor anything with the password */
    CHECK_EQ_INT(run_at(url, out, sizeof out,
                        "REDISCLI_AUTH=s3cr3t-pw-42 OTHER_URL='redis://u:s3cr3t-pw-42@h:1/0' COPY=xs3cr3t-pw-42x "
                        "PLAIN=keep ./rsq work t:sec -g g --max 1 --exec 'env > %s'", envfile), 0);
    CHECK(read_file(envfile, env, sizeof env) > 0);
    CHECK(strstr(env, "RSQ_ID=") != NULL && strstr(env, "PLAIN=keep") != NULL);
    CHECK(strstr(env, "s3cr3t") == NULL);
    CHECK(strstr(env, "RSQ_URL=") == NULL && strstr(env, "REDISCLI_AUTH=") == NULL && strstr(env, "OTHER_URL=") == NULL);
    /* a password from the file: the child has no RSQ_URL either */
    remove(envfile);
    CHECK_EQ_INT(run_at(P.unix_url, out, sizeof out, "./rsq work t:sec -g g --max 1 --password-file %s --exec 'env > %s'",
                        pwfile, envfile), 0);
    CHECK(read_file(envfile, env, sizeof env) > 0);
    CHECK(strstr(env, "s3cr3t") == NULL && strstr(env, "RSQ_URL=") == NULL && strstr(env, "RSQ_ID=") != NULL);
    /* a password given with -u anyway is masked in the process's arguments (ps) */
    {
        char outp[700], errp[700], path[64];
        pid_t pid;
        int st;
        long n = -1, k;
        snprintf(outp, sizeof outp, "%s/ps-out.txt", P.dir);
        snprintf(errp, sizeof errp, "%s/ps-err.txt", P.dir);
        snprintf(url, sizeof url, "./rsq -u unix://:s3cr3t-pw-42@%s work t:sec -g g", P.sock);
        pid = spawn_at(P.unix_url, outp, errp, url);
        snprintf(path, sizeof path, "/proc/%d/cmdline", (int)pid);
        for (k = 0; k < 100; k++) { /* until rsq runs (not the shell before exec) */
            usleep(20000);
            n = read_file(path, env, sizeof env);
            if (n > 0 && mem_has(env, (size_t)n, "work", 4) && !mem_has(env, (size_t)n, "exec ", 5) &&
                mem_has(env, (size_t)n, ":***", 4)) break;
        }
        CHECK(n > 0 && !mem_has(env, (size_t)n, "s3cr3t", 6) && mem_has(env, (size_t)n, ":************@", 14));
        kill(pid, SIGTERM);
        CHECK(wait_exit(pid, 5000, &st) >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    CHECK_EQ_INT(run(out, sizeof out, "./rsq --help"), 0);
    CHECK(strstr(out, "--password-file") != NULL && strstr(out, "REDISCLI_AUTH") != NULL && strstr(out, "(ps,") != NULL);
    srv_stop(&P, 0);
}

/* DESIGN (issue 12): a group the tool creates starts at 0 unless --from says $. */
static void test_tool_work_new_group_starts_at_zero(void) {
    char out[4096];
    REQUIRE(have_server);
    CHECK_EQ_INT(run(NULL, 0, "printf 'm1\\nm2\\n' | ./rsq pub t:from0 >/dev/null"), 0);
    CHECK_EQ_INT(run(out, sizeof out, "./rsq work t:from0 -g fresh --idle-exit 1"), 0);
    CHECK_STR(out, "m1\nm2\n");
    CHECK_EQ_INT(run(out, sizeof out, "./rsq work t:from0 -g newonly --from '$' --idle-exit 1"), 0);
    CHECK_STR(out, "");
    CHECK_EQ_INT(run(out, sizeof out, "./rsq work --help"), 0);
    CHECK(strstr(out, "--from 0|$|ID") != NULL && strstr(out, "0 (the\n                        default) takes the whole stream") != NULL);
}

/* issue 20: an ack the server refuses (an ACL user without +xack) is not swallowed:
   `rsq work` exits 1 with one line naming the step, and the message stays pending
   (it was not acknowledged). */
static void test_tool_work_ack_refused_exits_1(void) {
    char out[4096], err[2048], cli[256], url[800];
    REQUIRE(have_server);
    if (srv_cli(&S, cli, sizeof cli, "ACL SETUSER t-noack on '>pw' '~*' '+@all' '-xack'") != 0 || strcmp(cli, "OK")) {
        t_skip("no ACL users on this server (Redis < 6.0)");
        return;
    }
    snprintf(url, sizeof url, "unix://t-noack:pw@%s", S.sock);
    CHECK_EQ_INT(run_at(url, NULL, 0, "printf 'n1\\nn2\\n' | ./rsq pub t:noack >/dev/null"), 0);
    srv_cli(&S, NULL, 0, "XGROUP CREATE t:noack g 0"); /* made by the tool, it would add a note line */
    /* the last ack goes out when it exits (--max) */
    CHECK_EQ_INT(run_at(url, out, sizeof out, "./rsq work t:noack -g g -n a --max 1"), 1);
    CHECK_STR(out, "n1\n");
    CHECK_EQ_INT(err_lines(err, sizeof err), 1);
    CHECK(strstr(err, "XACK") != NULL && strstr(err, "NOPERM") != NULL);
    /* with the next read (no --max) */
    CHECK_EQ_INT(run_at(url, out, sizeof out, "./rsq work t:noack -g g -n b --idle-exit 2"), 1);
    CHECK_STR(out, "n2\n");
    CHECK_EQ_INT(err_lines(err, sizeof err), 1);
    CHECK(strstr(err, "XACK") != NULL && strstr(err, "NOPERM") != NULL);
    srv_cli(&S, cli, sizeof cli, "XPENDING t:noack g");
    CHECK(strncmp(cli, "2\n", 2) == 0); /* neither was acknowledged */
    srv_cli(&S, NULL, 0, "ACL DELUSER t-noack");
}

/* One-shot commands fail fast against a frozen server (SIGSTOP): exit 1 with one line
   within a few seconds (io 2 s, 2 attempts; a publish also resends once). */
static void test_tool_one_shot_fails_fast_on_frozen_server(void) {
    srv P;
    char out[4096], err[2048];
    long long t0, ms;
    REQUIRE(have_server);
    REQUIRE(srv_start(&P, NULL) == 0);
    kill(P.pid, SIGSTOP);
    t0 = mono_ms();
    CHECK_EQ_INT(run_at(P.unix_url, out, sizeof out, "./rsq stats t:frozen"), 1);
    ms = mono_ms() - t0;
    CHECK(ms < 6000);
    CHECK_EQ_INT(err_lines(err, sizeof err), 1);
    t0 = mono_ms();
    CHECK_EQ_INT(run_at(P.unix_url, out, sizeof out, "./rsq pub t:frozen x"), 1);
    ms = mono_ms() - t0;
    CHECK(ms < 11000);
    kill(P.pid, SIGCONT);
    srv_stop(&P, 0);
}

/* ==== issue 18: the operator's tool, grown up ==== */

/* Runs a shell command line with RSQ_URL set; its exit status (stdout and stderr of
   the line go where the line says). */
static int sh(const char *fmt, ...) {
    char line[3500];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    return run(NULL, 0, "%s", line);
}

/* promtool on PATH, else where tools/deps.sh unpacks it. */
static const char *promtool(void) {
    static char path[600];
    const char *cache = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    if (srv_which("promtool")) return "promtool";
    if (cache && *cache) snprintf(path, sizeof path, "%s/rsq-tools/promtool", cache);
    else snprintf(path, sizeof path, "%s/.cache/rsq-tools/promtool", home ? home : "");
    return access(path, X_OK) == 0 ? path : NULL;
}

/* The short host name, as `rsq work` puts it in its default consumer name. */
static void short_host(char *out, size_t cap) {
    char *dot;
    if (gethostname(out, cap) != 0 || !out[0]) snprintf(out, cap, "host");
    out[cap - 1] = '\0';
    if ((dot = strchr(out, '.')) != NULL && dot != out) *dot = '\0';
}

/* A queue with a bit of everything: its stream (5 entries, a group "g" with 2 pending
   entries idle for 200 ms or more), priority level 5 (1), shards 1 and 2 (2 each),
   2 dead letters, a delayed set of 2, and keys that only look like its own. */
static int make_full_queue(const srv *s, const char *url, const char *q) {
    int bad = 0;
    bad |= run_at(url, NULL, 0, "seq 1 3 | ./rsq pub %s >/dev/null", q);
    bad |= run_at(url, NULL, 0, "./rsq pub %s urgent --priority 5 >/dev/null", q);
    bad |= run_at(url, NULL, 0, "seq 1 6 | ./rsq pub %s --shards 3 >/dev/null", q);
    bad |= srv_cli(s, NULL, 0, "XGROUP CREATE %s g 0", q);
    bad |= srv_cli(s, NULL, 0, "XREADGROUP GROUP g holder COUNT 2 STREAMS %s '>'", q);
    bad |= srv_cli(s, NULL, 0, "XADD '{%s}:dlq' '*' payload d1 dlq-stream %s dlq-id 1-1 dlq-deliveries 3 dlq-error e", q, q);
    bad |= srv_cli(s, NULL, 0, "XADD '{%s}:dlq' '*' payload d2 dlq-stream %s dlq-id 1-2 dlq-deliveries 3 dlq-error e", q, q);
    bad |= srv_cli(s, NULL, 0, "ZADD '{%s}:delayed' 1893456000123 m1 1893456009000 m2", q);
    bad |= srv_cli(s, NULL, 0, "XADD '%sx' '*' payload decoy", q);          /* another queue */
    bad |= srv_cli(s, NULL, 0, "XADD '{%s}:other' '*' payload decoy", q);   /* not a name rsq makes */
    bad |= srv_cli(s, NULL, 0, "XADD '{%s}:p16' '*' payload decoy", q);     /* level 16: none */
    bad |= srv_cli(s, NULL, 0, "XADD '{%s}:p05' '*' payload decoy", q);     /* not how rsq writes 5 */
    usleep(200000);
    return bad ? -1 : 0;
}

/* make_full_queue on the shared server, once per run. */
static int full_queue(void) {
    static int made;
    if (!made) made = make_full_queue(&S, S.unix_url, "t:all") == 0;
    return made;
}

/* The human view of make_full_queue's queue. */
static void check_full_queue_text(const char *out, const char *q) {
    char want[256];
    snprintf(want, sizeof want, "stream %s  length 5 ", q);
    CHECK(strstr(out, want) != NULL);
    CHECK(strstr(out, "dead-letters 2") != NULL);
    snprintf(want, sizeof want, "stream {%s}:p5  length 1 ", q);
    CHECK(strstr(out, want) != NULL);
    snprintf(want, sizeof want, "stream {%s:s1}  length 2 ", q);
    CHECK(strstr(out, want) != NULL);
    snprintf(want, sizeof want, "stream {%s:s2}  length 2 ", q);
    CHECK(strstr(out, want) != NULL);
    snprintf(want, sizeof want, "dead letters {%s}:dlq  length 2 ", q);
    CHECK(strstr(out, want) != NULL);
    snprintf(want, sizeof want, "delayed {%s}:delayed  size 2  next due ", q);
    CHECK(strstr(out, want) != NULL);
    CHECK(strstr(out, ".123 (in ") != NULL); /* the lowest score, to the millisecond */
    CHECK(strstr(out, "decoy") == NULL && strstr(out, ":other") == NULL && strstr(out, ":p16") == NULL &&
          strstr(out, ":p05") == NULL);
    snprintf(want, sizeof want, "%sx", q);
    CHECK(strstr(out, want) == NULL);
    {
        const char *row = strstr(out, "\ng ");
        long long pending = -1, lag = -1, consumers = -1;
        char oldest[32] = "";
        REQUIRE(row != NULL);
        CHECK(sscanf(row + 3, "%lld %lld %lld %31s", &pending, &lag, &consumers, oldest) == 4);
        CHECK_EQ_INT(pending, 2);
        CHECK_EQ_INT(lag, 3);
        CHECK_EQ_INT(consumers, 1);
        CHECK(strcmp(oldest, "-") != 0 && strlen(oldest) > 0); /* idle for 200 ms or more */
    }
}

/* issue 18: `rsq stats` shows every stream of the queue without being told their
   number: priority levels, shards, dead letters, the delayed set (size, next due);
   nothing else. The same by name when SCAN is renamed away; a name with its own hash
   tag too. */
static void test_tool_stats_finds_every_stream(void) {
    srv P;
    char out[8192];
    REQUIRE(have_server);
    REQUIRE(full_queue());
    CHECK_EQ_INT(run(out, sizeof out, "./rsq stats t:all"), 0);
    check_full_queue_text(out, "t:all");
    /* the delayed set alone (nothing else of the queue on the server) */
    srv_cli(&S, NULL, 0, "ZADD '{t:dl}:delayed' 1893456000000 m");
    CHECK_EQ_INT(run(out, sizeof out, "./rsq stats t:dl"), 0);
    CHECK(strstr(out, "stream t:dl: does not exist") != NULL && strstr(out, "delayed {t:dl}:delayed  size 1") != NULL);
    /* a name with a hash tag keeps it in every key */
    CHECK_EQ_INT(run(NULL, 0, "./rsq pub '{t:tag}.eu' a --priority 2 >/dev/null"), 0);
    CHECK_EQ_INT(run(NULL, 0, "printf 'b\\nc\\n' | ./rsq pub '{t:tag}.eu' --shards 2 >/dev/null"), 0);
    CHECK_EQ_INT(run(out, sizeof out, "./rsq stats '{t:tag}.eu'"), 0);
    CHECK(strstr(out, "stream {t:tag}.eu  length 1 ") != NULL && strstr(out, "stream {t:tag}.eu:p2  length 1 ") != NULL &&
          strstr(out, "stream {t:tag:s1}.eu  length 1 ") != NULL);
    /* without SCAN: found by name */
    REQUIRE(srv_start(&P, "rename-command SCAN \"\"") == 0);
    CHECK(make_full_queue(&P, P.unix_url, "t:all") == 0);
    CHECK_EQ_INT(run_at(P.unix_url, out, sizeof out, "./rsq stats t:all"), 0);
    check_full_queue_text(out, "t:all");
    srv_stop(&P, 0);
}

/* issue 18: `rsq stats --json` parses with a JSON parser (jq) and holds the figures;
   names with control bytes come back byte for byte. */
static void test_tool_stats_json(void) {
    char path[600], out[4096];
    static const char gname[] = "g\x1b[31m\nrow";
    REQUIRE(have_server);
    snprintf(path, sizeof path, "%s/stats.json", S.dir);
    REQUIRE(full_queue());
    CHECK_EQ_INT(sh("./rsq stats t:all --json > %s", path), 0);
    CHECK_EQ_INT(sh("jq -e . %s >/dev/null", path), 0); /* it parses */
    CHECK_EQ_INT(sh("jq -e '.queue == \"t:all\" and .dead_letters == 2 and (.time_ms | type) == \"number\"' %s >/dev/null", path), 0);
    CHECK_EQ_INT(sh("jq -e '[.streams[].key] == [\"t:all\", \"{t:all}:p5\", \"{t:all:s1}\", \"{t:all:s2}\", \"{t:all}:dlq\", "
                    "\"{t:all}:delayed\"]' %s >/dev/null", path), 0);
    CHECK_EQ_INT(sh("jq -e '.streams[0] | .kind == \"stream\" and .exists and .length == 5 and .groups_total == 1 and "
                    "(.groups[0] | .name == \"g\" and .pending == 2 and .lag == 3 and .lag_exact and .consumers == 1 and "
                    ".oldest_pending_idle_ms >= 200 and (.oldest_pending_id | test(\"^[0-9]+-[0-9]+$\")))' %s >/dev/null", path), 0);
    CHECK_EQ_INT(sh("jq -e '.streams[1] | .priority == 5 and .shard == 0 and .length == 1' %s >/dev/null", path), 0);
    CHECK_EQ_INT(sh("jq -e '.streams[3] | .shard == 2 and .priority == 0 and .length == 2' %s >/dev/null", path), 0);
    CHECK_EQ_INT(sh("jq -e '.streams[4] | .kind == \"dead_letters\" and .length == 2' %s >/dev/null", path), 0);
    CHECK_EQ_INT(sh("jq -e '.streams[5] | .kind == \"delayed\" and .size == 2 and .next_due_ms == 1893456000123' %s >/dev/null", path), 0);
    /* a stream that does not exist; names with control bytes, exactly */
    CHECK_EQ_INT(sh("./rsq stats t:none --json > %s", path), 0);
    CHECK_EQ_INT(sh("jq -e '.streams == [.streams[0]] and .streams[0].exists == false and .dead_letters == 0' %s >/dev/null", path), 0);
    {
        const char *a[] = { "XGROUP", "CREATE", "t:jesc", gname, "0", "MKSTREAM" };
        size_t l[] = { 6, 6, 6, sizeof gname - 1, 1, 8 };
        REQUIRE(lib_cmd(S.unix_url, 6, a, l) == 0);
    }
    CHECK_EQ_INT(sh("./rsq stats t:jesc --json > %s", path), 0);
    CHECK_EQ_INT(run(out, sizeof out, "jq -j '.streams[0].groups[0].name' %s", path), 0);
    CHECK_EQ_INT(out_len, sizeof gname - 1);
    CHECK(memcmp(out, gname, sizeof gname - 1) == 0);
}

/* Checks the text exposition format by hand as well: # HELP and # TYPE before a
   family's samples, each sample NAME{LABELS} VALUE of a family just declared. */
static int prom_well_formed(const char *text) {
    char family[128] = "", line[2048];
    const char *p = text;
    int samples = 0;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        if (n >= sizeof line) return -1;
        memcpy(line, p, n);
        line[n] = '\0';
        p += n + (nl ? 1 : 0);
        if (!strncmp(line, "# HELP ", 7)) {
            if (sscanf(line + 7, "%127s", family) != 1) return -1;
        } else if (!strncmp(line, "# TYPE ", 7)) {
            char name[128], type[32];
            if (sscanf(line + 7, "%127s %31s", name, type) != 2 || strcmp(name, family) || strcmp(type, "gauge")) return -1;
        } else {
            size_t k = strlen(family);
            const char *sp = strrchr(line, ' ');
            char *end;
            if (!k || strncmp(line, family, k) || line[k] != '{' || !sp || sp[-1] != '}') return -1;
            strtod(sp + 1, &end);
            if (end == sp + 1 || *end) return -1;
            samples++;
        }
    }
    return samples;
}

/* issue 18: `rsq stats --prometheus` passes `promtool check metrics` (Debian's
   promtool, unpacked by tools/deps.sh) and holds the conventional names and labels;
   label values with control bytes stay in the format. */
static void test_tool_stats_prometheus(void) {
    char path[600], out[16384];
    const char *pt = promtool();
    REQUIRE(have_server);
    snprintf(path, sizeof path, "%s/stats.prom", S.dir);
    REQUIRE(full_queue());
    CHECK_EQ_INT(sh("./rsq stats t:all --prometheus > %s", path), 0);
    REQUIRE(read_file(path, out, sizeof out) > 0);
    CHECK(prom_well_formed(out) >= 10);
    CHECK(strstr(out, "# TYPE rsq_stream_length gauge\n") != NULL);
    CHECK(strstr(out, "\nrsq_stream_length{queue=\"t:all\",stream=\"t:all\",kind=\"stream\",shard=\"0\",priority=\"0\"} 5\n") != NULL);
    CHECK(strstr(out, "\nrsq_stream_length{queue=\"t:all\",stream=\"{t:all}:p5\",kind=\"stream\",shard=\"0\",priority=\"5\"} 1\n") != NULL);
    CHECK(strstr(out, "\nrsq_stream_length{queue=\"t:all\",stream=\"{t:all:s2}\",kind=\"stream\",shard=\"2\",priority=\"0\"} 2\n") != NULL);
    CHECK(strstr(out, "\nrsq_stream_length{queue=\"t:all\",stream=\"{t:all}:dlq\",kind=\"dead_letters\",shard=\"0\"} 2\n") != NULL);
    CHECK(strstr(out, "\nrsq_group_pending{queue=\"t:all\",stream=\"t:all\",group=\"g\"} 2\n") != NULL);
    CHECK(strstr(out, "\nrsq_group_lag{queue=\"t:all\",stream=\"t:all\",group=\"g\"} 3\n") != NULL);
    CHECK(strstr(out, "\nrsq_group_consumers{queue=\"t:all\",stream=\"t:all\",group=\"g\"} 1\n") != NULL);
    CHECK(strstr(out, "\nrsq_group_oldest_pending_idle_seconds{queue=\"t:all\",stream=\"t:all\",group=\"g\"} ") != NULL);
    CHECK(strstr(out, "\nrsq_dead_letters{queue=\"t:all\"} 2\n") != NULL);
    CHECK(strstr(out, "\nrsq_delayed_messages{queue=\"t:all\",stream=\"{t:all}:delayed\",kind=\"delayed\",shard=\"0\"} 2\n") != NULL);
    CHECK(strstr(out, "\nrsq_delayed_next_due_timestamp_seconds{queue=\"t:all\",stream=\"{t:all}:delayed\",kind=\"delayed\","
                      "shard=\"0\"} 1893456000.123\n") != NULL);
    if (!pt) {
        fprintf(stderr, "    promtool not found (tools/deps.sh test unpacks it)\n");
        CHECK(pt != NULL);
        return;
    }
    CHECK_EQ_INT(sh("'%s' check metrics < %s >%s/promtool.out 2>&1", pt, path, S.dir), 0);
    /* hostile names: quote, newline, escape sequence, a byte that is not UTF-8 */
    {
        static const char g2[] = "x\ny\x1b[0m\xff";
        const char *a[] = { "XGROUP", "CREATE", "t:p\"q", g2, "0", "MKSTREAM" };
        size_t l[] = { 6, 6, 5, sizeof g2 - 1, 1, 8 };
        REQUIRE(lib_cmd(S.unix_url, 6, a, l) == 0);
    }
    CHECK_EQ_INT(sh("./rsq stats 't:p\"q' --prometheus > %s", path), 0);
    CHECK_EQ_INT(sh("'%s' check metrics < %s >%s/promtool.out 2>&1", pt, path, S.dir), 0);
    REQUIRE(read_file(path, out, sizeof out) > 0);
    CHECK(prom_well_formed(out) > 0);
    CHECK(strstr(out, "group=\"x\\ny\\\\x1b[0m\\\\xff\"} 0\n") != NULL);
    CHECK(!has_control_bytes(out, strlen(out)));
}

/* The value of a number field in the last line of a --json --watch file that has one
   (jq's // and select: the first non-null), as text; 0 when none yet. */
static int last_json_number(const char *path, const char *expr, double *v) {
    char out[256];
    if (run(out, sizeof out, "tail -n 1 %s | jq -r '%s // empty'", path, expr) != 0 || !out[0]) return 0;
    *v = atof(out);
    return 1;
}

/* issue 18: `rsq stats --watch` shows rates in (per stream) and out (per group) per
   second: after messages are published the rate in is above zero, after they are
   consumed the rate out is; one JSON object per line with --json. */
static void test_tool_stats_watch_rates(void) {
    char out[700], err[700], text[8192];
    pid_t pid;
    int st, seen_in = 0, seen_out = 0;
    long long t0;
    double v = 0;
    REQUIRE(have_server);
    snprintf(out, sizeof out, "%s/rate-out.txt", S.dir);
    snprintf(err, sizeof err, "%s/rate-err.txt", S.dir);
    CHECK_EQ_INT(sh("./rsq pub t:rate first >/dev/null"), 0);
    srv_cli(&S, NULL, 0, "XGROUP CREATE t:rate g '$'");
    pid = spawn_at(S.unix_url, out, err, "./rsq stats t:rate --watch 1 --json");
    CHECK(wait_for(out, "\"key\":\"t:rate\"", 10000));
    t0 = mono_ms();
    while (!seen_in && mono_ms() - t0 < 15000) {
        sh("seq 1 50 | ./rsq pub t:rate >/dev/null");
        usleep(300000);
        seen_in = last_json_number(out, ".streams[0].rate_in_per_s", &v) && v > 0;
    }
    CHECK(seen_in);
    t0 = mono_ms();
    while (!seen_out && mono_ms() - t0 < 15000) {
        sh("./rsq work t:rate -g g -n w --max 40 >/dev/null 2>&1");
        usleep(300000);
        seen_out = last_json_number(out, ".streams[0].groups[0].rate_out_per_s", &v) && v > 0;
    }
    CHECK(seen_out);
    kill(pid, SIGINT);
    CHECK(wait_exit(pid, 10000, &st) >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK_EQ_INT(sh("jq -e . %s >/dev/null", out), 0); /* every line is a JSON object */
    CHECK(count_lines(out, "{\"queue\":\"t:rate\"") >= 2);
    /* people's view: the columns */
    CHECK_EQ_INT(run(text, sizeof text, "timeout --preserve-status -s INT 2.5 ./rsq stats t:rate --watch 1"), 0);
    CHECK(strstr(text, "OUT/S") != NULL && strstr(text, "  in ") != NULL);
}
/* Lines in buf. */
static int count_lines_mem(const char *buf) {
    int n = 0;
    for (; *buf; buf++) n += *buf == '\n';
    return n;
}

/* The rows of `rsq pending` output (after its header): consumer of each, in order. */
static int pending_rows(const char *out, char rows[][400], int max) {
    const char *p = strchr(out, '\n');
    int n = 0;
    while (p && p[1] && n < max) {
        char stream[256], id[64], cons[64], idle[32];
        long long dl;
        p++;
        if (sscanf(p, "%255s %63s %63s %31s %lld", stream, id, cons, idle, &dl) == 5 && strchr(id, '-')) {
            snprintf(rows[n], 400, "%s %s %lld", stream, cons, dl);
            n++;
        }
        p = strchr(p, '\n');
    }
    return n;
}

/* issue 18: `rsq pending STREAM -g GROUP [--consumer C] [--max N]`: who holds which
   entries on every stream of the queue, idle time and deliveries, the longest idle
   first and the most recently delivered last. */
static void test_tool_pending(void) {
    char out[8192], err[2048], rows[16][400];
    int n;
    REQUIRE(have_server);
    CHECK_EQ_INT(sh("seq 1 5 | ./rsq pub t:pend >/dev/null && ./rsq pub t:pend hi --priority 1 >/dev/null"), 0);
    srv_cli(&S, NULL, 0, "XGROUP CREATE t:pend g 0");
    srv_cli(&S, NULL, 0, "XGROUP CREATE '{t:pend}:p1' g 0");
    srv_cli(&S, NULL, 0, "XREADGROUP GROUP g old COUNT 2 STREAMS t:pend '>'");
    usleep(150000);
    srv_cli(&S, NULL, 0, "XREADGROUP GROUP g mid COUNT 1 STREAMS t:pend '>'");
    usleep(100000);
    srv_cli(&S, NULL, 0, "XCLAIM t:pend g mid 0 $(redis-cli -s %s XRANGE t:pend - + COUNT 1 | head -1)", S.sock); /* 2 deliveries */
    usleep(150000);
    srv_cli(&S, NULL, 0, "XREADGROUP GROUP g new COUNT 1 STREAMS '{t:pend}:p1' '>'");
    CHECK_EQ_INT(run(out, sizeof out, "./rsq pending t:pend -g g"), 0);
    CHECK(strncmp(out, "STREAM", 6) == 0);
    n = pending_rows(out, rows, 16);
    CHECK_EQ_INT(n, 4);
    if (n != 4 || strcmp(rows[0], "t:pend old 1")) fprintf(stderr, "    rsq pending:\n%s", out);
    if (n == 4) {
        /* "old" read first but its first entry was claimed by "mid" since (idle 0) */
        CHECK_STR(rows[0], "t:pend old 1");
        CHECK_STR(rows[1], "t:pend mid 1");
        CHECK_STR(rows[2], "t:pend mid 2");
        CHECK_STR(rows[3], "{t:pend}:p1 new 1");
    }
    CHECK(strstr(out, "\n4 of 4 pending shown\n") != NULL);
    CHECK_EQ_INT(run(out, sizeof out, "./rsq pending t:pend -g g --consumer mid"), 0);
    n = pending_rows(out, rows, 16);
    CHECK_EQ_INT(n, 2);
    CHECK(strstr(out, "\n2 of 2 pending shown\n") != NULL);
    CHECK_EQ_INT(run(out, sizeof out, "./rsq pending t:pend -g g --max 1"), 0);
    n = pending_rows(out, rows, 16);
    CHECK_EQ_INT(n, 1);
    if (n == 1) CHECK_STR(rows[0], "t:pend mid 2"); /* the lowest ID of each stream, then the longest idle */
    CHECK(strstr(out, "\n1 of 4 pending shown\n") != NULL);
    CHECK_EQ_INT(run(out, sizeof out, "./rsq pending t:pend -g nope"), 1);
    CHECK_EQ_INT(err_lines(err, sizeof err), 1);
    CHECK(strstr(err, "no group nope on queue t:pend") != NULL);
    CHECK_EQ_INT(run(out, sizeof out, "./rsq pending t:pend"), 2);
    CHECK_EQ_INT(run(out, sizeof out, "./rsq pending t:pend -g g --max 0"), 2);
    /* a consumer name with control bytes is escaped */
    srv_cli(&S, NULL, 0, "XREADGROUP GROUP g \"$(printf 'ev\\033[2Jil')\" COUNT 1 STREAMS t:pend '>'");
    CHECK_EQ_INT(run(out, sizeof out, "./rsq pending t:pend -g g"), 0);
    CHECK(!has_control_bytes(out, out_len) && strstr(out, "ev\\x1b[2Jil") != NULL);
}

/* issue 18: `rsq dlq list` prints one line per dead letter: ID, origin, deliveries,
   error, headers, payload with control bytes escaped; --json is an array a JSON
   parser reads, with the exact bytes of a payload that is not UTF-8. */
static void test_tool_dlq_list_headers_json(void) {
    static const char bin[] = "\x01\xff\n\x1b";
    char out[8192], path[600];
    REQUIRE(have_server);
    srv_cli(&S, NULL, 0, "XADD '{t:dh}:dlq' '*' payload 'hello world' trace abc tenant 7 dlq-stream t:dh dlq-group g "
                         "dlq-id 1-1 dlq-deliveries 3 dlq-error 'exit status 1'");
    {
        const char *a[] = { "XADD", "{t:dh}:dlq", "*", "payload", bin, "dlq-stream", "{t:dh}:p2", "dlq-id", "2-1",
                            "dlq-deliveries", "11", "dlq-error", "bad\nline", "k\x1b", "v\"q" };
        size_t l[15];
        int i;
        for (i = 0; i < 15; i++) l[i] = strlen(a[i]);
        l[4] = sizeof bin - 1;
        REQUIRE(lib_cmd(S.unix_url, 15, a, l) == 0);
    }
    CHECK_EQ_INT(run(out, sizeof out, "./rsq dlq t:dh list"), 0);
    CHECK(!has_control_bytes(out, out_len));
    CHECK_EQ_INT(count_lines_mem(out), 2);
    CHECK(strstr(out, " stream=t:dh group=g origin=1-1 deliveries=3 error=\"exit status 1\" header:trace=\"abc\" "
                      "header:tenant=\"7\" payload=hello world\n") != NULL);
    CHECK(strstr(out, " stream={t:dh}:p2 origin=2-1 deliveries=11 error=\"bad\\nline\" header:k\\x1b=\"v\\\"q\" "
                      "payload=\\x01\\xff\\n\\x1b\n") != NULL);
    snprintf(path, sizeof path, "%s/dlq.json", S.dir);
    CHECK_EQ_INT(sh("./rsq dlq t:dh list --json > %s", path), 0);
    CHECK_EQ_INT(sh("jq -e 'length == 2' %s >/dev/null", path), 0);
    CHECK_EQ_INT(sh("jq -e '.[0] | .stream == \"t:dh\" and .group == \"g\" and .origin_id == \"1-1\" and .deliveries == 3 and "
                    ".error == \"exit status 1\" and .headers == {\"trace\": \"abc\", \"tenant\": \"7\"} and "
                    ".payload == \"hello world\" and (has(\"payload_base64\") | not) and (.id | test(\"^[0-9]+-[0-9]+$\"))' %s >/dev/null",
                    path), 0);
    CHECK_EQ_INT(sh("jq -e '.[1] | .stream == \"{t:dh}:p2\" and .group == null and .deliveries == 11 and "
                    ".error == \"bad\\nline\" and .headers == {\"k\\u001b\": \"v\\\"q\"} and .payload_base64 == \"Af8KGw==\"' %s >/dev/null",
                    path), 0);
    CHECK_EQ_INT(run(out, sizeof out, "./rsq dlq t:dh list --json --max 1 | jq -e 'length == 1' >/dev/null"), 0);
    CHECK_EQ_INT(run(out, sizeof out, "./rsq dlq t:dnone list --json"), 0);
    CHECK_EQ_INT(sh("./rsq dlq t:dnone list --json | jq -e '. == []' >/dev/null"), 0);
    CHECK_EQ_INT(run(out, sizeof out, "./rsq dlq t:dh replay --json"), 2);
}

/* issue 18: `rsq pub` from stdin: a line it cannot publish is named by its input line
   number, with how many lines before it were published and that the rest were not
   (before: "message 136", 4864 published and the rest dropped unsaid). */
static void test_tool_pub_stdin_error_names_line(void) {
    char out[1 << 17], err[2048], cli[256];
    REQUIRE(have_server);
    CHECK_EQ_INT(run(out, sizeof out, "(seq 5000; head -c 1100000 /dev/zero | tr '\\0' x; echo; echo last) | ./rsq pub t:big"), 1);
    CHECK_EQ_INT(err_lines(err, sizeof err), 1);
    CHECK(strstr(err, "line 5001: ") != NULL);
    CHECK(strstr(err, "the 5000 lines before it were published, it and the rest were not") != NULL);
    CHECK_EQ_INT(count_lines_mem(out), 5000); /* an ID per published line */
    srv_cli(&S, cli, sizeof cli, "XLEN t:big");
    CHECK_STR(cli, "5000");
    /* refused by the server at line 1: the key holds a string */
    srv_cli(&S, NULL, 0, "SET '{t:bigs}:p2' x");
    CHECK_EQ_INT(run(out, sizeof out, "seq 3 | ./rsq pub t:bigs --priority 2"), 1);
    CHECK_EQ_INT(err_lines(err, sizeof err), 1);
    CHECK(strstr(err, "line 1: key {t:bigs}:p2 holds a string, not a stream") != NULL);
    CHECK(strstr(err, "the 0 lines before it were published") != NULL);
}


/* issue 18 (found while at it): `rsq pub` publishes a line as soon as the input
   pauses, not when 256 lines or the end of the input have come (`tail -f | rsq pub`). */
static void test_tool_pub_line_goes_out_when_input_pauses(void) {
    char fifo[600], out[700], err[700], cli[64];
    pid_t pid;
    int st, fd;
    long long t0;
    REQUIRE(have_server);
    snprintf(fifo, sizeof fifo, "%s/pub.fifo", S.dir);
    snprintf(out, sizeof out, "%s/pub-out.txt", S.dir);
    snprintf(err, sizeof err, "%s/pub-err.txt", S.dir);
    REQUIRE(mkfifo(fifo, 0600) == 0);
    {
        char cmd[1400];
        snprintf(cmd, sizeof cmd, "./rsq pub t:pause < '%s'", fifo);
        pid = spawn_at(S.unix_url, out, err, cmd);
    }
    fd = open(fifo, O_WRONLY); /* blocks until rsq's shell opened it */
    REQUIRE(fd >= 0);
    CHECK(write(fd, "one\n", 4) == 4);
    t0 = mono_ms();
    do {
        usleep(50000);
        srv_cli(&S, cli, sizeof cli, "XLEN t:pause");
    } while (strcmp(cli, "1") && mono_ms() - t0 < 10000);
    CHECK_STR(cli, "1"); /* published while the input is still open */
    CHECK(write(fd, "two\n", 4) == 4);
    close(fd);
    CHECK(wait_exit(pid, 10000, &st) >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    srv_cli(&S, cli, sizeof cli, "XLEN t:pause");
    CHECK_STR(cli, "2");
    CHECK_EQ_INT(count_lines(out, "-"), 2);
}

/* issue 18: on a terminal (stderr), a long input shows a progress line there (count,
   rate); not otherwise. The terminal is script(1)'s. */
static void test_tool_pub_progress_on_terminal(void) {
    char ts[600], buf[8192], err[2048];
    REQUIRE(have_server);
    snprintf(ts, sizeof ts, "%s/typescript", S.dir);
    CHECK_EQ_INT(sh("script -q -e -c \"(seq 1 300; sleep 1.3; seq 301 600) | ./rsq pub t:prog >/dev/null\" '%s' "
                    "</dev/null >/dev/null 2>&1", ts), 0);
    CHECK(read_file(ts, buf, sizeof buf) > 0);
    CHECK(strstr(buf, "rsq: pub: 600 lines published, ") != NULL && strstr(buf, "/s") != NULL);
    CHECK_EQ_INT(run(NULL, 0, "(seq 1 300; sleep 1.3; seq 301 600) | ./rsq pub t:prog >/dev/null"), 0);
    CHECK_EQ_INT(err_lines(err, sizeof err), 0); /* not a terminal: nothing */
}

/* The consumers of a group as "name:pending" lines, sorted ("" when none). */
static void consumers_of(const char *stream, const char *group, char *out, size_t cap) {
    run(out, cap, "redis-cli -s %s XINFO CONSUMERS %s %s | awk 'p==1{n=$0} p==2{print n\":\"$0} "
                  "{p=0} $0==\"name\"{p=1} $0==\"pending\"{p=2}' | LC_ALL=C sort | tr '\\n' ' '", S.sock, stream, group);
}

/* issue 18: `rsq work` without -n has a name that is stable for this host and group
   (HOST-GROUP): a restart takes back what it held; a clean exit removes the consumer
   from the group only when it holds nothing; two workers at once are HOST-GROUP and
   HOST-GROUP-2. */
static void test_tool_work_stable_name_and_cleanup(void) {
    char out[4096], cons[1024], want[600], host[64], o1[700], e1[700], o2[700], e2[700];
    pid_t p1, p2;
    int st;
    long long t0;
    REQUIRE(have_server);
    short_host(host, sizeof host);
    CHECK_EQ_INT(sh("printf 'a\\nb\\nc\\n' | ./rsq pub t:name >/dev/null"), 0);
    CHECK_EQ_INT(run(out, sizeof out, "./rsq work t:name -g g --max 1"), 0);
    CHECK_STR(out, "a\n");
    consumers_of("t:name", "g", cons, sizeof cons);
    CHECK_STR(cons, ""); /* it held nothing: removed */
    /* a worker that dies holding a message (its --exec kills it) keeps the consumer */
    CHECK(run(out, sizeof out, "./rsq work t:name -g g --max 1 --exec 'kill -9 $PPID'") != 0);
    consumers_of("t:name", "g", cons, sizeof cons);
    snprintf(want, sizeof want, "%s-g:1 ", host);
    CHECK_STR(cons, want);
    /* the same name next time: it first takes back what it held ("b") */
    CHECK_EQ_INT(run(out, sizeof out, "./rsq work t:name -g g --max 1"), 0);
    CHECK_STR(out, "b\n");
    consumers_of("t:name", "g", cons, sizeof cons);
    CHECK_STR(cons, "");
    /* two at once */
    snprintf(o1, sizeof o1, "%s/name-o1.txt", S.dir);
    snprintf(e1, sizeof e1, "%s/name-e1.txt", S.dir);
    snprintf(o2, sizeof o2, "%s/name-o2.txt", S.dir);
    snprintf(e2, sizeof e2, "%s/name-e2.txt", S.dir);
    p1 = spawn_at(S.unix_url, o1, e1, "./rsq work t:name2 -g g");
    CHECK(wait_for(e1, "created group g", 10000));
    p2 = spawn_at(S.unix_url, o2, e2, "./rsq work t:name2 -g g");
    snprintf(want, sizeof want, "%s-g-2:0 %s-g:0 ", host, host);
    t0 = mono_ms();
    do {
        usleep(100000);
        consumers_of("t:name2", "g", cons, sizeof cons);
    } while (strcmp(cons, want) && mono_ms() - t0 < 10000);
    CHECK_STR(cons, want);
    kill(p1, SIGTERM);
    kill(p2, SIGTERM);
    CHECK(wait_exit(p1, 10000, &st) >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK(wait_exit(p2, 10000, &st) >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    consumers_of("t:name2", "g", cons, sizeof cons);
    CHECK_STR(cons, "");
    /* -n is taken as given */
    CHECK(run(out, sizeof out, "./rsq work t:name -g g -n given --max 1 --exec 'kill -9 $PPID'") != 0);
    consumers_of("t:name", "g", cons, sizeof cons);
    CHECK_STR(cons, "given:1 ");
    CHECK_EQ_INT(run(out, sizeof out, "./rsq work --help"), 0);
    CHECK(strstr(out, "HOST-GROUP") != NULL);
}

/* issue 18: `rsq work` says on stderr when it creates the group and where it starts,
   warns when --from cannot apply to a group that exists, and names the streams of the
   queue it does not read (a group started at $ printed nothing and exited 0; --from 0
   on it was silently ignored; --priority 5 messages were never read). */
static void test_tool_work_says_where_it_starts(void) {
    char out[4096], err[4096];
    REQUIRE(have_server);
    CHECK_EQ_INT(sh("printf 'x\\n' | ./rsq pub t:note >/dev/null"), 0);
    CHECK_EQ_INT(run(out, sizeof out, "./rsq work t:note -g late --from '$' --idle-exit 1"), 0);
    CHECK_STR(out, "");
    CHECK_EQ_INT(err_lines(err, sizeof err), 1);
    CHECK(strstr(err, "rsq: created group late on t:note at $: it takes only messages published from now on") != NULL);
    CHECK_EQ_INT(run(out, sizeof out, "./rsq work t:note -g late --from 0 --idle-exit 1"), 0);
    CHECK_STR(out, "");
    CHECK_EQ_INT(err_lines(err, sizeof err), 1);
    CHECK(strstr(err, "rsq: warning: group late exists on t:note: --from 0 applies only to a new group and is ignored") != NULL);
    CHECK(strstr(err, "(last delivered ") != NULL);
    CHECK_EQ_INT(run(out, sizeof out, "./rsq work t:note -g whole --idle-exit 1"), 0);
    CHECK_STR(out, "x\n");
    CHECK_EQ_INT(err_lines(err, sizeof err), 1);
    CHECK(strstr(err, "rsq: created group whole on t:note at 0: it takes the whole stream") != NULL);
    CHECK_EQ_INT(run(out, sizeof out, "./rsq work t:note -g whole --idle-exit 1"), 0);
    CHECK_EQ_INT(err_lines(err, sizeof err), 0); /* nothing to say */
    /* a priority level it does not read */
    CHECK_EQ_INT(sh("./rsq pub t:note urgent --priority 5 >/dev/null"), 0);
    CHECK_EQ_INT(run(out, sizeof out, "./rsq work t:note -g whole --idle-exit 1"), 0);
    err_lines(err, sizeof err);
    CHECK(strstr(err, "rsq: warning: this worker does not read {t:note}:p5") != NULL &&
          strstr(err, "give --priority-levels 6 to read them") != NULL);
    CHECK_EQ_INT(run(out, sizeof out, "./rsq work t:note -g whole --priority-levels 6 --idle-exit 1"), 0);
    CHECK_STR(out, "urgent\n");
    err_lines(err, sizeof err);
    CHECK(strstr(err, "does not read") == NULL);
    CHECK(strstr(err, "created group whole on {t:note}:p1, {t:note}:p2, {t:note}:p3 and more at 0") != NULL);
}

/* issue 18: bad usage exits 2, empty names included; the errors say what is wrong:
   a missing password is "authentication required", a key of the wrong type is named
   with what it holds. */
static void test_tool_usage_and_error_texts(void) {
    static const char *const usage[] = {
        "./rsq pub '' x", "./rsq work '' -g g", "./rsq work q -g ''", "./rsq work q -g g -n ''",
        "./rsq work q -g g --exec ''", "./rsq stats ''", "./rsq pending '' -g g", "./rsq pending q -g ''",
        "./rsq pending q -g g --consumer ''", "./rsq dlq '' list", "./rsq -u '' pub q x", "./rsq --password-file '' pub q x",
        "./rsq ''", "./rsq pub 'a}b' x", "./rsq stats 'a}b'", "./rsq stats q --json --prometheus",
        "./rsq stats q --prometheus --watch 1", "./rsq dlq q replay --json", "./rsq pending q", "./rsq work q -g g --max 0",
    };
    char out[4096], err[4096], url[800];
    size_t i;
    srv P;
    REQUIRE(have_server);
    for (i = 0; i < sizeof usage / sizeof usage[0]; i++) {
        int rc = run(out, sizeof out, "%s", usage[i]);
        if (rc != 2) fprintf(stderr, "    %s: exit %d\n", usage[i], rc);
        CHECK_EQ_INT(rc, 2);
        CHECK_STR(out, "");
        CHECK(err_lines(err, sizeof err) >= 2 && strstr(err, "--help for more") != NULL);
    }
    /* a missing password */
    REQUIRE(srv_start(&P, "requirepass t-pw-9") == 0);
    {
        static const char *const cmds[] = { "./rsq pub t:auth x", "./rsq stats t:auth", "./rsq pending t:auth -g g",
                                            "./rsq dlq t:auth list", "./rsq work t:auth -g g --idle-exit 1" };
        for (i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
            CHECK_EQ_INT(run_at(P.unix_url, out, sizeof out, "%s", cmds[i]), 1);
            CHECK_EQ_INT(err_lines(err, sizeof err), 1);
            CHECK(strstr(err, "authentication required") != NULL && strstr(err, "--password-file") != NULL);
        }
    }
    snprintf(url, sizeof url, "unix://:wrong@%s", P.sock);
    CHECK_EQ_INT(run_at(url, out, sizeof out, "./rsq pub t:auth x"), 1);
    CHECK_EQ_INT(err_lines(err, sizeof err), 1);
    CHECK(strstr(err, "authentication failed") != NULL);
    srv_stop(&P, 0);
    /* WRONGTYPE names the key */
    srv_cli(&S, NULL, 0, "SET t:wt x");
    srv_cli(&S, NULL, 0, "HSET '{t:wt3}:p2' f v");
    srv_cli(&S, NULL, 0, "XADD t:wt3 '*' payload x");
    srv_cli(&S, NULL, 0, "SET '{t:wt4}:dlq' x");
    srv_cli(&S, NULL, 0, "SET '{t:wt5}:delayed' x");
    {
        static const struct { const char *cmd, *want; } cases[] = {
            { "./rsq pub t:wt x", "key t:wt holds a string, not a stream" },
            { "printf 'a\\n' | ./rsq pub t:wt", "line 1: key t:wt holds a string, not a stream" },
            { "./rsq stats t:wt", "key t:wt holds a string, not a stream" },
            { "./rsq stats t:wt3", "key {t:wt3}:p2 holds a hash, not a stream" },
            { "./rsq stats t:wt4", "key {t:wt4}:dlq holds a string, not a stream" },
            { "./rsq stats t:wt5", "key {t:wt5}:delayed holds a string, not a sorted set" },
            { "./rsq work t:wt -g g --idle-exit 1", "key t:wt holds a string, not a stream" },
            { "./rsq pending t:wt -g g", "key t:wt holds a string, not a stream" },
            { "./rsq dlq t:wt4 list", "key {t:wt4}:dlq holds a string, not a stream" },
        };
        for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            CHECK_EQ_INT(run(out, sizeof out, "%s", cases[i].cmd), 1);
            CHECK_EQ_INT(err_lines(err, sizeof err), 1);
            if (!strstr(err, cases[i].want)) fprintf(stderr, "    %s: %s", cases[i].cmd, err);
            CHECK(strstr(err, cases[i].want) != NULL);
        }
    }
}

/* The man page as text (groff's ASCII output without overstriking), or NULL. */
static const char *man_text(void) {
    static char text[1 << 17];
    if (run(text, sizeof text, "MANWIDTH=200 man -l tools/rsq.1 2>/dev/null | col -b") != 0 || !text[0]) return NULL;
    return text;
}

/* issue 18: `--help` of each command lists every option it takes, and so does the man
   page (rsq.1), whose version is the tool's. */
static void test_tool_help_lists_every_option(void) {
    static const struct { const char *cmd; const char *opts[16]; } tab[] = {
        { "", { "-u", "--password-file", "--help", "--version", "pub", "work", "stats", "pending", "dlq" } },
        { "pub", { "--priority", "--maxlen", "--shards", "-H", "--help" } },
        { "work", { "-g", "-n", "--exec", "--max-deliveries", "--count", "--max", "--idle-exit", "--visibility",
                    "--priority-levels", "--shards", "--from", "--help" } },
        { "stats", { "--watch", "--json", "--prometheus", "--help" } },
        { "pending", { "-g", "--consumer", "--max", "--help" } },
        { "dlq", { "list", "replay", "--max", "--json", "--help" } },
    };
    char out[8192], want[64], ver[64];
    const char *man;
    size_t i, j;
    REQUIRE(have_server);
    man = man_text();
    CHECK(man != NULL);
    for (i = 0; i < sizeof tab / sizeof tab[0]; i++) {
        CHECK_EQ_INT(run(out, sizeof out, "./rsq %s --help", tab[i].cmd), 0);
        for (j = 0; tab[i].opts[j]; j++) {
            snprintf(want, sizeof want, " %s ", tab[i].opts[j]);
            if (!strstr(out, want)) {
                snprintf(want, sizeof want, " %s\n", tab[i].opts[j]);
                if (!strstr(out, want)) snprintf(want, sizeof want, " %s,", tab[i].opts[j]);
            }
            if (!strstr(out, want)) fprintf(stderr, "    rsq %s --help lacks %s\n", tab[i].cmd, tab[i].opts[j]);
            CHECK(strstr(out, want) != NULL);
            if (man && !strstr(man, tab[i].opts[j])) fprintf(stderr, "    rsq.1 lacks %s\n", tab[i].opts[j]);
            CHECK(!man || strstr(man, tab[i].opts[j]) != NULL);
        }
    }
    CHECK_EQ_INT(run(out, sizeof out, "./rsq --version"), 0);
    snprintf(ver, sizeof ver, "%.40s", out);
    if (strchr(ver, '\n')) *strchr(ver, '\n') = '\0';
    CHECK(man && strstr(man, ver) != NULL); /* "rsq 0.1.0" in the page's footer */
}

/* issue 18: the man page is clean man(7) roff: groff -ww warns of nothing, mandoc's
   lint finds nothing (not even style), man renders it. */
static void test_tool_man_page_lints_clean(void) {
    char out[4096], err[2048];
    const char *man;
    REQUIRE(have_server);
    CHECK_EQ_INT(run(out, sizeof out, "groff -man -Tutf8 -ww -z tools/rsq.1"), 0);
    CHECK_EQ_INT(err_lines(err, sizeof err), 0);
    CHECK_EQ_INT(run(out, sizeof out, "mandoc -Tlint -W style tools/rsq.1 2>&1"), 0);
    CHECK_STR(out, "");
    man = man_text();
    CHECK(man && strstr(man, "rsq - publish to, consume from and inspect a Redis Streams queue") != NULL);
    CHECK(man && strstr(man, "EXIT STATUS") != NULL && strstr(man, "authentication required") != NULL);
}

/* issue 18: `make install` puts bin/rsq, include/rsq.h and share/man/man1/rsq.1 under
   $(DESTDIR)$(PREFIX) (PREFIX /usr/local by default); `make uninstall` takes them away. */
static void test_tool_make_install(void) {
    char dest[600], out[4096], err[2048];
    REQUIRE(have_server);
    snprintf(dest, sizeof dest, "%s/stage dir", S.dir);
    CHECK_EQ_INT(run(out, sizeof out, "env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s install DESTDIR='%s' PREFIX=/usr", dest), 0);
    CHECK_EQ_INT(sh("'%s/usr/bin/rsq' --version | grep -q '^rsq '", dest), 0);
    CHECK_EQ_INT(sh("test -x '%s/usr/bin/rsq' && cmp -s rsq.h '%s/usr/include/rsq.h' && cmp -s tools/rsq.1 "
                    "'%s/usr/share/man/man1/rsq.1'", dest, dest, dest), 0);
    CHECK_EQ_INT(sh("test \"$(stat -c %%a '%s/usr/include/rsq.h') $(stat -c %%a '%s/usr/share/man/man1/rsq.1')\" = '644 644'",
                    dest, dest), 0);
    CHECK_EQ_INT(sh("MANPATH='%s/usr/share/man' man -w rsq | grep -q 'man1/rsq.1'", dest), 0);
    CHECK_EQ_INT(run(out, sizeof out, "env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s uninstall DESTDIR='%s' PREFIX=/usr", dest), 0);
    CHECK_EQ_INT(sh("test ! -e '%s/usr/bin/rsq' && test ! -e '%s/usr/include/rsq.h' && test ! -e '%s/usr/share/man/man1/rsq.1'",
                    dest, dest, dest), 0);
    CHECK_EQ_INT(run(out, sizeof out, "env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s install DESTDIR='%s'", dest), 0);
    CHECK_EQ_INT(sh("test -x '%s/usr/local/bin/rsq' && test -f '%s/usr/local/include/rsq.h' && "
                    "test -f '%s/usr/local/share/man/man1/rsq.1'", dest, dest, dest), 0);
    if (err_lines(err, sizeof err) > 0) fprintf(stderr, "    make: %s", err);
    sh("rm -rf '%s'", dest);
}

/* URL schemes in any letter case; an IPv6 address without brackets gets a hint
   (rsq_url_parse). */
static void test_tool_url_schemes_and_ipv6_hint(void) {
    char out[4096], err[2048], url[800];
    REQUIRE(have_server);
    snprintf(url, sizeof url, "UNIX://%s", S.sock);
    CHECK_EQ_INT(run_at(url, out, sizeof out, "./rsq pub t:url x"), 0);
    snprintf(url, sizeof url, "Redis://127.0.0.1:%d", S.port);
    CHECK_EQ_INT(run_at(url, out, sizeof out, "./rsq pub t:url x"), 0);
    CHECK_EQ_INT(run(out, sizeof out, "./rsq -u REDIS://127.0.0.1:1 pub t:url x"), 1);
    CHECK_EQ_INT(err_lines(err, sizeof err), 1);
    CHECK(strstr(err, "refused") != NULL); /* it tried to connect: the URL was taken */
    CHECK_EQ_INT(run(out, sizeof out, "./rsq -u redis://::1:6379 pub t:url x"), 1);
    CHECK_EQ_INT(err_lines(err, sizeof err), 1);
    CHECK(strstr(err, "brackets") != NULL && strstr(err, "redis://[::1]:6379") != NULL);
    CHECK_EQ_INT(run(out, sizeof out, "./rsq -u redis://u:p@fe80::1 pub t:url x"), 1);
    CHECK(strstr(err, "brackets") != NULL && strstr(err, ":p@") == NULL);
}

/* issue 17: a failing --exec is retried after --retry-delay, then twice as long, up
   to --retry-max (give or take 10%); with waits longer than --visibility the retry
   goes through the delayed set and the group's retry stream (stats lists it); the
   dead letter names the first entry. pub --delay / --at schedule a message (nothing
   printed, the delayed set holds it until a worker moves it); pub --key publishes a
   key once, and from standard input each line's key is KEY:LINE. */
static void test_tool_retry_backoff_schedule_and_keys(void) {
    char out[8192], cli[2048], path[600], first[64];
    long long t[4] = { 0, 0, 0, 0 };
    int n = 0;
    FILE *f;
    REQUIRE(have_server);
    snprintf(path, sizeof path, "%s/backoff-times.txt", S.dir);
    CHECK_EQ_INT(run(out, sizeof out, "./rsq pub t:bo bad"), 0);
    snprintf(first, sizeof first, "%.*s", (int)strcspn(out, "\n"), out);
    CHECK_EQ_INT(run(out, sizeof out,
        "./rsq work t:bo -g g --max-deliveries 3 --retry-delay 400 --retry-max 600 --visibility 200 --idle-exit 3 "
        "--exec 'date +%%s%%3N >> %s; exit 1'", path), 0);
    f = fopen(path, "r");
    REQUIRE(f != NULL);
    while (n < 4 && fscanf(f, "%lld", &t[n]) == 1) n++;
    fclose(f);
    CHECK_EQ_INT(n, 3);
    if (n == 3) {
        CHECK(t[1] - t[0] >= 360);        /* 400 - 10% */
        CHECK(t[2] - t[1] >= 540);        /* 600 (800 capped) - 10% */
        CHECK(t[2] - t[1] < 600 + 2000);  /* and not far past it */
    }
    CHECK_EQ_INT(run(out, sizeof out, "./rsq dlq t:bo list"), 0);
    CHECK(strstr(out, "deliveries=3") != NULL && strstr(out, "payload=bad") != NULL);
    CHECK(strstr(out, first) != NULL); /* the dead letter names the first entry */
    CHECK_EQ_INT(run(out, sizeof out, "./rsq stats t:bo"), 0);
    CHECK(strstr(out, "retries {t:bo}:retry:g  length 0") != NULL);
    /* scheduled */
    CHECK_EQ_INT(run(out, sizeof out, "./rsq pub t:sched later --delay 600"), 0);
    CHECK_STR(out, "");
    srv_cli(&S, cli, sizeof cli, "ZCARD {t:sched}:delayed");
    CHECK_STR(cli, "1");
    srv_cli(&S, cli, sizeof cli, "XLEN t:sched");
    CHECK_STR(cli, "0");
    CHECK_EQ_INT(run(out, sizeof out, "./rsq stats t:sched"), 0);
    CHECK(strstr(out, "delayed {t:sched}:delayed  size 1  next due") != NULL);
    CHECK_EQ_INT(run(out, sizeof out, "./rsq work t:sched -g g --max 1 --idle-exit 5"), 0);
    CHECK_STR(out, "later\n");
    srv_cli(&S, cli, sizeof cli, "TIME");
    {
        long long sec = atoll(cli), ms = 0;
        char *nl = strchr(cli, '\n');
        if (nl) ms = atoll(nl + 1) / 1000;
        CHECK_EQ_INT(run(out, sizeof out, "./rsq pub t:sched at --at %lld", sec * 1000 + ms + 500), 0);
    }
    CHECK_EQ_INT(run(out, sizeof out, "./rsq work t:sched -g g --max 1 --idle-exit 5"), 0);
    CHECK_STR(out, "at\n");
    CHECK_EQ_INT(run(out, sizeof out, "./rsq pub t:sched x --delay 0"), 2);
    CHECK_EQ_INT(run(out, sizeof out, "./rsq pub t:sched x --delay 5 --at 5"), 2);
    CHECK_EQ_INT(run(out, sizeof out, "./rsq pub t:sched x --key k --delay 5"), 2);
    /* keys */
    CHECK_EQ_INT(run(out, sizeof out, "./rsq pub t:key order --key order-1"), 0);
    snprintf(first, sizeof first, "%.60s", out);
    CHECK_EQ_INT(run(out, sizeof out, "./rsq pub t:key order --key order-1"), 0);
    CHECK_STR(out, first);
    CHECK_EQ_INT(run(out, sizeof out, "printf 'a\\nb\\n' | ./rsq pub t:key --key batch"), 0);
    CHECK_EQ_INT(run(out, sizeof out, "printf 'a\\nb\\nc\\n' | ./rsq pub t:key --key batch"), 0);
    srv_cli(&S, cli, sizeof cli, "XLEN t:key");
    CHECK_STR(cli, "4"); /* order, a, b, c */
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
    RUN(test_tool_work_new_group_starts_at_zero);
    RUN(test_tool_output_escaped);
    RUN(test_tool_dlq_replay_only_own_streams);
    RUN(test_tool_dlq_replay_without_scripting);
    RUN(test_tool_without_info_and_time);
    RUN(test_tool_secrets);
    RUN(test_tool_one_shot_fails_fast_on_frozen_server);
    RUN(test_tool_work_ack_refused_exits_1);
    RUN(test_tool_stats_finds_every_stream);
    RUN(test_tool_stats_json);
    RUN(test_tool_stats_prometheus);
    RUN(test_tool_stats_watch_rates);
    RUN(test_tool_pending);
    RUN(test_tool_dlq_list_headers_json);
    RUN(test_tool_pub_stdin_error_names_line);
    RUN(test_tool_pub_line_goes_out_when_input_pauses);
    RUN(test_tool_pub_progress_on_terminal);
    RUN(test_tool_work_stable_name_and_cleanup);
    RUN(test_tool_work_says_where_it_starts);
    RUN(test_tool_usage_and_error_texts);
    RUN(test_tool_help_lists_every_option);
    RUN(test_tool_man_page_lints_clean);
    RUN(test_tool_make_install);
    RUN(test_tool_url_schemes_and_ipv6_hint);
    RUN(test_tool_retry_backoff_schedule_and_keys);
    RUN(test_tool_work_rides_outage);
    RUN(test_tool_stats_watch_rides_outage);
    if (have_server) srv_stop(&S, 0);
}
