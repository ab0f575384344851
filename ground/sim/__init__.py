"""The descent simulator: dynamics, terrain, sensor and fault models, the world that joins them."""
