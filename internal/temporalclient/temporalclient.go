// Package temporalclient dials Temporal from the shared config for the three commands. It is
// wiring, not domain logic: the only package under internal/ that imports the Temporal SDK.
package temporalclient

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"

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

// EnsureAttributes registers each search attribute missing from the namespace with its
// type, and refuses one registered with another type (its upserts would fail every run that
// sets it). Servers that refuse to register (no permission) get a clear error naming the
// attribute and the command an operator can register it with.
func EnsureAttributes(ctx context.Context, c client.Client, namespace string, keys ...temporal.SearchAttributeKey) error {
	op := c.OperatorService()
	list, err := op.ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: namespace})
	if err != nil {
		return fmt.Errorf("list search attributes of namespace %s: %w", namespace, err)
	}
	missing := map[string]enumspb.IndexedValueType{}
	for _, k := range keys {
		name, want := k.GetName(), k.GetValueType()
		have, ok := list.GetCustomAttributes()[name]
		switch {
		case !ok:
			missing[name] = want
		case have != want:
			return fmt.Errorf("search attribute %s is registered in namespace %s as %s, this tool needs %s: remove it (temporal operator search-attribute remove --name %s) and start the worker again",
				name, namespace, have, want, name)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	_, err = op.AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{Namespace: namespace, SearchAttributes: missing})
	var exists *serviceerror.AlreadyExists
	if err != nil && !errors.As(err, &exists) {
		var how []string
		for name, typ := range missing {
			how = append(how, fmt.Sprintf("temporal operator search-attribute create --name %s --type %s", name, typ))
		}
		sort.Strings(how)
		return fmt.Errorf("register search attributes in namespace %s: %w (register them with: %s)", namespace, err, strings.Join(how, "; "))
	}
	return nil
}
