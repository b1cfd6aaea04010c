package clustertest

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
)

// logLines is how many of each node's last log lines a cluster keeps.
const logLines = 400

// tailLines is how many of them a failing test prints per node.
const tailLines = 40

// nodeLogs keeps the recent log of every node of a cluster in memory, one ring per
// node, so that a failing test can print the tail of the nodes that had something to
// say (a warning or an error) instead of every line of every node. With
// CELLAR_TEST_LOG set, every node also logs to stderr at debug level as it goes.
type nodeLogs struct {
	mu      sync.Mutex
	rings   map[string]*ring
	verbose bool
}

func newNodeLogs() *nodeLogs {
	return &nodeLogs{rings: map[string]*ring{}, verbose: os.Getenv("CELLAR_TEST_LOG") != ""}
}

// logger is the logger of node id.
func (l *nodeLogs) logger(id string) *slog.Logger {
	l.mu.Lock()
	r, ok := l.rings[id]
	if !ok {
		r = &ring{}
		l.rings[id] = r
	}
	l.mu.Unlock()
	level := slog.LevelInfo
	var h slog.Handler = slog.NewTextHandler(r, &slog.HandlerOptions{Level: level})
	if l.verbose {
		h = slog.NewTextHandler(&prefixed{id: id, w: r}, &slog.HandlerOptions{Level: slog.LevelDebug})
	}
	return slog.New(h).With("node", id)
}

// tails returns, for every node that logged a warning or an error, the last lines of
// its log, in the order of ids.
func (l *nodeLogs) tails(ids []string) string {
	var b strings.Builder
	for _, id := range ids {
		l.mu.Lock()
		r := l.rings[id]
		l.mu.Unlock()
		if r == nil {
			continue
		}
		lines, warned := r.tail(tailLines)
		if !warned {
			continue
		}
		fmt.Fprintf(&b, "--- last %d log lines of %s\n%s", len(lines), id, strings.Join(lines, ""))
	}
	return b.String()
}

// ring is the last logLines lines written to it; it remembers whether any of all the
// lines ever written was a warning or an error.
type ring struct {
	mu     sync.Mutex
	lines  []string
	next   int
	warned bool
}

func (r *ring) Write(p []byte) (int, error) {
	line := string(p)
	r.mu.Lock()
	defer r.mu.Unlock()
	if strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") {
		r.warned = true
	}
	if len(r.lines) < logLines {
		r.lines = append(r.lines, line)
	} else {
		r.lines[r.next] = line
		r.next = (r.next + 1) % logLines
	}
	return len(p), nil
}

// tail is the last n lines, oldest first, and whether the node ever warned.
func (r *ring) tail(n int) ([]string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ordered := append(append([]string(nil), r.lines[r.next:]...), r.lines[:r.next]...)
	if len(ordered) > n {
		ordered = ordered[len(ordered)-n:]
	}
	return ordered, r.warned
}

// prefixed writes each line both to stderr, prefixed with the node's id, and to w.
type prefixed struct {
	id string
	w  *ring
}

func (p *prefixed) Write(b []byte) (int, error) {
	os.Stderr.Write(append([]byte(p.id+": "), bytes.TrimRight(b, "\n")...))
	os.Stderr.Write([]byte("\n"))
	return p.w.Write(b)
}
