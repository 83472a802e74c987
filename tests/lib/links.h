/*
 * Transport-level tests: wiring one transport between forked ranks
 * (through the bootstrap, as the library does) and driving its transfers.
 */
#ifndef TT_TESTS_LINKS_H
#define TT_TESTS_LINKS_H

#include "bootstrap/bootstrap.h"
#include "transports/transport.h"

/* One rank's end of a transport wired to every rank of the test. */
typedef struct tt_test_links {
    tt_bootstrap_t *bs;
    tt_transport_t *tl;
    tt_config_overrides_t overrides;
} tt_test_links_t;

/*
 * Join the ranks of the test and wire @p ops to all of them, with the
 * settings in @p settings ({name, value} pairs, ending at a NULL name; names
 * without the TUTTI_ prefix). @p address_p, if not NULL, receives this
 * rank's address blob (free() it).
 */
tutti_status_t tt_test_links_open(int rank, int n, const tutti_unique_id_t *uid,
                                  const tt_transport_ops_t *ops, const char *const (*settings)[2],
                                  tt_test_links_t *ls, void **address_p);

/* Wait for every rank (nobody frees memory a peer still reads), then tear down. */
void tt_test_links_close(tt_test_links_t *ls, int rank, int n);

/* Progress @p tl until @p count transfers completed; the first bad status, or TUTTI_ERR_TIMEOUT. */
tutti_status_t tt_test_drive(tt_transport_t *tl, int count, int timeout_s);

#endif
