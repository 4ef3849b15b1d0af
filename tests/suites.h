/* suites.h - every test suite, in run order: SUITE(function). Each suite lives in
   tests/test_NAME.c and RUNs its tests. */
SUITE(suite_codec)
SUITE(suite_url)
SUITE(suite_live)
SUITE(suite_producer)
SUITE(suite_consumer)
SUITE(suite_hostile)
SUITE(suite_tool)
SUITE(suite_arena)
SUITE(suite_chaos)
SUITE(suite_step)
SUITE(suite_cluster)
SUITE(suite_failures)
