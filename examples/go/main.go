// Command energy-example is a Go client of the Energy Ingestion Engine, built
// from the code `make clients` generates (buf.gen.yaml) from protos/.
//
// It stores one meter reading and one vehicle reading taken now, links the
// vehicle to the meter, and prints the vehicle's charging performance over
// the last hour:
//
//	go run . -target localhost:50051 -vehicle VEH-GO-1 -meter METER-GO-1
//
// Every call has a deadline; an error prints its gRPC code and exits 1.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	energyv1 "github.com/energy-ingestion-engine/energy/gen/go/energy/v1"
)

func main() {
	target := flag.String("target", "localhost:50051", "host:port of the server")
	vehicleID := flag.String("vehicle", "VEH-GO-1", "vehicle id")
	meterID := flag.String("meter", "METER-GO-1", "meter id")
	timeout := flag.Duration("timeout", 10*time.Second, "deadline of each call")
	flag.Parse()
	if err := run(*target, *vehicleID, *meterID, *timeout); err != nil {
		if s, ok := status.FromError(err); ok {
			fmt.Fprintf(os.Stderr, "energy-example: %s: %s\n", s.Code(), s.Message())
		} else {
			fmt.Fprintf(os.Stderr, "energy-example: %v\n", err)
		}
		os.Exit(1)
	}
}

func run(target, vehicleID, meterID string, timeout time.Duration) error {
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	ingest := energyv1.NewIngestServiceClient(conn)
	analytics := energyv1.NewAnalyticsServiceClient(conn)
	call := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.Background(), timeout)
	}

	now := time.Now().UTC().Truncate(time.Microsecond)
	ctx, cancel := call()
	defer cancel()
	stored, err := ingest.IngestReadings(ctx, &energyv1.IngestReadingsRequest{
		Readings: []*energyv1.Reading{
			{Kind: &energyv1.Reading_Meter{Meter: &energyv1.MeterReading{
				MeterId: meterID, KwhConsumedAc: ptr(1.25), Voltage: ptr(230.1), Timestamp: timestamppb.New(now),
			}}},
			{Kind: &energyv1.Reading_Vehicle{Vehicle: &energyv1.VehicleReading{
				VehicleId: vehicleID, Soc: ptr(64.5), KwhDeliveredDc: ptr(1.1), BatteryTemp: ptr(31.5),
				Timestamp: timestamppb.New(now),
			}}},
		},
	})
	if err != nil {
		return err
	}
	summary := stored.GetSummary()
	fmt.Printf("ingested: accepted %d, duplicate %d, stale %d, rejected %d\n",
		summary.GetAcceptedCount(), summary.GetDuplicateCount(), summary.GetStaleCount(), summary.GetRejectedCount())

	ctx, cancel = call()
	defer cancel()
	if _, err := analytics.LinkVehicle(ctx, &energyv1.LinkVehicleRequest{VehicleId: vehicleID, MeterId: meterID}); err != nil {
		return err
	}

	ctx, cancel = call()
	defer cancel()
	performance, err := analytics.GetVehiclePerformance(ctx, &energyv1.GetVehiclePerformanceRequest{
		VehicleId: vehicleID,
		Window: &energyv1.TimeWindow{
			StartTime: timestamppb.New(now.Add(-time.Hour)),
			EndTime:   timestamppb.New(now.Add(time.Second)),
		},
	})
	if err != nil {
		return err
	}
	fmt.Printf("performance of %s (meter %s): ac %.4f kWh, dc %.4f kWh", performance.GetVehicleId(),
		performance.GetMeterId(), performance.GetAcConsumedKwh(), performance.GetDcDeliveredKwh())
	if performance.EfficiencyRatio != nil {
		fmt.Printf(", efficiency %.4f", performance.GetEfficiencyRatio())
	}
	fmt.Printf(", %d meter and %d vehicle readings\n",
		performance.GetMeterReadingCount(), performance.GetVehicleReadingCount())
	return nil
}

func ptr(value float64) *float64 { return &value }
