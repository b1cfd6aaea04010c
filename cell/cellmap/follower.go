package cellmap

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	cellarv1 "github.com/cellarsim/cellar/api/proto/cellar/v1"
)

// FetchFunc asks the map group for a map newer than known, waiting a while for one;
// it returns the map the group has (the same version when nothing changed).
type FetchFunc func(ctx context.Context, known uint64) (*cellarv1.Map, error)

// FollowerOptions configure a Follower; the zero value of a field takes its default.
type FollowerOptions struct {
	// CachePath is the file the last map is kept in across restarts (see Save); empty,
	// the map is kept in memory only.
	CachePath string
	// Fetch asks the map group for a newer map. Required by Run.
	Fetch FetchFunc
	// OnChange, if not nil, is called with every newer map the follower takes, after
	// it is cached.
	OnChange func(*cellarv1.Map)
	// Retry is how long Run waits after a failed fetch (default 1 s).
	Retry  time.Duration
	Logger *slog.Logger
}

// EnsureDefaults fills the fields left at their zero value.
func (o *FollowerOptions) EnsureDefaults() {
	if o.Retry == 0 {
		o.Retry = time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Validate reports what makes the options unusable.
func (o *FollowerOptions) Validate() error {
	if o.Retry < 0 {
		return fmt.Errorf("cellmap: negative retry %v", o.Retry)
	}
	return nil
}

// Follower holds the newest map a gateway knows: the one it started with (from its
// cache file, else the slot table its topology gives, at version 0), then each newer
// one the map group gives. It never goes back to an older version, and keeps the map
// it has while the group is away.
type Follower struct {
	o   FollowerOptions
	cur atomic.Pointer[cellarv1.Map]
	mu  sync.Mutex // serialises takes (and the cache file's writes)
}

// NewFollower returns a follower that starts with the map in its cache file when
// there is one, else with fallback.
func NewFollower(o FollowerOptions, fallback *cellarv1.Map) (*Follower, error) {
	o.EnsureDefaults()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	f := &Follower{o: o}
	f.cur.Store(fallback)
	if o.CachePath != "" {
		cached, err := Load(o.CachePath)
		if err != nil {
			return nil, err
		}
		if cached != nil && cached.GetVersion() > fallback.GetVersion() {
			f.cur.Store(cached)
			o.Logger.Info("cell map loaded from the cache file", "version", cached.Version, "buckets", len(cached.Buckets), "file", o.CachePath)
		}
	}
	return f, nil
}

// Map is the newest map the follower holds.
func (f *Follower) Map() *cellarv1.Map { return f.cur.Load() }

// Version is the version of Map (0 before any map of the group).
func (f *Follower) Version() uint64 { return f.cur.Load().GetVersion() }

// Offer takes m if it is newer than the map held, and reports whether it did. A write
// to the map group offers the map the group answered with, so that the gateway that
// made a change routes by it at once.
func (f *Follower) Offer(m *cellarv1.Map) bool {
	if m == nil {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if m.GetVersion() <= f.Version() {
		return false
	}
	if f.o.CachePath != "" {
		if err := Save(f.o.CachePath, m); err != nil {
			f.o.Logger.Warn("cell map not cached; a restart will start from an older map", "err", err)
		}
	}
	f.cur.Store(m)
	if f.o.OnChange != nil {
		f.o.OnChange(m)
	}
	return true
}

// Run follows the map group until ctx is done: it asks for a map newer than the one
// held, takes what comes, and asks again; after a failure it waits Retry and goes on
// with the map it has.
func (f *Follower) Run(ctx context.Context) {
	failing := false
	for ctx.Err() == nil {
		m, err := f.o.Fetch(ctx, f.Version())
		if err != nil {
			if !failing && ctx.Err() == nil {
				f.o.Logger.Warn("cell map group unreachable; serving with the map held", "version", f.Version(), "err", err)
			}
			failing = true
			select {
			case <-ctx.Done():
			case <-time.After(f.o.Retry):
			}
			continue
		}
		if failing {
			f.o.Logger.Info("cell map group reachable again", "version", m.GetVersion())
			failing = false
		}
		f.Offer(m)
	}
}
