#include "CKilnPNG.h"

#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// Errors carry libpng's message out of the longjmp; warnings (bad CRC in an ancillary chunk,
// odd iCCP profiles) are not failures and would otherwise be printed to stderr.
typedef struct {
    char text[256];
} Message;

static void keep_message(Message *message, const char *text) {
    strncpy(message->text, text ? text : "unknown libpng error", sizeof message->text - 1);
    message->text[sizeof message->text - 1] = '\0';
}

static void ignore_warning(png_structp png, png_const_charp text) {
    (void)png;
    (void)text;
}

// ---------------------------------------------------------------------------------------------
// Reading

struct KilnPNGDecoder {
    const uint8_t *data;
    size_t size;
    size_t offset;
    int ran_out;
    int failed;
    int header_read;
    png_structp png;
    png_infop info;
    png_bytep *rows;
    Message message;
};

static void decoder_error(png_structp png, png_const_charp text) {
    KilnPNGDecoder *decoder = png_get_error_ptr(png);
    keep_message(&decoder->message, text);
    png_longjmp(png, 1);
}

static void decoder_read(png_structp png, png_bytep out, size_t length) {
    KilnPNGDecoder *decoder = png_get_io_ptr(png);
    if (length > decoder->size - decoder->offset) {
        decoder->ran_out = 1;
        png_error(png, "the file ends early");
    }
    memcpy(out, decoder->data + decoder->offset, length);
    decoder->offset += length;
}

static KilnPNGStatus decoder_failure(KilnPNGDecoder *decoder) {
    decoder->failed = 1;
    return decoder->ran_out ? KILN_PNG_TRUNCATED : KILN_PNG_CORRUPT;
}

KilnPNGDecoder *kiln_png_decoder_create(const uint8_t *data, size_t size) {
    KilnPNGDecoder *decoder = calloc(1, sizeof *decoder);
    if (!decoder) return NULL;
    decoder->data = data;
    decoder->size = size;
    decoder->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, decoder, decoder_error, ignore_warning);
    if (decoder->png) decoder->info = png_create_info_struct(decoder->png);
    if (!decoder->png || !decoder->info) {
        kiln_png_decoder_destroy(decoder);
        return NULL;
    }
    return decoder;
}

// The least chunk size (and decompressed text size) libpng may allocate for a chunk.
static const size_t chunk_limit = 8u << 20;

// libpng allocates the length a chunk declares before it reads the chunk's bytes, so a 1 kB
// file whose text chunk claims 1 GB would cost 1 GB. Each declared length is checked against
// the bytes left first. IDAT is streamed, not allocated: a short one ends the walk and is left
// to libpng (the header of a cut-off file still reads).
static int chunk_lengths_fit(KilnPNGDecoder *decoder) {
    size_t offset = 8;
    while (decoder->size - offset >= 8) {
        const uint8_t *chunk = decoder->data + offset;
        uint32_t length = (uint32_t)chunk[0] << 24 | (uint32_t)chunk[1] << 16 | (uint32_t)chunk[2] << 8 | chunk[3];
        size_t left = decoder->size - offset - 8;
        int is_idat = memcmp(chunk + 4, "IDAT", 4) == 0;
        if (length > left) {
            if (is_idat) return 1;
            char text[sizeof decoder->message.text];
            char type[5] = {0};
            for (int index = 0; index < 4; index++) type[index] = (chunk[4 + index] >= 32 && chunk[4 + index] < 127) ? (char)chunk[4 + index] : '?';
            snprintf(text, sizeof text, "chunk '%s' at byte %zu declares %u bytes, but the file has %zu left", type, offset, length, left);
            keep_message(&decoder->message, text);
            return 0;
        }
        if (memcmp(chunk + 4, "IEND", 4) == 0 || left - length < 4) return 1;
        offset += 8 + (size_t)length + 4;
    }
    return 1;
}

KilnPNGStatus kiln_png_decoder_read_header(KilnPNGDecoder *decoder, KilnPNGHeader *header) {
    if (decoder->failed || decoder->header_read) return KILN_PNG_MISUSE;
    static const uint8_t signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    size_t compared = decoder->size < 8 ? decoder->size : 8;
    if (compared == 0 || memcmp(decoder->data, signature, compared) != 0) {
        decoder->failed = 1;
        return KILN_PNG_NOT_PNG;
    }
    if (compared < 8) {
        decoder->failed = 1;
        decoder->ran_out = 1;
        keep_message(&decoder->message, "the file ends inside the PNG signature");
        return KILN_PNG_TRUNCATED;
    }
    png_structp png = decoder->png;
    png_infop info = decoder->info;
    if (setjmp(png_jmpbuf(png))) return decoder_failure(decoder);

    png_set_read_fn(png, decoder, decoder_read);
    // Size limits are KilnImage's job (it knows the memory budget); libpng's default 1,000,000
    // pixel cap per side would reject valid long strips with a misleading "corrupt" error.
    png_set_user_limits(png, PNG_UINT_31_MAX, PNG_UINT_31_MAX);
    if (!chunk_lengths_fit(decoder)) {
        decoder->failed = 1;
        decoder->ran_out = 1;
        return KILN_PNG_TRUNCATED;
    }
    // Compressed text (zTXt, iTXt, iCCP) is inflated up to this many bytes at most.
    png_set_chunk_malloc_max(png, decoder->size > chunk_limit ? decoder->size : chunk_limit);
    png_read_info(png, info);

    int color_type = png_get_color_type(png, info);
    int bit_depth = png_get_bit_depth(png, info);
    if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);

    header->width = png_get_image_width(png, info);
    header->height = png_get_image_height(png, info);
    header->bit_depth = bit_depth;
    header->color_type = color_type;
    header->interlaced = png_get_interlace_type(png, info) != PNG_INTERLACE_NONE;
    header->has_transparency = png_get_valid(png, info, PNG_INFO_tRNS) != 0;
    header->decoded_channels = png_get_channels(png, info);
    header->decoded_bit_depth = png_get_bit_depth(png, info);
    header->decoded_row_bytes = png_get_rowbytes(png, info);
    decoder->header_read = 1;
    return KILN_PNG_OK;
}

KilnPNGStatus kiln_png_decoder_read_pixels(KilnPNGDecoder *decoder, uint8_t *pixels) {
    if (decoder->failed || !decoder->header_read || decoder->rows) return KILN_PNG_MISUSE;
    png_structp png = decoder->png;
    png_infop info = decoder->info;
    uint32_t height = png_get_image_height(png, info);
    size_t row_bytes = png_get_rowbytes(png, info);
    decoder->rows = malloc((height ? height : 1) * sizeof *decoder->rows);
    if (!decoder->rows) {
        decoder->failed = 1;
        return KILN_PNG_OUT_OF_MEMORY;
    }
    for (uint32_t y = 0; y < height; y++) decoder->rows[y] = pixels + (size_t)y * row_bytes;
    if (setjmp(png_jmpbuf(png))) return decoder_failure(decoder);
    png_read_image(png, decoder->rows);
    png_read_end(png, info);
    return KILN_PNG_OK;
}

size_t kiln_png_decoder_text_count(const KilnPNGDecoder *decoder) {
    png_textp texts = NULL;
    return (size_t)png_get_text(decoder->png, decoder->info, &texts, NULL);
}

KilnPNGText kiln_png_decoder_text(const KilnPNGDecoder *decoder, size_t index) {
    KilnPNGText result = {"", "", 0, KILN_PNG_TEXT_PLAIN};
    png_textp texts = NULL;
    int count = png_get_text(decoder->png, decoder->info, &texts, NULL);
    if (index >= (size_t)count) return result;
    png_textp text = &texts[index];
    result.keyword = text->key;
    result.text = text->text ? text->text : "";
    switch (text->compression) {
    case PNG_TEXT_COMPRESSION_NONE:
        result.kind = KILN_PNG_TEXT_PLAIN;
        result.text_length = text->text_length;
        break;
    case PNG_TEXT_COMPRESSION_zTXt:
        result.kind = KILN_PNG_TEXT_COMPRESSED;
        result.text_length = text->text_length;
        break;
    case PNG_ITXT_COMPRESSION_NONE:
        result.kind = KILN_PNG_TEXT_INTERNATIONAL;
        result.text_length = text->itxt_length;
        break;
    default:
        result.kind = KILN_PNG_TEXT_INTERNATIONAL_COMPRESSED;
        result.text_length = text->itxt_length;
        break;
    }
    if (!text->text) result.text_length = 0;
    return result;
}

const char *kiln_png_decoder_message(const KilnPNGDecoder *decoder) {
    return decoder->message.text;
}

void kiln_png_decoder_destroy(KilnPNGDecoder *decoder) {
    if (!decoder) return;
    if (decoder->png) png_destroy_read_struct(&decoder->png, decoder->info ? &decoder->info : NULL, NULL);
    free(decoder->rows);
    free(decoder);
}

// ---------------------------------------------------------------------------------------------
// Writing

typedef struct {
    png_structp png;
    png_infop info;
    png_textp texts;
    uint8_t *bytes;
    size_t size;
    size_t capacity;
    int out_of_memory;
    Message message;
} Encoder;

static void encoder_error(png_structp png, png_const_charp text) {
    Encoder *encoder = png_get_error_ptr(png);
    keep_message(&encoder->message, text);
    png_longjmp(png, 1);
}

static void encoder_write(png_structp png, png_bytep data, size_t length) {
    Encoder *encoder = png_get_io_ptr(png);
    if (length > SIZE_MAX - encoder->size) png_error(png, "encoded PNG exceeds the address space");
    size_t needed = encoder->size + length;
    if (needed > encoder->capacity) {
        size_t capacity = encoder->capacity > SIZE_MAX / 2 ? SIZE_MAX : encoder->capacity * 2;
        if (capacity < needed) capacity = needed < 4096 ? 4096 : needed;
        uint8_t *grown = realloc(encoder->bytes, capacity);
        if (!grown) {
            encoder->out_of_memory = 1;
            png_error(png, "out of memory while encoding");
        }
        encoder->bytes = grown;
        encoder->capacity = capacity;
    }
    memcpy(encoder->bytes + encoder->size, data, length);
    encoder->size = needed;
}

static void encoder_flush(png_structp png) {
    (void)png;
}

static int color_type_for(int channels) {
    switch (channels) {
    case 1: return PNG_COLOR_TYPE_GRAY;
    case 2: return PNG_COLOR_TYPE_GRAY_ALPHA;
    case 3: return PNG_COLOR_TYPE_RGB;
    case 4: return PNG_COLOR_TYPE_RGB_ALPHA;
    default: return -1;
    }
}

static int compression_for(KilnPNGTextKind kind) {
    switch (kind) {
    case KILN_PNG_TEXT_PLAIN: return PNG_TEXT_COMPRESSION_NONE;
    case KILN_PNG_TEXT_COMPRESSED: return PNG_TEXT_COMPRESSION_zTXt;
    case KILN_PNG_TEXT_INTERNATIONAL: return PNG_ITXT_COMPRESSION_NONE;
    default: return PNG_ITXT_COMPRESSION_zTXt;
    }
}

static void encoder_release(Encoder *encoder) {
    if (encoder->png) png_destroy_write_struct(&encoder->png, encoder->info ? &encoder->info : NULL);
    free(encoder->texts);
    free(encoder->bytes);
    free(encoder);
}

static KilnPNGStatus encoder_fail(Encoder *encoder, KilnPNGStatus status, char *message, size_t capacity) {
    if (message && capacity) {
        strncpy(message, encoder->message.text, capacity - 1);
        message[capacity - 1] = '\0';
    }
    encoder_release(encoder);
    return status;
}

KilnPNGStatus kiln_png_encode(const uint8_t *pixels, uint32_t width, uint32_t height, int channels,
                              const KilnPNGText *texts, size_t text_count, int compression_level,
                              uint8_t **bytes, size_t *size, char *message, size_t message_capacity) {
    *bytes = NULL;
    *size = 0;
    if (message && message_capacity) message[0] = '\0';
    Encoder *encoder = calloc(1, sizeof *encoder);
    if (!encoder) return KILN_PNG_OUT_OF_MEMORY;
    int color_type = color_type_for(channels);
    if (color_type < 0 || text_count > INT32_MAX) {
        keep_message(&encoder->message, "unsupported channel count or too many text chunks");
        return encoder_fail(encoder, KILN_PNG_MISUSE, message, message_capacity);
    }
    encoder->png = png_create_write_struct(PNG_LIBPNG_VER_STRING, encoder, encoder_error, ignore_warning);
    if (encoder->png) encoder->info = png_create_info_struct(encoder->png);
    if (text_count) encoder->texts = calloc(text_count, sizeof *encoder->texts);
    if (!encoder->png || !encoder->info || (text_count && !encoder->texts)) {
        keep_message(&encoder->message, "out of memory");
        return encoder_fail(encoder, KILN_PNG_OUT_OF_MEMORY, message, message_capacity);
    }
    png_structp png = encoder->png;
    png_infop info = encoder->info;
    if (setjmp(png_jmpbuf(png))) {
        KilnPNGStatus status = encoder->out_of_memory ? KILN_PNG_OUT_OF_MEMORY : KILN_PNG_CORRUPT;
        return encoder_fail(encoder, status, message, message_capacity);
    }

    png_set_write_fn(png, encoder, encoder_write, encoder_flush);
    png_set_user_limits(png, PNG_UINT_31_MAX, PNG_UINT_31_MAX);
    png_set_compression_level(png, compression_level);
    png_set_IHDR(png, info, width, height, 8, color_type, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    for (size_t index = 0; index < text_count; index++) {
        // libpng copies keyword and text during png_set_text, and measures them with strlen.
        encoder->texts[index].compression = compression_for(texts[index].kind);
        encoder->texts[index].key = (png_charp)texts[index].keyword;
        encoder->texts[index].text = (png_charp)texts[index].text;
    }
    if (text_count) png_set_text(png, info, encoder->texts, (int)text_count);
    png_write_info(png, info);
    size_t row_bytes = (size_t)width * (size_t)channels;
    for (uint32_t y = 0; y < height; y++) png_write_row(png, pixels + (size_t)y * row_bytes);
    png_write_end(png, NULL);

    *bytes = encoder->bytes;
    *size = encoder->size;
    encoder->bytes = NULL;
    encoder_release(encoder);
    return KILN_PNG_OK;
}

void kiln_png_free(void *bytes) {
    free(bytes);
}
