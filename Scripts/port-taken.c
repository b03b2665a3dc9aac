/* An LD_PRELOAD shim for a port taken between a probe and the bind that follows it: the second
 * bind(2) of the process to TCP port PORT_TAKEN (IPv4 or IPv6) fails with EADDRINUSE, as when
 * another process binds the port in between. The first (a listen probe) and every other bind go
 * through. TransferStartTests runs the worker with it: the transfer server's bind fails after its
 * probe passed, and the worker must stop (one error line, a non-zero exit), not run on without it.
 *
 *     gcc -shared -fPIC -O2 -o port-taken.so Scripts/port-taken.c -ldl
 *     PORT_TAKEN=7700 LD_PRELOAD=$PWD/port-taken.so relocator worker --transfer-listen 127.0.0.1:7700 …
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/socket.h>

static atomic_int binds;

int bind(int fd, const struct sockaddr *address, socklen_t length) {
    static int (*real_bind)(int, const struct sockaddr *, socklen_t);
    if (real_bind == NULL) real_bind = (int (*)(int, const struct sockaddr *, socklen_t))dlsym(RTLD_NEXT, "bind");
    const char *text = getenv("PORT_TAKEN");
    int port = -1;
    if (address != NULL && address->sa_family == AF_INET && length >= (socklen_t)sizeof(struct sockaddr_in))
        port = ntohs(((const struct sockaddr_in *)address)->sin_port);
    else if (address != NULL && address->sa_family == AF_INET6 && length >= (socklen_t)sizeof(struct sockaddr_in6))
        port = ntohs(((const struct sockaddr_in6 *)address)->sin6_port);
    if (text != NULL && port == atoi(text) && atomic_fetch_add(&binds, 1) == 1) {
        errno = EADDRINUSE;
        return -1;
    }
    return real_bind(fd, address, length);
}
