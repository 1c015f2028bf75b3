#ifndef CEPOLL_SHIM_H
#define CEPOLL_SHIM_H
#include <errno.h>
#include <time.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

/// The flag and operation macros as plain constants (some are enum-backed macros Swift cannot see).
static const unsigned int CEPOLL_IN = EPOLLIN;
static const unsigned int CEPOLL_OUT = EPOLLOUT;
static const unsigned int CEPOLL_ERR = EPOLLERR;
static const unsigned int CEPOLL_HUP = EPOLLHUP;
static const int CEPOLL_CLOEXEC = EPOLL_CLOEXEC;
static const int CEPOLL_CTL_ADD = EPOLL_CTL_ADD;
static const int CEPOLL_CTL_DEL = EPOLL_CTL_DEL;
static const int CEPOLL_CTL_MOD = EPOLL_CTL_MOD;
static const int CEVENTFD_NONBLOCK = EFD_NONBLOCK;
static const int CEVENTFD_CLOEXEC = EFD_CLOEXEC;

/// epoll_pwait2 with a timeout in nanoseconds (negative: wait forever), no signal mask. Falls back
/// to epoll_wait (rounded up to whole milliseconds) where the kernel lacks epoll_pwait2 (before 5.11).
static inline int cepoll_wait_ns(int epfd, struct epoll_event *events, int maxevents, long long timeout_ns) {
    if (timeout_ns < 0) return epoll_wait(epfd, events, maxevents, -1);
    struct timespec ts;
    ts.tv_sec = (time_t)(timeout_ns / 1000000000LL);
    ts.tv_nsec = (long)(timeout_ns % 1000000000LL);
    int n = epoll_pwait2(epfd, events, maxevents, &ts, NULL);
    if (n < 0 && errno == ENOSYS) {
        return epoll_wait(epfd, events, maxevents, (int)((timeout_ns + 999999LL) / 1000000LL));
    }
    return n;
}

/// Registers `fd` with `events`, the fd itself as the event's data (hides the packed struct and union).
static inline int cepoll_ctl_fd(int epfd, int op, int fd, unsigned int events) {
    struct epoll_event event;
    event.events = events;
    event.data.u64 = 0;
    event.data.fd = fd;
    return epoll_ctl(epfd, op, fd, &event);
}

/// The fd and flags of the `index`th entry of an epoll_wait result buffer.
static inline int cepoll_event_fd(const struct epoll_event *events, int index) { return events[index].data.fd; }
static inline unsigned int cepoll_event_flags(const struct epoll_event *events, int index) { return events[index].events; }

/// Sets the calling thread's nice value (Linux: per thread); 0 or -1 with errno.
static inline int cthread_set_nice(int value) {
    return setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), value);
}

#endif
