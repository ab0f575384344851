/*
 * The look-ahead terrain profile: see altfilter.h. C99, no allocation, no I/O, no recursion,
 * no loop but next_known's bounded scan; + - * / only (floor for the cell index), so bit-identical
 * across architectures.
 */
#include "altfilter.h"

#include <math.h>
#include <string.h>

#define MAX_ABS_X_M 1.0e9
#define MAX_ABS_ELEVATION_M 1.0e6
#define MAX_VARIANCE_M2 1.0e12

static int finite(double x) { return isfinite(x) != 0; }

static int64_t cell_index(const alt_profile *p, double x_m)
{
    return (int64_t)floor(x_m / p->cell_m);
}

/* The slot of the ring that holds cell index k (k may be negative). */
static alt_cell *slot(alt_profile *p, int64_t k)
{
    int64_t i = k % ALT_PROFILE_CELLS;
    return &p->cell[i < 0 ? i + ALT_PROFILE_CELLS : i];
}

static int in_window(const alt_profile *p, int64_t k)
{
    return k >= p->origin - p->behind && k < p->origin - p->behind + ALT_PROFILE_CELLS;
}

int32_t alt_profile_init(alt_profile *p, double cell_m, double gate_sigma, int32_t replace_after,
                         int32_t behind)
{
    if (p == NULL || !finite(cell_m) || cell_m <= 0.0 || cell_m > 1.0e5 || !finite(gate_sigma) ||
        cell_m < 1.0e-3 || gate_sigma <= 0.0 || gate_sigma > 100.0 || replace_after < 1 || replace_after > 100 ||
        behind < 0 || behind >= ALT_PROFILE_CELLS) {
        return ALT_PROFILE_INVALID;
    }
    memset(p, 0, sizeof *p);
    p->cell_m = cell_m;
    p->gate_sigma = gate_sigma;
    p->replace_after = replace_after;
    p->behind = behind;
    p->origin = 0;
    return 0;
}

int32_t alt_profile_move(alt_profile *p, double x_m)
{
    if (p == NULL || !finite(x_m) || fabs(x_m) > MAX_ABS_X_M) {
        return ALT_PROFILE_INVALID;
    }
    p->origin = cell_index(p, x_m);
    return 0;
}

static void start(alt_cell *c, int64_t k, double z, double var, double common, double t, int32_t source)
{
    c->index = k;
    c->source = source;
    c->candidates = 0;
    c->elevation_m = z;
    c->variance_m2 = var;
    c->common_m2 = common;
    c->time_s = t;
    c->candidate_mean_m = 0.0;
    c->candidate_var_m2 = 0.0;
}

int32_t alt_profile_shift(alt_profile *p, double dz_m)
{
    if (p == NULL || !finite(dz_m) || fabs(dz_m) > MAX_ABS_ELEVATION_M || !finite(p->offset_m + dz_m)) {
        return ALT_PROFILE_INVALID;
    }
    p->offset_m += dz_m;
    return 0;
}

int32_t alt_profile_observe(alt_profile *p, double x_m, double elevation_m, double variance_m2,
                            double common_m2, double time_s, int32_t source)
{
    if (p == NULL || !finite(x_m) || fabs(x_m) > MAX_ABS_X_M || !finite(elevation_m) ||
        fabs(elevation_m) > MAX_ABS_ELEVATION_M || !finite(variance_m2) || variance_m2 <= 0.0 ||
        variance_m2 > MAX_VARIANCE_M2 || !finite(common_m2) || common_m2 < 0.0 || common_m2 > variance_m2 ||
        !finite(time_s) ||
        (source != ALT_CELL_BEAM && source != ALT_CELL_MAP)) {
        return ALT_PROFILE_INVALID;
    }
    const int64_t k = cell_index(p, x_m);
    if (!in_window(p, k)) {
        return ALT_PROFILE_OUTSIDE;
    }
    /* stored relative to the frame's offset (a map sample is absolute, but so is the frame) */
    elevation_m -= p->offset_m;
    alt_cell *c = slot(p, k);
    if (c->index != k || c->source == ALT_CELL_EMPTY) {
        start(c, k, elevation_m, variance_m2, common_m2, time_s, source);
        return ALT_PROFILE_NEW;
    }
    if (source == ALT_CELL_MAP) {
        if (c->source != ALT_CELL_MAP) {
            return ALT_PROFILE_HELD; /* the beam has seen this cell: the map does not overwrite it */
        }
        start(c, k, elevation_m, variance_m2, common_m2, time_s, source);
        return ALT_PROFILE_REPLACED;
    }
    const double gate2 = p->gate_sigma * p->gate_sigma;
    const double y = elevation_m - c->elevation_m;
    const double s = c->variance_m2 + variance_m2;
    if (y * y <= gate2 * s) {
        const double k_gain = c->variance_m2 / s;
        const double floor_m2 = common_m2 < c->common_m2 ? common_m2 : c->common_m2;
        const double fused = (1.0 - k_gain) * c->variance_m2;
        c->elevation_m += k_gain * y;
        c->variance_m2 = fused > floor_m2 ? fused : floor_m2;
        c->common_m2 = floor_m2;
        c->time_s = time_s;
        c->source = ALT_CELL_BEAM;
        c->candidates = 0;
        return ALT_PROFILE_FUSED;
    }
    /* Disagrees with the cell: hold it; enough that agree among themselves replace the cell. */
    const double d = elevation_m - c->candidate_mean_m;
    if (c->candidates == 0 || d * d > gate2 * (variance_m2 + c->candidate_var_m2)) {
        c->candidates = 1;
        c->candidate_mean_m = elevation_m;
        c->candidate_var_m2 = variance_m2;
    } else {
        c->candidates += 1;
        c->candidate_mean_m += d / (double)c->candidates;
        c->candidate_var_m2 = variance_m2 > c->candidate_var_m2 ? variance_m2 : c->candidate_var_m2;
    }
    if (c->candidates < p->replace_after) {
        return ALT_PROFILE_HELD;
    }
    start(c, k, c->candidate_mean_m, c->candidate_var_m2, common_m2, time_s, ALT_CELL_BEAM);
    return ALT_PROFILE_REPLACED;
}

int32_t alt_profile_lookup(const alt_profile *p, double x_m, double *elevation_m, double *variance_m2,
                           double *time_s)
{
    if (p == NULL || !finite(x_m) || fabs(x_m) > MAX_ABS_X_M) {
        return ALT_CELL_EMPTY;
    }
    const int64_t k = cell_index(p, x_m);
    if (!in_window(p, k)) {
        return ALT_CELL_EMPTY;
    }
    const int64_t i = k % ALT_PROFILE_CELLS;
    const alt_cell *c = &p->cell[i < 0 ? i + ALT_PROFILE_CELLS : i];
    if (c->index != k || c->source == ALT_CELL_EMPTY) {
        return ALT_CELL_EMPTY;
    }
    if (elevation_m != NULL) {
        *elevation_m = c->elevation_m + p->offset_m;
    }
    if (variance_m2 != NULL) {
        *variance_m2 = c->variance_m2;
    }
    if (time_s != NULL) {
        *time_s = c->time_s;
    }
    return c->source;
}

int32_t alt_profile_interpolate(const alt_profile *p, double x_m, double *elevation_m, double *variance_m2)
{
    if (p == NULL || !finite(x_m) || fabs(x_m) > MAX_ABS_X_M) {
        return ALT_CELL_EMPTY;
    }
    /* the cell centres around x: k at (k + 1/2) cell_m */
    const double u = x_m / p->cell_m - 0.5;
    const double k0 = floor(u);
    const double w = u - k0;
    double z0, v0, z1, v1;
    const int32_t s0 = alt_profile_lookup(p, (k0 + 0.5) * p->cell_m, &z0, &v0, NULL);
    const int32_t s1 = alt_profile_lookup(p, (k0 + 1.5) * p->cell_m, &z1, &v1, NULL);
    if (s0 == ALT_CELL_EMPTY && s1 == ALT_CELL_EMPTY) {
        return ALT_CELL_EMPTY;
    }
    if (s0 == ALT_CELL_EMPTY || s1 == ALT_CELL_EMPTY) {
        /* one side known: the cell x lies in, if it is that one */
        return alt_profile_lookup(p, x_m, elevation_m, variance_m2, NULL);
    }
    if (elevation_m != NULL) {
        *elevation_m = z0 + w * (z1 - z0);
    }
    if (variance_m2 != NULL) {
        *variance_m2 = v0 > v1 ? v0 : v1;
    }
    /* BEAM only when both are measured: a map's cell on either side makes it the map's shape */
    return s0 == ALT_CELL_BEAM && s1 == ALT_CELL_BEAM ? ALT_CELL_BEAM : ALT_CELL_MAP;
}

int32_t alt_profile_next_known(const alt_profile *p, double x_m, int32_t direction, int32_t max_cells,
                               double *x_cell_m, double *elevation_m, double *variance_m2, double *time_s)
{
    if (p == NULL || !finite(x_m) || fabs(x_m) > MAX_ABS_X_M || (direction != 1 && direction != -1) ||
        max_cells < 1 || max_cells > ALT_PROFILE_CELLS) {
        return ALT_CELL_EMPTY;
    }
    const int64_t k0 = cell_index(p, x_m);
    for (int32_t n = 1; n <= max_cells; ++n) {
        const int64_t k = k0 + (int64_t)direction * n;
        if (!in_window(p, k)) {
            return ALT_CELL_EMPTY;
        }
        const int64_t i = k % ALT_PROFILE_CELLS;
        const alt_cell *c = &p->cell[i < 0 ? i + ALT_PROFILE_CELLS : i];
        if (c->index == k && c->source != ALT_CELL_EMPTY) {
            if (x_cell_m != NULL) {
                *x_cell_m = ((double)k + 0.5) * p->cell_m;
            }
            if (elevation_m != NULL) {
                *elevation_m = c->elevation_m + p->offset_m;
            }
            if (variance_m2 != NULL) {
                *variance_m2 = c->variance_m2;
            }
            if (time_s != NULL) {
                *time_s = c->time_s;
            }
            return c->source;
        }
    }
    return ALT_CELL_EMPTY;
}
