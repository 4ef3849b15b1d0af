/* test_url.c - URL parsing: every accepted form and clear errors for malformed ones. */
#include "t.h"
#include "../rsq.h"

static void test_url_forms(void) {
    rsq_url u;
    char err[128];
    CHECK_RC(rsq_url_parse(&u, "redis://localhost", err, sizeof err), RSQ_OK);
    CHECK_STR(u.host, "localhost"); CHECK_EQ_INT(u.port, 6379); CHECK_EQ_INT(u.db, 0); CHECK(!u.tls && !u.is_unix);
    CHECK_RC(rsq_url_parse(&u, "redis://10.0.0.1:7000/3", err, sizeof err), RSQ_OK);
    CHECK_STR(u.host, "10.0.0.1"); CHECK_EQ_INT(u.port, 7000); CHECK_EQ_INT(u.db, 3);
    CHECK_RC(rsq_url_parse(&u, "redis://alice:s3cr%40t@h:1/", err, sizeof err), RSQ_OK);
    CHECK_STR(u.user, "alice"); CHECK_STR(u.password, "s3cr@t"); CHECK(u.has_password); CHECK_EQ_INT(u.db, 0);
    CHECK_RC(rsq_url_parse(&u, "redis://:pw@h", err, sizeof err), RSQ_OK);
    CHECK_STR(u.user, ""); CHECK_STR(u.password, "pw");
    CHECK_RC(rsq_url_parse(&u, "redis://u:p@ss@h", err, sizeof err), RSQ_OK); /* last @ ends credentials */
    CHECK_STR(u.password, "p@ss"); CHECK_STR(u.host, "h");
    CHECK_RC(rsq_url_parse(&u, "redis://[::1]:6380/2", err, sizeof err), RSQ_OK);
    CHECK_STR(u.host, "::1"); CHECK_EQ_INT(u.port, 6380); CHECK_EQ_INT(u.db, 2);
    CHECK_RC(rsq_url_parse(&u, "rediss://h:6380", err, sizeof err), RSQ_OK); CHECK(u.tls);
    CHECK_RC(rsq_url_parse(&u, "unix:///tmp/redis.sock", err, sizeof err), RSQ_OK);
    CHECK(u.is_unix); CHECK_STR(u.path, "/tmp/redis.sock");
    CHECK_RC(rsq_url_parse(&u, "unix:///tmp/r.sock?db=5&password=x%26y&user=bob", err, sizeof err), RSQ_OK);
    CHECK_EQ_INT(u.db, 5); CHECK_STR(u.password, "x&y"); CHECK_STR(u.user, "bob");
    CHECK_RC(rsq_url_parse(&u, "unix://bob:pw@/tmp/r.sock", err, sizeof err), RSQ_OK);
    CHECK_STR(u.user, "bob"); CHECK_STR(u.path, "/tmp/r.sock");
}

static void test_url_errors(void) {
    static const char *bad[] = {
        "", "localhost", "http://h", "redis://", "redis://:6379", "redis://h:0", "redis://h:65536", "redis://h:12x",
        "redis://h:-1", "redis://h/x", "redis://h/-1", "redis://h?db=1", "redis://user@h", "redis://[::1",
        "redis://[]:1", "redis://[::1]x", "redis://h o", "unix://", "unix://relative/path", "unix:///p?db=x",
        "unix:///p?color=red", "unix:///p?db", "redis://a:%zz@h", "redis://a:%4@h", "redis://u:%00abc@h",
    };
    size_t i;
    rsq_url u;
    char err[128];
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        if (rsq_url_parse(&u, bad[i], err, sizeof err) != RSQ_ERR_URL || !err[0]) {
            fprintf(stderr, "    accepted or no message: \"%s\"\n", bad[i]);
            CHECK(0);
        }
    }
    {   /* too long path, host, password */
        char s[700];
        memset(s, 0, sizeof s);
        memcpy(s, "unix:///", 8); memset(s + 8, 'p', 200);
        CHECK_RC(rsq_url_parse(&u, s, err, sizeof err), RSQ_ERR_URL);
        memset(s, 0, sizeof s);
        memcpy(s, "redis://", 8); memset(s + 8, 'h', 300);
        CHECK_RC(rsq_url_parse(&u, s, err, sizeof err), RSQ_ERR_URL);
        memset(s, 0, sizeof s);
        memcpy(s, "redis://:", 9); memset(s + 9, 'w', 300); memcpy(s + 309, "@h", 2);
        CHECK_RC(rsq_url_parse(&u, s, err, sizeof err), RSQ_ERR_URL);
    }
    CHECK_RC(rsq_url_parse(&u, NULL, err, sizeof err), RSQ_ERR_ARG);
    /* the reason never repeats the password */
    CHECK_RC(rsq_url_parse(&u, "redis://u:hunter2@h:99999", err, sizeof err), RSQ_ERR_URL);
    CHECK(strstr(err, "hunter2") == NULL);
}

static void test_url_client_init_errors(void) {
    rsq_client c;
    rsq_client_config cfg;
    rsq_client_config_init(&cfg);
    cfg.url = "redis://h:notaport";
    CHECK_RC(rsq_client_init(&c, &cfg), RSQ_ERR_URL);
    CHECK(strstr(rsq_errstr(&c), "port") != NULL);
    rsq_client_free(&c);
    cfg.url = "redis://h";
    cfg.protocol = 4;
    CHECK_RC(rsq_client_init(&c, &cfg), RSQ_ERR_ARG);
    rsq_client_free(&c);
    cfg.protocol = 0;
    cfg.allocator.malloc_fn = NULL;
    cfg.allocator.free_fn = (void (*)(void *, void *))0;
    cfg.name = "has space";
    CHECK_RC(rsq_client_init(&c, &cfg), RSQ_ERR_ARG);
    rsq_client_free(&c);
    CHECK_RC(rsq_client_init(NULL, &cfg), RSQ_ERR_ARG);
}

void suite_url(void) {
    RUN(test_url_forms);
    RUN(test_url_errors);
    RUN(test_url_client_init_errors);
}
