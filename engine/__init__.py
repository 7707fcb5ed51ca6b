"""sopflow's engine: the pure domain, storage and the service layer."""
