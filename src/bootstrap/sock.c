/* TCP plumbing; see sock.h. */
#include "config.h"

#include "bootstrap/sock.h"

#include "util/log.h"
#include "util/time.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

tutti_status_t tt_sock_split_address(const char *text, char *host, size_t host_size, char *port,
                                     size_t port_size)
{
    const char *colon, *host_start = text, *host_end;

    if (text[0] == '[') {
        host_start = text + 1;
        host_end = strchr(text, ']');
        if (host_end == NULL || host_end[1] != ':')
            return TUTTI_ERR_INVALID_ARG;
        colon = host_end + 1;
    } else {
        colon = strrchr(text, ':');
        if (colon == NULL)
            return TUTTI_ERR_INVALID_ARG;
        host_end = colon;
    }
    if ((size_t)(host_end - host_start) >= host_size || strlen(colon + 1) >= port_size ||
        host_end == host_start || colon[1] == '\0')
        return TUTTI_ERR_INVALID_ARG;
    memcpy(host, host_start, (size_t)(host_end - host_start));
    host[host_end - host_start] = '\0';
    strcpy(port, colon + 1);
    return TUTTI_OK;
}

static tutti_status_t resolve(const char *address, int passive, struct addrinfo **result_p)
{
    char host[TT_ADDR_TEXT_MAX], port[16];
    struct addrinfo hints = {0};
    int rc;

    if (tt_sock_split_address(address, host, sizeof(host), port, sizeof(port)) != TUTTI_OK) {
        tt_error("bootstrap: address '%s' is not host:port", address);
        return TUTTI_ERR_INVALID_ARG;
    }
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = passive ? AI_PASSIVE : 0;
    rc = getaddrinfo(host, port, &hints, result_p);
    if (rc != 0) {
        tt_error("bootstrap: cannot resolve '%s': %s", address, gai_strerror(rc));
        return TUTTI_ERR_INVALID_ARG;
    }
    return TUTTI_OK;
}

static void format_sockaddr(const struct sockaddr *sa, char out[TT_ADDR_TEXT_MAX])
{
    char host[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;

    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
        port = ntohs(in->sin_port);
        snprintf(out, TT_ADDR_TEXT_MAX, "%s:%u", host, port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
        port = ntohs(in6->sin6_port);
        snprintf(out, TT_ADDR_TEXT_MAX, "[%s]:%u", host, port);
    } else {
        snprintf(out, TT_ADDR_TEXT_MAX, "(unknown address family %d)", sa->sa_family);
    }
}

tutti_status_t tt_sock_listen(const char *address, int *fd_p, char bound[TT_ADDR_TEXT_MAX])
{
    struct addrinfo *list, *ai;
    struct sockaddr_storage name;
    socklen_t name_len = sizeof(name);
    int fd = -1, one = 1, saved_errno = 0;

    TT_CHECK(resolve(address, 1, &list));
    for (ai = list; ai != NULL; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0)
            continue;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 128) == 0)
            break;
        saved_errno = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(list);
    if (fd < 0) {
        tt_error("bootstrap: cannot listen on %s: %s", address, strerror(saved_errno));
        return TUTTI_ERR_SYSTEM;
    }
    getsockname(fd, (struct sockaddr *)&name, &name_len);
    format_sockaddr((struct sockaddr *)&name, bound);
    *fd_p = fd;
    return TUTTI_OK;
}

tutti_status_t tt_sock_connect(const char *address, int64_t deadline, int *fd_p)
{
    struct addrinfo *list, *ai;
    int fd = -1, saved_errno = 0;
    int64_t retry_ns = 10 * TT_NS_PER_MS;

    TT_CHECK(resolve(address, 0, &list));
    for (;;) {
        for (ai = list; ai != NULL; ai = ai->ai_next) {
            fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
            if (fd < 0) {
                saved_errno = errno;
                continue;
            }
            if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
                goto connected;
            saved_errno = errno;
            close(fd);
            fd = -1;
        }
        /* Rank 0 may simply not be listening yet: retry until the deadline. */
        if (tt_time_ns() + retry_ns >= deadline)
            break;
        struct timespec ts = {0, (long)retry_ns};
        nanosleep(&ts, NULL);
        if (retry_ns < 200 * TT_NS_PER_MS)
            retry_ns *= 2;
    }
    freeaddrinfo(list);
    tt_error("bootstrap: cannot reach the rendezvous at %s: %s", address, strerror(saved_errno));
    return TUTTI_ERR_TIMEOUT;

connected:
    freeaddrinfo(list);
    {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    *fd_p = fd;
    return TUTTI_OK;
}

/* Wait until @p fd is ready for @p events or the deadline passes. */
static tutti_status_t wait_ready(int fd, short events, int64_t deadline)
{
    struct pollfd pfd = {fd, events, 0};
    for (;;) {
        int rc = poll(&pfd, 1, tt_deadline_poll_ms(deadline));
        if (rc > 0)
            return TUTTI_OK;
        if (rc == 0)
            return TUTTI_ERR_TIMEOUT;
        if (errno != EINTR)
            return TUTTI_ERR_SYSTEM;
    }
}

tutti_status_t tt_sock_send_all(int fd, const void *buf, size_t len, int64_t deadline)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
            TT_CHECK(wait_ready(fd, POLLOUT, deadline));
        } else {
            return TUTTI_ERR_PEER_FAILED;
        }
    }
    return TUTTI_OK;
}

tutti_status_t tt_sock_recv_all(int fd, void *buf, size_t len, int64_t deadline)
{
    char *p = buf;
    while (len > 0) {
        ssize_t n = recv(fd, p, len, MSG_DONTWAIT);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
        } else if (n == 0) {
            return TUTTI_ERR_PEER_FAILED;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
            TT_CHECK(wait_ready(fd, POLLIN, deadline));
        } else {
            return TUTTI_ERR_PEER_FAILED;
        }
    }
    return TUTTI_OK;
}

void tt_sock_set_liveness(int fd, int64_t timeout_ns)
{
    int one = 1, idle = 1, interval = 1, count;
    unsigned user_timeout = (unsigned)(timeout_ns / TT_NS_PER_MS);

    count = (int)(timeout_ns / TT_NS_PER_S);
    if (count < 1)
        count = 1;
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof(interval));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof(count));
    setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout, sizeof(user_timeout));
}

tutti_status_t tt_sock_set_nonblocking(int fd, int on)
{
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0)
        return TUTTI_ERR_SYSTEM;
    flags = on ? flags | O_NONBLOCK : flags & ~O_NONBLOCK;
    return fcntl(fd, F_SETFL, flags) == 0 ? TUTTI_OK : TUTTI_ERR_SYSTEM;
}

void tt_sock_peer_name(int fd, char out[TT_ADDR_TEXT_MAX])
{
    struct sockaddr_storage name;
    socklen_t len = sizeof(name);
    if (getpeername(fd, (struct sockaddr *)&name, &len) != 0)
        snprintf(out, TT_ADDR_TEXT_MAX, "(unknown peer)");
    else
        format_sockaddr((struct sockaddr *)&name, out);
}
