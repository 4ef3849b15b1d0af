#define _DEFAULT_SOURCE 1
/* main.c - the test runner: runs every suite (or those named on the command line)
   and ends with "N passed, N failed"; exits 1 on any failure. */
#include "t.h"
#include <signal.h>
#include <time.h>

int t_passed, t_failed, t_cur_failed;
const char *t_filter;
static int t_skipped_now;

void t_skip(const char *why) {
    t_skipped_now = 1;
    fprintf(stderr, "    skipped: %s\n", why);
}

void t_run(const char *name, void (*fn)(void)) {
    struct timespec a, b;
    double ms;
    if (t_filter && !strstr(name, t_filter)) return;
    t_cur_failed = 0;
    t_skipped_now = 0;
    clock_gettime(CLOCK_MONOTONIC, &a);
    fn();
    clock_gettime(CLOCK_MONOTONIC, &b);
    ms = (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
    if (t_cur_failed) { t_failed++; printf("FAIL %s (%.0f ms)\n", name, ms); }
    else { t_passed++; printf("ok   %s%s (%.0f ms)\n", name, t_skipped_now ? " (skipped)" : "", ms); }
    fflush(stdout);
}

#define SUITE(name) void name(void);
#include "suites.h"
#undef SUITE

int main(int argc, char **argv) {
    int i;
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    /* `rsq_test NAME` runs the tests whose name contains NAME */
    for (i = 1; i < argc; i++) t_filter = argv[i];
#define SUITE(name) name();
#include "suites.h"
#undef SUITE
    printf("%d passed, %d failed\n", t_passed, t_failed);
    return t_failed ? 1 : 0;
}
