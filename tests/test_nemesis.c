/* test_nemesis.c - the short nemesis run inside `make test`: build/nemesis (or
   $RSQ_NEMESIS_BIN) with two fixed seeds, 15 s each at half the act rate. Each run must
   end with "nemesis: seed=N verdict=PASS" and exit status 0. `make nemesis SEED=N
   DURATION=S` runs one long seeded run. A missing binary is a failure, not a skip:
   `make test` builds it. */
#define _DEFAULT_SOURCE 1
#include "t.h"
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#define NEMESIS_OUT_MAX (512 * 1024)

static void run_seed(unsigned seed) {
    char line[1024], last[1024] = "", cmd[1024], want[64];
    char *out = (char *)malloc(NEMESIS_OUT_MAX);
    size_t used = 0;
    FILE *p;
    int st, ok;
    const char *bin = getenv("RSQ_NEMESIS_BIN");
    REQUIRE(out != NULL);
    if (!bin || !*bin) bin = "build/nemesis";
    if (access(bin, X_OK) != 0) fprintf(stderr, "    %s is not built: make %s (make test builds it)\n", bin, bin);
    if (access(bin, X_OK) != 0) { free(out); REQUIRE(0); }
    snprintf(cmd, sizeof cmd, "'%s' --seed %u --duration 15 --intensity 0.5 --rate 100 --drain-s 30 2>&1", bin, seed);
    p = popen(cmd, "r");
    if (!p) { free(out); REQUIRE(0); }
    while (fgets(line, sizeof line, p)) {
        size_t n = strlen(line);
        if (used + n < NEMESIS_OUT_MAX) { memcpy(out + used, line, n); used += n; }
        if (!strncmp(line, "nemesis: seed=", 14) && strstr(line, " verdict=")) snprintf(last, sizeof last, "%s", line);
    }
    out[used] = '\0';
    st = pclose(p);
    snprintf(want, sizeof want, "nemesis: seed=%u verdict=PASS ", seed);
    ok = WIFEXITED(st) && WEXITSTATUS(st) == 0 && strncmp(last, want, strlen(want)) == 0;
    if (!ok) { /* the whole run: acts, evidence, the data directory */
        char *s = out, *e;
        while (*s && (e = strchr(s, '\n'))) { fprintf(stderr, "    %.*s\n", (int)(e - s), s); s = e + 1; }
    } else {
        fprintf(stderr, "    %s", last);
    }
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK(strncmp(last, want, strlen(want)) == 0);
    free(out);
}

static void test_nemesis_seed_1(void) { run_seed(1); }
static void test_nemesis_seed_2(void) { run_seed(2); }

void suite_nemesis(void) {
    RUN(test_nemesis_seed_1);
    RUN(test_nemesis_seed_2);
}
