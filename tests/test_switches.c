/* test_switches.c - the build switches that leave parts out: tests/switches.c, built
   with RSQ_NO_CLUSTER RSQ_NO_ADMIN RSQ_SHORT_ERRORS (build/switches), run against a
   private redis-server and a fake server that answers MOVED. */
#define _DEFAULT_SOURCE 1
#include "t.h"
#include "server.h"
#define FAKE_SERVER_STATIC
#include "fake_server.c"
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

static void test_switches_leave_parts_out(void) {
    srv s;
    fake_server f;
    char cmd[1200], out[4096];
    FILE *p;
    size_t n;
    int st;
    static const char moved[] = "-MOVED 3999 127.0.0.1:1\r\n";
    REQUIRE(srv_start(&s, NULL) == 0);
    if (fake_start(&f, moved, sizeof moved - 1, 0) != 0) { srv_stop(&s, 0); REQUIRE(0); }
    snprintf(cmd, sizeof cmd, "build/switches '%s' '%s' 2>&1", s.url, f.url);
    p = popen(cmd, "r");
    n = p ? fread(out, 1, sizeof out - 1, p) : 0;
    out[n] = '\0';
    st = p ? pclose(p) : -1;
    fake_stop(&f);
    srv_stop(&s, 0);
    if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0)) fprintf(stderr, "%s", out);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK(strstr(out, "ok   safe_trim_every refused (RSQ_NO_ADMIN)") != NULL);
    CHECK(strstr(out, "ok   a command to a cluster node: RSQ_ERR_UNSUPPORTED (RSQ_NO_CLUSTER)") != NULL);
    CHECK(strstr(out, "ok   one dead letter on the server") != NULL);
    CHECK(strstr(out, "\n0 failed\n") != NULL);
}

void suite_switches(void);
void suite_switches(void) {
    RUN(test_switches_leave_parts_out);
}
