package drill

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/drill/guard"
)

// WithoutGuardrails is the scenario as it plays on a cluster whose guardrails are off
// (guardrails: off in its topology): what the scenario expects the guardrails to
// refuse goes through as typed, so a drain that expects a refusal expects to be done,
// and a drain right after it that only repeats it with an override is dropped (the
// nodes are already down). Every other step is kept. s is not changed.
func (s *Scenario) WithoutGuardrails() *Scenario {
	out := *s
	out.Steps = nil
	var refused *DrainStep
	for _, st := range s.Steps {
		if d := st.Drain; d != nil {
			if refused != nil && d.Override != "" && sameDrain(*refused, *d) {
				refused = nil
				continue
			}
			refused = nil
			if d.Expect == ExpectRefused {
				c := *d
				c.Expect = ExpectDone
				st.Drain = &c
				refused = &c
			}
		} else if st.Wait == nil {
			refused = nil
		}
		out.Steps = append(out.Steps, st)
	}
	return &out
}

func sameDrain(a, b DrainStep) bool {
	return a.Cell == b.Cell && a.Tier == b.Tier && a.Count == b.Count && slices.Equal(a.Nodes, b.Nodes)
}

// SideKeys are the settings a side of a comparison may give (cellctl drill compare
// --a and --b), as "key=value,key=value".
var SideKeys = []string{"cells", "guardrails", "index_nodes", "placement_nodes", "storage_nodes",
	"gateways", "sharding", "shard_size", "tenants"}

// ParseSide applies a side's settings ("cells=1,guardrails=off") to base and returns
// the topology. Keys may be written with - or _. An unknown key, a bad number or an
// invalid shape is an error naming it.
func ParseSide(spec string, base cell.Topology) (cell.Topology, error) {
	t := base
	if strings.TrimSpace(spec) == "" {
		return t, nil
	}
	for _, kv := range strings.Split(spec, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		k = strings.ReplaceAll(strings.TrimSpace(k), "-", "_")
		v = strings.TrimSpace(v)
		if !ok || k == "" || v == "" {
			return t, fmt.Errorf("%q is not key=value (keys: %s)", kv, strings.Join(SideKeys, ", "))
		}
		num := func(dst *int) error {
			n, err := strconv.Atoi(v)
			if err != nil {
				return fmt.Errorf("%s=%s: want a whole number", k, v)
			}
			*dst = n
			return nil
		}
		var err error
		switch k {
		case "cells":
			err = num(&t.Cells)
		case "index_nodes":
			err = num(&t.IndexNodes)
		case "placement_nodes":
			err = num(&t.PlacementNodes)
		case "storage_nodes":
			err = num(&t.StorageNodes)
		case "guardrails":
			if v != cell.GuardrailsOn && v != cell.GuardrailsOff {
				err = fmt.Errorf("guardrails=%s: want on or off", v)
			}
			t.Guardrails = v
		case "gateways":
			err = num(&t.Gateways)
		case "shard_size":
			err = num(&t.ShardSize)
		case "sharding":
			t.Sharding = v
		case "tenants":
			var n int
			if err = num(&n); err == nil {
				if n < 1 || n > MaxSideTenants {
					err = fmt.Errorf("tenants=%d: want 1 to %d", n, MaxSideTenants)
				} else if n != len(t.Tenants) {
					t.Tenants, err = cell.NewTenants(n)
				}
			}
		default:
			err = fmt.Errorf("unknown key %q (keys: %s)", k, strings.Join(SideKeys, ", "))
		}
		if err != nil {
			return t, err
		}
	}
	if len(t.Tenants) > 0 && t.Routers == 0 {
		t.Routers = 1 // tenants reach their shards of the gateways through a front router
	}
	if err := t.ValidateShape(); err != nil {
		return t, err
	}
	return t, nil
}

// MaxSideTenants is the most tenants a side of a comparison may have.
const MaxSideTenants = 1000

// DescribeSide is a side's cluster in a few words: "1 cell, guardrails off", and for
// a cluster with tenants behind a front router "1 cell, guardrails on, shuffle
// sharding: 8 gateways, shard size 2, 100 tenants".
func DescribeSide(t cell.Topology) string {
	g := "guardrails on"
	if t.GuardrailsOff() {
		g = "guardrails OFF"
	}
	s := fmt.Sprintf("%d cell%s, %s", t.Cells, plural(t.Cells), g)
	if len(t.Tenants) > 0 && t.Routers > 0 {
		s += fmt.Sprintf(", %s sharding: %d gateway%s, shard size %d, %d tenants",
			t.ShardingMode(), t.Gateways, plural(t.Gateways), t.TenantShardSize(), len(t.Tenants))
	}
	return s
}

// Comparison is two drills side by side: the same scenario on two clusters. Its input
// is only the two sides' names and reports, so that any pair of drill results can be
// compared.
type Comparison struct {
	Title string      `json:"title"`
	A     CompareSide `json:"a"`
	B     CompareSide `json:"b"`
}

// CompareSide is one side: a name, the cluster it ran on in words, and its report.
type CompareSide struct {
	Name   string  `json:"name"`  // "A"
	Setup  string  `json:"setup"` // "1 cell, guardrails off"
	Report *Report `json:"-"`
}

// SideFigures are the figures one side is compared by.
type SideFigures struct {
	Name        string  `json:"name"`
	Setup       string  `json:"setup"`
	Outcome     string  `json:"outcome"`
	Requests    int64   `json:"requests"`
	Failed      int64   `json:"failed"`
	FailedShare float64 `json:"failed_share"`
	// Cells is how many cells the cluster has; CellsHit those where more than HitAbove
	// of the requests failed.
	Cells    int      `json:"cells"`
	CellsHit []string `json:"cells_hit"`
	// Recovery is the longest a cell was down (quorum lost to restored, or the
	// seconds with errors), and whether every cell was restored by the end.
	Recovery time.Duration `json:"recovery_ns"`
	Restored bool          `json:"restored"`
	// Refused is what the guardrails refused, one line each; WouldRefuse what they
	// would have refused but did not, because they were off.
	Refused       []string `json:"refused"`
	WouldRefuse   []string `json:"would_refuse,omitempty"`
	GuardrailsOff bool     `json:"guardrails_off"`
	// Tenants is how the tenants fared under the load, on a cluster with tenants;
	// Poison what the drill's poison step measured, beside its formula.
	Tenants *TenantCounts `json:"tenants,omitempty"`
	Poison  *PoisonReport `json:"poison,omitempty"`
	Verdict string        `json:"verdict"`
}

// Figures sums up one side.
func (s CompareSide) Figures() SideFigures {
	r := s.Report
	f := SideFigures{Name: s.Name, Setup: s.Setup, Outcome: r.Outcome, Cells: len(r.Cells), GuardrailsOff: r.GuardrailsOff,
		Requests: r.Blast.Requests, Failed: r.Blast.Failed, FailedShare: r.Blast.FailedShare,
		CellsHit: append([]string{}, r.Blast.Cells...), Restored: true, Refused: []string{}, Tenants: r.TenantCounts}
	if n := len(r.Poison); n > 0 {
		p := r.Poison[n-1]
		f.Poison = &p
	}
	for _, d := range r.Downtime {
		f.Recovery = max(f.Recovery, d.Took())
		if !d.Restored {
			f.Restored = false
		}
	}
	for _, g := range r.Guardrails {
		var msgs []string
		for _, v := range g.Violations {
			msgs = append(msgs, v.Rule+": "+v.Message)
		}
		what := fmt.Sprintf("%s of %s", g.Action, strings.Join(g.Nodes, ", "))
		switch {
		case !g.Allowed:
			f.Refused = append(f.Refused, what+" — "+strings.Join(msgs, "; "))
		case g.Override == guard.GuardrailsOffOverride:
			f.WouldRefuse = append(f.WouldRefuse, what+" — "+strings.Join(msgs, "; "))
		}
	}
	f.Verdict = f.verdict()
	return f
}

// Severity is the colour class of a side's verdict on the page: "bad" when the whole
// region went down, "warn" when part of it did, "" when no request failed. For a
// poison pill it goes by the tenants: "bad" when half or more were fully down, "warn"
// when some were.
func (f SideFigures) Severity() string {
	if p := f.Poison; p != nil {
		switch {
		case p.FullyDown >= 0.5:
			return "bad"
		case p.FullyDown > 0 || p.PartlyAffected > 0:
			return "warn"
		}
		return ""
	}
	switch {
	case f.Failed == 0:
		return ""
	case f.Cells > 0 && len(f.CellsHit) < f.Cells:
		return "warn"
	default:
		return "bad"
	}
}

func (f SideFigures) verdict() string {
	var b strings.Builder
	if p := f.Poison; p != nil {
		fmt.Fprintf(&b, "the poison pill crashed %d of %d gateways: %s of tenants fully down (formula %s), %s partly affected, back in %s",
			len(p.Crashed), p.Gateways, pctf(p.FullyDown), pctf(p.Formula), pctf(p.PartlyAffected), span(time.Duration(p.RecoverMS)*time.Millisecond))
		return b.String()
	}
	switch {
	case f.Failed == 0:
		b.WriteString("no request failed")
	case len(f.CellsHit) == f.Cells:
		fmt.Fprintf(&b, "the whole region went down: %s of requests failed", pctf(f.FailedShare))
	default:
		fmt.Fprintf(&b, "%d of %d cells went down: %s of requests failed", len(f.CellsHit), f.Cells, pctf(f.FailedShare))
	}
	if f.Recovery > 0 {
		if f.Restored {
			fmt.Fprintf(&b, ", back in %s", span(f.Recovery))
		} else {
			fmt.Fprintf(&b, ", not back after %s", span(f.Recovery))
		}
	}
	switch {
	case f.GuardrailsOff:
		b.WriteString("; nothing was refused (guardrails off)")
	case len(f.Refused) > 0:
		fmt.Fprintf(&b, "; the guardrails refused %d command%s", len(f.Refused), plural(len(f.Refused)))
	}
	return b.String()
}

// CompareJSON is what cellctl drill compare --output json prints and compare.json
// holds.
type CompareJSON struct {
	Title string      `json:"title"`
	A     SideFigures `json:"a"`
	B     SideFigures `json:"b"`
	// Reports are the two sides' full reports, in directories beside the page.
	Reports [2]string `json:"reports,omitempty"`
}

// JSON is the comparison's figures.
func (c *Comparison) JSON() CompareJSON {
	return CompareJSON{Title: c.Title, A: c.A.Figures(), B: c.B.Figures()}
}

// Write writes compare.html and compare.json into dir, and each side's own report
// into dir/a and dir/b.
func (c *Comparison) Write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	j := c.JSON()
	for i, s := range []CompareSide{c.A, c.B} {
		sub := filepath.Join(dir, strings.ToLower(s.Name))
		if err := s.Report.Write(sub); err != nil {
			return err
		}
		j.Reports[i] = filepath.Join(strings.ToLower(s.Name), "report.html")
	}
	b, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "compare.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(dir, "compare.html"))
	if err != nil {
		return err
	}
	if err := c.HTML(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
