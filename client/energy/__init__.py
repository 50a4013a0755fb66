"""Client side of the Energy Ingestion Engine: the generated `energy.v1` stubs."""
