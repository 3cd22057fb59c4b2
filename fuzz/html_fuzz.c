
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * libFuzzer target for the tokenizer that finds the injection point
 * (ngx_http_retarget_html.c).  The first two bytes of the input seed
 * where the page is cut; the rest is the page.  It is scanned three
 * ways:
 *
 *   - by a plain reference written apart from the tokenizer (byte by
 *     byte, string compares, no SSE2, no state carried over);
 *   - in one call over the whole page;
 *   - cut into pieces of 0 to 40 bytes (each copied into its own
 *     allocation, so AddressSanitizer sees any read past a buffer's end),
 *     holding back the bytes h->tail says, as the body filter does.
 *
 * All three must find the same injection point (or none), and what is
 * held back is at most NGX_HTTP_RETARGET_HTML_MAX_TAIL bytes, always a
 * prefix of "</body>" in some letter case.
 */


#include "fuzz_stubs.h"
#include "ngx_http_retarget_html.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


static const char  *fuzz_raw[] = { "script", "style", "textarea", "title" };


static int
fuzz_ci(const u_char *p, size_t n, const char *s)
{
    size_t  i, len;

    len = strlen(s);

    if (n < len) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if (ngx_tolower(p[i]) != (u_char) s[i]) {
            return 0;
        }
    }

    return 1;
}


static int
fuzz_delim(u_char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r'
           || c == '/' || c == '>';
}


static int
fuzz_space(u_char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r';
}


/* the offset of the injection point, -1 for none */

static long
fuzz_reference(const u_char *s, size_t n)
{
    size_t  i, j, k, len;
    int     st;

    i = 0;

    while (i < n) {

        if (s[i] != '<') {
            i++;
            continue;
        }

        if (fuzz_ci(s + i, n - i, "</body>")) {
            return (long) i;
        }

        if (n - i >= 4 && memcmp(s + i, "<!--", 4) == 0) {
            i += 4;

            if (i < n && s[i] == '>') {
                i++;
                continue;
            }

            if (n - i >= 2 && s[i] == '-' && s[i + 1] == '>') {
                i += 2;
                continue;
            }

            for (j = i; j < n; j++) {
                if (n - j >= 3 && memcmp(s + j, "-->", 3) == 0) {
                    break;
                }

                if (n - j >= 4 && memcmp(s + j, "--!>", 4) == 0) {
                    j++;
                    break;
                }
            }

            if (j == n) {
                return -1;
            }

            i = j + 3;
            continue;
        }

        for (k = 0; k < 4; k++) {
            len = strlen(fuzz_raw[k]);

            if (n - i > len + 1 && fuzz_ci(s + i + 1, n - i - 1, fuzz_raw[k])
                && fuzz_delim(s[i + 1 + len]))
            {
                break;
            }
        }

        if (k == 4) {
            i++;
            continue;
        }

        /* the start tag's attributes: 0 name, 1 after "=", 2 unquoted,
         * 3 and 4 quoted */

        j = i + 1 + len;
        st = 0;

        if (s[j] != '>') {
            for (j++; j < n; j++) {
                if (st == 0) {
                    if (s[j] == '>') {
                        break;
                    }

                    if (s[j] == '=') {
                        st = 1;
                    }

                } else if (st == 1) {
                    if (s[j] == '>') {
                        break;
                    }

                    st = s[j] == '"' ? 3 : s[j] == '\'' ? 4
                         : fuzz_space(s[j]) ? 1 : 2;

                } else if (st == 2) {
                    if (s[j] == '>') {
                        break;
                    }

                    if (fuzz_space(s[j])) {
                        st = 0;
                    }

                } else if (s[j] == (st == 3 ? '"' : '\'')) {
                    st = 0;
                }
            }

            if (j == n) {
                return -1;
            }
        }

        /* the text, up to the end tag */

        for (j++; j < n; j++) {
            if (n - j > len + 2 && s[j] == '<' && s[j + 1] == '/'
                && fuzz_ci(s + j + 2, n - j - 2, fuzz_raw[k])
                && fuzz_delim(s[j + 2 + len]))
            {
                break;
            }
        }

        if (j == n) {
            return -1;
        }

        i = j + 2 + len + 1;
    }

    return -1;
}


static long
fuzz_one_shot(const u_char *s, size_t n)
{
    u_char                    *copy, *at;
    long                       found;
    ngx_http_retarget_html_t   h;

    copy = malloc(n ? n : 1);
    if (copy == NULL) {
        abort();
    }

    memcpy(copy, s, n);
    memset(&h, 0, sizeof(h));

    found = -1;

    if (ngx_http_retarget_html_scan(&h, copy, copy + n, &at) == NGX_OK) {
        if (at == NULL) {
            fuzz_fail("one shot: found in held bytes that do not exist");
        }

        found = at - copy;
    }

    free(copy);

    return found;
}


static long
fuzz_split(const u_char *s, size_t n, unsigned seed)
{
    u_char                    *piece, *at;
    size_t                     base, len, held, tail, i;
    long                       found;
    ngx_int_t                  rc;
    ngx_http_retarget_html_t   h;

    memset(&h, 0, sizeof(h));
    base = 0;
    held = 0;
    found = -1;

    while (base <= n) {
        seed = seed * 1103515245 + 12345;
        len = (seed >> 16) % 41;

        if (len > n - base) {
            len = n - base;
        }

        piece = malloc(len ? len : 1);
        if (piece == NULL) {
            abort();
        }

        memcpy(piece, s + base, len);

        rc = ngx_http_retarget_html_scan(&h, piece, piece + len, &at);

        if (rc == NGX_OK) {
            if (at == NULL) {
                if (held == 0) {
                    fuzz_fail("found in held bytes, none held");
                }

                found = (long) (base - held);

            } else {
                if (at < piece || at >= piece + len) {
                    fuzz_fail("found outside the buffer");
                }

                found = (long) (base + (at - piece));
            }

            free(piece);
            return found;
        }

        free(piece);

        tail = h.tail;

        if (tail > NGX_HTTP_RETARGET_HTML_MAX_TAIL) {
            fuzz_fail("%u bytes held back", (unsigned) tail);
        }

        if (!(held && tail == held + len) && tail > len) {
            fuzz_fail("a tail of %u bytes, %u held, %u new", (unsigned) tail,
                      (unsigned) held, (unsigned) len);
        }

        held = tail;
        base += len;

        for (i = 0; i < held; i++) {
            if (ngx_tolower(s[base - held + i]) != "</body>"[i]) {
                fuzz_fail("held bytes that cannot begin \"</body>\"");
            }
        }

        if (base == n && len == 0) {
            break;
        }
    }

    return found;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    long      ref, one, split;
    unsigned  seed;

    if (size < 2) {
        return 0;
    }

    seed = data[0] | (data[1] << 8);
    data += 2;
    size -= 2;

    ref = fuzz_reference(data, size);
    one = fuzz_one_shot(data, size);
    split = fuzz_split(data, size, seed);

    if (ref != one || ref != split) {
        fuzz_fail("injection point: reference %ld, one shot %ld, split %ld",
                  ref, one, split);
    }

    return 0;
}
