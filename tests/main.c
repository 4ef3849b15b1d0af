#define _DEFAULT_SOURCE 1
/* main.c - the test runner: runs every suite (or, with `rsq_test NAME`, the tests whose
   name contains NAME) and ends with the line "N passed, N failed, N skipped".

   A test that cannot run here calls t_skip(REASON): it prints "skip NAME: REASON" and
   counts as skipped, never as passed. A skip is allowed only when tests/skips.txt (or
   the file named by $RSQ_SKIPS_FILE) lists it, one line per allowed skip:

       TEST_NAME   REASON_PATTERN

   the test's full name, blanks, then a pattern (fnmatch: `*` and `?` wildcards) that
   the whole reason must match. `#` starts a comment line. Exit status: 0 when no test
   failed and every skip is listed; 1 otherwise (each unlisted skip is named before the
   closing line; so is a malformed line of the skips file). */
#include "t.h"
#include <fnmatch.h>
#include <signal.h>
#include <time.h>

int t_passed, t_failed, t_skipped, t_cur_failed;
const char *t_filter;

#define T_REASON_MAX 256
#define T_ALLOW_MAX 64
#define T_UNLISTED_MAX 64

static int t_skipped_now;
static char t_reason[T_REASON_MAX];

static struct { char name[512], pattern[512]; } t_allow[T_ALLOW_MAX]; /* as long as a line */
static int t_nallow, t_skips_bad;
static const char *t_skips_path = "tests/skips.txt";
static int t_skips_found;

static char t_unlisted[T_UNLISTED_MAX][128 + T_REASON_MAX + 4];
static int t_nunlisted;

void t_skip(const char *why) {
    t_skipped_now = 1;
    snprintf(t_reason, sizeof t_reason, "%s", why ? why : "");
}

int t_need_version(long have, long need, const char *what) {
    char why[T_REASON_MAX];
    if (have == 0 || have >= need) return 1;
    snprintf(why, sizeof why, "%s: Redis %ld.%ld or later (this server is %ld.%ld.%ld)", what, need / 10000, need / 100 % 100,
             have / 10000, have / 100 % 100, have % 100);
    t_skip(why);
    return 0;
}

/* Reads the allowed skips. A malformed line is reported and fails the run. */
static void t_load_skips(void) {
    char line[512];
    int lineno = 0;
    FILE *f;
    const char *env = getenv("RSQ_SKIPS_FILE");
    if (env && *env) t_skips_path = env;
    f = fopen(t_skips_path, "r");
    if (!f) return;
    t_skips_found = 1;
    while (fgets(line, sizeof line, f)) {
        char *p = line, *name, *pat, *end;
        size_t n;
        lineno++;
        n = strlen(line);
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' ' || line[n - 1] == '\t'))
            line[--n] = '\0';
        while (*p == ' ' || *p == '\t') p++;
        if (*p == '\0' || *p == '#') continue;
        name = p;
        while (*p && *p != ' ' && *p != '\t') p++;
        end = p;
        while (*p == ' ' || *p == '\t') p++;
        pat = p;
        *end = '\0';
        if (*pat == '\0' || strlen(name) >= sizeof t_allow[0].name) {
            printf("%s:%d: malformed: want TEST_NAME REASON_PATTERN\n", t_skips_path, lineno);
            t_skips_bad = 1;
            continue;
        }
        if (t_nallow == T_ALLOW_MAX) {
            printf("%s:%d: more than %d allowed skips\n", t_skips_path, lineno, T_ALLOW_MAX);
            t_skips_bad = 1;
            break;
        }
        snprintf(t_allow[t_nallow].name, sizeof t_allow[0].name, "%s", name);
        snprintf(t_allow[t_nallow].pattern, sizeof t_allow[0].pattern, "%s", pat);
        t_nallow++;
    }
    fclose(f);
}

static int t_skip_listed(const char *name, const char *reason) {
    int i;
    for (i = 0; i < t_nallow; i++)
        if (!strcmp(t_allow[i].name, name) && fnmatch(t_allow[i].pattern, reason, 0) == 0) return 1;
    return 0;
}

void t_run(const char *name, void (*fn)(void)) {
    struct timespec a, b;
    double ms;
    if (t_filter && !strstr(name, t_filter)) return;
    t_cur_failed = 0;
    t_skipped_now = 0;
    t_reason[0] = '\0';
    clock_gettime(CLOCK_MONOTONIC, &a);
    fn();
    clock_gettime(CLOCK_MONOTONIC, &b);
    ms = (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
    if (t_cur_failed) {
        t_failed++;
        printf("FAIL %s (%.0f ms)\n", name, ms);
    } else if (t_skipped_now) {
        t_skipped++;
        printf("skip %s: %s\n", name, t_reason);
        if (!t_skip_listed(name, t_reason)) {
            fprintf(stderr, "    this skip is not listed in %s: it fails the run\n", t_skips_path);
            if (t_nunlisted < T_UNLISTED_MAX)
                snprintf(t_unlisted[t_nunlisted], sizeof t_unlisted[0], "%s: %s", name, t_reason);
            t_nunlisted++;
        }
    } else {
        t_passed++;
        printf("ok   %s (%.0f ms)\n", name, ms);
    }
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
    t_load_skips();
#define SUITE(name) name();
#include "suites.h"
#undef SUITE
    if (t_nunlisted) {
        printf("%d skip%s not listed in %s%s (list it with its reason, or make the test run):\n", t_nunlisted,
               t_nunlisted == 1 ? "" : "s", t_skips_path, t_skips_found ? "" : " (no such file)");
        for (i = 0; i < t_nunlisted && i < T_UNLISTED_MAX; i++) printf("  unlisted skip %s\n", t_unlisted[i]);
    }
    if (t_skips_bad) printf("%s is malformed (see its first lines above): the run fails\n", t_skips_path);
    printf("%d passed, %d failed, %d skipped\n", t_passed, t_failed, t_skipped);
    return t_failed || t_nunlisted || t_skips_bad ? 1 : 0;
}
