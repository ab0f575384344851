"""Device interfaces (protocols) and their implementations: simulated here, real drivers later."""
