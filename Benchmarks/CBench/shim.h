#ifndef CBENCH_SHIM_H
#define CBENCH_SHIM_H
// C the benchmarks need and the product does not: kernel receive timestamps, malloc's own count
// of bytes in use, the SCHED_IDLE class for a load generator.
#include <sys/socket.h>
#include <sched.h>
#include <string.h>
#include <malloc.h>

/// `recv` that also reports the kernel's arrival time of the bytes read (CLOCK_REALTIME, ns) when the
/// socket has SO_TIMESTAMPNS on; `*arrival_ns` is 0 when no stamp came. The cmsg macros are not
/// visible to Swift.
static const int CSO_TIMESTAMPNS = SO_TIMESTAMPNS;
static inline long csocket_recv_stamped(int fd, void *buffer, unsigned long length, long long *arrival_ns) {
    char control[128];
    struct iovec vector = { buffer, length };
    struct msghdr message;
    memset(&message, 0, sizeof message);
    message.msg_iov = &vector;
    message.msg_iovlen = 1;
    message.msg_control = control;
    message.msg_controllen = sizeof control;
    long n = recvmsg(fd, &message, 0);
    *arrival_ns = 0;
    if (n <= 0) return n;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&message); c != 0; c = CMSG_NXTHDR(&message, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
            struct timespec stamp;
            memcpy(&stamp, CMSG_DATA(c), sizeof stamp);
            *arrival_ns = (long long)stamp.tv_sec * 1000000000LL + stamp.tv_nsec;
        }
    }
    return n;
}

/// Bytes malloc has handed out and not had back (arena and mmapped chunks): what a process
/// allocates, whether or not the pages were resident before.
static inline unsigned long cmalloc_in_use_bytes(void) {
    struct mallinfo2 info = mallinfo2();
    return (unsigned long)(info.uordblks + info.hblkhd);
}

/// Puts the calling thread in the SCHED_IDLE class: it runs only when nothing else wants the CPU
/// (a benchmark's load generator standing in for clients on other machines).
static inline int csched_idle_self(void) {
    struct sched_param parameter;
    memset(&parameter, 0, sizeof parameter);
#ifdef SCHED_IDLE
    return sched_setscheduler(0, SCHED_IDLE, &parameter);
#else
    return sched_setscheduler(0, 5, &parameter);
#endif
}

#endif
