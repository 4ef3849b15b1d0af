/* t.h - the test framework of rsq's test suite: TEST functions, CHECK assertions,
   a closing "N passed, N failed, N skipped" line. One test = one TEST function; it
   fails if any CHECK in it fails (the test goes on, to report every failing check).
   A test that cannot run here calls t_skip(REASON) and returns: it prints
   "skip NAME: REASON", counts as skipped (never as passed), and is allowed only when
   tests/skips.txt lists it (see tests/main.c); any other skip fails the run. */
#ifndef RSQ_T_H
#define RSQ_T_H
#include <stdio.h>
#include <string.h>
#include <stdlib.h>

extern int t_passed, t_failed, t_skipped, t_cur_failed;
extern const char *t_filter;

#define CHECK(cond) do { if (!(cond)) { t_cur_failed++; \
    fprintf(stderr, "    %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); } } while (0)
#define CHECK_EQ_INT(a, b) do { long long t_a_ = (long long)(a), t_b_ = (long long)(b); if (t_a_ != t_b_) { \
    t_cur_failed++; fprintf(stderr, "    %s:%d: %s == %lld, expected %s == %lld\n", __FILE__, __LINE__, \
    #a, t_a_, #b, t_b_); } } while (0)
#define CHECK_RC(expr, want) do { rsq_result t_r_ = (expr); if (t_r_ != (want)) { t_cur_failed++; \
    fprintf(stderr, "    %s:%d: %s returned %s, expected %s\n", __FILE__, __LINE__, #expr, \
    rsq_result_name(t_r_), rsq_result_name(want)); } } while (0)
#define CHECK_STR(a, b) do { const char *t_a_ = (a), *t_b_ = (b); if (!t_a_ || !t_b_ || strcmp(t_a_, t_b_)) { \
    t_cur_failed++; fprintf(stderr, "    %s:%d: %s is \"%s\", expected \"%s\"\n", __FILE__, __LINE__, #a, \
    t_a_ ? t_a_ : "(null)", t_b_ ? t_b_ : "(null)"); } } while (0)
/* A test that cannot go on (setup failed) stops here, counted as failed. */
#define REQUIRE(cond) do { if (!(cond)) { t_cur_failed++; \
    fprintf(stderr, "    %s:%d: REQUIRE(%s) failed\n", __FILE__, __LINE__, #cond); return; } } while (0)

#define RUN(fn) t_run(#fn, fn)
void t_run(const char *name, void (*fn)(void));
/* A test that cannot run here (no IPv6, say) says why; return right after. It counts
   as skipped, not passed, and must be listed in tests/skips.txt with that reason. */
void t_skip(const char *why);
/* A test that needs a server feature: 1 when the server's version `have` (as
   srv_version gives it; 0, unknown, counts as new enough) is at least `need`; else
   the test is skipped with the reason "WHAT: Redis X.Y or later (this server is A.B.C)"
   and 0 is returned: return right after. Such skips are listed in tests/skips.txt
   too; where the library has a fallback for older servers, a test of its own (or
   the same test) exercises it there. */
int t_need_version(long have, long need, const char *what);

#endif
