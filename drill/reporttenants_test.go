package drill

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cellarsim/cellar/loadgen"
)

// poisonReport is the poison pill on shuffle sharding as a run would report it: 24
// tenants under load through the router, 8 gateways with shard size 2; tenant-003
// sends the pill, tenant-003 and tenant-019 share its shard and lose every request
// for six seconds; tenant-007 lost one request of 60 while a gateway of its shard was
// down (hit), tenant-012 one of 120 (not hit); the others lost none.
func poisonReport() *Report {
	r := &Report{Scenario: "poison-pill", Target: "cell-0", Cells: []string{"cell-0"},
		Started: time.Date(2017, 2, 28, 17, 37, 0, 0, time.UTC), Took: at(31.2), Outcome: "completed", LoadStartMS: 1200}
	st := Stop{}
	st.EnsureDefaults()
	r.StopRule = st.Rule()
	r.Timeline = []Event{
		{At: at(0), Kind: "START", Text: "drill poison-pill on 1 cell, target cell-0"},
		{At: at(1.2), Kind: "LOAD", Text: "48 requests/s for 30s over 2 buckets (mix GET=70,PUT=30)"},
		{At: at(6.7), Kind: "POISON", Text: "poison pill armed (object key poison-pill-0a1b2c3d4e5f); tenant-003 sends it, 3 attempts, shard gateway-2,gateway-5"},
		{At: at(7.4), Kind: "BLAST", Text: "2 of 8 gateways crashed (gateway-2,gateway-5); tenants fully down 8.3% (formula 1/C(8,2) = 1/28 = 3.6%, this shard 8.3%), partly affected 0.0%, untouched 91.7%"},
		{At: at(13.1), Kind: "RESTORED", Text: "pill disarmed, 2 gateways started again, every tenant served in 1.4s"},
		{At: at(31.2), Kind: "END", Text: "drill completed after 31s"},
	}
	names := make([]string, 24)
	for i := range names {
		names[i] = fmt.Sprintf("tenant-%03d", i)
	}
	res := loadResult([]string{"cell-0"}, 30, 48, func(string, int) (int64, string) { return 0, "" })
	res.Tenants = map[string]loadgen.TenantResult{}
	var failed int64
	for _, n := range names {
		var t loadgen.TenantResult
		for i := range 30 {
			p := loadgen.Point{T: i, Requests: 2}
			switch {
			case (n == "tenant-003" || n == "tenant-019") && i >= 6 && i < 12:
				p.Errors = 2
			case n == "tenant-007" && i == 7, n == "tenant-012" && i == 8:
				p.Errors = 1
			}
			t.Series = append(t.Series, p)
			t.Requests += p.Requests
			t.Errors += p.Errors
		}
		if n == "tenant-012" {
			t.Series[20].Requests = 62
			t.Requests += 60
		}
		t.OK = t.Requests - t.Errors
		if t.Errors > 0 {
			t.ErrorCodes = map[string]int64{"ServiceUnavailable": t.Errors}
		}
		failed += t.Errors
		res.Tenants[n] = t
	}
	// The cell's view of the same requests.
	c := res.Cells["cell-0"]
	c.Errors, c.OK = failed, c.Requests-failed
	c.Series[6].Errors, c.Series[7].Errors = 4, 5
	c.Series[8].Errors, c.Series[9].Errors, c.Series[10].Errors, c.Series[11].Errors = 5, 4, 4, 4
	c.ErrorCodes = map[string]int64{"ServiceUnavailable": failed}
	res.Cells["cell-0"] = c
	res.Overall.Errors, res.Overall.OK = failed, res.Overall.Requests-failed
	res.Overall.ErrorCodes = map[string]int64{"ServiceUnavailable": failed}
	r.load(res, 1200*time.Millisecond)
	r.Poison = []PoisonReport{{Sharding: "shuffle", Gateways: 8, ShardSize: 2, Tenants: 24, Sender: "tenant-003",
		Shard: []string{"gateway-2", "gateway-5"}, Crashed: []string{"gateway-2", "gateway-5"},
		FullyDown: 2.0 / 24, Untouched: 22.0 / 24, DownTenants: []string{"tenant-003", "tenant-019"},
		Formula: 1.0 / 28, FormulaText: "1/C(8,2) = 1/28", Computed: 2.0 / 24, RecoverMS: 1400, Probes: 480}}
	r.finish()
	return r
}

// A drill on a cluster with tenants reports each tenant, the worst first, in the
// terminal summary, report.json and the page; a poison step's measurement beside its
// formula.
func TestReportPerTenant(t *testing.T) {
	rep := poisonReport()
	var sum bytes.Buffer
	rep.Summary(&sum)
	golden(t, "poison-pill.summary.golden", sum.Bytes())
	var head bytes.Buffer
	if err := reportTemplate.ExecuteTemplate(&head, "headline", rep.headline()); err != nil {
		t.Fatal(err)
	}
	golden(t, "poison-pill.headline.golden", head.Bytes())

	if c := rep.TenantCounts; c == nil || *c != (TenantCounts{Tenants: 24, Hit: 3, Down: 0, Untouched: 20}) {
		t.Errorf("tenant counts %+v, want 24: 3 hit, none down, 20 untouched", c)
	}
	var order []string
	for _, tr := range rep.PerTenant {
		order = append(order, tr.Tenant)
	}
	if want := "tenant-003 tenant-019 tenant-007 tenant-012 tenant-000"; !strings.HasPrefix(strings.Join(order, " "), want) {
		t.Errorf("tenants in the order %v, want the worst first: %s, then the rest by name", order, want)
	}
	if tr := rep.PerTenant[0]; !tr.Hit || tr.Down || tr.Errors != 12 || tr.FailedShare != 12.0/26 || tr.Unavailable != 6 {
		t.Errorf("worst tenant %+v, want hit, not down, 12 of 26 failures, 6 seconds with errors", tr)
	}
	if tr := rep.PerTenant[3]; tr.Tenant != "tenant-012" || tr.Hit || tr.Errors != 1 {
		t.Errorf("fourth tenant %+v, want tenant-012 with 1 failure of 120, not hit", tr)
	}

	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var back struct {
		PerTenant    []TenantReport `json:"per_tenant"`
		TenantCounts TenantCounts   `json:"tenant_counts"`
		Poison       []PoisonReport `json:"poison"`
	}
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if len(back.PerTenant) != 24 || back.PerTenant[0].Tenant != "tenant-003" || back.TenantCounts.Hit != 3 || len(back.Poison) != 1 {
		t.Errorf("report.json holds %d tenants (first %+v), counts %+v, %d poison reports", len(back.PerTenant), back.PerTenant[0], back.TenantCounts, len(back.Poison))
	}

	var page bytes.Buffer
	if err := rep.HTML(&page); err != nil {
		t.Fatal(err)
	}
	html := page.String()
	for _, want := range []string{"Blast radius per tenant", "24 tenants: 3 hit (more than 1.0% of their requests failed), 0 of them with every request failed; 20 without an error",
		"<td>tenant-003</td>", "ServiceUnavailable=12", "And 4 more tenants: 240 requests, 0 failed.",
		"Poison pill: shuffle sharding", "1/C(8,2) = 1/28", "Tenants hit"} {
		if !strings.Contains(html, want) {
			t.Errorf("the page does not show %q", want)
		}
	}
	if strings.Contains(html, "<td>tenant-023</td>") {
		t.Errorf("the page lists more than the %d worst tenants", tenantRows)
	}

	// Without tenants, none of it.
	var plain bytes.Buffer
	s3Report().Summary(&plain)
	if strings.Contains(plain.String(), "Per tenant") || s3Report().TenantCounts != nil {
		t.Errorf("a report without tenants has a tenant table")
	}
}
