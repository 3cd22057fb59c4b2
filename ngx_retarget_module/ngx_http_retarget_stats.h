
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * The statistics of the campaign results: 95 % intervals of rates, means
 * and counts per visitor, the always-valid lift of a variant against the
 * holdout, the sample-ratio-mismatch check, the days still needed, and
 * the Thompson sampling of the optimizer.  Pure C99 and <math.h>: no
 * nginx header, no allocation, no global state, so that t/stats/driver.c
 * links it alone.  Every function takes any double (0, negative, NaN,
 * inf, huge) and answers valid = 0 or a finite, conservative value.
 */


#ifndef _NGX_HTTP_RETARGET_STATS_H_INCLUDED_
#define _NGX_HTTP_RETARGET_STATS_H_INCLUDED_


#include <stdint.h>


/* no verdict while an arm has fewer eligible visitors ("not enough data") */
#define NGX_HTTP_RETARGET_STATS_MIN_ARM     150
/* the sample-ratio check speaks once every arm has this many, at this p */
#define NGX_HTTP_RETARGET_STATS_SRM_MIN     8
#define NGX_HTTP_RETARGET_STATS_SRM_P       0.001
/* days_needed looks this far ahead at most */
#define NGX_HTTP_RETARGET_STATS_MAX_DAYS    365
/* Thompson sampling draws at most this many times per call */
#define NGX_HTTP_RETARGET_STATS_MAX_DRAWS   100000


typedef struct { double est, lo, hi; int valid; } ngx_http_retarget_interval_t;


/* 95 % Wilson score interval of k successes in n (rates: click, conversion) */
void ngx_http_retarget_stats_rate(double k, double n,
    ngx_http_retarget_interval_t *out);
/* 95 % interval of a mean per unit from a sum and sum of squares over n units
   (revenue per eligible visitor: n = eligible, units without a purchase
   count 0) */
void ngx_http_retarget_stats_mean(double sum, double sumsq, double n,
    ngx_http_retarget_interval_t *out);
/* 95 % interval of count/n for a Poisson count (impressions per visitor) */
void ngx_http_retarget_stats_per_unit(double count, double n,
    ngx_http_retarget_interval_t *out);
/* always-valid 95 % intervals (mSPRT, normal mixture) of b against a:
   absolute difference of rates and relative lift (b - a) / a
   (a is the baseline: the holdout, or the other variant; rel is invalid
   while a's rate cannot be told from 0, and excludes 0 exactly when diff
   does; neither is a verdict below NGX_HTTP_RETARGET_STATS_MIN_ARM) */
void ngx_http_retarget_stats_lift(double ka, double na, double kb, double nb,
    ngx_http_retarget_interval_t *diff, ngx_http_retarget_interval_t *rel);
/* sample-ratio mismatch: p-value of the observed arm sizes against the
   weights
   (weights in any unit, arms of weight 0 left out; 1 when there is
   nothing to compare; flag it below NGX_HTTP_RETARGET_STATS_SRM_P once
   every arm has NGX_HTTP_RETARGET_STATS_SRM_MIN) */
double ngx_http_retarget_stats_srm(const double *observed,
    const double *weights, unsigned arms);
double ngx_http_retarget_stats_chi2_sf(double x, double df);
/* more days at the daily rates ra, rb until the diff interval is narrow
   enough to decide; 0 if decided already, -1 if more than 365 days or no
   traffic */
double ngx_http_retarget_stats_days_needed(double ka, double na, double kb,
    double nb, double ra, double rb);
/* Thompson sampling: probability that each arm has the best conversion
   rate, from Beta(1 + k, 1 + n - k), `draws` deterministic draws from
   `seed`
   (draws capped at NGX_HTTP_RETARGET_STATS_MAX_DRAWS; 10,000 draws of 2
   arms take about 3 ms, 100,000 of 10 arms 0.12 s) */
void ngx_http_retarget_stats_thompson(const double *k, const double *n,
    unsigned arms, uint64_t seed, unsigned draws, double *p_best);


#endif /* _NGX_HTTP_RETARGET_STATS_H_INCLUDED_ */
