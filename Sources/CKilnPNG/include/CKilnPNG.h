// A setjmp boundary around libpng for Swift, which cannot survive libpng's longjmp error path.
// Every function here catches libpng errors and reports a status plus libpng's message instead.
// Pixels and text are byte buffers; all Swift-facing conversion logic lives in KilnImage.
#ifndef CKILNPNG_H
#define CKILNPNG_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    KILN_PNG_OK = 0,
    KILN_PNG_NOT_PNG = 1,        // the 8-byte signature does not match
    KILN_PNG_TRUNCATED = 2,      // the data ended before libpng was done
    KILN_PNG_CORRUPT = 3,        // libpng rejected the data (message says why)
    KILN_PNG_OUT_OF_MEMORY = 4,
    KILN_PNG_MISUSE = 5,         // a call out of order, after a failure, or with bad arguments
} KilnPNGStatus;

/// How a text chunk is stored: tEXt and zTXt hold Latin-1, iTXt holds UTF-8.
typedef enum {
    KILN_PNG_TEXT_PLAIN = 0,                     // tEXt
    KILN_PNG_TEXT_COMPRESSED = 1,                // zTXt
    KILN_PNG_TEXT_INTERNATIONAL = 2,             // iTXt, uncompressed
    KILN_PNG_TEXT_INTERNATIONAL_COMPRESSED = 3,  // iTXt, zlib-compressed
} KilnPNGTextKind;

/// One text chunk. Strings are NUL-terminated; `text_length` excludes the terminator.
typedef struct {
    const char *keyword;
    const char *text;
    size_t text_length;
    KilnPNGTextKind kind;
} KilnPNGText;

/// The IHDR fields plus the layout of the rows kiln_png_decoder_read_pixels produces: palettes are
/// expanded to RGB(A), gray below 8 bits is scaled to 8 bits, everything else is left as stored
/// (16-bit samples big-endian, alpha last, tRNS possibly turned into an alpha channel).
typedef struct {
    uint32_t width;
    uint32_t height;
    int bit_depth;
    int color_type;
    int interlaced;
    int has_transparency;  // a tRNS chunk is present
    int decoded_channels;
    int decoded_bit_depth;
    size_t decoded_row_bytes;
} KilnPNGHeader;

typedef struct KilnPNGDecoder KilnPNGDecoder;

/// The decoder reads from `data` without copying it: keep it alive until destroy. NULL when out of memory.
KilnPNGDecoder *kiln_png_decoder_create(const uint8_t *data, size_t size);
/// Checks the signature and reads every chunk up to the first IDAT.
KilnPNGStatus kiln_png_decoder_read_header(KilnPNGDecoder *decoder, KilnPNGHeader *header);
/// Decodes all rows into `pixels` (height * decoded_row_bytes bytes), then reads the chunks after IDAT.
KilnPNGStatus kiln_png_decoder_read_pixels(KilnPNGDecoder *decoder, uint8_t *pixels);
/// Text chunks seen so far, in file order (all of them once read_pixels succeeded).
size_t kiln_png_decoder_text_count(const KilnPNGDecoder *decoder);
KilnPNGText kiln_png_decoder_text(const KilnPNGDecoder *decoder, size_t index);
/// libpng's message for the last failure ("" if none). Valid until destroy.
const char *kiln_png_decoder_message(const KilnPNGDecoder *decoder);
void kiln_png_decoder_destroy(KilnPNGDecoder *decoder);

/// Encodes 8-bit rows (`width * channels` bytes each, no padding) as a PNG with `channels` 1 (gray),
/// 2 (gray+alpha), 3 (RGB) or 4 (RGBA), the text chunks before IDAT in the given order, and no time
/// chunk, so equal inputs give equal bytes. On success `*bytes` (free with kiln_png_free) holds
/// `*size` bytes; on failure `message` receives libpng's reason.
KilnPNGStatus kiln_png_encode(const uint8_t *pixels, uint32_t width, uint32_t height, int channels,
                              const KilnPNGText *texts, size_t text_count, int compression_level,
                              uint8_t **bytes, size_t *size, char *message, size_t message_capacity);
void kiln_png_free(void *bytes);

#endif
