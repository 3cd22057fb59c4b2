
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * The statistics of the campaign results (README, "Reading the results").
 *
 * The lift is an always-valid interval: the mixture sequential probability
 * ratio test (mSPRT) with a normal mixing distribution of Johari, Pekelis
 * and Walsh, "Always valid inference" (2017), on the normal approximation
 * of the difference of two rates.  Its 95 % interval keeps its coverage
 * however often it is looked at, which a shop owner opening the report
 * every morning needs: a fixed-horizon interval looked at daily for a
 * month declares a winner in two to four A/A tests in ten, this one in
 * one to three in a hundred (t/121-stats.t measures both).
 *
 * Counters come from Redis, which anyone with access to it may have
 * written: every function checks its arguments and answers valid = 0 (or
 * a p-value of 1, "no evidence") rather than divide by zero or return a
 * NaN, and every loop has a bound.
 */


#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "ngx_http_retarget_stats.h"


/* the 0.975 quantile of the standard normal: 95 % two-sided */
#define NGX_HTTP_RETARGET_STATS_Z         1.959963984540054

/* C99 has no M_PI */
#define NGX_HTTP_RETARGET_STATS_PI        3.14159265358979323846
#define NGX_HTTP_RETARGET_STATS_SQRT2     1.41421356237309504880

/* the error rate of the always-valid intervals */
#define NGX_HTTP_RETARGET_STATS_ALPHA     0.05

/*
 * The mixing distribution's standard deviation: a lift of about a quarter
 * of the base rate is what the test is tuned to find fastest (a retargeting
 * reminder that moves conversion by 25 % is a large effect; smaller ones
 * are still found, later).
 */
#define NGX_HTTP_RETARGET_STATS_TAU       0.25

/* the floor of the pooled rate in the diff's mixing variance */
#define NGX_HTTP_RETARGET_STATS_PBAR_MIN  1e-6

/* the standard error of Redis' HyperLogLog (PFCOUNT), 0.81 % */
#define NGX_HTTP_RETARGET_STATS_HLL_ERR   0.0081

/* the relative lift's search: doublings of the first step, bisections */
#define NGX_HTTP_RETARGET_STATS_RATIO_STEPS     60
#define NGX_HTTP_RETARGET_STATS_BISECT_STEPS    200

/* chi2_sf: iteration bound and the degrees of freedom computed exactly */
#define NGX_HTTP_RETARGET_STATS_GAMMA_MAX_ITER  5000
#define NGX_HTTP_RETARGET_STATS_GAMMA_EPS       1e-16
#define NGX_HTTP_RETARGET_STATS_GAMMA_TINY      1e-300
#define NGX_HTTP_RETARGET_STATS_DF_EXACT        1e5

/* Thompson sampling: counts are capped to keep the Gamma shapes sane */
#define NGX_HTTP_RETARGET_STATS_COUNT_MAX       1e12
#define NGX_HTTP_RETARGET_STATS_REJECT_MAX      64


typedef struct {
    uint64_t  s[4];
} ngx_http_retarget_stats_rng_t;

/* the two rates, their variances and the mixing variance of a lift */
typedef struct {
    double    pa;
    double    pb;
    double    va;
    double    vb;
    double    t2;
} ngx_http_retarget_stats_ratio_t;


static int ngx_http_retarget_stats_arm_ok(double k, double n);
static void ngx_http_retarget_stats_invalid(ngx_http_retarget_interval_t *out);
static void ngx_http_retarget_stats_check(ngx_http_retarget_interval_t *out);
static double ngx_http_retarget_stats_var(double k, double n);
static double ngx_http_retarget_stats_halfwidth(double v, double t2);
static double ngx_http_retarget_stats_pbar(double ka, double na, double kb,
    double nb);
static void ngx_http_retarget_stats_ratio(ngx_http_retarget_stats_ratio_t *r,
    ngx_http_retarget_interval_t *rel);
static int ngx_http_retarget_stats_rejects(ngx_http_retarget_stats_ratio_t *r,
    double l0);
static double ngx_http_retarget_stats_boundary(
    ngx_http_retarget_stats_ratio_t *r, double in, double out);
static double ngx_http_retarget_stats_lgamma(double x);
static double ngx_http_retarget_stats_gamma_p_series(double a, double x);
static double ngx_http_retarget_stats_gamma_q_fraction(double a, double x);
static uint64_t ngx_http_retarget_stats_splitmix(uint64_t *state);
static void ngx_http_retarget_stats_rng_seed(ngx_http_retarget_stats_rng_t *rng,
    uint64_t seed);
static uint64_t ngx_http_retarget_stats_rng_next(
    ngx_http_retarget_stats_rng_t *rng);
static double ngx_http_retarget_stats_uniform(
    ngx_http_retarget_stats_rng_t *rng);
static double ngx_http_retarget_stats_normal(
    ngx_http_retarget_stats_rng_t *rng);
static double ngx_http_retarget_stats_gamma(ngx_http_retarget_stats_rng_t *rng,
    double a);
static double ngx_http_retarget_stats_beta(ngx_http_retarget_stats_rng_t *rng,
    double a, double b);
static double ngx_http_retarget_stats_count(double v);


/* k successes out of n: finite, 0 <= k <= n, n > 0 */

static int
ngx_http_retarget_stats_arm_ok(double k, double n)
{
    return isfinite(k) && isfinite(n) && n > 0 && k >= 0 && k <= n;
}


static void
ngx_http_retarget_stats_invalid(ngx_http_retarget_interval_t *out)
{
    out->est = 0;
    out->lo = 0;
    out->hi = 0;
    out->valid = 0;
}


/* an interval whose arithmetic overflowed (huge counters) is no interval */

static void
ngx_http_retarget_stats_check(ngx_http_retarget_interval_t *out)
{
    if (!isfinite(out->est) || !isfinite(out->lo) || !isfinite(out->hi)
        || out->lo > out->hi)
    {
        ngx_http_retarget_stats_invalid(out);
    }
}


void
ngx_http_retarget_stats_rate(double k, double n,
    ngx_http_retarget_interval_t *out)
{
    double  z2, p, centre, half;

    if (!ngx_http_retarget_stats_arm_ok(k, n)) {
        ngx_http_retarget_stats_invalid(out);
        return;
    }

    z2 = NGX_HTTP_RETARGET_STATS_Z * NGX_HTTP_RETARGET_STATS_Z;
    p = k / n;

    /* k (n - k) / n written so that a huge n does not overflow */
    centre = (k + z2 / 2) / (n + z2);
    half = NGX_HTTP_RETARGET_STATS_Z * sqrt(k * (1 - p) + z2 / 4) / (n + z2);

    /* the interval holds p: rounding must not put p outside at k = n */
    out->est = p;
    out->lo = fmin(p, fmax(0, centre - half));
    out->hi = fmax(p, fmin(1, centre + half));
    out->valid = 1;

    ngx_http_retarget_stats_check(out);
}


/*
 * The normal interval of a mean from its sum and sum of squares, with the
 * sample variance; the lower end is not below 0, since the units (amounts
 * paid) are not negative.
 */

void
ngx_http_retarget_stats_mean(double sum, double sumsq, double n,
    ngx_http_retarget_interval_t *out)
{
    double  mean, var, se;

    if (!isfinite(sum) || !isfinite(sumsq) || !isfinite(n)
        || n < 2 || sum < 0 || sumsq < 0)
    {
        ngx_http_retarget_stats_invalid(out);
        return;
    }

    mean = sum / n;

    /* rounded squares can make it slightly negative: none is 0 */
    var = fmax(0, (sumsq - sum * mean) / (n - 1));
    se = sqrt(var / n);

    out->est = mean;
    out->lo = fmax(0, mean - NGX_HTTP_RETARGET_STATS_Z * se);
    out->hi = mean + NGX_HTTP_RETARGET_STATS_Z * se;
    out->valid = 1;

    ngx_http_retarget_stats_check(out);
}


/*
 * The score interval of a Poisson count c, the solutions of
 * (c - m)^2 / m = z^2, divided by n: defined at c = 0 too (0 .. z^2 / n).
 */

void
ngx_http_retarget_stats_per_unit(double count, double n,
    ngx_http_retarget_interval_t *out)
{
    double  z2, half;

    if (!isfinite(count) || !isfinite(n) || n <= 0 || count < 0) {
        ngx_http_retarget_stats_invalid(out);
        return;
    }

    z2 = NGX_HTTP_RETARGET_STATS_Z * NGX_HTTP_RETARGET_STATS_Z;
    half = NGX_HTTP_RETARGET_STATS_Z * sqrt(count + z2 / 4);

    out->est = count / n;
    out->lo = fmax(0, (count + z2 / 2 - half) / n);
    out->hi = (count + z2 / 2 + half) / n;
    out->valid = 1;

    ngx_http_retarget_stats_check(out);
}


/*
 * The variance of a rate's estimate with (k + 0.5) / (n + 1) in place of
 * k / n: never 0, so that 0 conversions out of 200 is not a certainty.
 */

static double
ngx_http_retarget_stats_var(double k, double n)
{
    double  p;

    p = (k + 0.5) / (n + 1);

    return p * (1 - p) / n;
}


/*
 * The mSPRT half-width for an estimate of variance v and a normal mixing
 * distribution of variance t2: the values theta0 the test does not reject
 * at level alpha are est +- h with
 *
 *     h^2 = v (v + t2) / t2 (ln((v + t2) / v) + 2 ln(1 / alpha)).
 *
 * Negative when there is none (v or t2 not positive, or overflow).
 */

static double
ngx_http_retarget_stats_halfwidth(double v, double t2)
{
    double  h2;

    if (!(v > 0) || !(t2 > 0) || !isfinite(v) || !isfinite(t2)) {
        return -1;
    }

    h2 = v * (v + t2) / t2
         * (log((v + t2) / v) + 2 * log(1 / NGX_HTTP_RETARGET_STATS_ALPHA));

    if (!isfinite(h2) || h2 < 0) {
        return -1;
    }

    return sqrt(h2);
}


static double
ngx_http_retarget_stats_pbar(double ka, double na, double kb, double nb)
{
    double  pbar;

    pbar = (ka + kb) / (na + nb);

    if (!(pbar >= NGX_HTTP_RETARGET_STATS_PBAR_MIN)) {
        pbar = NGX_HTTP_RETARGET_STATS_PBAR_MIN;
    }

    return pbar;
}


void
ngx_http_retarget_stats_lift(double ka, double na, double kb, double nb,
    ngx_http_retarget_interval_t *diff, ngx_http_retarget_interval_t *rel)
{
    double                           pa, pb, va, vb, pbar, t2, h;
    ngx_http_retarget_stats_ratio_t  r;

    ngx_http_retarget_stats_invalid(diff);
    ngx_http_retarget_stats_invalid(rel);

    if (!ngx_http_retarget_stats_arm_ok(ka, na)
        || !ngx_http_retarget_stats_arm_ok(kb, nb))
    {
        return;
    }

    pa = ka / na;
    pb = kb / nb;
    va = ngx_http_retarget_stats_var(ka, na);
    vb = ngx_http_retarget_stats_var(kb, nb);

    /* the difference, mixing sd a quarter of the pooled rate */

    pbar = ngx_http_retarget_stats_pbar(ka, na, kb, nb);
    t2 = NGX_HTTP_RETARGET_STATS_TAU * pbar;
    t2 *= t2;

    h = ngx_http_retarget_stats_halfwidth(va + vb, t2);

    if (h >= 0) {
        diff->est = pb - pa;
        diff->lo = diff->est - h;
        diff->hi = diff->est + h;
        diff->valid = 1;
        ngx_http_retarget_stats_check(diff);
    }

    /* no base rate, no lift relative to it */

    if (ka <= 0 || h < 0) {
        return;
    }

    r.pa = pa;
    r.pb = pb;
    r.va = va;
    r.vb = vb;
    r.t2 = t2;

    ngx_http_retarget_stats_ratio(&r, rel);
}


/*
 * The relative lift L = (b - a) / a by inverting the same test (Fieller's
 * way): L0 is in the interval when the mSPRT does not reject
 * pb - (1 + L0) pa = 0, whose estimate has the variance
 * vb + (1 + L0)^2 va (scaled: ngx_http_retarget_stats_rejects()).  At
 * L0 = 0 this is the diff's test, so the relative interval excludes 0
 * exactly when the diff's does; and unlike the delta method's symmetric
 * interval it is not too narrow for a lift below 0 (with which 10 % of
 * t/121-stats.t's A/A experiments declared a loser).
 * The ends are the first values rejected going out from the estimate;
 * when a's rate is too uncertain to tell from 0, there is no upper end
 * (none within 2^60 first steps) and the interval is invalid.
 */

static void
ngx_http_retarget_stats_ratio(ngx_http_retarget_stats_ratio_t *r,
    ngx_http_retarget_interval_t *rel)
{
    double    est, step, in, out;
    unsigned  i;

    est = r->pb / r->pa - 1;

    /* the first step: the delta method's standard error */
    step = sqrt(r->vb + r->pb * r->pb / (r->pa * r->pa) * r->va) / r->pa;

    if (!(step > 0) || !isfinite(step) || !isfinite(est)) {
        return;
    }

    /* the upper end */

    in = est;

    for (i = 0; /* void */ ; i++) {
        if (i == NGX_HTTP_RETARGET_STATS_RATIO_STEPS) {
            return;
        }

        out = est + step * ldexp(1, i);

        if (!isfinite(out)) {
            return;
        }

        if (ngx_http_retarget_stats_rejects(r, out)) {
            break;
        }

        in = out;
    }

    rel->hi = ngx_http_retarget_stats_boundary(r, in, out);

    /* the lower end, not below -1 (b converting never) */

    in = est;

    for (i = 0; /* void */ ; i++) {
        out = est - step * ldexp(1, i);

        if (out <= -1 || i == NGX_HTTP_RETARGET_STATS_RATIO_STEPS) {
            out = -1;

            if (!ngx_http_retarget_stats_rejects(r, out)) {
                in = -1;
            }

            break;
        }

        if (ngx_http_retarget_stats_rejects(r, out)) {
            break;
        }

        in = out;
    }

    rel->lo = (in == -1) ? -1 : ngx_http_retarget_stats_boundary(r, in, out);
    rel->est = est;
    rel->valid = 1;

    ngx_http_retarget_stats_check(rel);
}


/*
 * Whether the mSPRT rejects a relative lift l0: the contrast
 * pb - (1 + l0) pa, divided by 1 + l0 when that is above 1, which leaves
 * pb - pa at l0 = 0 and keeps it of the size of a rate for any l0, so
 * that the diff's mixing variance suits it.  Unscaled, its variance grows
 * as (1 + l0)^2 while the mixing stays, and a large enough l0 is never
 * rejected: the interval had no upper end even with a clear lift.  (Each
 * l0 has its own test, so any scale that depends on l0 alone keeps the
 * interval valid; this one gives an upper end soonest: once a's rate is
 * told from 0 by the same test.)
 */

static int
ngx_http_retarget_stats_rejects(ngx_http_retarget_stats_ratio_t *r,
    double l0)
{
    double  m, c, h;

    m = 1 + l0;
    c = (m > 1) ? 1 / m : 1;
    h = ngx_http_retarget_stats_halfwidth(c * c * (r->vb + m * m * r->va),
                                          r->t2);

    /* no half-width (overflow): not rejected */
    return h >= 0 && fabs(c * (r->pb - m * r->pa)) > h;
}


/* bisection between an l0 not rejected and one rejected: the last kept */

static double
ngx_http_retarget_stats_boundary(ngx_http_retarget_stats_ratio_t *r,
    double in, double out)
{
    double    mid;
    unsigned  i;

    for (i = 0; i < NGX_HTTP_RETARGET_STATS_BISECT_STEPS; i++) {
        mid = in + (out - in) / 2;

        if (mid == in || mid == out) {
            break;
        }

        if (ngx_http_retarget_stats_rejects(r, mid)) {
            out = mid;

        } else {
            in = mid;
        }
    }

    return in;
}


/*
 * The chi-square statistic of the arm sizes against their weights, each
 * arm's variance the binomial one plus the HyperLogLog's own error (0.81 %
 * of the count): with a million visitors an arm's PFCOUNT is off by about
 * 8,000, which a plain chi-square would flag as a mismatch on every report.
 * Arms of weight 0 take no part.  1 ("no evidence") when there is nothing
 * to compare or the input is not numbers.
 */

double
ngx_http_retarget_stats_srm(const double *observed, const double *weights,
    unsigned arms)
{
    double    total, wsum, e, den, d, chi2;
    unsigned  i, used;

    if (observed == NULL || weights == NULL || arms < 2) {
        return 1;
    }

    total = 0;
    wsum = 0;
    used = 0;

    for (i = 0; i < arms; i++) {
        if (!isfinite(observed[i]) || !isfinite(weights[i])
            || observed[i] < 0 || weights[i] < 0)
        {
            return 1;
        }

        if (weights[i] > 0) {
            total += observed[i];
            wsum += weights[i];
            used++;
        }
    }

    if (used < 2 || !(total > 0) || !isfinite(total) || !isfinite(wsum)) {
        return 1;
    }

    chi2 = 0;

    for (i = 0; i < arms; i++) {
        if (!(weights[i] > 0)) {
            continue;
        }

        e = total * (weights[i] / wsum);
        den = e + (NGX_HTTP_RETARGET_STATS_HLL_ERR * e)
                  * (NGX_HTTP_RETARGET_STATS_HLL_ERR * e);

        if (!(den > 0)) {
            /* an expectation that underflowed: no information */
            continue;
        }

        d = observed[i] - e;
        chi2 += d * d / den;
    }

    return ngx_http_retarget_stats_chi2_sf(chi2, (double) (used - 1));
}


/* ln Gamma(x) for x > 0: Lanczos (g = 7, 9 terms), about 1e-15 relative */

static double
ngx_http_retarget_stats_lgamma(double x)
{
    double     a, t;
    unsigned   i;

    static const double  c[9] = {
        0.99999999999980993, 676.5203681218851, -1259.1392167224028,
        771.32342877765313, -176.61502916214059, 12.507343278686905,
        -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7
    };

    if (x < 0.5) {
        /* reflection: Gamma(x) Gamma(1 - x) = pi / sin(pi x) */
        return log(NGX_HTTP_RETARGET_STATS_PI
                   / fabs(sin(NGX_HTTP_RETARGET_STATS_PI * x)))
               - ngx_http_retarget_stats_lgamma(1 - x);
    }

    x -= 1;
    a = c[0];

    for (i = 1; i < 9; i++) {
        a += c[i] / (x + i);
    }

    t = x + 7.5;

    return 0.5 * log(2 * NGX_HTTP_RETARGET_STATS_PI) + (x + 0.5) * log(t) - t
           + log(a);
}


/* the regularized lower incomplete gamma P(a, x) by its series, x < a + 1 */

static double
ngx_http_retarget_stats_gamma_p_series(double a, double x)
{
    double    sum, term, ap;
    unsigned  i;

    ap = a;
    term = 1 / a;
    sum = term;

    for (i = 0; i < NGX_HTTP_RETARGET_STATS_GAMMA_MAX_ITER; i++) {
        ap += 1;
        term *= x / ap;
        sum += term;

        if (fabs(term) < fabs(sum) * NGX_HTTP_RETARGET_STATS_GAMMA_EPS) {
            break;
        }
    }

    return sum * exp(-x + a * log(x) - ngx_http_retarget_stats_lgamma(a));
}


/*
 * The regularized upper incomplete gamma Q(a, x) by its continued
 * fraction (modified Lentz), x >= a + 1: accurate deep in the tail, where
 * 1 - P would round to 0.
 */

static double
ngx_http_retarget_stats_gamma_q_fraction(double a, double x)
{
    double    b, c, d, h, an, del;
    unsigned  i;

    b = x + 1 - a;
    c = 1 / NGX_HTTP_RETARGET_STATS_GAMMA_TINY;
    d = 1 / b;
    h = d;

    for (i = 1; i <= NGX_HTTP_RETARGET_STATS_GAMMA_MAX_ITER; i++) {
        an = -(double) i * (i - a);
        b += 2;

        d = an * d + b;
        if (fabs(d) < NGX_HTTP_RETARGET_STATS_GAMMA_TINY) {
            d = NGX_HTTP_RETARGET_STATS_GAMMA_TINY;
        }

        c = b + an / c;
        if (fabs(c) < NGX_HTTP_RETARGET_STATS_GAMMA_TINY) {
            c = NGX_HTTP_RETARGET_STATS_GAMMA_TINY;
        }

        d = 1 / d;
        del = d * c;
        h *= del;

        if (fabs(del - 1) < NGX_HTTP_RETARGET_STATS_GAMMA_EPS) {
            break;
        }
    }

    return exp(-x + a * log(x) - ngx_http_retarget_stats_lgamma(a)) * h;
}


/*
 * P(X > x) for X chi-square with df degrees of freedom: Q(df / 2, x / 2).
 * Beyond 1e5 degrees of freedom (never an experiment's arms - 1) the
 * Wilson-Hilferty cube-root approximation, which needs no iteration.
 * 1 for an x or df that is not a number or not positive.
 */

double
ngx_http_retarget_stats_chi2_sf(double x, double df)
{
    double  a, y, q, s, z;

    if (isnan(x) || !isfinite(df) || !(df > 0) || x <= 0) {
        return 1;
    }

    if (isinf(x)) {
        return 0;
    }

    if (df > NGX_HTTP_RETARGET_STATS_DF_EXACT) {
        s = 2 / (9 * df);
        z = (cbrt(x / df) - (1 - s)) / sqrt(s);
        q = 0.5 * erfc(z / NGX_HTTP_RETARGET_STATS_SQRT2);

    } else {
        a = df / 2;
        y = x / 2;

        if (y < a + 1) {
            q = 1 - ngx_http_retarget_stats_gamma_p_series(a, y);

        } else {
            q = ngx_http_retarget_stats_gamma_q_fraction(a, y);
        }
    }

    if (!(q >= 0)) {
        return 0;
    }

    return q > 1 ? 1 : q;
}


/*
 * The smallest number of further days, 0 to 365, after which the diff's
 * always-valid half-width is below max(|diff|, 0.1 * pooled rate): the
 * interval excludes 0, or it is narrow enough to say the difference is
 * below a tenth of the rate.  The future days come at the daily visitor
 * rates ra, rb and the conversion rates observed so far, and both arms
 * must have reached the 150 of a verdict.
 */

double
ngx_http_retarget_stats_days_needed(double ka, double na, double kb,
    double nb, double ra, double rb)
{
    double    pa, pb, fa, fb, fka, fkb, pbar, t2, h, need;
    unsigned  day;

    if (!ngx_http_retarget_stats_arm_ok(ka, na)
        || !ngx_http_retarget_stats_arm_ok(kb, nb)
        || !isfinite(ra) || !isfinite(rb) || ra < 0 || rb < 0)
    {
        return -1;
    }

    pa = ka / na;
    pb = kb / nb;

    for (day = 0; day <= NGX_HTTP_RETARGET_STATS_MAX_DAYS; day++) {
        fa = na + ra * day;
        fb = nb + rb * day;
        fka = ka + pa * ra * day;
        fkb = kb + pb * rb * day;

        if (fa >= NGX_HTTP_RETARGET_STATS_MIN_ARM
            && fb >= NGX_HTTP_RETARGET_STATS_MIN_ARM)
        {
            pbar = ngx_http_retarget_stats_pbar(fka, fa, fkb, fb);
            t2 = NGX_HTTP_RETARGET_STATS_TAU * pbar;
            t2 *= t2;

            h = ngx_http_retarget_stats_halfwidth(
                    ngx_http_retarget_stats_var(fka, fa)
                    + ngx_http_retarget_stats_var(fkb, fb), t2);

            need = fmax(fabs(pb - pa), 0.1 * pbar);

            if (h >= 0 && h < need) {
                return day;
            }
        }

        if (ra == 0 && rb == 0) {
            /* no traffic: the next day is today */
            return -1;
        }
    }

    return -1;
}


/* Thompson sampling's generator: splitmix64 seeds xoshiro256** */

static uint64_t
ngx_http_retarget_stats_splitmix(uint64_t *state)
{
    uint64_t  z;

    z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;

    return z ^ (z >> 31);
}


static void
ngx_http_retarget_stats_rng_seed(ngx_http_retarget_stats_rng_t *rng,
    uint64_t seed)
{
    unsigned  i;

    for (i = 0; i < 4; i++) {
        rng->s[i] = ngx_http_retarget_stats_splitmix(&seed);
    }
}


#define ngx_http_retarget_stats_rotl(x, k)  (((x) << (k)) | ((x) >> (64 - (k))))

static uint64_t
ngx_http_retarget_stats_rng_next(ngx_http_retarget_stats_rng_t *rng)
{
    uint64_t  result, t;

    result = ngx_http_retarget_stats_rotl(rng->s[1] * 5, 7) * 9;
    t = rng->s[1] << 17;

    rng->s[2] ^= rng->s[0];
    rng->s[3] ^= rng->s[1];
    rng->s[1] ^= rng->s[2];
    rng->s[0] ^= rng->s[3];
    rng->s[2] ^= t;
    rng->s[3] = ngx_http_retarget_stats_rotl(rng->s[3], 45);

    return result;
}


/* uniform in (0, 1), never 0 or 1: the logs below need it */

static double
ngx_http_retarget_stats_uniform(ngx_http_retarget_stats_rng_t *rng)
{
    return ((double) (ngx_http_retarget_stats_rng_next(rng) >> 11) + 0.5)
           * (1.0 / 9007199254740992.0);
}


/* a standard normal, Marsaglia's polar method (accepts pi/4 of the tries) */

static double
ngx_http_retarget_stats_normal(ngx_http_retarget_stats_rng_t *rng)
{
    double    u, v, s;
    unsigned  i;

    for (i = 0; i < NGX_HTTP_RETARGET_STATS_REJECT_MAX; i++) {
        u = 2 * ngx_http_retarget_stats_uniform(rng) - 1;
        v = 2 * ngx_http_retarget_stats_uniform(rng) - 1;
        s = u * u + v * v;

        if (s > 0 && s < 1) {
            return u * sqrt(-2 * log(s) / s);
        }
    }

    /* (1 - pi/4)^64, about 1e-43: the mean */
    return 0;
}


/*
 * Gamma(a, 1): Marsaglia and Tsang's squeeze (accepts over 95 % of the
 * tries for a >= 1); for a < 1, Gamma(a + 1) U^(1/a).
 */

static double
ngx_http_retarget_stats_gamma(ngx_http_retarget_stats_rng_t *rng, double a)
{
    double    d, c, x, v, u;
    unsigned  i;

    if (a < 1) {
        u = ngx_http_retarget_stats_uniform(rng);
        return ngx_http_retarget_stats_gamma(rng, a + 1) * pow(u, 1 / a);
    }

    d = a - 1.0 / 3;
    c = 1 / sqrt(9 * d);

    for (i = 0; i < NGX_HTTP_RETARGET_STATS_REJECT_MAX; i++) {
        x = ngx_http_retarget_stats_normal(rng);
        v = 1 + c * x;

        if (v <= 0) {
            continue;
        }

        v = v * v * v;
        u = ngx_http_retarget_stats_uniform(rng);

        if (u < 1 - 0.0331 * (x * x) * (x * x)
            || log(u) < 0.5 * x * x + d * (1 - v + log(v)))
        {
            return d * v;
        }
    }

    /* not reached in practice: about the mean */
    return d;
}


static double
ngx_http_retarget_stats_beta(ngx_http_retarget_stats_rng_t *rng, double a,
    double b)
{
    double  x, y;

    x = ngx_http_retarget_stats_gamma(rng, a);
    y = ngx_http_retarget_stats_gamma(rng, b);

    if (!(x + y > 0)) {
        return 0.5;
    }

    return x / (x + y);
}


/* a count from Redis as a Gamma shape's part: a number in 0 .. 1e12 */

static double
ngx_http_retarget_stats_count(double v)
{
    if (!(v > 0)) {
        return 0;                                   /* also NaN */
    }

    return v > NGX_HTTP_RETARGET_STATS_COUNT_MAX
           ? NGX_HTTP_RETARGET_STATS_COUNT_MAX : v;
}


/*
 * Each draw takes one conversion rate per arm from its Beta posterior
 * (uniform prior) and credits the arm whose rate is highest; ties (equal
 * doubles, only with huge counts) go to one of the tied arms at random,
 * so that equal arms stay equal.  The generator is seeded here, from
 * seed alone: every nginx computing it from the same counters and seed
 * gets the same weights.
 */

void
ngx_http_retarget_stats_thompson(const double *k, const double *n,
    unsigned arms, uint64_t seed, unsigned draws, double *p_best)
{
    double                         x, best, ki, ni;
    unsigned                       i, j, besti, ties;
    ngx_http_retarget_stats_rng_t  rng;

    if (p_best == NULL || arms == 0) {
        return;
    }

    if (k == NULL || n == NULL || draws == 0) {
        for (i = 0; i < arms; i++) {
            p_best[i] = 1.0 / arms;
        }

        return;
    }

    if (draws > NGX_HTTP_RETARGET_STATS_MAX_DRAWS) {
        draws = NGX_HTTP_RETARGET_STATS_MAX_DRAWS;
    }

    for (i = 0; i < arms; i++) {
        p_best[i] = 0;
    }

    ngx_http_retarget_stats_rng_seed(&rng, seed);

    for (j = 0; j < draws; j++) {
        best = -1;
        besti = 0;
        ties = 0;

        for (i = 0; i < arms; i++) {
            ni = ngx_http_retarget_stats_count(n[i]);
            ki = fmin(ngx_http_retarget_stats_count(k[i]), ni);

            x = ngx_http_retarget_stats_beta(&rng, 1 + ki, 1 + ni - ki);

            if (x > best) {
                best = x;
                besti = i;
                ties = 1;

            } else if (x == best) {
                /* reservoir choice: each of the tied arms with 1 / ties */
                ties++;

                if (ngx_http_retarget_stats_uniform(&rng) * ties < 1) {
                    besti = i;
                }
            }
        }

        p_best[besti] += 1;
    }

    for (i = 0; i < arms; i++) {
        p_best[i] /= draws;
    }
}
