"""Generated code for the `energy.v1` protobuf package; written only by `make gen`."""
