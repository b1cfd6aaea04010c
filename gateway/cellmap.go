package gateway

import (
	"context"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	cellarv1 "github.com/cellarsim/cellar/api/proto/cellar/v1"
	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/cell/cellmap"
	"github.com/cellarsim/cellar/internal/daemon"
	"github.com/cellarsim/cellar/router"
)

// mapWait is how long a fetch of the cell map waits at the map group for a newer map
// before it asks again; a change reaches a gateway as soon as the group applies it. It
// is shorter than the deadline every call to a node has (callTimeout).
const mapWait = callTimeout - 500*time.Millisecond

// followMap makes the gateway route by the cell map of the topology's map group: it
// starts with the map in its state directory's cache file (else the slot table the
// topology gives, at version 0, until the group answers), routes by the newest map it
// holds, caches each newer one, gossips and exports its version, and keeps serving with
// the map it has while the group is away. It returns nil when the topology has no map
// group.
func followMap(cfg Config, d *daemon.Daemon, rt *router.Router) (*cellmap.Follower, error) {
	if cfg.Topology.MapNodes == 0 {
		return nil, nil
	}
	seed := cellmap.Seed(cfg.Topology.CellIDs(), cfg.Topology.Slots, cfg.Topology.Partition)
	seed.Version = 0
	o := cellmap.FollowerOptions{
		Logger: d.Log,
		Fetch: func(ctx context.Context, known uint64) (*cellarv1.Map, error) {
			mc, err := rt.MapGroup(false)
			if err != nil {
				return nil, err
			}
			m, err := mc.Get(ctx, &cellarv1.GetMapRequest{KnownVersion: known, WaitMs: mapWait.Milliseconds()})
			if err != nil || len(m.GetSlots()) > 0 {
				return m, err
			}
			// A new map group holds no slot table (perhaps bucket entries already): the
			// first gateway to see it gives it the topology's (every gateway computes
			// the same one).
			if mc, err = rt.MapGroup(true); err != nil {
				return nil, err
			}
			return mc.Apply(ctx, &cellarv1.MapCommand{Op: &cellarv1.MapCommand_Seed{Seed: &cellarv1.SeedMap{
				Slots: seed.Slots, Partition: seed.Partition}}})
		},
		OnChange: func(m *cellarv1.Map) {
			d.Members.Update(func(n *cell.Node) { n.MapVersion = m.GetVersion() })
			d.Log.Info("cell map", "version", m.GetVersion(), "buckets", len(m.GetBuckets()))
		},
	}
	if cfg.StateDir != "" {
		o.CachePath = filepath.Join(cfg.StateDir, cellmap.CacheFile)
	} else {
		d.Log.Warn("no --state-dir: the cell map is not kept on disk, and a restart while the map group is away routes by the topology's slot table")
	}
	f, err := cellmap.NewFollower(o, seed)
	if err != nil {
		return nil, err
	}
	rt.UseMap(f.Map)
	d.Members.Update(func(n *cell.Node) { n.MapVersion = f.Version() })
	if err := d.Metrics.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "cellar_gateway_map_version",
		Help: "Version of the cell map this gateway routes by (0: none from the map group yet).",
	}, func() float64 { return float64(f.Version()) })); err != nil {
		return nil, err
	}
	return f, nil
}

// refreshMap asks the map group for its map now and takes it if it is newer. It
// reports whether bucket's cell changed: a request the old cell refused (the bucket
// moved away) may then be tried on the new one.
func (c *cells) refreshMap(ctx context.Context, bucket, cellID string) bool {
	if c.maps == nil || c.readMap(ctx) != nil {
		return false
	}
	return c.r.BucketCell(bucket) != cellID
}

// readMap asks the map group's leader for its map now and takes it if it is newer
// than the one the gateway routes by. It needs a map group (c.maps not nil).
func (c *cells) readMap(ctx context.Context) error {
	mc, err := c.r.MapGroup(true)
	if err != nil {
		return err
	}
	m, err := mc.Get(ctx, &cellarv1.GetMapRequest{})
	if err != nil {
		return err
	}
	c.maps.Offer(m)
	return nil
}
