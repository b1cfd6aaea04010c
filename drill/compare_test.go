package drill

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/drill/guard"
	"github.com/cellarsim/cellar/internal/testwait"
)

// oneCellReport is the 2017 drill on one cell without guardrails: the typo goes
// through, the only cell loses quorum, the region is down until the restart.
func oneCellReport() *Report {
	one := []string{"cell-0"}
	r := &Report{Scenario: "s3-2017", Target: "cell-0", Cells: one, Tested: one, Outcome: "completed", GuardrailsOff: true,
		Started: time.Date(2017, 2, 28, 17, 37, 0, 0, time.UTC), Took: at(80), LoadStartMS: 5000}
	r.Timeline = []Event{
		{At: at(16), Kind: "QUORUM LOST", Cell: "cell-0", Text: "cell-0 index: 1 of 3 nodes ready, no leader"},
		{At: at(35), Kind: "RESTART FAILED", Cell: "cell-0", Text: "cold restart of cell-0 (placement → index) failed"},
		{At: at(44), Kind: "RESTORED", Cell: "cell-0", Text: "cold restart of cell-0 done"},
	}
	r.Guardrails = []Guardrail{{At: at(15), Action: "drain", Cell: "cell-0", Tier: "index", Nodes: []string{"cell-0-index-1", "cell-0-index-2"},
		Allowed: true, Override: guard.GuardrailsOffOverride, Violations: []guard.Violation{
			{Rule: guard.RuleFloor, Message: "cell-0 would keep 1 index node up, below its floor", Lifted: true}}}}
	r.load(loadResult(one, 70, 20, func(c string, i int) (int64, string) {
		if i >= 11 && i < 40 {
			return 20, "ServiceUnavailable"
		}
		return 0, ""
	}), 5*time.Second)
	r.finish()
	return r
}

func comparison() *Comparison {
	return &Comparison{Title: "s3-2017: one cell without guardrails against four cells with them",
		A: CompareSide{Name: "A", Setup: "1 cell, guardrails OFF", Report: oneCellReport()},
		B: CompareSide{Name: "B", Setup: "4 cells, guardrails on", Report: s3Report()}}
}

func TestCompareFigures(t *testing.T) {
	c := comparison()
	a, b := c.A.Figures(), c.B.Figures()
	if len(a.CellsHit) != 1 || a.Cells != 1 || a.FailedShare < 0.3 || len(a.Refused) != 0 || len(a.WouldRefuse) != 1 || !a.GuardrailsOff {
		t.Errorf("side A: %+v", a)
	}
	if !strings.HasPrefix(a.Verdict, "the whole region went down") || !strings.Contains(a.Verdict, "nothing was refused") {
		t.Errorf("side A verdict %q", a.Verdict)
	}
	if len(b.CellsHit) != 1 || b.Cells != 4 || b.FailedShare > 0.35 || len(b.Refused) != 1 || b.GuardrailsOff {
		t.Errorf("side B: %+v", b)
	}
	if !strings.HasPrefix(b.Verdict, "1 of 4 cells went down") || !strings.Contains(b.Verdict, "refused 1 command") {
		t.Errorf("side B verdict %q", b.Verdict)
	}
	if a.Recovery <= 0 || b.Recovery <= 0 {
		t.Errorf("recovery times %v, %v", a.Recovery, b.Recovery)
	}
	dir := t.TempDir()
	if err := c.Write(dir); err != nil {
		t.Fatal(err)
	}
	var j CompareJSON
	raw, err := os.ReadFile(filepath.Join(dir, "compare.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &j); err != nil {
		t.Fatal(err)
	}
	if j.A.FailedShare != a.FailedShare || j.B.Verdict != b.Verdict || j.Reports[0] != "a/report.html" {
		t.Errorf("compare.json differs from the figures: %+v", j)
	}
	for _, f := range []string{"a/report.html", "b/report.json", "compare.html"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
}

func TestScenarioWithoutGuardrails(t *testing.T) {
	sc, err := LoadScenario("s3-2017")
	if err != nil {
		t.Fatal(err)
	}
	off := sc.WithoutGuardrails()
	var drains []DrainStep
	for _, st := range off.Steps {
		if st.Drain != nil {
			drains = append(drains, *st.Drain)
		}
	}
	if len(drains) != 1 || drains[0].Expect != ExpectDone || drains[0].Override != "" || drains[0].Count != 2 {
		t.Errorf("without guardrails the typo should go through once, as typed: %+v", drains)
	}
	if len(off.Steps) != len(sc.Steps)-1 {
		t.Errorf("%d steps, want %d", len(off.Steps), len(sc.Steps)-1)
	}
	if sc.Steps[3].Drain == nil || sc.Steps[3].Drain.Expect != ExpectRefused {
		t.Errorf("the scenario itself was changed: %+v", sc.Steps[3])
	}
}

func TestParseSide(t *testing.T) {
	base := cell.DefaultTopology()
	topo, err := ParseSide("cells=1, guardrails=off", base)
	if err != nil || topo.Cells != 1 || !topo.GuardrailsOff() {
		t.Fatalf("%+v, %v", topo, err)
	}
	if DescribeSide(topo) != "1 cell, guardrails OFF" {
		t.Errorf("described as %q", DescribeSide(topo))
	}
	for spec, want := range map[string]string{
		"cels=4":           `unknown key "cels"`,
		"cells=four":       "want a whole number",
		"guardrails=maybe": "want on or off",
		"cells":            "not key=value",
		"cells=0":          "cells must be between 1 and 256",
	} {
		if _, err := ParseSide(spec, base); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", spec, err, want)
		}
	}
}

// The comparison page in a real browser: two sides, each with its verdict and
// figures, one strip per cell, and both sides' charts on the same time axis.
func TestComparePageInBrowser(t *testing.T) {
	bin := chromiumBinary()
	if bin == "" {
		t.Skip("no chromium binary found (install Debian's chromium, or set CHROME_BIN): the comparison page browser test needs one")
	}
	dir := t.TempDir()
	c := comparison()
	if err := c.Write(dir); err != nil {
		t.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(bin), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.WindowSize(1400, 1000))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	bctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	if err := chromedp.Do(bctx, chromedp.Navigate("file://"+filepath.Join(dir, "compare.html"))); err != nil {
		t.Fatalf("open the page: %v", err)
	}
	eval := func(expr string) string {
		var s string
		testwait.Until(t, 30*time.Second, "the page answers "+expr, func() bool {
			ctx, c := context.WithTimeout(bctx, 5*time.Second)
			defer c()
			var err error
			s, err = chromedp.Run(ctx, chromedp.Evaluate[string](expr))
			return err == nil
		})
		return s
	}
	a, b := c.A.Figures(), c.B.Figures()
	for side, want := range map[string]SideFigures{"A": a, "B": b} {
		q := `document.querySelector('section[data-side="` + side + `"] [data-%s]').textContent`
		if got := eval(strings.ReplaceAll(q, "%s", "verdict")); got != want.Verdict {
			t.Errorf("side %s verdict %q, want %q", side, got, want.Verdict)
		}
		if got := eval(strings.ReplaceAll(q, "%s", "failed-share")); got != pctf(want.FailedShare) {
			t.Errorf("side %s failed share %q", side, got)
		}
		if got := eval(`String(document.querySelectorAll('svg[data-side="` + side + `"] g.strip').length)`); got != map[string]string{"A": "1", "B": "4"}[side] {
			t.Errorf("side %s has %s strips", side, got)
		}
	}
	// The whole region down is red, one cell of four amber.
	for side, want := range map[string]string{"A": "bad", "B": "warn"} {
		if got := eval(`document.querySelector('section[data-side="` + side + `"] [data-verdict]').className`); got != "verdict "+want {
			t.Errorf("side %s verdict class %q, want %q", side, got, "verdict "+want)
		}
	}
	// Every event's label is drawn, and no two of them overlap (events a few seconds
	// apart used to print over one another).
	overlap := `(function(s){var ts=Array.from(document.querySelectorAll('svg[data-side="'+s+'"] text')).filter(t=>/quorum|restart|restored/.test(t.textContent)).map(t=>t.getBoundingClientRect());
		for (var i=0;i<ts.length;i++) for (var j=i+1;j<ts.length;j++) { var a=ts[i], b=ts[j]; if (a.left<b.right && b.left<a.right && a.top<b.bottom && b.top<a.bottom) return "overlap"; }
		return String(ts.length)})`
	if got := eval(overlap + `("A")`); got != "3" {
		t.Errorf("side A's event labels: %s, want 3 apart", got)
	}
	if got := eval(`document.querySelector('section[data-side="A"] .off') ? "shown" : "missing"`); got != "shown" {
		t.Errorf("the no-guardrails mark on side A is %s", got)
	}
	// The same time axis: the last tick label sits at the same place in both charts.
	pos := `(function(s){var ts=document.querySelectorAll('svg[data-side="'+s+'"] text');var t=ts[ts.length-1];var r=t.getBoundingClientRect();return t.textContent+"@"+Math.round(r.right)})`
	if ax, bx := eval(pos+`("A")`), eval(pos+`("B")`); ax != bx {
		t.Errorf("the charts' time axes differ: A ends at %s, B at %s", ax, bx)
	}
	// Readable from the back of a room: no text in the figures below 20px.
	if got := eval(`Array.from(document.querySelectorAll('.verdict, .fig span')).every(e => parseFloat(getComputedStyle(e).fontSize) >= 20) ? "large" : "small"`); got != "large" {
		t.Errorf("the figures' type is %s", got)
	}
	ctx, stop := context.WithTimeout(bctx, 30*time.Second)
	defer stop()
	if shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(80)); err != nil || !bytes.HasPrefix(shot, []byte{0xff, 0xd8}) {
		t.Errorf("screenshot: %v", err)
	}
}

// chromiumBinary finds a Chromium or Chrome binary: $CHROME_BIN, or one on PATH.
func chromiumBinary() string {
	if p := os.Getenv("CHROME_BIN"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// A poison-pill comparison: the sides' fleets from the command line, and each side's
// tenants fully down, partly affected and untouched beside its sharding's formula.
func TestComparePoison(t *testing.T) {
	base := cell.DefaultTopology()
	base.Gateways, base.ShardSize, base.Faults = 8, 2, true
	topo, err := ParseSide("sharding=plain,tenants=12", base)
	if err != nil {
		t.Fatal(err)
	}
	if len(topo.Tenants) != 12 || topo.Routers != 1 || topo.ShardingMode() != cell.ShardingPlain {
		t.Fatalf("side %+v: want 12 tenants behind one router, plain sharding", topo)
	}
	if got, want := DescribeSide(topo), "4 cells, guardrails on, plain sharding: 8 gateways, shard size 2, 12 tenants"; got != want {
		t.Errorf("described as %q, want %q", got, want)
	}
	for spec, want := range map[string]string{
		"sharding=random":                        `sharding must be "all", "plain" or "shuffle"`,
		"shard_size=9":                           "larger than the fleet of 8 gateways",
		"tenants=0":                              "want 1 to 1000",
		"gateways=6,sharding=plain,shard_size=4": "do not split into groups of 4",
	} {
		if _, err := ParseSide(spec, base); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", spec, err, want)
		}
	}

	all, shuffle := poisonReport(), poisonReport()
	p := &all.Poison[0]
	p.Sharding, p.Crashed, p.FullyDown, p.Untouched, p.Formula, p.FormulaText, p.Computed = "all",
		[]string{"gateway-0", "gateway-1", "gateway-2", "gateway-3", "gateway-4", "gateway-5", "gateway-6", "gateway-7"}, 1, 0, 1, "1 (every tenant on every gateway)", 1
	p.DownTenants = nil
	for _, tr := range all.PerTenant {
		p.DownTenants = append(p.DownTenants, tr.Tenant)
	}
	c := &Comparison{Title: "poison-pill", A: CompareSide{Name: "A", Setup: "all", Report: all}, B: CompareSide{Name: "B", Setup: "shuffle", Report: shuffle}}
	a, b := c.A.Figures(), c.B.Figures()
	if a.Poison == nil || b.Poison == nil || a.Tenants == nil {
		t.Fatalf("figures without the poison step or the tenants: %+v", a)
	}
	if want := "the poison pill crashed 8 of 8 gateways: 100.0% of tenants fully down (formula 100.0%), 0.0% partly affected, back in 1.4s"; a.Verdict != want {
		t.Errorf("verdict A %q, want %q", a.Verdict, want)
	}
	if want := "the poison pill crashed 2 of 8 gateways: 8.3% of tenants fully down (formula 3.6%), 0.0% partly affected, back in 1.4s"; b.Verdict != want {
		t.Errorf("verdict B %q, want %q", b.Verdict, want)
	}
	// Every tenant down is red; a few of them, amber: shuffle sharding is the good side.
	if a.Severity() != "bad" || b.Severity() != "warn" {
		t.Errorf("severities A %q B %q, want bad and warn", a.Severity(), b.Severity())
	}
	var page bytes.Buffer
	if err := c.HTML(&page); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`data-tenants-down>100.0% <small>(24 of 24)</small>`, `data-tenants-down>8.3% <small>(2 of 24)</small>`,
		"1/C(8,2) = 1/28", `data-gateways-crashed>2 of 8`, `data-tenants-untouched>91.7%`} {
		if !strings.Contains(page.String(), want) {
			t.Errorf("the page does not show %q", want)
		}
	}
	// A comparison without a poison step shows none of it.
	page.Reset()
	if err := comparison().HTML(&page); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(page.String(), "data-tenants-down") {
		t.Errorf("a comparison without tenants shows tenant figures")
	}
}
