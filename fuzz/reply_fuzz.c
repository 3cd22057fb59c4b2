
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * libFuzzer target for the limits on Redis replies
 * (ngx_http_retarget_reply.c): hiredis' reader, with the module's reply
 * object functions, fed what a hostile server could send.
 *
 * The first byte of the input is how many replies are owed (0 to 15,
 * its low four bits) and how the rest is cut into the reads of a socket
 * (a chunk of 1 to 16 bytes, its high four bits, or all at once for 0).
 * After each chunk is fed, the complete replies are taken as the link
 * takes them, and ngx_http_retarget_reply_check_pending() is asked about
 * the rest.  Then:
 *
 *   - no more replies come out than were owed; when the input holds a
 *     complete reply more, the reader has failed with the guard's reason;
 *   - every reply is a well-formed redisReply tree: a known type, strings
 *     at most MAX_BULK long and NUL-terminated, arrays of at most
 *     MAX_ELEMENTS elements with none missing, at most MAX_DEPTH deep,
 *     and all of it within MAX_SIZE as the guard charges it;
 *   - while the pending check passes, the reader buffers no more than one
 *     line or string may take;
 *   - the reader fails only with a reason: its own (protocol) or the
 *     guard's, and once it has failed nothing more comes out;
 *   - everything is freed with the reader's freeObject (LeakSanitizer).
 */


#include "fuzz_stubs.h"
#include "ngx_http_retarget_reply.h"

#include <stdio.h>
#include <stdlib.h>


typedef struct {
    ngx_uint_t  owed;
    ngx_uint_t  taken;
} fuzz_link_t;


static ngx_uint_t
fuzz_owed(void *data)
{
    fuzz_link_t *link = data;

    return link->taken < link->owed;
}


/* what the guard charges for a reply, computed apart from it */

static size_t
fuzz_check_reply(redisReply *r, ngx_uint_t depth)
{
    size_t  i, size;

    size = sizeof(redisReply);

    switch (r->type) {

    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_ERROR:
        if (r->str == NULL || r->len > NGX_HTTP_RETARGET_REPLY_MAX_BULK
            || r->str[r->len] != '\0')
        {
            fuzz_fail("a string of %zu bytes, or not terminated", r->len);
        }

        return size + r->len + 1;

    case REDIS_REPLY_INTEGER:
    case REDIS_REPLY_NIL:
        return size;

    case REDIS_REPLY_ARRAY:
        if (depth > NGX_HTTP_RETARGET_REPLY_MAX_DEPTH) {
            fuzz_fail("an array %u deep", (unsigned) depth);
        }

        if (r->elements > NGX_HTTP_RETARGET_REPLY_MAX_ELEMENTS) {
            fuzz_fail("an array of %zu elements", r->elements);
        }

        size += r->elements * sizeof(redisReply *);

        for (i = 0; i < r->elements; i++) {
            if (r->element[i] == NULL) {
                fuzz_fail("element %zu of %zu missing", i, r->elements);
            }

            size += fuzz_check_reply(r->element[i], depth + 1);
        }

        return size;

    default:
        fuzz_fail("a reply of type %d", r->type);
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                               rc;
    void                             *reply;
    size_t                            chunk, n, cost;
    redisReader                      *reader;
    fuzz_link_t                       link;
    ngx_uint_t                        failed;
    const uint8_t                    *p, *last;
    ngx_http_retarget_reply_guard_t   guard;

    if (size < 1) {
        return 0;
    }

    link.owed = data[0] & 0x0f;
    link.taken = 0;
    chunk = data[0] >> 4;

    p = data + 1;
    last = data + size;

    reader = redisReaderCreate();
    if (reader == NULL) {
        fuzz_fail("no reader");
    }

    ngx_http_retarget_reply_guard(reader, &guard, fuzz_owed, &link,
                                  fuzz_pool()->log);

    failed = 0;

    while (p < last && !failed) {
        n = chunk ? ngx_min(chunk, (size_t) (last - p)) : (size_t) (last - p);

        if (redisReaderFeed(reader, (const char *) p, n) != REDIS_OK) {
            fuzz_fail("feed failed on a reader that had not failed");
        }

        p += n;

        for ( ;; ) {
            rc = redisReaderGetReply(reader, &reply);

            if (rc != REDIS_OK) {
                if (reader->err == 0) {
                    fuzz_fail("an error without a reason");
                }

                if (reader->err == REDIS_ERR_OOM && guard.refused == NULL) {
                    fuzz_fail("out of memory, not refused by the guard");
                }

                failed = 1;
                break;
            }

            if (reply == NULL) {
                break;
            }

            if (link.taken >= link.owed) {
                fuzz_fail("reply %u of %u owed came out",
                          (unsigned) link.taken + 1, (unsigned) link.owed);
            }

            link.taken++;

            cost = fuzz_check_reply(reply, 1);

            if (cost > NGX_HTTP_RETARGET_REPLY_MAX_SIZE) {
                fuzz_fail("a reply of %zu bytes", cost);
            }

            if (cost != guard.size) {
                fuzz_fail("a reply of %zu bytes charged %zu", cost,
                          guard.size);
            }

            reader->fn->freeObject(reply);
        }

        if (failed) {
            break;
        }

        if (ngx_http_retarget_reply_check_pending(reader) != NGX_OK) {
            if (guard.refused == NULL) {
                fuzz_fail("pending refused without a reason");
            }

            failed = 1;
            break;
        }

        if (reader->len - reader->pos
            > NGX_HTTP_RETARGET_REPLY_MAX_BULK + NGX_INT64_LEN + 4)
        {
            fuzz_fail("%zu bytes buffered and not refused",
                      reader->len - reader->pos);
        }
    }

    if (failed && reader->err
        && redisReaderGetReply(reader, &reply) == REDIS_OK)
    {
        fuzz_fail("a failed reader went on");
    }

    redisReaderFree(reader);
    fuzz_reset();

    return 0;
}
