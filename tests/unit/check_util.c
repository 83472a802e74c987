/* Unit tests of src/util: status table, settings parsing and layering, SHA-256/HMAC, random. */
#include "config.h"

#include "tests/lib/unit.h"
#include "util/config.h"
#include "util/random.h"
#include "util/sha256.h"
#include "util/time.h"

#include <stdlib.h>
#include <string.h>

START_TEST(status_strings)
{
    ck_assert_str_eq(tutti_status_string(TUTTI_OK), "success");
    ck_assert_str_eq(tutti_status_string(TUTTI_ERR_PEER_FAILED), "a peer rank failed or left");
    ck_assert_str_eq(tutti_status_string((tutti_status_t)-12345), "unknown status");
    ck_assert(TUTTI_STATUS_IS_FAILURE(TUTTI_ERR_PEER_FAILED));
    ck_assert(TUTTI_STATUS_IS_FAILURE(TUTTI_ERR_LINK_FAILED));
    ck_assert(TUTTI_STATUS_IS_FAILURE(TUTTI_ERR_TIMEOUT));
    ck_assert(TUTTI_STATUS_IS_FAILURE(TUTTI_ERR_ABORTED));
    ck_assert(!TUTTI_STATUS_IS_FAILURE(TUTTI_ERR_INVALID_ARG));
    ck_assert(!TUTTI_STATUS_IS_FAILURE(TUTTI_OK));
    ck_assert(TUTTI_IN_PROGRESS > 0);
}
END_TEST

START_TEST(datatype_and_op_names)
{
    static const size_t sizes[] = {1, 1, 4, 4, 8, 8, 2, 2, 4, 8};
    for (int t = 0; t < TUTTI_NUM_DATATYPES; t++) {
        ck_assert_uint_eq(tutti_datatype_size((tutti_datatype_t)t), sizes[t]);
        ck_assert_ptr_nonnull(tutti_datatype_name((tutti_datatype_t)t));
    }
    ck_assert_uint_eq(tutti_datatype_size(TUTTI_NUM_DATATYPES), 0);
    ck_assert_ptr_null(tutti_datatype_name((tutti_datatype_t)-1));
    ck_assert_str_eq(tutti_op_name(TUTTI_AVG), "avg");
    ck_assert_ptr_null(tutti_op_name(TUTTI_NUM_OPS));
}
END_TEST

typedef struct test_settings {
    uint64_t number;
    size_t size;
    int flag;
    int64_t duration;
    int choice;
    char text[TT_CONFIG_STRING_MAX];
} test_settings_t;

static const char *const choices[] = {"red", "green", "blue", NULL};
static const tt_config_field_t test_fields[] = {
    {"UTEST_NUMBER", "7", "a number", TT_CFG_UINT, offsetof(test_settings_t, number), NULL},
    {"UTEST_SIZE", "64K", "a size", TT_CFG_SIZE, offsetof(test_settings_t, size), NULL},
    {"UTEST_FLAG", "yes", "a flag", TT_CFG_BOOL, offsetof(test_settings_t, flag), NULL},
    {"UTEST_DURATION", "250ms", "a duration", TT_CFG_DURATION, offsetof(test_settings_t, duration),
     NULL},
    {"UTEST_CHOICE", "green", "a choice", TT_CFG_ENUM, offsetof(test_settings_t, choice), choices},
    {"UTEST_TEXT", "hello", "a text", TT_CFG_STRING, offsetof(test_settings_t, text), NULL},
};
static const tt_config_table_t test_table = {"utest", test_fields, TT_ARRAY_SIZE(test_fields),
                                             sizeof(test_settings_t)};

START_TEST(config_defaults)
{
    test_settings_t s;
    unsetenv("TUTTI_UTEST_NUMBER");
    ck_assert_int_eq(tt_config_load(&test_table, NULL, &s), TUTTI_OK);
    ck_assert_uint_eq(s.number, 7);
    ck_assert_uint_eq(s.size, 65536);
    ck_assert_int_eq(s.flag, 1);
    ck_assert_int_eq(s.duration, 250 * TT_NS_PER_MS);
    ck_assert_int_eq(s.choice, 1);
    ck_assert_str_eq(s.text, "hello");
}
END_TEST

START_TEST(config_layering)
{
    tt_config_overrides_t overrides = {0};
    test_settings_t s;

    /* The environment beats the default; an override beats the environment. */
    setenv("TUTTI_UTEST_NUMBER", "11", 1);
    setenv("TUTTI_UTEST_CHOICE", "BLUE", 1);
    ck_assert_int_eq(tt_config_load(&test_table, NULL, &s), TUTTI_OK);
    ck_assert_uint_eq(s.number, 11);
    ck_assert_int_eq(s.choice, 2);
    ck_assert_int_eq(tt_config_overrides_set(&overrides, "UTEST_NUMBER", "13"), TUTTI_OK);
    ck_assert_int_eq(tt_config_overrides_set(&overrides, "UTEST_NUMBER", "17"), TUTTI_OK);
    ck_assert_uint_eq(overrides.count, 1);
    ck_assert_int_eq(tt_config_load(&test_table, &overrides, &s), TUTTI_OK);
    ck_assert_uint_eq(s.number, 17);
    ck_assert_str_eq(tt_config_effective(&test_fields[0], &overrides), "17");
    tt_config_overrides_clear(&overrides);
    unsetenv("TUTTI_UTEST_NUMBER");
    unsetenv("TUTTI_UTEST_CHOICE");
}
END_TEST

START_TEST(config_rejects_bad_values)
{
    static const struct {
        int field;
        const char *text;
    } bad[] = {
        {0, "-1"},    {0, "12x"}, {0, ""},    {1, "1T"},   {1, "K"},
        {2, "maybe"}, {3, "5h"},  {3, "-2s"}, {4, "pink"}, {1, "99999999999999999999"},
    };
    test_settings_t s;
    for (size_t i = 0; i < TT_ARRAY_SIZE(bad); i++)
        ck_assert_msg(tt_config_parse_field(&test_fields[bad[i].field], bad[i].text, &s) ==
                          TUTTI_ERR_INVALID_ARG,
                      "'%s' was accepted", bad[i].text);
}
END_TEST

START_TEST(config_parses_units)
{
    size_t size;
    test_settings_t s;
    ck_assert_int_eq(tt_parse_size("3M", &size), TUTTI_OK);
    ck_assert_uint_eq(size, 3u << 20);
    ck_assert_int_eq(tt_parse_size("2g", &size), TUTTI_OK);
    ck_assert_uint_eq(size, 2ull << 30);
    ck_assert_int_eq(tt_parse_size("512KB", &size), TUTTI_OK);
    ck_assert_uint_eq(size, 512u << 10);
    ck_assert_int_eq(tt_config_parse_field(&test_fields[3], "1.5", &s), TUTTI_OK);
    ck_assert_int_eq(s.duration, 1500 * TT_NS_PER_MS);
    ck_assert_int_eq(tt_config_parse_field(&test_fields[3], "2m", &s), TUTTI_OK);
    ck_assert_int_eq(s.duration, 120 * TT_NS_PER_S);
    ck_assert_int_eq(tt_config_parse_field(&test_fields[3], "40us", &s), TUTTI_OK);
    ck_assert_int_eq(s.duration, 40 * TT_NS_PER_US);
    ck_assert_int_eq(tt_config_parse_field(&test_fields[2], "off", &s), TUTTI_OK);
    ck_assert_int_eq(s.flag, 0);
    ck_assert_str_eq(tt_config_short_name("TUTTI_LOG"), "LOG");
    ck_assert_str_eq(tt_config_short_name("LOG"), "LOG");
}
END_TEST

static void hex_of(const unsigned char *digest, char out[65])
{
    tt_hex_encode(digest, TT_SHA256_BYTES, out);
}

START_TEST(sha256_vectors)
{
    /* FIPS 180-4 examples, and a message crossing several blocks. */
    static const struct {
        const char *msg;
        const char *digest;
    } vectors[] = {
        {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
    };
    unsigned char digest[TT_SHA256_BYTES];
    char hex[65];
    tt_sha256_t ctx;

    for (size_t i = 0; i < TT_ARRAY_SIZE(vectors); i++) {
        tt_sha256_init(&ctx);
        tt_sha256_update(&ctx, vectors[i].msg, strlen(vectors[i].msg));
        tt_sha256_final(&ctx, digest);
        hex_of(digest, hex);
        ck_assert_str_eq(hex, vectors[i].digest);
    }
    /* One million 'a', fed in odd pieces. */
    tt_sha256_init(&ctx);
    for (int left = 1000000; left > 0;) {
        static const char as[] =
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
        int n = left < 71 ? left : 71;
        tt_sha256_update(&ctx, as, (size_t)n);
        left -= n;
    }
    tt_sha256_final(&ctx, digest);
    hex_of(digest, hex);
    ck_assert_str_eq(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}
END_TEST

START_TEST(hmac_vectors)
{
    /* RFC 4231 test cases 1, 2 and 6 (key longer than a block). */
    unsigned char key1[20], key6[131], mac[TT_SHA256_BYTES];
    char hex[65];
    tt_hmac_t ctx;

    memset(key1, 0x0b, sizeof(key1));
    tt_hmac_init(&ctx, key1, sizeof(key1));
    tt_hmac_update(&ctx, "Hi There", 8);
    tt_hmac_final(&ctx, mac);
    hex_of(mac, hex);
    ck_assert_str_eq(hex, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");

    tt_hmac_init(&ctx, "Jefe", 4);
    tt_hmac_update(&ctx, "what do ya want ", 16);
    tt_hmac_update(&ctx, "for nothing?", 12);
    tt_hmac_final(&ctx, mac);
    hex_of(mac, hex);
    ck_assert_str_eq(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");

    memset(key6, 0xaa, sizeof(key6));
    tt_hmac_init(&ctx, key6, sizeof(key6));
    tt_hmac_update(&ctx, "Test Using Larger Than Block-Size Key - Hash Key First", 54);
    tt_hmac_final(&ctx, mac);
    hex_of(mac, hex);
    ck_assert_str_eq(hex, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");

    ck_assert(tt_digest_equal(mac, mac, sizeof(mac)));
    mac[31] ^= 1;
    {
        unsigned char other[TT_SHA256_BYTES];
        memcpy(other, mac, sizeof(other));
        other[0] ^= 0x80;
        ck_assert(!tt_digest_equal(mac, other, sizeof(mac)));
    }
}
END_TEST

START_TEST(random_bytes_differ)
{
    unsigned char a[32], b[32];
    ck_assert_int_eq(tt_random_bytes(a, sizeof(a)), TUTTI_OK);
    ck_assert_int_eq(tt_random_bytes(b, sizeof(b)), TUTTI_OK);
    ck_assert(memcmp(a, b, sizeof(a)) != 0);
}
END_TEST

START_TEST(public_config_object)
{
    tutti_config_t config;
    tutti_setting_t s;
    int saw_log = 0, saw_secret = 0;

    ck_assert_int_eq(tutti_config_create(NULL), TUTTI_ERR_INVALID_ARG);
    ck_assert_int_eq(tutti_config_create(&config), TUTTI_OK);
    ck_assert_int_eq(tutti_config_set(config, "TUTTI_NO_SUCH_THING", "1"), TUTTI_ERR_NOT_FOUND);
    ck_assert_int_eq(tutti_config_set(config, "CHUNK_SIZE", "lots"), TUTTI_ERR_INVALID_ARG);
    ck_assert_int_eq(tutti_config_set(config, "TUTTI_CHUNK_SIZE", "1M"), TUTTI_OK);
    ck_assert_int_eq(tutti_config_set(config, "LOG", "info"), TUTTI_OK);
    ck_assert_int_eq(tutti_config_set(config, "SECRET", "hush"), TUTTI_OK);
    for (size_t i = 0; tutti_config_setting(config, i, &s) == TUTTI_OK; i++) {
        ck_assert_ptr_nonnull(s.help);
        if (strcmp(s.name, "TUTTI_CHUNK_SIZE") == 0)
            ck_assert_str_eq(s.value, "1M");
        if (strcmp(s.name, "TUTTI_LOG") == 0) {
            ck_assert_str_eq(s.value, "info");
            ck_assert_str_eq(s.default_value, "warn");
            saw_log = 1;
        }
        if (strcmp(s.name, "TUTTI_SECRET") == 0) {
            ck_assert_str_eq(s.value, "(set)");
            saw_secret = 1;
        }
    }
    ck_assert(saw_log && saw_secret);
    ck_assert_int_eq(tutti_config_destroy(config), TUTTI_OK);
    ck_assert_int_eq(tutti_config_destroy(NULL), TUTTI_ERR_INVALID_ARG);
}
END_TEST

static Suite *util_suite(void)
{
    Suite *s = suite_create("util");
    TCase *tc = tcase_create("util");
    tcase_add_test(tc, status_strings);
    tcase_add_test(tc, datatype_and_op_names);
    tcase_add_test(tc, config_defaults);
    tcase_add_test(tc, config_layering);
    tcase_add_test(tc, config_rejects_bad_values);
    tcase_add_test(tc, config_parses_units);
    tcase_add_test(tc, sha256_vectors);
    tcase_add_test(tc, hmac_vectors);
    tcase_add_test(tc, random_bytes_differ);
    tcase_add_test(tc, public_config_object);
    suite_add_tcase(s, tc);
    return s;
}

TT_UNIT_MAIN(util_suite)
