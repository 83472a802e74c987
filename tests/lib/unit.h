/* Shared main() for the Check unit tests: one suite per binary, fork mode. */
#ifndef TT_TESTS_UNIT_H
#define TT_TESTS_UNIT_H

#include <check.h>
#include <stdlib.h>

/* Define main() running the suite that @p make_suite returns. */
#define TT_UNIT_MAIN(make_suite)                          \
    int main(void)                                        \
    {                                                     \
        SRunner *runner = srunner_create(make_suite());   \
        int failed;                                       \
        srunner_run_all(runner, CK_NORMAL);               \
        failed = srunner_ntests_failed(runner);           \
        srunner_free(runner);                             \
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE; \
    }

#endif
