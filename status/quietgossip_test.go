package status

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

func TestGossipLinesAreDebug(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(gossipAsDebug{slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn})})
	log.Warn("[ERR] memberlist: Failed fallback ping", "component", "gossip")
	log.Info("probe", "node", "cell-0-index-0")
	log.Warn("status: read audit log", "err", "denied")
	got := buf.String()
	if strings.Contains(got, "memberlist") || strings.Contains(got, "probe") {
		t.Errorf("gossip or info lines logged at warn level:\n%s", got)
	}
	if !strings.Contains(got, "read audit log") {
		t.Errorf("a warning of the view itself was dropped:\n%s", got)
	}
	buf.Reset()
	debug := slog.New(gossipAsDebug{slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})})
	debug.Warn("[ERR] memberlist: Failed fallback ping", "component", "gossip")
	if !strings.Contains(buf.String(), "level=DEBUG") {
		t.Errorf("at debug level the gossip line is gone: %q", buf.String())
	}
}
