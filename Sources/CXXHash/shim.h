// libxxhash (Debian's libxxhash-dev): the XXH3-128 streaming API (XXH3_createState,
// XXH3_128bits_reset, XXH3_128bits_update, XXH3_128bits_digest) used by FileMover's checksums.
#include <xxhash.h>

#if defined(__x86_64__) || defined(__i386__)
// The library's own x86 dispatch: the widest vector unit this processor has (AVX2 or AVX-512;
// SSE2 otherwise), chosen once at the first call. The plain XXH3_128bits_update is built for the
// baseline x86-64 (SSE2) and hashes about a third as fast on a processor with AVX2. Same digests.
#define XXH_DISPATCH_DISABLE_REPLACE
#include <xxh_x86dispatch.h>
#endif

/// XXH3_128bits_update through the widest vector unit the processor has.
static inline XXH_errorcode relocator_xxh3_128bits_update(XXH3_state_t *state, const void *input, size_t length) {
#if defined(__x86_64__) || defined(__i386__)
    return XXH3_128bits_update_dispatch(state, input, length);
#else
    return XXH3_128bits_update(state, input, length);
#endif
}
