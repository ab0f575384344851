/*
 * The ground simulator's truth kernels: the hot per-step arithmetic of the simulated world,
 * moved out of Python so that campaigns run fast. Not flight code: the flight software never
 * links this. C99, no allocation, no I/O, no recursion, loops bounded by their inputs' length.
 *
 * - sim_body_*: a 2-D point mass over a spherical body, kept in a body-centred inertial plane
 *   (x, y, vx, vy), so gravity is the exact inverse-square pull and the curvature relief comes
 *   out of the geometry. Engine: a non-zero throttle held inside [min, max], first-order lag,
 *   thrust pitch at most the rate limit; mass flow = thrust / exhaust velocity; no thrust once
 *   the propellant is gone. Integration: velocity Verlet with the thrust held over the step.
 * - sim_terrain_elevation: a piecewise-linear profile, two rows at one downrange = a step.
 * - sim_imu_measure: specific force on two body axes and the pitch-axis rate, saturated and
 *   quantised, as the IMU reports them (the flight turns them into attitude and local axes).
 *
 * See ground/sim/README.md for the model and its requirements.
 */
#ifndef LANDER_TRUTH_H
#define LANDER_TRUTH_H

#include <stdint.h>

typedef struct {
    double gm_m3ps2;               /* the body's gravitational parameter */
    double radius_m;               /* the datum sphere */
    double dry_mass_kg;
    double max_thrust_n;
    double exhaust_velocity_mps;   /* Isp * g0 */
    double min_throttle;           /* a non-zero command is held inside [min, max] */
    double max_throttle;
    double thrust_lag_s;           /* first-order engine response; 0: none */
    double pitch_rate_limit_radps;
} sim_vehicle;

typedef struct {
    /* state, body-centred inertial plane */
    double x_m, y_m, vx_mps, vy_mps;
    double propellant_kg;
    double throttle;                   /* actual, after lag and limits */
    double pitch_rad;                  /* thrust tilt from the local vertical, + up-range (the boresight looks ahead) */
    double time_s;
    /* outputs of the last step */
    double thrust_accel_up_mps2;       /* thrust acceleration in the local frame */
    double thrust_accel_downrange_mps2;
    double altitude_m;                 /* local frame at the position */
    double downrange_m;                /* along the datum sphere from the ground-track origin */
    double vertical_speed_mps;
    double horizontal_speed_mps;
    /* kept between steps */
    double gravity_x_mps2, gravity_y_mps2, up_x, up_y;
    double lag_dt_s, lag_gain;
} sim_body;

/* Place the body at rest in its engine (throttle 0, pitch 0) with its propellant load; 0, or
 * -1 (body untouched) when an input is not finite, the propellant is negative, the vehicle is
 * impossible (masses, thrust, Isp, radius not positive; throttles outside 0 <= min <= max <= 1)
 * or the start is inside the body's centre. */
int sim_body_init(sim_body *b, const sim_vehicle *v, double propellant_kg, double altitude_m,
                  double horizontal_speed_mps, double vertical_speed_mps, double downrange_m);

/* One step of dt_s with the commanded throttle and pitch held over it; 0, or -1 (body
 * untouched) on a non-finite input or dt_s <= 0. */
int sim_body_step(sim_body *b, const sim_vehicle *v, double dt_s, double throttle_cmd, double pitch_cmd);

/* Elevation at x on rows (xs non-decreasing, n >= 1); at a step, the elevation after it
 * (after != 0) or before it (after == 0, for beams looking back). Held beyond the ends.
 * *hint is a row index from an earlier call (any value is safe): lookups that move a little
 * cost O(1). */
double sim_terrain_elevation(const double *xs, const double *zs, int32_t n, double x, int32_t after,
                             int32_t *hint);

typedef struct {
    double limit_mps2;         /* accelerometer saturation, each axis */
    double lsb_mps2;           /* accelerometer quantisation step */
    double gyro_limit_radps;   /* gyro saturation */
    double gyro_lsb_radps;     /* gyro quantisation step */
} sim_imu;

/* What a body-mounted IMU reports, in its own axes (z along the thrust, x toward downrange
 * when upright; pitch = the thrust axis's tilt from the local vertical, + up-range, so body
 * z = (-sin p, cos p) and body x = (cos p, sin p) in (downrange, up)):
 * out[0] = specific force on x, out[1] = on z, out[2] = angular rate about y. Each is the true
 * value plus its error (bias + noise), saturated and quantised (round half to even).
 * gyro_y_radps: the true inertial rate about y (the rate the world turned the body through). */
void sim_imu_measure(const sim_imu *imu, double f_up_mps2, double f_downrange_mps2, double pitch_rad,
                     double error_z_mps2, double error_x_mps2, double gyro_y_radps, double gyro_error_radps,
                     double out[3]);

#endif
