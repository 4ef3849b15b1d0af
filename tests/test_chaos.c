/* test_chaos.c - the reduced chaos run inside `make test`: build/chaos (or
   $RSQ_CHAOS_BIN) with a few thousand messages, two server restarts, consumer kills and
   proxy cuts. `make chaos` runs the full scale. A missing chaos or proxy binary is a
   failure, not a skip: `make test` builds both. */
#define _DEFAULT_SOURCE 1
#include "t.h"
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void test_chaos_reduced_loses_nothing(void) {
    char line[512], last[512] = "", cmd[1024];
    FILE *p;
    int st;
    const char *bin = getenv("RSQ_CHAOS_BIN");
    if (!bin || !*bin) bin = "build/chaos";
    if (access(bin, X_OK) != 0) fprintf(stderr, "    %s is not built: make %s (make test builds it)\n", bin, bin);
    REQUIRE(access(bin, X_OK) == 0);
    /* the chaos binary runs natively even under valgrind; keep it smaller there */
    snprintf(cmd, sizeof cmd, "'%s' %s 2>&1", bin,
             getenv("RSQ_TEST_SLOW") ?
             "--messages 3000 --producers 2 --consumers 2 --restarts 2 --kills 2 --kill-ms 500 "
             "--restart-ms 1000 --cut-every-bytes 120000 --timeout-s 300 --idempotent --retry-later" :
             "--messages 8000 --producers 3 --consumers 3 --restarts 2 --kills 4 --kill-ms 500 "
             "--restart-ms 1000 --cut-every-bytes 120000 --timeout-s 300 --idempotent --retry-later");
    p = popen(cmd, "r");
    REQUIRE(p != NULL);
    while (fgets(line, sizeof line, p)) {
        fprintf(stderr, "    %s", line);
        if (!strncmp(line, "lost=", 5)) snprintf(last, sizeof last, "%s", line);
    }
    st = pclose(p);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK(strncmp(last, "lost=0 ", 7) == 0);
    CHECK(strstr(last, " producer-duplicates=0 ") != NULL); /* idempotent publishing */
}

void suite_chaos(void) {
    RUN(test_chaos_reduced_loses_nothing);
}
