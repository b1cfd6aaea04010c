package status

import (
	"context"
	"log/slog"
)

// gossipAsDebug is a slog handler that logs the gossip library's own lines at debug
// level. A status view watches nodes fail on purpose: memberlist's "[ERR] failed to
// ping" for a drained node is what the page shows as DOWN, not a fault of the view, and
// must not scroll the operator's terminal.
type gossipAsDebug struct{ slog.Handler }

func (h gossipAsDebug) Handle(ctx context.Context, r slog.Record) error {
	gossip := false
	r.Attrs(func(a slog.Attr) bool {
		gossip = a.Key == "component" && a.Value.String() == "gossip"
		return !gossip
	})
	if gossip && r.Level > slog.LevelDebug {
		r.Level = slog.LevelDebug
	}
	if !h.Handler.Enabled(ctx, r.Level) {
		return nil
	}
	return h.Handler.Handle(ctx, r)
}

// Enabled lets every level through to Handle, which decides once it has seen the
// record's attributes.
func (h gossipAsDebug) Enabled(context.Context, slog.Level) bool { return true }

func (h gossipAsDebug) WithAttrs(as []slog.Attr) slog.Handler {
	return gossipAsDebug{h.Handler.WithAttrs(as)}
}

func (h gossipAsDebug) WithGroup(name string) slog.Handler {
	return gossipAsDebug{h.Handler.WithGroup(name)}
}
