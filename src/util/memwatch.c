/*
 * The process's memory watcher (memwatch.h): one userfaultfd, one thread
 * reading its events, a list of subscribers.
 */
#include <config.h> /* the build's: "config.h" would find util/config.h */

#include "util/memwatch.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef HAVE_LINUX_USERFAULTFD_H
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#endif

struct tt_memwatch_sub {
    tt_memwatch_fn fn;
    void *arg;
    tt_memwatch_sub_t *next;
};

/* The watcher: part of the per-process context. */
static struct {
    pthread_once_t once;
    pthread_mutex_t lock;  /* the watch lock: the subscribers, and reading events */
    pthread_mutex_t users; /* serialises starting and stopping */
    tt_memwatch_sub_t *subs;
    int fd;      /* the userfaultfd; -1 while stopped */
    int stop[2]; /* a pipe that wakes the thread to stop */
    pthread_t thread;
    uint64_t events;
} watch = {PTHREAD_ONCE_INIT, PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER, NULL, -1,
           {-1, -1}};

void tt_memwatch_lock(void)
{
    pthread_mutex_lock(&watch.lock);
}

void tt_memwatch_unlock(void)
{
    pthread_mutex_unlock(&watch.lock);
}

uint64_t tt_memwatch_events(void)
{
    return watch.events;
}

/*
 * A forked child has the parent's descriptor, which watches the parent's
 * memory, and no thread: it starts afresh (the kernel dropped its watched
 * ranges at fork). The locks are made anew rather than held across fork:
 * a fork that waited for the watch lock could deadlock, since fork takes
 * the allocator's locks, which a thread unmapping watched memory may hold
 * while it waits for the watcher, which needs the watch lock.
 */
static void after_fork_child(void)
{
    if (watch.fd >= 0) {
        close(watch.fd);
        close(watch.stop[0]);
        close(watch.stop[1]);
    }
    watch.fd = watch.stop[0] = watch.stop[1] = -1;
    watch.subs = NULL; /* the parent's to free */
    pthread_mutex_init(&watch.lock, NULL);
    pthread_mutex_init(&watch.users, NULL);
}

static void register_fork_handlers(void)
{
    pthread_atfork(NULL, NULL, after_fork_child);
}

#ifdef HAVE_LINUX_USERFAULTFD_H

/* Tell every subscriber about the pages in [start, end); the watch lock is held. */
static void announce(uintptr_t start, uintptr_t end)
{
    watch.events++;
    for (tt_memwatch_sub_t *s = watch.subs; s != NULL; s = s->next)
        s->fn(s->arg, start, end);
}

/*
 * Reads events as they come. The read itself lets the unmapping thread go
 * on, so it happens under the watch lock: whoever takes the lock after
 * munmap returned sees the subscribers told. Allocates nothing.
 */
static void *watcher_main(void *unused)
{
    struct pollfd fds[2] = {{watch.fd, POLLIN, 0}, {watch.stop[0], POLLIN, 0}};
    (void)unused;

    for (;;) {
        struct uffd_msg msg;

        if (poll(fds, 2, -1) < 0 && errno != EINTR)
            break;
        if (fds[1].revents != 0)
            break;
        pthread_mutex_lock(&watch.lock);
        while (read(watch.fd, &msg, sizeof(msg)) == (ssize_t)sizeof(msg)) {
            if (msg.event == UFFD_EVENT_UNMAP || msg.event == UFFD_EVENT_REMOVE)
                announce(msg.arg.remove.start, msg.arg.remove.end);
            else if (msg.event == UFFD_EVENT_REMAP)
                announce(msg.arg.remap.from, msg.arg.remap.from + msg.arg.remap.len);
        }
        pthread_mutex_unlock(&watch.lock);
    }
    return NULL;
}

/*
 * Open the userfaultfd, asking for user-mode faults only where the kernel
 * knows the flag: it lets users without privilege open one, and the
 * watcher takes no faults anyway.
 */
static int open_userfaultfd(void)
{
    int fd = -1;
#ifdef UFFD_USER_MODE_ONLY
    fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
#endif
    if (fd < 0)
        fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
    return fd;
}

static tutti_status_t start(char *why, size_t why_size)
{
    struct uffdio_api api = {.api = UFFD_API,
                             .features = UFFD_FEATURE_EVENT_UNMAP | UFFD_FEATURE_EVENT_REMOVE |
                                         UFFD_FEATURE_EVENT_REMAP};
    const char *what = "userfaultfd";

    watch.fd = open_userfaultfd();
    if (watch.fd < 0)
        goto err;
    what = "userfaultfd's unmap events";
    if (ioctl(watch.fd, UFFDIO_API, &api) != 0)
        goto err_close;
    what = "a pipe";
    if (pipe2(watch.stop, O_CLOEXEC) != 0)
        goto err_close;
    what = "a thread";
    errno = pthread_create(&watch.thread, NULL, watcher_main, NULL);
    if (errno != 0)
        goto err_pipe;
    return TUTTI_OK;

err_pipe:
    close(watch.stop[0]);
    close(watch.stop[1]);
err_close:
    close(watch.fd);
err:
    snprintf(why, why_size, "no %s: %s", what, strerror(errno));
    watch.fd = watch.stop[0] = watch.stop[1] = -1;
    return TUTTI_ERR_UNSUPPORTED;
}

static void stop(void)
{
    /* The pipe's read end wakes with a hang-up. */
    close(watch.stop[1]);
    pthread_join(watch.thread, NULL);
    /* Closing it unwatches every range. */
    close(watch.fd);
    close(watch.stop[0]);
    watch.fd = watch.stop[0] = watch.stop[1] = -1;
}

int tt_memwatch_watch(uintptr_t start, uintptr_t end)
{
    struct uffdio_register reg = {.range = {start, end - start}, .mode = UFFDIO_REGISTER_MODE_WP};

    if (watch.fd < 0)
        return EINVAL;
    return ioctl(watch.fd, UFFDIO_REGISTER, &reg) == 0 ? 0 : errno;
}

#else /* no userfaultfd */

static tutti_status_t start(char *why, size_t why_size)
{
    snprintf(why, why_size, "userfaultfd is not available on this system");
    return TUTTI_ERR_UNSUPPORTED;
}

static void stop(void)
{
}

int tt_memwatch_watch(uintptr_t start, uintptr_t end)
{
    (void)start;
    (void)end;
    return EINVAL;
}

#endif

tutti_status_t tt_memwatch_subscribe(tt_memwatch_fn fn, void *arg, tt_memwatch_sub_t **sub_p,
                                     char *why, size_t why_size)
{
    tt_memwatch_sub_t *sub = malloc(sizeof(*sub));
    tutti_status_t status = TUTTI_OK;

    if (sub == NULL) {
        snprintf(why, why_size, "out of memory");
        return TUTTI_ERR_NO_MEMORY;
    }
    pthread_once(&watch.once, register_fork_handlers);
    pthread_mutex_lock(&watch.users);
    if (watch.subs == NULL)
        status = start(why, why_size);
    if (status == TUTTI_OK) {
        *sub = (tt_memwatch_sub_t){fn, arg, watch.subs};
        tt_memwatch_lock();
        watch.subs = sub;
        tt_memwatch_unlock();
        *sub_p = sub;
    }
    pthread_mutex_unlock(&watch.users);
    if (status != TUTTI_OK)
        free(sub);
    return status;
}

void tt_memwatch_unsubscribe(tt_memwatch_sub_t *sub)
{
    pthread_mutex_lock(&watch.users);
    tt_memwatch_lock();
    for (tt_memwatch_sub_t **p = &watch.subs; *p != NULL; p = &(*p)->next)
        if (*p == sub) {
            *p = sub->next;
            break;
        }
    tt_memwatch_unlock();
    /* (A forked child's inherited subscribers are not on its list.) */
    if (watch.subs == NULL && watch.fd >= 0)
        stop();
    pthread_mutex_unlock(&watch.users);
    free(sub);
}
