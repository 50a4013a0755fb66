// The Go module of the generated energy.v1 code (go_package in protos/).
// `make clients` writes the code into energy/v1; only this file is committed.
module github.com/energy-ingestion-engine/energy/gen/go

go 1.24

require (
	google.golang.org/grpc v1.85.0
	google.golang.org/protobuf v1.36.12
)
