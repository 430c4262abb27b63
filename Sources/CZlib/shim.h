// zlib's init calls are macros (they pass the version and struct size), which Swift cannot call.
#ifndef MESHTOP_CZLIB_SHIM_H
#define MESHTOP_CZLIB_SHIM_H
#include <zlib.h>

/// Inflates gzip (and zlib) streams.
static inline int mt_inflate_init_gzip(z_stream *s) { return inflateInit2(s, 32 + MAX_WBITS); }
/// Deflates into a gzip stream.
static inline int mt_deflate_init_gzip(z_stream *s, int level) {
    return deflateInit2(s, level, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
}
#endif
