
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * The optimizer's weights as Redis keeps them: "A=0.7012,B=0.2988", the
 * campaign's variants in configuration order, four decimals, summing to
 * one.  Whichever nginx writes a period's weights first, every other one
 * uses them, so what is read back is checked as strictly as anything
 * else from Redis: the names must be the campaign's, in order, and the
 * numbers must be weights this configuration could have written.
 *
 * Weights are integers in ten-thousandths throughout: no float is parsed
 * or printed, so that every nginx reads the same value the same way.
 */


#include "ngx_http_retarget_weights.h"


static u_char *ngx_http_retarget_weight_parse(u_char *p, u_char *last,
    ngx_uint_t *w);


size_t
ngx_http_retarget_weights_len(ngx_str_t *names, ngx_uint_t n)
{
    size_t      len;
    ngx_uint_t  i;

    len = 0;

    for (i = 0; i < n; i++) {
        /* "NAME=0.7012," */
        len += names[i].len + sizeof("=0.0000,") - 1;
    }

    return len;
}


u_char *
ngx_http_retarget_weights_format(u_char *p, ngx_str_t *names, ngx_uint_t n,
    ngx_uint_t *w)
{
    ngx_uint_t  i;

    for (i = 0; i < n; i++) {
        if (i) {
            *p++ = ',';
        }

        p = ngx_cpymem(p, names[i].data, names[i].len);
        p = ngx_sprintf(p, "=%ui.%04ui", w[i] / NGX_HTTP_RETARGET_WEIGHT_ONE,
                        w[i] % NGX_HTTP_RETARGET_WEIGHT_ONE);
    }

    return p;
}


/*
 * Reads the n weights of "names" from [p, p + len) into w; NGX_DONE,
 * w untouched, for "configured" (the configured weights apply for the
 * period).  NGX_DECLINED for anything but the names in order, each
 * "=" and a number from 0 to 1 with at most four decimals, weights
 * summing to one (within a ten-thousandth an arm, the rounding of the
 * writer) and none below the floor (by more than that rounding).
 */

ngx_int_t
ngx_http_retarget_weights_parse(u_char *p, size_t len, ngx_str_t *names,
    ngx_uint_t n, ngx_uint_t floor, ngx_uint_t *w)
{
    u_char      *last;
    ngx_uint_t   i, sum;

    if (n == 0 || n > NGX_HTTP_RETARGET_OPTIMIZE_ARMS) {
        return NGX_DECLINED;
    }

    if (len == sizeof(NGX_HTTP_RETARGET_WEIGHTS_CONFIGURED) - 1
        && ngx_strncmp(p, NGX_HTTP_RETARGET_WEIGHTS_CONFIGURED, len) == 0)
    {
        return NGX_DONE;
    }

    last = p + len;
    sum = 0;

    for (i = 0; i < n; i++) {
        if (i) {
            if (p == last || *p++ != ',') {
                return NGX_DECLINED;
            }
        }

        if ((size_t) (last - p) < names[i].len + 1
            || ngx_strncmp(p, names[i].data, names[i].len) != 0
            || p[names[i].len] != '=')
        {
            return NGX_DECLINED;
        }

        p += names[i].len + 1;

        p = ngx_http_retarget_weight_parse(p, last, &w[i]);

        if (p == NULL || w[i] + 1 < floor) {
            return NGX_DECLINED;
        }

        sum += w[i];
    }

    if (p != last || sum + n < NGX_HTTP_RETARGET_WEIGHT_ONE
        || sum > NGX_HTTP_RETARGET_WEIGHT_ONE + n || sum == 0)
    {
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/* "0", "1", "0.7", "0.7012", "1.0000": at most 1, in ten-thousandths */

static u_char *
ngx_http_retarget_weight_parse(u_char *p, u_char *last, ngx_uint_t *w)
{
    ngx_uint_t  v, scale;

    if (p == last || (*p != '0' && *p != '1')) {
        return NULL;
    }

    v = (ngx_uint_t) (*p++ - '0') * NGX_HTTP_RETARGET_WEIGHT_ONE;

    if (p < last && *p == '.') {
        p++;
        scale = NGX_HTTP_RETARGET_WEIGHT_ONE / 10;

        if (p == last || *p < '0' || *p > '9') {
            return NULL;
        }

        while (p < last && *p >= '0' && *p <= '9') {
            if (scale == 0) {
                /* a fifth decimal: not what any nginx writes */
                return NULL;
            }

            v += (ngx_uint_t) (*p++ - '0') * scale;
            scale /= 10;
        }
    }

    if (v > NGX_HTTP_RETARGET_WEIGHT_ONE) {
        return NULL;
    }

    *w = v;

    return p;
}


/*
 * w_i = floor + (1 - n x floor) x p_best_i, in ten-thousandths summing
 * to exactly one: the share above the floors goes by the largest
 * remainder.  Probabilities that are not (NaN, negative, all zero) share
 * it equally.
 */

void
ngx_http_retarget_weights_from_best(double *p_best, ngx_uint_t n,
    ngx_uint_t floor, ngx_uint_t *w)
{
    double      sum, share, rest[NGX_HTTP_RETARGET_OPTIMIZE_ARMS], x;
    ngx_uint_t  i, j, given, free_units;

    if (n == 0 || n > NGX_HTTP_RETARGET_OPTIMIZE_ARMS) {
        return;
    }

    if (floor * n > NGX_HTTP_RETARGET_WEIGHT_ONE) {
        floor = NGX_HTTP_RETARGET_WEIGHT_ONE / n;
    }

    free_units = NGX_HTTP_RETARGET_WEIGHT_ONE - floor * n;

    sum = 0;

    for (i = 0; i < n; i++) {
        if (!(p_best[i] >= 0 && p_best[i] <= 1)) {
            sum = 0;
            break;
        }

        sum += p_best[i];
    }

    given = 0;

    for (i = 0; i < n; i++) {
        share = (sum > 0) ? p_best[i] / sum : 1.0 / (double) n;
        x = share * (double) free_units;

        if (x > (double) free_units) {
            x = (double) free_units;
        }

        w[i] = floor + (ngx_uint_t) x;
        rest[i] = x - (double) (ngx_uint_t) x;
        given += (ngx_uint_t) x;
    }

    /* the units the flooring left, one each to the largest remainders */

    while (given < free_units) {
        j = 0;

        for (i = 1; i < n; i++) {
            if (rest[i] > rest[j]) {
                j = i;
            }
        }

        w[j]++;
        rest[j] = -1;
        given++;
    }
}
