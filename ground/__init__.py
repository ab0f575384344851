"""Ground side: simulator, terrain, sensor and fault models, campaigns, reports."""
