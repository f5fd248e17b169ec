// Command otelcol is the smallest OpenTelemetry Collector the tests need: an OTLP receiver (gRPC and HTTP)
// and the debug and file exporters, nothing else. test/kit/otel-collector.ts starts it with a configuration
// whose file exporter writes what it received as OTLP/JSON lines, which the tests read back.
//
// Built by scripts/install-otelcol.sh from the Go module proxy, with the versions go.mod and go.sum pin,
// without the OpenTelemetry Collector Builder (ocb): these few lines are what ocb would generate.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/open-telemetry/opentelemetry-collector-contrib/exporter/fileexporter"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/provider/envprovider"
	"go.opentelemetry.io/collector/confmap/provider/fileprovider"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/debugexporter"
	"go.opentelemetry.io/collector/otelcol"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/otlpreceiver"
	"go.opentelemetry.io/collector/service/telemetry"
	"go.uber.org/zap"
)

// telemetryConfig is the collector's own `service::telemetry` section: empty, nothing is configurable.
type telemetryConfig struct{}

// telemetryFactory logs the collector's own messages to stderr with zap, and has no internal metrics or
// traces. Without it the collector would need otelconftelemetry, which pulls in much more (k8s client-go
// among it) and doubles the build.
func telemetryFactory() telemetry.Factory {
	return telemetry.NewFactory(
		func() component.Config { return &telemetryConfig{} },
		telemetry.WithCreateLogger(func(
			_ context.Context, settings telemetry.LoggerSettings, _ component.Config,
		) (*zap.Logger, component.ShutdownFunc, error) {
			config := zap.NewProductionConfig()
			config.Encoding = "console"
			config.Sampling = nil
			build := config.Build
			if settings.BuildZapLogger != nil {
				build = func(options ...zap.Option) (*zap.Logger, error) {
					return settings.BuildZapLogger(config, options...)
				}
			}
			logger, err := build()
			if err != nil {
				return nil, nil, err
			}
			return logger, func(context.Context) error {
				_ = logger.Sync() // stderr cannot always be synced (a pipe); nothing is lost by ignoring it
				return nil
			}, nil
		}),
	)
}

func components() (otelcol.Factories, error) {
	receivers, err := otelcol.MakeFactoryMap[receiver.Factory](otlpreceiver.NewFactory())
	if err != nil {
		return otelcol.Factories{}, err
	}
	exporters, err := otelcol.MakeFactoryMap[exporter.Factory](
		debugexporter.NewFactory(),
		fileexporter.NewFactory(),
	)
	if err != nil {
		return otelcol.Factories{}, err
	}
	return otelcol.Factories{
		Receivers: receivers,
		Exporters: exporters,
		Telemetry: telemetryFactory(),
	}, nil
}

func main() {
	command := otelcol.NewCommand(otelcol.CollectorSettings{
		BuildInfo: component.BuildInfo{
			Command:     "otelcol",
			Description: "OpenTelemetry Collector for the envoy-authz-sidecar tests (OTLP in; debug, file out)",
			Version:     "0.161.0",
		},
		Factories: components,
		ConfigProviderSettings: otelcol.ConfigProviderSettings{
			ResolverSettings: confmap.ResolverSettings{
				ProviderFactories: []confmap.ProviderFactory{
					envprovider.NewFactory(),
					fileprovider.NewFactory(),
				},
				DefaultScheme: "env",
			},
		},
	})
	if err := command.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
