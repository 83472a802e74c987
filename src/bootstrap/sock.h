/* TCP plumbing for the bootstrap: addresses, listening, connecting, whole-buffer I/O with
 * deadlines. */
#ifndef TT_BOOTSTRAP_SOCK_H
#define TT_BOOTSTRAP_SOCK_H

#include "util/compiler.h"

#include <stdint.h>
#include <sys/socket.h>

#define TT_ADDR_TEXT_MAX 80

/* Split "host:port" or "[v6]:port" into host and port; fails on malformed text. */
tutti_status_t tt_sock_split_address(const char *text, char *host, size_t host_size, char *port,
                                     size_t port_size);

/* Listen on @p address ("host:port"; port 0 picks one). Writes the bound "host:port" to @p bound.
 */
tutti_status_t tt_sock_listen(const char *address, int *fd_p, char bound[TT_ADDR_TEXT_MAX]);

/*
 * Connect to @p address, retrying while nobody listens yet, until @p deadline
 * (monotonic ns). The socket is returned in blocking mode.
 */
tutti_status_t tt_sock_connect(const char *address, int64_t deadline, int *fd_p);

/* Send all @p len bytes before @p deadline (never raises SIGPIPE). */
tutti_status_t tt_sock_send_all(int fd, const void *buf, size_t len, int64_t deadline);

/* Receive exactly @p len bytes before @p deadline; TUTTI_ERR_PEER_FAILED on EOF. */
tutti_status_t tt_sock_recv_all(int fd, void *buf, size_t len, int64_t deadline);

/* Turn on keep-alive probes so that a silent peer is declared dead after about @p timeout_ns. */
void tt_sock_set_liveness(int fd, int64_t timeout_ns);

/* Make @p fd nonblocking (or blocking again). */
tutti_status_t tt_sock_set_nonblocking(int fd, int on);

/* "a.b.c.d:port" of the peer of @p fd, for logs. */
void tt_sock_peer_name(int fd, char out[TT_ADDR_TEXT_MAX]);

#endif
