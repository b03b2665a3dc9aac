/* An LD_PRELOAD shim that shifts the wall clock of one process by CLOCK_SHIFT_SECONDS (an integer,
 * negative for the past): clock_gettime of CLOCK_REALTIME (and its coarse and alarm variants),
 * gettimeofday and time. Monotonic clocks are left alone, as a real clock step leaves them.
 *
 * Scripts/chaos restarts redis-server with it to step Redis' clock by ±2 h (libfaketime hangs
 * redis-server at start) and runs some workers with it 2 h ahead or behind (libfaketime also
 * rewrites the deadlines of waits on the monotonic clock); ClockStepTests runs the worker, the
 * committer and `status` with it. The real time is read with the system call itself, never through
 * dlsym(RTLD_NEXT): that may allocate, and the allocator may ask for the time while it starts.
 *
 *     gcc -shared -fPIC -O2 -o clock-shift.so Scripts/clock-shift.c
 *     CLOCK_SHIFT_SECONDS=-7200 LD_PRELOAD=$PWD/clock-shift.so redis-server …
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static long long shift_seconds;

__attribute__((constructor)) static void read_shift(void) {
    const char *text = getenv("CLOCK_SHIFT_SECONDS");
    if (text != NULL) shift_seconds = strtoll(text, NULL, 10);
}

static int is_wall_clock(clockid_t clock) {
    return clock == CLOCK_REALTIME || clock == CLOCK_REALTIME_COARSE || clock == CLOCK_REALTIME_ALARM;
}

int clock_gettime(clockid_t clock, struct timespec *now) {
    long result = syscall(SYS_clock_gettime, clock, now);
    if (result == 0 && is_wall_clock(clock)) now->tv_sec += shift_seconds;
    return (int)result;
}

int gettimeofday(struct timeval *restrict now, void *restrict zone) {
    struct timespec exact;
    if (syscall(SYS_clock_gettime, CLOCK_REALTIME, &exact) != 0) return -1;
    now->tv_sec = exact.tv_sec + shift_seconds;
    now->tv_usec = exact.tv_nsec / 1000;
    if (zone != NULL) {
        struct timezone *utc = zone;
        utc->tz_minuteswest = 0;
        utc->tz_dsttime = 0;
    }
    return 0;
}

time_t time(time_t *now) {
    struct timespec exact;
    if (syscall(SYS_clock_gettime, CLOCK_REALTIME, &exact) != 0) return (time_t)-1;
    time_t shifted = exact.tv_sec + shift_seconds;
    if (now != NULL) *now = shifted;
    return shifted;
}
