/* Peer liveness by pidfd; see peer_watch.h. */
#include "config.h"

#include "transports/shm/peer_watch.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

int tt_peer_watch_open(pid_t pid)
{
#if HAVE_DECL_SYS_PIDFD_OPEN
    return (int)syscall(SYS_pidfd_open, pid, 0);
#else
    (void)pid;
    return -1;
#endif
}

int tt_peer_watch_exited(int handle, pid_t pid)
{
    if (handle >= 0) {
        struct pollfd pfd = {handle, POLLIN, 0};
        return poll(&pfd, 1, 0) > 0;
    }
    /* Without pidfds a zombie still counts as alive until it is reaped. */
    return kill(pid, 0) != 0 && errno == ESRCH;
}

void tt_peer_watch_close(int handle)
{
    if (handle >= 0)
        close(handle);
}
