/* The ground simulator's truth kernels; see truth.h. */
#include "truth.h"

#include <math.h>

static int finite3(double a, double b, double c) { return isfinite(a) && isfinite(b) && isfinite(c); }

/* Gravity, the local frame and the local state at the current position: one square root. */
static void at_position(sim_body *b, double radius_m, double gm) {
    double x = b->x_m, y = b->y_m;
    double r2 = x * x + y * y;
    double r = sqrt(r2);
    double k = -gm / (r2 * r);
    b->gravity_x_mps2 = k * x;
    b->gravity_y_mps2 = k * y;
    b->up_x = x / r;
    b->up_y = y / r;
    b->altitude_m = r - radius_m;
    b->downrange_m = radius_m * atan2(x, y);
}

static void local_velocity(sim_body *b) {
    double ux = b->up_x, uy = b->up_y;
    b->vertical_speed_mps = b->vx_mps * ux + b->vy_mps * uy;
    b->horizontal_speed_mps = b->vx_mps * uy - b->vy_mps * ux; /* downrange unit = (uy, -ux) */
}

static int vehicle_ok(const sim_vehicle *v) {
    return isfinite(v->gm_m3ps2) && v->gm_m3ps2 > 0.0 && isfinite(v->radius_m) && v->radius_m > 0.0
        && isfinite(v->dry_mass_kg) && v->dry_mass_kg > 0.0 && isfinite(v->max_thrust_n) && v->max_thrust_n > 0.0
        && isfinite(v->exhaust_velocity_mps) && v->exhaust_velocity_mps > 0.0
        && v->min_throttle >= 0.0 && v->min_throttle <= v->max_throttle && v->max_throttle <= 1.0
        && isfinite(v->thrust_lag_s) && v->thrust_lag_s >= 0.0
        && isfinite(v->pitch_rate_limit_radps) && v->pitch_rate_limit_radps > 0.0;
}

int sim_body_init(sim_body *b, const sim_vehicle *v, double propellant_kg, double altitude_m,
                  double horizontal_speed_mps, double vertical_speed_mps, double downrange_m) {
    if (!vehicle_ok(v) || !finite3(altitude_m, horizontal_speed_mps, vertical_speed_mps) || !isfinite(downrange_m)
        || !isfinite(propellant_kg) || propellant_kg < 0.0 || v->radius_m + altitude_m <= 0.0)
        return -1;
    double phi = downrange_m / v->radius_m;
    double r = v->radius_m + altitude_m;
    double up0 = sin(phi), up1 = cos(phi);
    double east0 = cos(phi), east1 = -sin(phi);
    sim_body n = {0};
    n.x_m = r * up0;
    n.y_m = r * up1;
    n.vx_mps = horizontal_speed_mps * east0 + vertical_speed_mps * up0;
    n.vy_mps = horizontal_speed_mps * east1 + vertical_speed_mps * up1;
    n.propellant_kg = propellant_kg;
    at_position(&n, v->radius_m, v->gm_m3ps2);
    local_velocity(&n);
    *b = n;
    return 0;
}

int sim_body_step(sim_body *b, const sim_vehicle *v, double dt_s, double throttle_cmd, double pitch_cmd) {
    if (!finite3(dt_s, throttle_cmd, pitch_cmd) || dt_s <= 0.0)
        return -1;
    /* the engine */
    double target = 0.0;
    if (throttle_cmd > 0.0 && b->propellant_kg > 0.0)
        target = fmin(v->max_throttle, fmax(v->min_throttle, throttle_cmd));
    if (v->thrust_lag_s > 0.0) {
        if (dt_s != b->lag_dt_s) { /* the first-order lag's factor, once per step size */
            b->lag_dt_s = dt_s;
            b->lag_gain = 1.0 - exp(-dt_s / v->thrust_lag_s);
        }
        b->throttle += (target - b->throttle) * b->lag_gain;
    } else {
        b->throttle = target;
    }
    if (target == 0.0 && b->throttle < 1e-3)
        b->throttle = 0.0;
    double max_step = v->pitch_rate_limit_radps * dt_s;
    b->pitch_rad += fmax(-max_step, fmin(max_step, pitch_cmd - b->pitch_rad));

    /* thrust and mass flow */
    double propellant = b->propellant_kg;
    double thrust = propellant > 0.0 ? b->throttle * v->max_thrust_n : 0.0;
    double mass = v->dry_mass_kg + propellant;
    if (thrust > 0.0) {
        double burn = thrust / v->exhaust_velocity_mps * dt_s;
        if (burn > propellant) { /* the last drops: thrust for the part of the step they last */
            thrust *= propellant / burn;
            burn = propellant;
        }
        propellant -= burn;
        b->propellant_kg = propellant;
        mass = v->dry_mass_kg + propellant + 0.5 * burn; /* mid-step mass */
    }
    double a = thrust / mass;
    double a_up = a * cos(b->pitch_rad);
    double a_dr = -a * sin(b->pitch_rad);
    b->thrust_accel_up_mps2 = a_up;
    b->thrust_accel_downrange_mps2 = a_dr;

    /* velocity Verlet, the thrust held over the step */
    double ux = b->up_x, uy = b->up_y, half = 0.5 * dt_s;
    double kx = half * (a_up * ux + a_dr * uy);
    double ky = half * (a_up * uy - a_dr * ux);
    double vx = b->vx_mps + half * b->gravity_x_mps2 + kx;
    double vy = b->vy_mps + half * b->gravity_y_mps2 + ky;
    b->x_m += dt_s * vx;
    b->y_m += dt_s * vy;
    at_position(b, v->radius_m, v->gm_m3ps2);
    b->vx_mps = vx + half * b->gravity_x_mps2 + kx;
    b->vy_mps = vy + half * b->gravity_y_mps2 + ky;
    local_velocity(b);
    b->time_s += dt_s;
    return 0;
}

/* The first index i in [lo, hi) with xs[i] > x (after) or xs[i] >= x (before); hi if none. */
static int32_t first_past(const double *xs, double x, int32_t after, int32_t lo, int32_t hi) {
    while (lo < hi) { /* halves each pass: at most 32 */
        int32_t mid = lo + (hi - lo) / 2;
        if (after ? xs[mid] > x : xs[mid] >= x)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

static int is_past(const double *xs, int32_t i, double x, int32_t after) {
    return after ? xs[i] > x : xs[i] >= x;
}

double sim_terrain_elevation(const double *xs, const double *zs, int32_t n, double x, int32_t after,
                             int32_t *hint) {
    int32_t i = *hint;
    if (i < 0 || i > n)
        i = 0;
    /* i is the answer when xs[i-1] is not past x and xs[i] is (or i is an end) */
    int ok = (i == 0 || !is_past(xs, i - 1, x, after)) && (i == n || is_past(xs, i, x, after));
    if (!ok) {
        if (i < n && !is_past(xs, i, x, after) && (i + 1 == n || is_past(xs, i + 1, x, after)))
            i += 1; /* moved on by one row: the usual case along a ground track */
        else
            i = first_past(xs, x, after, 0, n);
    }
    *hint = i;
    if (i == 0)
        return zs[0];
    if (i == n)
        return zs[n - 1];
    double x0 = xs[i - 1], x1 = xs[i];
    return zs[i - 1] + (zs[i] - zs[i - 1]) * (x - x0) / (x1 - x0);
}

static double quantise(double value, double limit, double lsb) {
    return nearbyint(fmax(-limit, fmin(limit, value)) / lsb) * lsb; /* round half to even (the default mode) */
}

void sim_imu_measure(const sim_imu *imu, double f_up_mps2, double f_downrange_mps2, double pitch_rad,
                     double error_z_mps2, double error_x_mps2, double gyro_y_radps, double gyro_error_radps,
                     double out[3]) {
    double c = cos(pitch_rad), s = sin(pitch_rad);
    double fz = f_up_mps2 * c - f_downrange_mps2 * s + error_z_mps2; /* body z = (-sin p, cos p) in (downrange, up) */
    double fx = f_up_mps2 * s + f_downrange_mps2 * c + error_x_mps2; /* body x = (cos p, sin p) */
    out[0] = quantise(fx, imu->limit_mps2, imu->lsb_mps2);
    out[1] = quantise(fz, imu->limit_mps2, imu->lsb_mps2);
    out[2] = quantise(gyro_y_radps + gyro_error_radps, imu->gyro_limit_radps, imu->gyro_lsb_radps);
}
