/*
 * Knowing at once when a peer process on this host dies: a pidfd becomes
 * readable when its process exits (even before anyone reaps it), so one
 * poll() answers for every peer.
 */
#ifndef TT_SHM_PEER_WATCH_H
#define TT_SHM_PEER_WATCH_H

#include <sys/types.h>

/* A handle on @p pid's life, or -1 if the kernel offers none (then kill(pid, 0) is used). */
int tt_peer_watch_open(pid_t pid);

/* 1 if the process behind @p handle / @p pid has exited. */
int tt_peer_watch_exited(int handle, pid_t pid);

void tt_peer_watch_close(int handle);

#endif
