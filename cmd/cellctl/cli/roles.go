package cli

import (
	"context"
	"log/slog"

	"github.com/spf13/pflag"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/cell/index"
	"github.com/cellarsim/cellar/cell/placement"
	"github.com/cellarsim/cellar/cell/storage"
	"github.com/cellarsim/cellar/gateway"
)

// runFunc runs a daemon whose flags have been parsed, until ctx ends.
type runFunc func(ctx context.Context, log *slog.Logger) error

// daemonFlags registers the flags of a role's Config on fs and returns the function that
// runs the daemon with what they were set to.
func daemonFlags(role cell.Role, fs *pflag.FlagSet) runFunc {
	switch role {
	case cell.RoleIndex:
		var cfg index.Config
		cfg.Role = role
		cfg.AddFlags(fs)
		return func(ctx context.Context, log *slog.Logger) error {
			cfg.Logger = log
			defaultID(&cfg.Options)
			return index.Run(ctx, cfg)
		}
	case cell.RolePlacement:
		var cfg placement.Config
		cfg.Role = role
		cfg.AddFlags(fs)
		return func(ctx context.Context, log *slog.Logger) error {
			cfg.Logger = log
			defaultID(&cfg.Options)
			return placement.Run(ctx, cfg)
		}
	case cell.RoleStorage:
		var cfg storage.Config
		cfg.Role = role
		cfg.AddFlags(fs)
		return func(ctx context.Context, log *slog.Logger) error {
			cfg.Logger = log
			defaultID(&cfg.Options)
			return storage.Run(ctx, cfg)
		}
	case cell.RoleGateway:
		var cfg gateway.Config
		cfg.Role = role
		cfg.AddFlags(fs)
		topo := topologyFlag(fs)
		return func(ctx context.Context, log *slog.Logger) error {
			t, err := topo()
			if err != nil {
				return err
			}
			cfg.Topology = t
			if !fs.Changed("s3-addr") && t.S3Addr != "" {
				cfg.S3Addr = t.S3Addr
			}
			cfg.Logger = log
			defaultID(&cfg.Options)
			return gateway.Run(ctx, cfg)
		}
	}
	return nil
}
