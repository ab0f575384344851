/*
 * Terrain-aware Kalman altitude filter. See altfilter.h and README.md.
 *
 * Only + - * / sqrt and fabs are used, so the results are bit-identical on
 * x86-64, aarch64 and armhf when built with -ffp-contract=off.
 * Nothing here allocates, prints, recurses or loops without a fixed bound.
 */
#include "altfilter.h"

#include <math.h>
#include <string.h>

#define N ALT_NX
#define IDX(r, c) ((r) * N + (c))
#define H_ 0
#define V_ 1
#define B_ 2
#define T_ 3

/* Inputs past these are not physical for a lunar lander: treat as corrupt. */
#define MAX_ABS_FORCE_MPS2 1000.0
#define MAX_HORIZONTAL_SPEED_MPS 10000.0
#define MAX_SIGMA_M 1.0e5
#define PD_REPAIR_TRIES 3

static int finite(double x) { return isfinite(x) != 0; }

static int all_finite(const double *a, int n)
{
    for (int i = 0; i < n; ++i) {
        if (!finite(a[i])) {
            return 0;
        }
    }
    return 1;
}

int32_t alt_default_config(int32_t policy, alt_config *cfg)
{
    if (cfg == NULL || policy < ALT_POLICY_NONE || policy > ALT_POLICY_TERRAIN_AWARE) {
        return ALT_INVALID_INPUT;
    }
    memset(cfg, 0, sizeof *cfg);
    cfg->policy = policy;
    cfg->gravity_mps2 = 1.62;
    cfg->body_radius_m = 1737.4e3;
    /* Covers IMU noise (~7e-4 m/s^2/sqrt(Hz)) plus thrust/attitude modelling error. */
    cfg->accel_noise_psd = 4.0e-4;
    cfg->bias_walk_psd = 1.0e-6;
    cfg->terrain_noise_mps = 0.5;
    cfg->terrain_gradient = 0.05;
    cfg->max_dt_s = 1.0;
    cfg->max_range_m = 100000.0;
    cfg->gate_sigma = (policy == ALT_POLICY_PX4_LIKE) ? 5.0 : 4.0;
    cfg->step_candidates = 3;
    cfg->step_agree_sigma = 3.0;
    cfg->stuck_tolerance_m = 0.005;
    cfg->stuck_min_speed_mps = 0.5;
    cfg->m1_gate_m = 1000.0;
    cfg->apollo_gate_m = 15.24;
    cfg->apollo_gate_hat_fraction = 0.125;
    cfg->apollo_weight = 0.35;
    cfg->px4_reset_s = 5.0;
    cfg->min_variance[H_] = 1.0e-6;
    cfg->min_variance[V_] = 1.0e-8;
    cfg->min_variance[B_] = 1.0e-12;
    cfg->min_variance[T_] = 1.0e-6;
    cfg->max_variance[H_] = 1.0e10;
    cfg->max_variance[V_] = 1.0e6;
    cfg->max_variance[B_] = 1.0e2;
    cfg->max_variance[T_] = 1.0e10;
    return 0;
}

static int config_ok(const alt_config *c)
{
    if (c->policy < ALT_POLICY_NONE || c->policy > ALT_POLICY_TERRAIN_AWARE) {
        return 0;
    }
    const double scalars[] = {c->gravity_mps2, c->body_radius_m, c->accel_noise_psd,
                              c->bias_walk_psd, c->terrain_noise_mps, c->terrain_gradient,
                              c->max_dt_s, c->max_range_m, c->gate_sigma,
                              c->step_agree_sigma, c->stuck_tolerance_m,
                              c->stuck_min_speed_mps, c->m1_gate_m, c->apollo_gate_m,
                              c->apollo_gate_hat_fraction, c->apollo_weight, c->px4_reset_s};
    const int n = (int)(sizeof scalars / sizeof scalars[0]);
    for (int i = 0; i < n; ++i) {
        if (!finite(scalars[i]) || scalars[i] < 0.0) {
            return 0;
        }
    }
    if (c->body_radius_m <= 0.0 || c->max_dt_s <= 0.0 || c->max_range_m <= 0.0 ||
        c->gate_sigma <= 0.0 || c->apollo_weight <= 0.0 || c->apollo_weight > 1.0) {
        return 0;
    }
    if (c->step_candidates < 2 || c->step_candidates > ALT_MAX_CANDIDATES) {
        return 0;
    }
    for (int i = 0; i < N; ++i) {
        if (!finite(c->min_variance[i]) || !finite(c->max_variance[i]) ||
            c->min_variance[i] <= 0.0 || c->max_variance[i] <= c->min_variance[i]) {
            return 0;
        }
    }
    return 1;
}

static void reset_sensor(alt_sensor *s)
{
    memset(s, 0, sizeof *s);
    s->rejecting_since_s = -1.0;
}

int32_t alt_init(alt_filter *f, const alt_config *cfg, const double x0[N], const double var0[N])
{
    if (f == NULL || cfg == NULL || x0 == NULL || var0 == NULL || !config_ok(cfg) ||
        !all_finite(x0, N) || !all_finite(var0, N)) {
        return ALT_INVALID_INPUT;
    }
    for (int i = 0; i < N; ++i) {
        if (var0[i] < cfg->min_variance[i] || var0[i] > cfg->max_variance[i]) {
            return ALT_INVALID_INPUT;
        }
    }
    memset(f, 0, sizeof *f);
    f->cfg = *cfg;
    for (int i = 0; i < N; ++i) {
        f->x[i] = x0[i];
        f->P[IDX(i, i)] = var0[i];
    }
    for (int s = 0; s < ALT_MAX_SENSORS; ++s) {
        reset_sensor(&f->sensor[s]);
    }
    return 0;
}

static int model_inputs_ok(const alt_filter *f, double dt, double force, double vx);

static int predict_inputs_ok(const alt_filter *f, double dt, double force, double vx)
{
    return dt <= f->cfg.max_dt_s && model_inputs_ok(f, dt, force, vx);
}

/* dt > 0 with no upper bound of its own (the callers bound it), the rest as for predict. */
static int model_inputs_ok(const alt_filter *f, double dt, double force, double vx)
{
    return finite(dt) && dt > 0.0 && finite(force) &&
           fabs(force) <= MAX_ABS_FORCE_MPS2 && finite(vx) && vx >= 0.0 &&
           vx <= MAX_HORIZONTAL_SPEED_MPS && f->x[H_] + f->cfg.body_radius_m > 0.0;
}

static int update_inputs_ok(const alt_filter *f, double range, double cos_tilt, double sigma,
                            int32_t sensor_id)
{
    return sensor_id >= 0 && sensor_id < ALT_MAX_SENSORS && finite(range) && range >= 0.0 &&
           range <= f->cfg.max_range_m && finite(cos_tilt) && cos_tilt > 0.0 &&
           cos_tilt <= 1.0 && finite(sigma) && sigma > 0.0 && sigma <= MAX_SIGMA_M;
}

/* The discrete process model's non-trivial terms, shared by predict and alt_process_model. */
typedef struct {
    double a;   /* dt^2 / 2 */
    double u;   /* control acceleration: force - g + vx^2/(R+h) (curvature relief) */
    double qhh, qhv, qvv, qbb, qtt;
} process_terms;

static process_terms process(const alt_filter *f, double dt, double force, double vx)
{
    const alt_config *c = &f->cfg;
    const double qa = c->accel_noise_psd;
    const double tn = dt * c->terrain_noise_mps;
    const double tg = dt * c->terrain_gradient * vx;
    process_terms p;
    p.a = 0.5 * dt * dt;
    p.u = force - c->gravity_mps2 + vx * vx / (c->body_radius_m + f->x[H_]);
    p.qhh = qa * dt * dt * dt * (1.0 / 3.0);
    p.qhv = qa * p.a;
    p.qvv = qa * dt;
    p.qbb = c->bias_walk_psd * dt;
    p.qtt = tn * tn + tg * tg;
    return p;
}

int32_t alt_process_model(const alt_filter *f, double dt, double force, double vx, double F[N * N],
                          double Q[N * N], double u_vec[N])
{
    if (f == NULL || F == NULL || Q == NULL || u_vec == NULL ||
        !predict_inputs_ok(f, dt, force, vx)) {
        return ALT_INVALID_INPUT;
    }
    const process_terms p = process(f, dt, force, vx);
    memset(F, 0, sizeof(double) * N * N);
    memset(Q, 0, sizeof(double) * N * N);
    for (int i = 0; i < N; ++i) {
        F[IDX(i, i)] = 1.0;
    }
    F[IDX(H_, V_)] = dt;
    F[IDX(H_, B_)] = -p.a;
    F[IDX(V_, B_)] = -dt;
    Q[IDX(H_, H_)] = p.qhh;
    Q[IDX(H_, V_)] = p.qhv;
    Q[IDX(V_, H_)] = p.qhv;
    Q[IDX(V_, V_)] = p.qvv;
    Q[IDX(B_, B_)] = p.qbb;
    Q[IDX(T_, T_)] = p.qtt;
    u_vec[H_] = p.a * p.u;
    u_vec[V_] = dt * p.u;
    u_vec[B_] = 0.0;
    u_vec[T_] = 0.0;
    return 0;
}

/* Keep the diagonal inside [min_variance, max_variance]. P is symmetric on entry (every
 * writer fills one triangle and mirrors it). Scaling row and column i together (D P D)
 * and adding to the diagonal both preserve positive definiteness. */
static void bound_covariance(const alt_config *c, double P[N * N])
{
    for (int i = 0; i < N; ++i) {
        if (P[IDX(i, i)] > c->max_variance[i]) {
            const double s = sqrt(c->max_variance[i] / P[IDX(i, i)]);
            for (int k = 0; k < N; ++k) {
                P[IDX(i, k)] *= s;
                P[IDX(k, i)] *= s;
            }
            P[IDX(i, i)] = c->max_variance[i];
        } else if (P[IDX(i, i)] < c->min_variance[i]) {
            P[IDX(i, i)] = c->min_variance[i];
        }
    }
}

/* Sylvester's criterion: every leading principal minor positive. Products only, no
 * division or square root; a borderline answer near singularity only triggers a repair. */
static int positive_definite(const double P[N * N])
{
    const double p00 = P[0], p01 = P[1], p02 = P[2], p03 = P[3];
    const double p11 = P[5], p12 = P[6], p13 = P[7];
    const double p22 = P[10], p23 = P[11], p33 = P[15];
    const double m2 = p00 * p11 - p01 * p01;
    /* 2x2 minors of rows 0-1 and of rows 2-3 (Laplace expansion of the 4x4 determinant) */
    const double a01 = p00 * p11 - p01 * p01, a02 = p00 * p12 - p02 * p01;
    const double a03 = p00 * p13 - p03 * p01, a12 = p01 * p12 - p02 * p11;
    const double a13 = p01 * p13 - p03 * p11, a23 = p02 * p13 - p03 * p12;
    const double b01 = p02 * p13 - p12 * p03, b02 = p02 * p23 - p22 * p03;
    const double b03 = p02 * p33 - p23 * p03, b12 = p12 * p23 - p22 * p13;
    const double b13 = p12 * p33 - p23 * p13, b23 = p22 * p33 - p23 * p23;
    const double m3 = p00 * (p11 * p22 - p12 * p12) - p01 * (p01 * p22 - p12 * p02) +
                      p02 * (p01 * p12 - p11 * p02);
    const double m4 = a01 * b23 - a02 * b13 + a03 * b12 + a12 * b03 - a13 * b02 + a23 * b01;
    return p00 > 0.0 && m2 > 0.0 && m3 > 0.0 && m4 > 0.0;
}

/* After an update or a reset: bounded and positive definite. The Joseph form keeps P
 * positive semidefinite in exact arithmetic; rounding near a singular P is repaired by
 * adding to the diagonal, which can only make it more definite. */
static void condition_covariance(const alt_config *c, double P[N * N])
{
    bound_covariance(c, P);
    for (int attempt = 0; attempt < PD_REPAIR_TRIES && !positive_definite(P); ++attempt) {
        for (int i = 0; i < N; ++i) {
            P[IDX(i, i)] += c->min_variance[i] * (double)(1 << (4 * attempt));
        }
        bound_covariance(c, P);
    }
}

static void do_predict(alt_filter *f, double dt, double force, double vx)
{
    const process_terms p = process(f, dt, force, vx);
    double *x = f->x;
    double *P = f->P;
    const double ab = p.u - x[B_];
    x[H_] = x[H_] + dt * x[V_] + p.a * ab;
    x[V_] = x[V_] + dt * ab;

    /* F P F^T with F = I + dt e_h e_v^T - a e_h e_b^T - dt e_v e_b^T: rows first, then the
     * upper triangle of the columns, mirrored, so P stays exactly symmetric. */
    double FP[N * N];
    for (int k = 0; k < N; ++k) {
        FP[IDX(H_, k)] = P[IDX(H_, k)] + dt * P[IDX(V_, k)] - p.a * P[IDX(B_, k)];
        FP[IDX(V_, k)] = P[IDX(V_, k)] - dt * P[IDX(B_, k)];
        FP[IDX(B_, k)] = P[IDX(B_, k)];
        FP[IDX(T_, k)] = P[IDX(T_, k)];
    }
    for (int r = 0; r < N; ++r) {
        const double col[N] = {FP[IDX(r, H_)] + dt * FP[IDX(r, V_)] - p.a * FP[IDX(r, B_)],
                               FP[IDX(r, V_)] - dt * FP[IDX(r, B_)], FP[IDX(r, B_)],
                               FP[IDX(r, T_)]};
        for (int k = r; k < N; ++k) {
            P[IDX(r, k)] = col[k];
            P[IDX(k, r)] = col[k];
        }
    }
    P[IDX(H_, H_)] += p.qhh;
    P[IDX(H_, V_)] += p.qhv;
    P[IDX(V_, H_)] += p.qhv;
    P[IDX(V_, V_)] += p.qvv;
    P[IDX(B_, B_)] += p.qbb;
    P[IDX(T_, T_)] += p.qtt;
    /* F P F^T + Q stays positive definite (F is invertible, Q >= 0): no test needed. */
    bound_covariance(&f->cfg, P);
    f->time_s += dt;
}

int32_t alt_predict(alt_filter *f, double dt, double force, double vx)
{
    if (f == NULL || !predict_inputs_ok(f, dt, force, vx)) {
        return ALT_INVALID_INPUT;
    }
    do_predict(f, dt, force, vx);
    return 0;
}

int32_t alt_predict_gap(alt_filter *f, double dt, double force, double vx, double accel_sigma_mps2)
{
    if (f == NULL || !model_inputs_ok(f, dt, force, vx) || dt > ALT_MAX_GAP_S ||
        !finite(accel_sigma_mps2) || accel_sigma_mps2 < 0.0 || accel_sigma_mps2 > MAX_ABS_FORCE_MPS2) {
        return ALT_INVALID_INPUT;
    }
    do_predict(f, dt, force, vx);
    /* the force held over the gap was wrong by an unknown constant: G s^2 G^T, G = [dt^2/2, dt] */
    const double gh = 0.5 * dt * dt, gv = dt, s2 = accel_sigma_mps2 * accel_sigma_mps2;
    double *P = f->P;
    P[IDX(H_, H_)] += s2 * gh * gh;
    P[IDX(H_, V_)] += s2 * gh * gv;
    P[IDX(V_, H_)] += s2 * gh * gv;
    P[IDX(V_, V_)] += s2 * gv * gv;
    bound_covariance(&f->cfg, P);
    return 0;
}

/* x += K y and the Joseph update P = (I-KH) P (I-KH)^T + K R K^T, with H = [1 0 0 -1]
 * and K = gain * P H^T. Any gain keeps P symmetric positive semidefinite in this form. */
/* Joseph-form update with gain * pht as K, for H = e_h - e_t (a height above terrain, which = 0),
 * e_t (the terrain's elevation itself, which = 1) or e_h (the altitude itself, which = 2). */
static void apply_update_h(alt_filter *f, const double pht[N], double gain, double y, double R, int which)
{
    double K[N];
    for (int i = 0; i < N; ++i) {
        K[i] = gain * pht[i];
        f->x[i] += K[i] * y;
    }
    double *P = f->P;
    double AP[N * N]; /* (I - K H) P = P - K (H P), H P = pht^T as P is symmetric */
    for (int r = 0; r < N; ++r) {
        for (int k = 0; k < N; ++k) {
            AP[IDX(r, k)] = P[IDX(r, k)] - K[r] * pht[k];
        }
    }
    for (int r = 0; r < N; ++r) {
        const double aph = which == 1 ? AP[IDX(r, T_)]
                         : which == 2 ? AP[IDX(r, H_)]
                                      : AP[IDX(r, H_)] - AP[IDX(r, T_)]; /* (AP H^T)_r */
        for (int k = r; k < N; ++k) {
            const double v = AP[IDX(r, k)] - aph * K[k] + K[r] * R * K[k];
            P[IDX(r, k)] = v; /* (I-KH)P(I-KH)^T + KRK^T is symmetric: fill one triangle */
            P[IDX(k, r)] = v;
        }
    }
    condition_covariance(&f->cfg, P);
}

static void apply_update(alt_filter *f, const double pht[N], double gain, double y, double R)
{
    apply_update_h(f, pht, gain, y, R, 0);
}

/* Put the whole step into the terrain state: t = h - z. The new terrain's error is
 * h's error less the measurement noise, so t takes h's covariance row plus noise_var
 * on its variance: var(h - t) becomes noise_var, h and v are untouched. */
static void reset_terrain(alt_filter *f, double z, double noise_var)
{
    double *P = f->P;
    f->x[T_] = f->x[H_] - z;
    for (int k = 0; k < N; ++k) {
        P[IDX(T_, k)] = P[IDX(H_, k)];
        P[IDX(k, T_)] = P[IDX(k, H_)];
    }
    P[IDX(T_, T_)] = P[IDX(H_, H_)] + noise_var;
    condition_covariance(&f->cfg, P);
}

int32_t alt_reset_terrain(alt_filter *f, double terrain_elevation_m, double variance_m2)
{
    if (f == NULL || !finite(terrain_elevation_m) || !finite(variance_m2) || variance_m2 <= 0.0 ||
        variance_m2 > MAX_SIGMA_M * MAX_SIGMA_M) {
        return ALT_INVALID_INPUT;
    }
    reset_terrain(f, f->x[H_] - terrain_elevation_m, variance_m2);
    return 0;
}

int32_t alt_update_terrain(alt_filter *f, double terrain_elevation_m, double variance_m2)
{
    if (f == NULL || !finite(terrain_elevation_m) || !finite(variance_m2) || variance_m2 <= 0.0 ||
        variance_m2 > MAX_SIGMA_M * MAX_SIGMA_M) {
        return ALT_INVALID_INPUT;
    }
    double pht[N];
    for (int i = 0; i < N; ++i) {
        pht[i] = f->P[IDX(i, T_)];
    }
    const double S = pht[T_] + variance_m2;
    apply_update_h(f, pht, 1.0 / S, terrain_elevation_m - f->x[T_], variance_m2, 1);
    return 0;
}

int32_t alt_update_altitude(alt_filter *f, double altitude_m, double variance_m2)
{
    if (f == NULL || !finite(altitude_m) || !finite(variance_m2) || variance_m2 <= 0.0 ||
        variance_m2 > MAX_SIGMA_M * MAX_SIGMA_M) {
        return ALT_INVALID_INPUT;
    }
    double pht[N];
    for (int i = 0; i < N; ++i) {
        pht[i] = f->P[IDX(i, H_)];
    }
    const double S = pht[H_] + variance_m2;
    apply_update_h(f, pht, 1.0 / S, altitude_m - f->x[H_], variance_m2, 2);
    return 0;
}

int32_t alt_shift_terrain(alt_filter *f, double dz_m, double variance_m2)
{
    if (f == NULL || !finite(dz_m) || fabs(dz_m) > MAX_SIGMA_M || !finite(variance_m2) || variance_m2 < 0.0 ||
        variance_m2 > f->cfg.max_variance[T_]) {
        return ALT_INVALID_INPUT;
    }
    f->x[T_] += dz_m;
    f->P[IDX(T_, T_)] += variance_m2;
    bound_covariance(&f->cfg, f->P);
    return 0;
}

int32_t alt_inflate(alt_filter *f, int32_t state, double variance)
{
    if (f == NULL || state < 0 || state >= N || !finite(variance) || variance < 0.0 ||
        variance > f->cfg.max_variance[state]) {
        return ALT_INVALID_INPUT;
    }
    f->P[IDX(state, state)] += variance;
    bound_covariance(&f->cfg, f->P); /* a larger diagonal keeps P positive definite */
    return 0;
}

int32_t alt_reopen_sensor(alt_filter *f, int32_t sensor_id)
{
    if (f == NULL || sensor_id < 0 || sensor_id >= ALT_MAX_SENSORS) {
        return ALT_INVALID_INPUT;
    }
    alt_sensor *s = &f->sensor[sensor_id];
    s->locked_out = 0;
    s->n_candidates = 0;
    s->has_last = 0;
    s->rejecting_since_s = -1.0;
    return 0;
}

double alt_height_above_terrain(const alt_filter *f) { return f->x[H_] - f->x[T_]; }

static double hat_variance(const double P[N * N])
{
    return P[IDX(H_, H_)] + P[IDX(T_, T_)] - 2.0 * P[IDX(H_, T_)];
}

double alt_height_above_terrain_sigma(const alt_filter *f)
{
    const double v = hat_variance(f->P);
    return v > 0.0 ? sqrt(v) : 0.0;
}

static int32_t terrain_aware(alt_filter *f, alt_sensor *s, const double pht[N], double inv_s,
                             double y, double R, double nis, int stuck)
{
    const alt_config *c = &f->cfg;
    if (stuck) {
        s->n_candidates = 0;
        return ALT_REJECTED_STUCK;
    }
    if (nis <= c->gate_sigma * c->gate_sigma) {
        s->n_candidates = 0;
        apply_update(f, pht, inv_s, y, R);
        return ALT_ACCEPTED;
    }
    /* Outside the gate. A real step shows as the same innovation sample after sample,
     * because the prediction already carries the vehicle's own motion: constancy of the
     * innovation is the range-rate (kinematic) consistency check. */
    const double hat_var = hat_variance(f->P);
    int agrees = 1;
    for (int i = 0; i < s->n_candidates && i < ALT_MAX_CANDIDATES; ++i) {
        const double drift = hat_var - s->candidate_hat_var_m2[i];
        const double var = R + s->candidate_noise_var_m2[i] + (drift > 0.0 ? drift : 0.0);
        const double d = y - s->candidate_innovation_m[i];
        if (d * d > c->step_agree_sigma * c->step_agree_sigma * var) {
            agrees = 0;
            break;
        }
    }
    if (!agrees) {
        /* Not the step the earlier samples suggested; this one may start a new one. */
        s->n_candidates = 1;
        s->candidate_innovation_m[0] = y;
        s->candidate_noise_var_m2[0] = R;
        s->candidate_hat_var_m2[0] = hat_var;
        return ALT_REJECTED_INCONSISTENT;
    }
    const int n = s->n_candidates;
    s->candidate_innovation_m[n] = y;
    s->candidate_noise_var_m2[n] = R;
    s->candidate_hat_var_m2[n] = hat_var;
    s->n_candidates = n + 1;
    if (s->n_candidates < c->step_candidates) {
        return ALT_HELD;
    }
    double mean_y = 0.0;
    double max_r = 0.0;
    for (int i = 0; i < s->n_candidates && i < ALT_MAX_CANDIDATES; ++i) {
        mean_y += s->candidate_innovation_m[i];
        max_r = s->candidate_noise_var_m2[i] > max_r ? s->candidate_noise_var_m2[i] : max_r;
    }
    mean_y /= (double)s->n_candidates;
    s->n_candidates = 0;
    /* The step in range is mean_y: the terrain moves by -mean_y. */
    reset_terrain(f, (f->x[H_] - f->x[T_]) + mean_y, max_r);
    return ALT_TERRAIN_STEP;
}

static int32_t fuse(alt_filter *f, double range, double cos_tilt, double sigma, int32_t id)
{
    const alt_config *c = &f->cfg;
    alt_sensor *s = &f->sensor[id];
    const double z = range * cos_tilt;
    const double R = (sigma * cos_tilt) * (sigma * cos_tilt);
    const double hat = f->x[H_] - f->x[T_];
    const double y = z - hat;
    double pht[N];
    for (int i = 0; i < N; ++i) {
        pht[i] = f->P[IDX(i, H_)] - f->P[IDX(i, T_)];
    }
    const double S = pht[H_] - pht[T_] + R;
    const double inv_s = 1.0 / S;
    const double nis = y * y * inv_s;
    const int stuck = s->has_last && fabs(range - s->last_range_m) <= c->stuck_tolerance_m &&
                      fabs(f->x[V_]) > c->stuck_min_speed_mps;
    s->last_range_m = range;
    s->has_last = 1;
    f->last_innovation_m = y;
    f->last_nis = nis;

    switch (c->policy) {
    case ALT_POLICY_M1_BASELINE:
        if (s->locked_out || fabs(y) > c->m1_gate_m) {
            s->locked_out = 1; /* M1: a rejected sensor is never trusted again */
            return ALT_REJECTED_INCONSISTENT;
        }
        apply_update(f, pht, inv_s, y, R);
        return ALT_ACCEPTED;
    case ALT_POLICY_APOLLO_GATE: {
        const double gate = c->apollo_gate_m + c->apollo_gate_hat_fraction * (hat > 0.0 ? hat : 0.0);
        const double hat_var = pht[H_] - pht[T_];
        if (fabs(y) >= gate || !(hat_var > 0.0)) {
            return ALT_REJECTED_INCONSISTENT;
        }
        /* Fixed-weight blend: h - t moves by weight * y, the other states along the
         * covariance direction. */
        apply_update(f, pht, c->apollo_weight / hat_var, y, R);
        return ALT_ACCEPTED;
    }
    case ALT_POLICY_PX4_LIKE:
        if (nis > c->gate_sigma * c->gate_sigma) {
            if (s->rejecting_since_s < 0.0) {
                s->rejecting_since_s = f->time_s;
            }
            if (f->time_s - s->rejecting_since_s >= c->px4_reset_s) {
                s->rejecting_since_s = -1.0;
                reset_terrain(f, z, R);
                return ALT_TERRAIN_STEP;
            }
            return ALT_REJECTED_INCONSISTENT;
        }
        s->rejecting_since_s = -1.0;
        apply_update(f, pht, inv_s, y, R);
        return ALT_ACCEPTED;
    case ALT_POLICY_TERRAIN_AWARE:
        return terrain_aware(f, s, pht, inv_s, y, R, nis, stuck);
    default: /* ALT_POLICY_NONE */
        apply_update(f, pht, inv_s, y, R);
        return ALT_ACCEPTED;
    }
}

static void count(alt_sensor *s, int32_t status)
{
    switch (status) {
    case ALT_ACCEPTED: s->accepted++; break;
    case ALT_HELD: s->held++; break;
    case ALT_TERRAIN_STEP: s->steps++; break;
    case ALT_REJECTED_STUCK: s->stuck++; break;
    default: s->rejected++; break;
    }
}

int32_t alt_update_range(alt_filter *f, double range, double cos_tilt, double sigma,
                         int32_t sensor_id)
{
    if (f == NULL) {
        return ALT_INVALID_INPUT;
    }
    if (!update_inputs_ok(f, range, cos_tilt, sigma, sensor_id)) {
        return ALT_INVALID_INPUT; /* the caller counts these: the filter stays bit-identical */
    }
    const int32_t status = fuse(f, range, cos_tilt, sigma, sensor_id);
    count(&f->sensor[sensor_id], status);
    return status;
}

int32_t alt_step(alt_filter *f, double dt, double force, double vx, int32_t has_range,
                 double range, double cos_tilt, double sigma, int32_t sensor_id)
{
    if (f == NULL || !predict_inputs_ok(f, dt, force, vx) ||
        (has_range && !update_inputs_ok(f, range, cos_tilt, sigma, sensor_id))) {
        return ALT_INVALID_INPUT;
    }
    do_predict(f, dt, force, vx);
    if (!has_range) {
        return ALT_NO_MEASUREMENT;
    }
    const int32_t status = fuse(f, range, cos_tilt, sigma, sensor_id);
    count(&f->sensor[sensor_id], status);
    return status;
}

int64_t alt_run_batch(alt_filter *f, int64_t n, const double *dt, const double *force,
                      const double *vx, const double *range, const double *cos_tilt,
                      const double *sigma, const uint8_t *valid, int32_t sensor_id,
                      double *out_state, double *out_sigma, double *out_hat,
                      double *out_hat_sigma, int32_t *out_status)
{
    if (f == NULL || n < 0 || dt == NULL || force == NULL || vx == NULL || range == NULL ||
        cos_tilt == NULL || sigma == NULL || valid == NULL) {
        return -1;
    }
    for (int64_t k = 0; k < n; ++k) {
        const int32_t st = alt_step(f, dt[k], force[k], vx[k], valid[k] != 0, range[k],
                                    cos_tilt[k], sigma[k], sensor_id);
        if (out_status != NULL) {
            out_status[k] = st;
        }
        for (int i = 0; i < N; ++i) {
            if (out_state != NULL) {
                out_state[k * N + i] = f->x[i];
            }
            if (out_sigma != NULL) {
                out_sigma[k * N + i] = sqrt(f->P[IDX(i, i)]);
            }
        }
        if (out_hat != NULL) {
            out_hat[k] = alt_height_above_terrain(f);
        }
        if (out_hat_sigma != NULL) {
            out_hat_sigma[k] = alt_height_above_terrain_sigma(f);
        }
    }
    return n;
}

int32_t alt_noop(alt_filter *f)
{
    (void)f;
    return 0;
}
