// Package temporalclient dials Temporal from the shared config for the three commands. It is
// wiring, not domain logic: the only package under internal/ that imports the Temporal SDK.
package temporalclient

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/config"
)

// Dial connects to temporal.hostPort and checks the namespace answers, failing within
// timeout with one line naming the address.
func Dial(ctx context.Context, cfg config.Config, logger *slog.Logger, timeout time.Duration) (client.Client, error) {
	return DialWithMetrics(ctx, cfg, logger, timeout, nil)
}

// DialWithMetrics is Dial with the SDK's metrics reported through metrics (nil: none).
func DialWithMetrics(ctx context.Context, cfg config.Config, logger *slog.Logger, timeout time.Duration, metrics client.MetricsHandler) (client.Client, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	opts := client.Options{HostPort: cfg.Temporal.HostPort, Namespace: cfg.Temporal.Namespace, MetricsHandler: metrics}
	if logger != nil {
		opts.Logger = log.NewStructuredLogger(logger)
	}
	c, err := client.DialContext(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("connect to temporal %s: %w", cfg.Temporal.HostPort, err)
	}
	if _, err := c.CheckHealth(ctx, &client.CheckHealthRequest{}); err != nil {
		c.Close()
		return nil, fmt.Errorf("temporal %s not healthy: %w", cfg.Temporal.HostPort, err)
	}
	return c, nil
}

// EnsureKeywordAttribute registers a Keyword search attribute in the namespace if it is
// missing. Servers that refuse (no permission) get a clear error naming the attribute, so
// an operator can register it with `temporal operator search-attribute create`.
func EnsureKeywordAttribute(ctx context.Context, c client.Client, namespace, name string) error {
	op := c.OperatorService()
	list, err := op.ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: namespace})
	if err != nil {
		return fmt.Errorf("list search attributes: %w", err)
	}
	if _, ok := list.GetCustomAttributes()[name]; ok {
		return nil
	}
	_, err = op.AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
		Namespace:        namespace,
		SearchAttributes: map[string]enumspb.IndexedValueType{name: enumspb.INDEXED_VALUE_TYPE_KEYWORD},
	})
	var exists *serviceerror.AlreadyExists
	if err != nil && !errors.As(err, &exists) {
		return fmt.Errorf("register search attribute %s (Keyword): %w (register it with: temporal operator search-attribute create --name %s --type Keyword)", name, err, name)
	}
	return nil
}
