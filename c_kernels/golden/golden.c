/*
 * Golden-vector harness: drives the filter through every policy and status with
 * deterministic inputs (an integer LCG, no libm) and prints every state and
 * covariance bit pattern. The output must be byte-identical on x86-64, aarch64 and
 * armhf; `make cross-check` compares them under qemu-user.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "../altfilter.h"

#define STEPS 600

static uint64_t lcg_state = 0x9E3779B97F4A7C15ull;

static double uniform(void)
{
    lcg_state = lcg_state * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(lcg_state >> 11) / 9007199254740992.0; /* [0, 1) */
}

/* Approximately normal, mean 0, variance 1, from + - * / only. */
static double gauss(void)
{
    double s = 0.0;
    for (int i = 0; i < 12; ++i) {
        s += uniform();
    }
    return s - 6.0;
}

static uint64_t bits(double x)
{
    uint64_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

static void dump(int policy, int k, int32_t status, const alt_filter *f)
{
    printf("%d %d %" PRId32, policy, k, status);
    for (int i = 0; i < ALT_NX; ++i) {
        printf(" %016" PRIx64, bits(f->x[i]));
    }
    for (int i = 0; i < ALT_NX * ALT_NX; ++i) {
        printf(" %016" PRIx64, bits(f->P[i]));
    }
    printf("\n");
}

int main(void)
{
    for (int policy = ALT_POLICY_NONE; policy <= ALT_POLICY_TERRAIN_AWARE; ++policy) {
        alt_config cfg;
        alt_filter f;
        const double x0[ALT_NX] = {9000.0, -45.0, 0.0, 0.0};
        const double var0[ALT_NX] = {40000.0, 1.0, 1.0e-4, 2500.0};
        alt_default_config(policy, &cfg);
        cfg.px4_reset_s = 1.0; /* reach the px4-like terrain reset inside the run */
        if (alt_init(&f, &cfg, x0, var0) != 0) {
            return 1;
        }
        double h = 9000.0, v = -45.0, terrain = 0.0, stuck_range = 0.0;
        for (int k = 0; k < STEPS; ++k) {
            const double dt = 0.01 + 0.001 * uniform();
            const double accel = 0.5 * gauss();
            h += v * dt + 0.5 * accel * dt * dt;
            v += accel * dt;
            if (k == 150) {
                terrain = -4000.0; /* cliff down */
            }
            if (k == 400) {
                terrain = 600.0; /* wall up */
            }
            const double force = accel + 1.62 - 300.0 * 300.0 / (1737.4e3 + h) + 0.01 * gauss();
            int32_t status;
            if (k % 5 == 0) {
                const double cos_tilt = 0.98 + 0.02 * uniform();
                const double true_range = (h - terrain) / cos_tilt;
                const double sigma = 0.3 + 5.0e-4 * true_range;
                double range = true_range + sigma * gauss();
                if (k == 90 || k == 300) {
                    range += 2500.0; /* spike */
                }
                if (k >= 500 && k < 540) {
                    range = stuck_range; /* stuck */
                } else {
                    stuck_range = range;
                }
                if (k == 60) {
                    range = -1.0; /* invalid */
                }
                status = alt_step(&f, dt, force, 300.0, 1, range, cos_tilt, sigma, 0);
            } else {
                status = alt_step(&f, dt, force, 300.0, 0, 0.0, 1.0, 1.0, 0);
            }
            dump(policy, k, status, &f);
        }
    }
    return 0;
}
