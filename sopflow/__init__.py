"""sopflow's command line: the composition root that wires the engine, API and worker."""
