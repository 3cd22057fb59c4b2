
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * Stand-ins for the nginx core functions that the fuzzed module files
 * call.
 *
 * Why: the fuzz targets link single module files (the template engine,
 * the control endpoint) into a libFuzzer binary, but only nginx's headers
 * are installed here (Debian's nginx-dev), not its .c sources, so there
 * is no libnginx to link with.  The headers come from the configured
 * tree of "make build" (build/nginx), so the structures and macros are
 * the real ones; only the functions below are replaced.
 *
 * They follow nginx's behaviour where the module depends on it, and are
 * made stricter where that helps the sanitizers:
 *
 *   - every pool allocation is its own malloc() (AddressSanitizer sees an
 *     overrun of each), all of them kept in one arena that fuzz_reset()
 *     frees after each input; the pool argument is ignored;
 *   - ngx_array_push() always moves a full array, and fills the old copy
 *     with garbage: code keeping a pointer into an array across a push
 *     reads garbage (nginx may extend in place, hiding the bug);
 *   - ngx_conf_full_name() does not null-terminate, like nginx;
 *   - ngx_vslprintf() knows nginx's formats but "%f", and aborts on those
 *     it does not know rather than print something else.
 *
 * Error messages are captured (fuzz_last_error, fuzz_nerrors) so that a
 * target can check that a failure was reported.
 */


#include "fuzz_stubs.h"

#include <stdio.h>
#include <stdlib.h>
#include <stdarg.h>


char         fuzz_last_error[FUZZ_ERRSTR_LEN];
size_t       fuzz_last_error_len;
ngx_uint_t   fuzz_nerrors;

static void       **fuzz_arena;
static size_t       fuzz_arena_n;
static size_t       fuzz_arena_size;

static ngx_log_t    fuzz_log;
static ngx_pool_t   fuzz_pool_s;
static ngx_cycle_t  fuzz_cycle;
static ngx_conf_t   fuzz_cf;
static int          fuzz_verbose = -1;


static void fuzz_message(const char *kind, const char *fmt, va_list args,
    ngx_err_t err);


void
fuzz_fail(const char *fmt, ...)
{
    va_list  args;

    fprintf(stderr, "\nFUZZ PROPERTY FAILED: ");

    va_start(args, fmt);
    vfprintf(stderr, fmt, args);
    va_end(args);

    fprintf(stderr, "\n");

    abort();
}


ngx_conf_t *
fuzz_conf(void)
{
    if (fuzz_cf.pool == NULL) {
        fuzz_log.log_level = NGX_LOG_DEBUG;

        fuzz_pool_s.log = &fuzz_log;

        fuzz_cycle.pool = &fuzz_pool_s;
        fuzz_cycle.log = &fuzz_log;
        ngx_str_set(&fuzz_cycle.prefix, "/nonexistent/fuzz/");
        ngx_str_set(&fuzz_cycle.conf_prefix, "/nonexistent/fuzz/conf/");

        fuzz_cf.pool = &fuzz_pool_s;
        fuzz_cf.temp_pool = &fuzz_pool_s;
        fuzz_cf.log = &fuzz_log;
        fuzz_cf.cycle = &fuzz_cycle;
    }

    return &fuzz_cf;
}


ngx_pool_t *
fuzz_pool(void)
{
    return fuzz_conf()->pool;
}


void
fuzz_reset(void)
{
    while (fuzz_arena_n) {
        free(fuzz_arena[--fuzz_arena_n]);
    }

    fuzz_last_error[0] = '\0';
    fuzz_last_error_len = 0;
    fuzz_nerrors = 0;
}


static void *
fuzz_track(void *p)
{
    void  **a;

    if (p == NULL) {
        /* not a condition the module is expected to survive here */
        fuzz_fail("out of memory");
    }

    if (fuzz_arena_n == fuzz_arena_size) {
        fuzz_arena_size = fuzz_arena_size ? 2 * fuzz_arena_size : 1024;

        a = realloc(fuzz_arena, fuzz_arena_size * sizeof(void *));
        if (a == NULL) {
            fuzz_fail("out of memory");
        }

        fuzz_arena = a;
    }

    fuzz_arena[fuzz_arena_n++] = p;

    return p;
}


/* src/os/unix/ngx_alloc.c: not from a pool, the caller frees */

void *
ngx_alloc(size_t size, ngx_log_t *log)
{
    return malloc(size);
}


void *
ngx_calloc(size_t size, ngx_log_t *log)
{
    return calloc(1, size);
}


/* src/core/ngx_palloc.c */

void *
ngx_palloc(ngx_pool_t *pool, size_t size)
{
    /* malloc(0) may be NULL; nginx returns a valid pointer */
    return fuzz_track(malloc(size ? size : 1));
}


void *
ngx_pnalloc(ngx_pool_t *pool, size_t size)
{
    return fuzz_track(malloc(size ? size : 1));
}


void *
ngx_pcalloc(ngx_pool_t *pool, size_t size)
{
    return fuzz_track(calloc(1, size ? size : 1));
}


/* src/core/ngx_array.c */

ngx_array_t *
ngx_array_create(ngx_pool_t *p, ngx_uint_t n, size_t size)
{
    ngx_array_t  *a;

    a = ngx_palloc(p, sizeof(ngx_array_t));

    if (ngx_array_init(a, p, n, size) != NGX_OK) {
        return NULL;
    }

    return a;
}


void *
ngx_array_push_n(ngx_array_t *a, ngx_uint_t n)
{
    void        *new;
    ngx_uint_t   nalloc;

    if (a->nelts + n > a->nalloc) {
        nalloc = 2 * ngx_max(n, a->nalloc);

        new = ngx_palloc(a->pool, nalloc * a->size);
        ngx_memcpy(new, a->elts, a->nelts * a->size);

        /* the old copy stays allocated in nginx: poison it */
        ngx_memset(a->elts, 0xa5, a->nelts * a->size);

        a->elts = new;
        a->nalloc = nalloc;
    }

    new = (u_char *) a->elts + a->size * a->nelts;
    a->nelts += n;

    return new;
}


void *
ngx_array_push(ngx_array_t *a)
{
    return ngx_array_push_n(a, 1);
}


/* src/core/ngx_string.c */

/*
 * nginx's contract: the code point, 0xffffffff for an invalid sequence
 * (a bad lead byte, a byte below 0x80 where a continuation belongs, an
 * overlong form), 0xfffffffe when n is too short (*p not moved).
 */

uint32_t
ngx_utf8_decode(u_char **p, size_t n)
{
    u_char    *s;
    size_t     more, k;
    uint32_t   cp, min;

    s = *p;

    if (s[0] >= 0xf0) {
        cp = s[0] & 0x07;
        more = 3;
        min = 0x10000;

    } else if (s[0] >= 0xe0) {
        cp = s[0] & 0x0f;
        more = 2;
        min = 0x800;

    } else if (s[0] >= 0xc2) {
        cp = s[0] & 0x1f;
        more = 1;
        min = 0x80;

    } else {
        *p = s + 1;
        return 0xffffffff;
    }

    if (n <= more) {
        return 0xfffffffe;
    }

    for (k = 1; k <= more; k++) {
        if (s[k] < 0x80) {
            *p = s + k + 1;
            return 0xffffffff;
        }

        cp = (cp << 6) | (s[k] & 0x3f);
    }

    *p = s + more + 1;

    return (cp >= min) ? cp : 0xffffffff;
}



/* like nginx's: the year in full, the month from 1 (libc's gmtime_r) */

void
ngx_gmtime(time_t t, ngx_tm_t *tp)
{
    struct tm  tm;

    if (gmtime_r(&t, &tm) == NULL) {
        ngx_memzero(&tm, sizeof(struct tm));
    }

    *tp = tm;
    tp->ngx_tm_year += 1900;
    tp->ngx_tm_mon += 1;
}


void
ngx_strlow(u_char *dst, u_char *src, size_t n)
{
    while (n--) {
        *dst++ = (*src >= 'A' && *src <= 'Z') ? (*src | 0x20) : *src;
        src++;
    }
}


u_char *
ngx_hex_dump(u_char *dst, u_char *src, size_t len)
{
    static u_char  hex[] = "0123456789abcdef";

    while (len--) {
        *dst++ = hex[*src >> 4];
        *dst++ = hex[*src++ & 0xf];
    }

    return dst;
}


u_char *
ngx_pstrdup(ngx_pool_t *pool, ngx_str_t *src)
{
    u_char  *dst;

    dst = ngx_pnalloc(pool, src->len);
    ngx_memcpy(dst, src->data, src->len);

    return dst;
}


ngx_int_t
ngx_strncasecmp(u_char *s1, u_char *s2, size_t n)
{
    ngx_uint_t  c1, c2;

    while (n) {
        c1 = (ngx_uint_t) *s1++;
        c2 = (ngx_uint_t) *s2++;

        c1 = (c1 >= 'A' && c1 <= 'Z') ? (c1 | 0x20) : c1;
        c2 = (c2 >= 'A' && c2 <= 'Z') ? (c2 | 0x20) : c2;

        if (c1 == c2) {

            if (c1) {
                n--;
                continue;
            }

            return 0;
        }

        return c1 - c2;
    }

    return 0;
}


/* s2 (n + 1 bytes, lowercase) in [s1, last), any letter case */

u_char *
ngx_strlcasestrn(u_char *s1, u_char *last, u_char *s2, size_t n)
{
    for ( /* void */ ; s1 + n < last; s1++) {
        if (ngx_strncasecmp(s1, s2, n + 1) == 0) {
            return s1;
        }
    }

    return NULL;
}


static u_char *
fuzz_put(u_char *buf, u_char *last, const u_char *s, size_t len, ngx_uint_t hex)
{
    static const u_char  lower[] = "0123456789abcdef";
    static const u_char  upper[] = "0123456789ABCDEF";
    const u_char        *digits;

    if (!hex) {
        len = ngx_min(len, (size_t) (last - buf));
        return ngx_cpymem(buf, s, len);
    }

    digits = (hex == 'X') ? upper : lower;

    while (len-- && last - buf >= 2) {
        *buf++ = digits[*s >> 4];
        *buf++ = digits[*s++ & 0xf];
    }

    return buf;
}


/*
 * nginx's formats: %[0][width][u][x|X] with O T z d l i D L M P r A, and
 * %p %[x|X]V %[x|X]v %[*][x|X]s %Z %N %c %%; "%f" is not supported.
 */

u_char *
ngx_vslprintf(u_char *buf, u_char *last, const char *fmt, va_list args)
{
    u_char                 *s, zero, tmp[NGX_INT64_LEN + 2 + 1];
    size_t                  len, slen, width;
    uint64_t                ui64;
    int64_t                 i64;
    ngx_uint_t              hex, sign;
    ngx_str_t              *v;
    ngx_variable_value_t   *vv;

    while (*fmt && buf < last) {

        if (*fmt != '%') {
            *buf++ = (u_char) *fmt++;
            continue;
        }

        fmt++;

        zero = (u_char) ((*fmt == '0') ? '0' : ' ');
        width = 0;
        sign = 1;
        hex = 0;
        slen = (size_t) -1;

        while (*fmt >= '0' && *fmt <= '9') {
            width = width * 10 + (*fmt++ - '0');
        }

        for ( ;; ) {
            switch (*fmt) {

            case 'u':
                sign = 0;
                fmt++;
                continue;

            case 'm':
                fmt++;
                continue;

            case 'X':
            case 'x':
                hex = (u_char) *fmt;
                sign = 0;
                fmt++;
                continue;

            case '*':
                slen = va_arg(args, size_t);
                fmt++;
                continue;

            default:
                break;
            }

            break;
        }

        i64 = 0;
        ui64 = 0;

        switch (*fmt) {

        case 'V':
            v = va_arg(args, ngx_str_t *);
            buf = fuzz_put(buf, last, v->data, v->len, hex);
            fmt++;
            continue;

        case 'v':
            vv = va_arg(args, ngx_variable_value_t *);
            buf = fuzz_put(buf, last, vv->data, vv->len, hex);
            fmt++;
            continue;

        case 's':
            s = va_arg(args, u_char *);
            len = (slen == (size_t) -1) ? ngx_strlen(s) : slen;
            buf = fuzz_put(buf, last, s, len, hex);
            fmt++;
            continue;

        case 'O':
            i64 = (int64_t) va_arg(args, off_t);
            sign = 1;
            break;

        case 'P':
            i64 = (int64_t) va_arg(args, ngx_pid_t);
            sign = 1;
            break;

        case 'T':
            i64 = (int64_t) va_arg(args, time_t);
            sign = 1;
            break;

        case 'M':
            ui64 = (uint64_t) va_arg(args, ngx_msec_t);
            sign = 0;
            break;

        case 'z':
            if (sign) {
                i64 = (int64_t) va_arg(args, ssize_t);
            } else {
                ui64 = (uint64_t) va_arg(args, size_t);
            }
            break;

        case 'i':
            if (sign) {
                i64 = (int64_t) va_arg(args, ngx_int_t);
            } else {
                ui64 = (uint64_t) va_arg(args, ngx_uint_t);
            }
            break;

        case 'd':
            if (sign) {
                i64 = (int64_t) va_arg(args, int);
            } else {
                ui64 = (uint64_t) va_arg(args, u_int);
            }
            break;

        case 'l':
            if (sign) {
                i64 = (int64_t) va_arg(args, long);
            } else {
                ui64 = (uint64_t) va_arg(args, u_long);
            }
            break;

        case 'D':
            if (sign) {
                i64 = (int64_t) va_arg(args, int32_t);
            } else {
                ui64 = (uint64_t) va_arg(args, uint32_t);
            }
            break;

        case 'L':
            if (sign) {
                i64 = va_arg(args, int64_t);
            } else {
                ui64 = va_arg(args, uint64_t);
            }
            break;

        case 'A':
            if (sign) {
                i64 = (int64_t) va_arg(args, ngx_atomic_int_t);
            } else {
                ui64 = (uint64_t) va_arg(args, ngx_atomic_uint_t);
            }
            break;

        case 'r':
            i64 = (int64_t) va_arg(args, rlim_t);
            sign = 1;
            break;

        case 'p':
            ui64 = (uintptr_t) va_arg(args, void *);
            hex = 'x';
            sign = 0;
            zero = '0';
            width = 2 * sizeof(void *);
            break;

        case 'c':
            *buf++ = (u_char) va_arg(args, int);
            fmt++;
            continue;

        case 'Z':
            *buf++ = '\0';
            fmt++;
            continue;

        case 'N':
            *buf++ = LF;
            fmt++;
            continue;

        case '%':
            *buf++ = '%';
            fmt++;
            continue;

        default:
            fuzz_fail("stub ngx_vslprintf(): unsupported format \"%%%c\"",
                      *fmt);
        }

        fmt++;

        if (sign && i64 < 0) {
            *buf++ = '-';
            ui64 = (uint64_t) -(i64 + 1) + 1;

        } else if (sign) {
            ui64 = (uint64_t) i64;
        }

        len = snprintf((char *) tmp, sizeof(tmp),
                       hex == 'x' ? "%llx" : hex == 'X' ? "%llX" : "%llu",
                       (unsigned long long) ui64);

        while (width > len && buf < last) {
            *buf++ = zero;
            width--;
        }

        buf = fuzz_put(buf, last, tmp, len, 0);
    }

    return buf;
}


u_char * ngx_cdecl
ngx_sprintf(u_char *buf, const char *fmt, ...)
{
    u_char   *p;
    va_list   args;

    va_start(args, fmt);
    p = ngx_vslprintf(buf, (void *) -1, fmt, args);
    va_end(args);

    return p;
}


u_char * ngx_cdecl
ngx_snprintf(u_char *buf, size_t max, const char *fmt, ...)
{
    u_char   *p;
    va_list   args;

    va_start(args, fmt);
    p = ngx_vslprintf(buf, buf + max, fmt, args);
    va_end(args);

    return p;
}


u_char * ngx_cdecl
ngx_slprintf(u_char *buf, u_char *last, const char *fmt, ...)
{
    u_char   *p;
    va_list   args;

    va_start(args, fmt);
    p = ngx_vslprintf(buf, last, fmt, args);
    va_end(args);

    return p;
}


/* src/core/ngx_murmurhash.c (the same function, as nginx has it) */

uint32_t
ngx_murmur_hash2(u_char *data, size_t len)
{
    uint32_t  h, k;

    h = 0 ^ len;

    while (len >= 4) {
        k  = data[0];
        k |= data[1] << 8;
        k |= data[2] << 16;
        k |= (uint32_t) data[3] << 24;

        k *= 0x5bd1e995;
        k ^= k >> 24;
        k *= 0x5bd1e995;

        h *= 0x5bd1e995;
        h ^= k;

        data += 4;
        len -= 4;
    }

    switch (len) {
    case 3:
        h ^= data[2] << 16;
        /* fall through */
    case 2:
        h ^= data[1] << 8;
        /* fall through */
    case 1:
        h ^= data[0];
        h *= 0x5bd1e995;
    }

    h ^= h >> 13;
    h *= 0x5bd1e995;
    h ^= h >> 15;

    return h;
}


/* src/core/ngx_conf_file.c, src/core/ngx_log.c */

static void
fuzz_message(const char *kind, const char *fmt, va_list args, ngx_err_t err)
{
    u_char  *p, *last;

    last = (u_char *) fuzz_last_error + FUZZ_ERRSTR_LEN - 1;

    p = ngx_vslprintf((u_char *) fuzz_last_error, last, fmt, args);

    if (err) {
        p = ngx_slprintf(p, last, " (%d: %s)", err, strerror(err));
    }

    *p = '\0';

    fuzz_last_error_len = p - (u_char *) fuzz_last_error;
    fuzz_nerrors++;

    if (fuzz_verbose == -1) {
        fuzz_verbose = (getenv("FUZZ_VERBOSE") != NULL);
    }

    if (fuzz_verbose) {
        fprintf(stderr, "%s: %s\n", kind, fuzz_last_error);
    }
}


void ngx_cdecl
ngx_conf_log_error(ngx_uint_t level, ngx_conf_t *cf, ngx_err_t err,
    const char *fmt, ...)
{
    va_list  args;

    va_start(args, fmt);
    fuzz_message("ngx_conf_log_error", fmt, args, err);
    va_end(args);
}


void ngx_cdecl
ngx_log_error_core(ngx_uint_t level, ngx_log_t *log, ngx_err_t err,
    const char *fmt, ...)
{
    va_list  args;

    va_start(args, fmt);
    fuzz_message("ngx_log_error", fmt, args, err);
    va_end(args);
}


/*
 * src/core/ngx_conf_file.c and ngx_file.c: a relative name gets the
 * prefix prepended, in a pool copy that is not null-terminated.
 */

ngx_int_t
ngx_conf_full_name(ngx_cycle_t *cycle, ngx_str_t *name, ngx_uint_t conf_prefix)
{
    u_char     *p;
    ngx_str_t  *prefix;

    if (name->len != 0 && name->data[0] == '/') {
        return NGX_OK;
    }

    prefix = conf_prefix ? &cycle->conf_prefix : &cycle->prefix;

    p = ngx_pnalloc(cycle->pool, prefix->len + name->len);

    ngx_memcpy(p, prefix->data, prefix->len);
    ngx_memcpy(p + prefix->len, name->data, name->len);

    name->len += prefix->len;
    name->data = p;

    return NGX_OK;
}
