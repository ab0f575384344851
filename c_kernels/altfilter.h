/*
 * Terrain-aware Kalman altitude filter for a lunar lander.
 *
 * C99, no allocation, no I/O, no recursion, every loop bounded by a
 * compile-time constant. Every entry point checks its inputs; on
 * ALT_INVALID_INPUT the filter is left bit-for-bit as it was.
 *
 * State x = [h, v, b, t]:
 *   h  altitude of the vehicle above the landing-site datum      [m, up +]
 *   v  vertical velocity                                         [m/s, up +]
 *   b  vertical accelerometer bias                               [m/s^2]
 *   t  terrain elevation under the vehicle above the same datum  [m]
 * Height above terrain = h - t. See c_kernels/README.md for the model.
 */
#ifndef LANDER_ALTFILTER_H
#define LANDER_ALTFILTER_H

#include <stdint.h>

#define ALT_NX 4
#define ALT_MAX_SENSORS 4
#define ALT_MAX_CANDIDATES 8
#define ALT_MAX_GAP_S 3600 /* alt_predict_gap: the longest gap it bridges, s */

/* Altitude-trust policies, selectable so campaigns compare like with like. */
enum alt_policy {
    ALT_POLICY_NONE = 0,          /* no gate: plain Kalman filter (parity tests) */
    ALT_POLICY_M1_BASELINE = 1,   /* fixed |innovation| gate, permanent lock-out */
    ALT_POLICY_APOLLO_GATE = 2,   /* |innovation| >= 15.24 m + hat/8 rejected, weighted blend */
    ALT_POLICY_PX4_LIKE = 3,      /* 5-sigma gate, terrain reset after 5 s of rejection */
    ALT_POLICY_TERRAIN_AWARE = 4  /* ours: held candidates, fast terrain steps, re-qualification */
};

/* Result of one call. Values are part of the ABI (logged, telemetered). */
enum alt_status {
    ALT_ACCEPTED = 0,
    ALT_HELD = 1,                  /* outside the gate, kept as a terrain-step candidate */
    ALT_TERRAIN_STEP = 2,          /* candidates agreed: the step went into t */
    ALT_REJECTED_INCONSISTENT = 3, /* outside the gate and not a consistent step */
    ALT_REJECTED_STUCK = 4,        /* reading repeats while the vehicle moves */
    ALT_INVALID_INPUT = 5,         /* NaN/Inf/out of range: nothing changed */
    ALT_NO_MEASUREMENT = 6         /* batch only: predict ran, no range this step */
};

typedef struct {
    int32_t policy;                 /* enum alt_policy */
    double gravity_mps2;            /* body surface gravity, 1.62 for the Moon */
    double body_radius_m;           /* 1737.4e3 for the Moon; curvature relief v_x^2/(R+h) */
    double accel_noise_psd;         /* accelerometer white noise, (m/s^2)^2/Hz */
    double bias_walk_psd;           /* accelerometer bias random walk, (m/s^2)^2/s */
    double terrain_noise_mps;       /* terrain change rate noise, m/s (PX4 TERR_NOISE) */
    double terrain_gradient;        /* terrain slope scale, m/m (PX4 TERR_GRAD) */
    double max_dt_s;                /* predict dt must lie in (0, max_dt_s] */
    double max_range_m;             /* ranges above this are invalid */
    double gate_sigma;              /* NIS gate in standard deviations */
    int32_t step_candidates;        /* terrain-aware: agreeing held samples to accept a step */
    double step_agree_sigma;        /* terrain-aware: candidate agreement, in sigmas */
    double stuck_tolerance_m;       /* reading change below this counts as a repeat */
    double stuck_min_speed_mps;     /* repeats only count as stuck above this |v| */
    double m1_gate_m;               /* m1-baseline fixed gate on |innovation| */
    double apollo_gate_m;           /* apollo-gate constant, 50 ft */
    double apollo_gate_hat_fraction;/* apollo-gate: + hat * this (1/8) */
    double apollo_weight;           /* apollo-gate blend weight on height above terrain */
    double px4_reset_s;             /* px4-like: continuous rejection before terrain reset */
    double min_variance[ALT_NX];    /* covariance diagonal floor */
    double max_variance[ALT_NX];    /* covariance diagonal ceiling */
} alt_config;

/* Per-sensor bookkeeping. */
typedef struct {
    double last_range_m;
    int32_t has_last;
    int32_t locked_out;              /* m1-baseline only: never cleared */
    int32_t n_candidates;
    double candidate_innovation_m[ALT_MAX_CANDIDATES];
    double candidate_noise_var_m2[ALT_MAX_CANDIDATES]; /* R of the held sample */
    double candidate_hat_var_m2[ALT_MAX_CANDIDATES];   /* var(h - t) when it was held */
    double rejecting_since_s;        /* px4-like: start of continuous rejection, <0 if none */
    uint32_t accepted, held, steps, rejected, stuck;
} alt_sensor;

typedef struct {
    alt_config cfg;
    double x[ALT_NX];
    double P[ALT_NX * ALT_NX];      /* row-major, kept symmetric positive definite */
    double time_s;                   /* sum of predict dt */
    double last_innovation_m;
    double last_nis;
    alt_sensor sensor[ALT_MAX_SENSORS];
} alt_filter;

/* Fill cfg with the documented defaults for a policy. Returns 0, or ALT_INVALID_INPUT. */
int32_t alt_default_config(int32_t policy, alt_config *cfg);

/* Check cfg and start the filter at x0 with diagonal variances var0. */
int32_t alt_init(alt_filter *f, const alt_config *cfg, const double x0[ALT_NX],
                 const double var0[ALT_NX]);

/* Discrete process model used by alt_predict, for tests and tools:
 * x' = F x + u_vec with u_vec = B * (force - g + vx^2/(R+h)), P' = F P F^T + Q. */
int32_t alt_process_model(const alt_filter *f, double dt_s, double vertical_specific_force_mps2,
                          double horizontal_speed_mps, double F[ALT_NX * ALT_NX],
                          double Q[ALT_NX * ALT_NX], double u_vec[ALT_NX]);

/* Propagate with the IMU's vertical specific force (up +, includes the bias). */
int32_t alt_predict(alt_filter *f, double dt_s, double vertical_specific_force_mps2,
                    double horizontal_speed_mps);

/* Bridge an IMU gap of dt_s (0 < dt_s <= ALT_MAX_GAP_S): propagate as alt_predict would with the
 * specific force held over the gap, and add the covariance of an unknown constant error of
 * accel_sigma_mps2 (1-sigma) in that force: G s^2 G^T with G = [dt^2/2, dt, 0, 0].
 * ALT_INVALID_INPUT (nothing changed) on a bad input. */
int32_t alt_predict_gap(alt_filter *f, double dt_s, double vertical_specific_force_mps2,
                        double horizontal_speed_mps, double accel_sigma_mps2);

/* Fuse one range: measurement h - t = range_m * cos_tilt, sigma_m the range's 1-sigma. */
int32_t alt_update_range(alt_filter *f, double range_m, double cos_tilt, double sigma_m,
                         int32_t sensor_id);

/* predict, then (if has_range) update: one call for the hot loop.
 * Returns the update status, ALT_NO_MEASUREMENT, or ALT_INVALID_INPUT (nothing changed). */
int32_t alt_step(alt_filter *f, double dt_s, double vertical_specific_force_mps2,
                 double horizontal_speed_mps, int32_t has_range, double range_m, double cos_tilt,
                 double sigma_m, int32_t sensor_id);

/* FDIR's re-open: clear a sensor's lock-out, step candidates and stuck memory, so its
 * next sample is judged afresh. Counters are kept. Returns 0 or ALT_INVALID_INPUT. */
int32_t alt_reopen_sensor(alt_filter *f, int32_t sensor_id);

/* Height above terrain (h - t) and its 1-sigma. */
double alt_height_above_terrain(const alt_filter *f);
double alt_height_above_terrain_sigma(const alt_filter *f);

/* Run n steps of alt_step. Outputs (any may be NULL): out_state n*4, out_sigma n*4,
 * out_hat n, out_hat_sigma n, out_status n. Returns the number of steps run (n). */
int64_t alt_run_batch(alt_filter *f, int64_t n, const double *dt_s, const double *force_mps2,
                      const double *horizontal_speed_mps, const double *range_m,
                      const double *cos_tilt, const double *sigma_m, const uint8_t *valid,
                      int32_t sensor_id, double *out_state, double *out_sigma, double *out_hat,
                      double *out_hat_sigma, int32_t *out_status);

/* Does nothing: the benchmark's measure of a bare cffi call. */
int32_t alt_noop(alt_filter *f);

/* Put the terrain under the vehicle at terrain_elevation_m (the datum frame), known to
 * variance_m2 relative to the vehicle: t takes h's covariance row, so var(h - t) becomes
 * variance_m2 and h and v stay (the same reset a terrain step makes). 0, or ALT_INVALID_INPUT
 * (nothing changed). */
int32_t alt_reset_terrain(alt_filter *f, double terrain_elevation_m, double variance_m2);

/* A measurement of the terrain's elevation under the vehicle itself (H = [0 0 0 1]), of
 * variance_m2: a Kalman update in the Joseph form. 0, or ALT_INVALID_INPUT (nothing changed). */
int32_t alt_update_terrain(alt_filter *f, double terrain_elevation_m, double variance_m2);

/* A measurement of the vehicle's altitude itself (H = [1 0 0 0]), of variance_m2 (a beam on
 * ground the look-ahead profile already holds). 0, or ALT_INVALID_INPUT (nothing changed). */
int32_t alt_update_altitude(alt_filter *f, double altitude_m, double variance_m2);

/* Move the terrain under the vehicle by dz_m (the ground it moved over rose or fell by that,
 * as the look-ahead profile says), with variance_m2 of doubt added to it. 0, or ALT_INVALID_INPUT. */
int32_t alt_shift_terrain(alt_filter *f, double dz_m, double variance_m2);

/* Add variance to one state's diagonal (0 h, 1 v, 2 b, 3 t): doubt added when something
 * changed that the model does not carry (an accelerometer bias that jumped). 0, or
 * ALT_INVALID_INPUT (nothing changed). */
int32_t alt_inflate(alt_filter *f, int32_t state, double variance);

/*
 * The look-ahead terrain profile (profile.c): elevation and variance per cell along the ground
 * track, built from slant beams, so the terrain under the vehicle can be predicted before it
 * gets there. Fixed size, no allocation: a ring of ALT_PROFILE_CELLS cells of cell_m each,
 * holding the window [origin - behind, origin + cells - behind) of cell indices, where origin
 * is the cell under the vehicle (alt_profile_move). Elevations are in the filter's datum frame.
 * A sample that agrees with its cell (within gate_sigma) is variance-weighted into it; one that
 * disagrees is held, and replace_after held samples that agree among themselves replace the
 * cell (the beam wins over a wrong map, or over terrain that was misread). Every entry point
 * checks its inputs; on ALT_PROFILE_INVALID nothing changed.
 */
#define ALT_PROFILE_CELLS 256

enum alt_profile_status {
    ALT_PROFILE_FUSED = 0,     /* agreed with the cell: weighted into it */
    ALT_PROFILE_NEW = 1,       /* the cell was empty (or held another place): it starts here */
    ALT_PROFILE_HELD = 2,      /* disagreed with the cell: held as a replacement candidate */
    ALT_PROFILE_REPLACED = 3,  /* enough candidates agreed among themselves: they are the cell now */
    ALT_PROFILE_OUTSIDE = 4,   /* outside the window the profile holds */
    ALT_PROFILE_INVALID = 5    /* non-finite or impossible input: nothing changed */
};

enum alt_cell_source { ALT_CELL_EMPTY = 0, ALT_CELL_BEAM = 1, ALT_CELL_MAP = 2 };

typedef struct {
    int64_t index;             /* the cell of the track it holds: floor(x / cell_m) */
    int32_t source;            /* enum alt_cell_source; ALT_CELL_EMPTY: nothing known */
    int32_t candidates;        /* disagreeing samples held */
    double elevation_m;
    double variance_m2;
    double common_m2;          /* the part of its variance more samples do not shrink (errors they share) */
    double time_s;             /* of the last sample that changed it */
    double candidate_mean_m;   /* the held samples' mean */
    double candidate_var_m2;   /* ... and the largest of their variances */
} alt_cell;

typedef struct {
    double cell_m;
    double gate_sigma;
    int32_t replace_after;
    int32_t behind;            /* cells kept behind the vehicle */
    int64_t origin;            /* the cell under the vehicle */
    double offset_m;           /* added to every stored elevation: alt_profile_shift */
    alt_cell cell[ALT_PROFILE_CELLS];
} alt_profile;

/* 1e-3 <= cell_m <= 1e5, 0 < gate_sigma <= 100, 1 <= replace_after <= 100,
 * 0 <= behind < ALT_PROFILE_CELLS. Starts empty, origin at cell 0. 0 or ALT_PROFILE_INVALID. */
int32_t alt_profile_init(alt_profile *p, double cell_m, double gate_sigma, int32_t replace_after,
                         int32_t behind);

/* The vehicle is at x_m: the window follows it (cells that leave it are forgotten when reused). */
int32_t alt_profile_move(alt_profile *p, double x_m);

/* The filter's frame moved by dz_m (an update moved its altitude estimate): every cell moves
 * with it, so cells measured relative to the vehicle stay relative to it. O(1). */
int32_t alt_profile_shift(alt_profile *p, double dz_m);

/* One elevation sample at x_m (variance_m2 > 0) at time_s, from source (BEAM or MAP; a MAP sample
 * only fills an empty cell or refreshes a MAP one). common_m2 (0 <= common_m2 <= variance_m2) is
 * the part of its variance that samples of one cell share (the attitude's error seen from
 * nearby): fusing samples never shrinks a cell's variance below the smallest common part seen.
 * Returns an enum alt_profile_status. */
int32_t alt_profile_observe(alt_profile *p, double x_m, double elevation_m, double variance_m2,
                            double common_m2, double time_s, int32_t source);

/* The profile's elevation at x_m, linear between the centres of the two cells around it when
 * both hold something (else the cell's own), with the larger of their variances. Returns the
 * source: ALT_CELL_EMPTY when nothing is known there, ALT_CELL_BEAM only when both cells are the
 * beam's (a map's cell on either side makes it ALT_CELL_MAP). */
int32_t alt_profile_interpolate(const alt_profile *p, double x_m, double *elevation_m, double *variance_m2);

/* What the profile holds at x_m: its source (ALT_CELL_EMPTY: nothing, or outside the window),
 * and (when not empty) elevation, variance and time through the pointers. */
int32_t alt_profile_lookup(const alt_profile *p, double x_m, double *elevation_m, double *variance_m2,
                           double *time_s);

/* The nearest cell holding something beyond x_m's cell, looking direction (+1 downrange, -1 up)
 * over at most max_cells cells (1..ALT_PROFILE_CELLS): its source (ALT_CELL_EMPTY: none within
 * reach or the window) and (when found) the downrange of its centre, elevation, variance, time. */
int32_t alt_profile_next_known(const alt_profile *p, double x_m, int32_t direction, int32_t max_cells,
                               double *x_cell_m, double *elevation_m, double *variance_m2, double *time_s);

#endif
