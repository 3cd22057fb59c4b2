
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * t/121-stats.t's way into ngx_http_retarget_stats.c: one command a line
 * on stdin, one line of results on stdout, so that Perl calls each
 * function thousands of times in one process.  Numbers are read with
 * strtod ("nan", "inf" and "1e308" included) and printed with %.17g.
 *
 *     rate K N                     est lo hi valid
 *     mean SUM SUMSQ N             est lo hi valid
 *     unit COUNT N                 est lo hi valid
 *     lift KA NA KB NB             diff: est lo hi valid, rel: est lo hi valid
 *     srm ARMS O1 .. On W1 .. Wn   p
 *     chi2 X DF                    p
 *     days KA NA KB NB RA RB       days
 *     thompson ARMS SEED DRAWS K1 N1 .. Kn Nn    p1 .. pn
 *
 * A line it cannot read prints "error".
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <inttypes.h>

#include "ngx_http_retarget_stats.h"


#define DRIVER_MAX_ARMS  80
#define DRIVER_MAX_ARGS  (2 * DRIVER_MAX_ARMS + 3)


static int
driver_numbers(char *p, double *v, int max)
{
    int    n;
    char  *end;

    for (n = 0; n < max; n++) {
        while (*p == ' ' || *p == '\t') {
            p++;
        }

        if (*p == '\0' || *p == '\n') {
            break;
        }

        v[n] = strtod(p, &end);

        if (end == p) {
            return -1;
        }

        p = end;
    }

    return n;
}


static void
driver_interval(const ngx_http_retarget_interval_t *i)
{
    printf("%.17g %.17g %.17g %d", i->est, i->lo, i->hi, i->valid);
}


int
main(void)
{
    int                           n, i;
    char                          line[8192], *args;
    double                        v[DRIVER_MAX_ARGS], k[DRIVER_MAX_ARMS],
                                  t[DRIVER_MAX_ARMS], p[DRIVER_MAX_ARMS];
    unsigned                      arms;
    ngx_http_retarget_interval_t  a, b;

    while (fgets(line, sizeof(line), stdin) != NULL) {
        args = strchr(line, ' ');
        n = 0;

        if (args != NULL) {
            *args++ = '\0';
            n = driver_numbers(args, v, DRIVER_MAX_ARGS);

        } else {
            line[strcspn(line, "\n")] = '\0';
        }

        if (n < 0) {
            printf("error\n");
            continue;
        }

        if (strcmp(line, "rate") == 0 && n == 2) {
            ngx_http_retarget_stats_rate(v[0], v[1], &a);
            driver_interval(&a);

        } else if (strcmp(line, "mean") == 0 && n == 3) {
            ngx_http_retarget_stats_mean(v[0], v[1], v[2], &a);
            driver_interval(&a);

        } else if (strcmp(line, "unit") == 0 && n == 2) {
            ngx_http_retarget_stats_per_unit(v[0], v[1], &a);
            driver_interval(&a);

        } else if (strcmp(line, "lift") == 0 && n == 4) {
            ngx_http_retarget_stats_lift(v[0], v[1], v[2], v[3], &a, &b);
            driver_interval(&a);
            printf(" ");
            driver_interval(&b);

        } else if (strcmp(line, "srm") == 0 && n >= 1
                   && v[0] >= 0 && v[0] <= DRIVER_MAX_ARMS
                   && n == 1 + 2 * (int) v[0])
        {
            arms = (unsigned) v[0];
            printf("%.17g", ngx_http_retarget_stats_srm(&v[1], &v[1 + arms],
                                                        arms));

        } else if (strcmp(line, "chi2") == 0 && n == 2) {
            printf("%.17g", ngx_http_retarget_stats_chi2_sf(v[0], v[1]));

        } else if (strcmp(line, "days") == 0 && n == 6) {
            printf("%.17g", ngx_http_retarget_stats_days_needed(v[0], v[1],
                                                                v[2], v[3],
                                                                v[4], v[5]));

        } else if (strcmp(line, "thompson") == 0 && n >= 3
                   && v[0] >= 1 && v[0] <= DRIVER_MAX_ARMS
                   && v[1] >= 0 && v[1] < 18446744073709551616.0
                   && v[2] >= 0 && v[2] <= 4294967295.0
                   && n == 3 + 2 * (int) v[0])
        {
            arms = (unsigned) v[0];

            for (i = 0; i < (int) arms; i++) {
                k[i] = v[3 + 2 * i];
                t[i] = v[4 + 2 * i];
            }

            /* the seed as an integer: doubles hold 2^53 exactly */
            ngx_http_retarget_stats_thompson(k, t, arms, (uint64_t) v[1],
                                             (unsigned) v[2], p);

            for (i = 0; i < (int) arms; i++) {
                printf(i ? " %.17g" : "%.17g", p[i]);
            }

        } else {
            printf("error");
        }

        printf("\n");
    }

    return 0;
}
