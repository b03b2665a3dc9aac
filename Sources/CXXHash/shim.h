// libxxhash (Debian's libxxhash-dev): the XXH3-128 streaming API (XXH3_createState,
// XXH3_128bits_reset, XXH3_128bits_update, XXH3_128bits_digest) used by FileMover's checksums.
#include <xxhash.h>
