/* A benchmark's steady-state rate: the main thread reads the workers' running count every 100 us and
 * closes a window once WINDOW seconds and at least STEADY_MIN_EVENTS events have passed (so that a
 * window's count is not too small to compare: 1,000 events vary by ~3% by chance alone); after the
 * first window (warm-up) it stops as soon as the last
 * three windows' rates lie within TOL of their mean (converged), or at MAX seconds (unsettled). The
 * rate is the mean of those last three windows (of all but the first if there are fewer), the spread
 * their (max - min) / mean. steady_print writes the windows and the result:
 *   window I RATE        (one line per window, per second)
 *   steady RATE spread PCT% windows N converged|unsettled */
#ifndef STEADY_H
#define STEADY_H
#include <stdio.h>
#include <time.h>

#define STEADY_MAX_WINDOWS 4096
#define STEADY_LAST 3
#define STEADY_MIN_EVENTS 1000

struct steady {
    double rate, spread, elapsed;
    int windows, converged;
    double window_rate[STEADY_MAX_WINDOWS];
};

static double steady_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The mean and spread of rates[from .. to). */
static void steady_stats(const double *rates, int from, int to, double *mean, double *spread)
{
    double sum = 0, lo = 1e300, hi = 0;
    for (int i = from; i < to; i++) {
        sum += rates[i];
        if (rates[i] < lo)
            lo = rates[i];
        if (rates[i] > hi)
            hi = rates[i];
    }
    *mean = to > from ? sum / (to - from) : 0;
    *spread = *mean > 0 ? (hi - lo) / *mean : 0;
}

/* Measure count() (the workers' total so far) until it settles; t0 and c0: the start. */
static void steady_measure(struct steady *s, long (*count)(void), double t0, double window, double max,
                           double tol)
{
    double tw = t0;
    long cw = count();
    s->windows = 0;
    s->converged = 0;
    for (;;) {
        struct timespec ts = {0, 100000};
        nanosleep(&ts, NULL);
        double t = steady_now();
        if (t - tw < window)
            continue;
        long c = count();
        if (c - cw < STEADY_MIN_EVENTS && t - t0 < max)
            continue;
        s->window_rate[s->windows++] = (c - cw) / (t - tw);
        cw = c;
        tw = t;
        int n = s->windows;
        if (n > STEADY_LAST) {
            steady_stats(s->window_rate, n - STEADY_LAST, n, &s->rate, &s->spread);
            if (s->spread <= tol) {
                s->converged = 1;
                return;
            }
        } else {
            steady_stats(s->window_rate, n > 1 ? 1 : 0, n, &s->rate, &s->spread);
        }
        if (t - t0 >= max || n == STEADY_MAX_WINDOWS)
            return;
    }
}

static void steady_print(const struct steady *s)
{
    for (int i = 0; i < s->windows; i++)
        printf("window %d %.0f\n", i, s->window_rate[i]);
    printf("steady %.0f spread %.1f%% windows %d %s\n", s->rate, 100 * s->spread, s->windows,
           s->converged ? "converged" : "unsettled");
}
/* From now until count() settles (window > 0), or for duration seconds; then *stop = 1 for the workers.
   s->elapsed: the time from the start to the stop. */
static inline void steady_run(struct steady *s, long (*count)(void), volatile int *stop, double window, double duration,
                              double tol)
{
    double t0 = steady_now();
    if (window > 0) {
        steady_measure(s, count, t0, window, duration, tol);
    } else {
        while (steady_now() - t0 < duration) {
            struct timespec ts = {0, 100000};
            nanosleep(&ts, NULL);
        }
    }
    *stop = 1;
    s->elapsed = steady_now() - t0;
}

/* The windows and the steady line (window > 0), then the rate: the steady one, or total over the run. */
static inline void steady_report(const struct steady *s, double window, long total)
{
    if (window > 0)
        steady_print(s);
    printf("%ld ops/s\n", window > 0 ? (long)s->rate : (long)(total / s->elapsed));
}
#endif
