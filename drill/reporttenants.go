package drill

import (
	"cmp"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cellarsim/cellar/loadgen"
)

// TenantReport is one tenant under the drill's load, in a cluster with tenants: what
// its requests did, and its part of the failures.
type TenantReport struct {
	Tenant    string  `json:"tenant"`
	Requests  int64   `json:"requests"`
	Errors    int64   `json:"errors"`
	ErrorRate float64 `json:"error_rate"` // share of its requests that failed
	// FailedShare is its share of all the requests that failed; LoadShare of all the
	// requests sent.
	FailedShare float64 `json:"failed_share"`
	LoadShare   float64 `json:"load_share"`
	// Hit: more than HitAbove of its requests failed, as for a cell; Down: every one.
	Hit         bool             `json:"hit"`
	Down        bool             `json:"down"`
	Unavailable int              `json:"unavailable_seconds"`
	ErrorCodes  map[string]int64 `json:"error_codes,omitempty"`
}

// TenantCounts is how many tenants were hit (more than HitAbove of their requests
// failed), how many of those had every request fail, and how many had no error.
type TenantCounts struct {
	Tenants   int `json:"tenants"`
	Hit       int `json:"hit"`
	Down      int `json:"down"`
	Untouched int `json:"untouched"`
}

func (c TenantCounts) String() string {
	return fmt.Sprintf("%d tenant%s: %d hit (more than %s of their requests failed), %d of them with every request failed; %d without an error",
		c.Tenants, plural(c.Tenants), c.Hit, pctf(HitAbove), c.Down, c.Untouched)
}

// tenantRows is how many tenants, the worst first, the terminal summary and the page
// list one by one; the rest are counted.
const tenantRows = 20

// loadTenants takes in the load's per-tenant results: the tenants worst first (the
// highest error rate, then the most failures, then by name) and how many were down,
// partly affected and untouched.
func (r *Report) loadTenants(res *loadgen.Result, secs int) {
	r.PerTenant, r.TenantCounts = nil, nil
	if len(res.Tenants) == 0 {
		return
	}
	counts := &TenantCounts{}
	for _, name := range slices.Sorted(maps.Keys(res.Tenants)) {
		t := res.Tenants[name]
		tr := TenantReport{Tenant: name, Requests: t.Requests, Errors: t.Errors, ErrorRate: t.ErrorRate(),
			FailedShare: ratio(t.Errors, res.Overall.Errors), LoadShare: ratio(t.Requests, res.Overall.Requests),
			Hit: t.ErrorRate() > HitAbove, Down: t.Requests > 0 && t.Errors == t.Requests}
		if len(t.ErrorCodes) > 0 {
			tr.ErrorCodes = maps.Clone(t.ErrorCodes)
		}
		for _, p := range t.Series {
			if p.T < secs && p.Errors > 0 {
				tr.Unavailable++
			}
		}
		counts.Tenants++
		if tr.Hit {
			counts.Hit++
		}
		if tr.Down {
			counts.Down++
		}
		if tr.Errors == 0 {
			counts.Untouched++
		}
		r.PerTenant = append(r.PerTenant, tr)
	}
	slices.SortStableFunc(r.PerTenant, func(a, b TenantReport) int {
		return cmp.Or(cmp.Compare(b.ErrorRate, a.ErrorRate), cmp.Compare(b.Errors, a.Errors), strings.Compare(a.Tenant, b.Tenant))
	})
	r.TenantCounts = counts
}

// worstTenants is the tenants the summary and the page list one by one, and what
// the rest add up to.
func (r *Report) worstTenants() (shown []TenantReport, rest string) {
	shown = r.PerTenant
	if len(shown) <= tenantRows {
		return shown, ""
	}
	var reqs, errs int64
	for _, t := range shown[tenantRows:] {
		reqs += t.Requests
		errs += t.Errors
	}
	n := len(shown) - tenantRows
	return shown[:tenantRows], fmt.Sprintf("%d more tenant%s: %d requests, %d failed", n, plural(n), reqs, errs)
}

// tenantsTile is the headline figure of a drill on a cluster with tenants.
func (r *Report) tenantsTile() (Tile, bool) {
	c := r.TenantCounts
	if c == nil {
		return Tile{}, false
	}
	t := Tile{Label: "Tenants hit", Value: fmt.Sprintf("%d of %d", c.Hit, c.Tenants),
		Detail: fmt.Sprintf("more than %s of their requests failed; %d with every request failed; %d without an error",
			pctf(HitAbove), c.Down, c.Untouched)}
	if c.Hit > 0 {
		t.Tone = "bad"
	}
	return t, true
}

// summaryTenants writes the per-tenant table for a terminal.
func (r *Report) summaryTenants(w io.Writer) {
	if r.TenantCounts == nil {
		return
	}
	fmt.Fprintf(w, "\nPer tenant, the worst first (%s)\n", r.TenantCounts)
	shown, rest := r.worstTenants()
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  TENANT\tHIT\tREQUESTS\tFAILED\tERROR %\tSHARE OF FAILURES %\tSECONDS WITH ERRORS\tERROR CODES")
	for _, t := range shown {
		hit := yesNo(t.Hit)
		if t.Down {
			hit = "down"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%d\t%d\t%.2f\t%.1f\t%d\t%s\n", t.Tenant, hit, t.Requests, t.Errors,
			100*t.ErrorRate, 100*t.FailedShare, t.Unavailable, errorCodes(t.ErrorCodes))
	}
	tw.Flush()
	if rest != "" {
		fmt.Fprintf(w, "  (%s)\n", rest)
	}
}

// errorCodes writes codes as CODE=n, the most frequent first ("-" for none).
func errorCodes(codes map[string]int64) string {
	if len(codes) == 0 {
		return "-"
	}
	names := slices.Sorted(maps.Keys(codes))
	slices.SortStableFunc(names, func(a, b string) int { return cmp.Compare(codes[b], codes[a]) })
	var parts []string
	for _, n := range names {
		parts = append(parts, fmt.Sprintf("%s=%d", n, codes[n]))
	}
	return strings.Join(parts, ",")
}

// summaryPoison writes what each poison step measured, for a terminal.
func (r *Report) summaryPoison(w io.Writer) {
	for _, p := range r.Poison {
		fmt.Fprintf(w, "\nPoison pill (%s sharding, %d gateways, shard size %d, %d tenants)\n", p.Sharding, p.Gateways, p.ShardSize, p.Tenants)
		tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		for _, row := range p.rows() {
			fmt.Fprintf(tw, "  %s\t%s\n", row[0], row[1])
		}
		tw.Flush()
	}
}

// rows is the poison report as label and value, for the summary and the page.
func (p PoisonReport) rows() [][2]string {
	down := fmt.Sprintf("%s measured; formula %s = %s; this sender's shard %s", pctf(p.FullyDown), p.FormulaText, pctf(p.Formula), pctf(p.Computed))
	if len(p.DownTenants) > 0 {
		down += " (" + strings.Join(p.DownTenants, ", ") + ")"
	}
	return [][2]string{
		{"sender", fmt.Sprintf("%s, shard %s", p.Sender, strings.Join(p.Shard, ","))},
		{"gateways crashed", fmt.Sprintf("%d of %d: %s", len(p.Crashed), p.Gateways, cmp.Or(strings.Join(p.Crashed, ", "), "none"))},
		{"tenants fully down", down},
		{"partly affected", pctf(p.PartlyAffected)},
		{"untouched", pctf(p.Untouched)},
		{"time to recover", fmt.Sprintf("%s from disarming to every tenant served (%d probes)", span(time.Duration(p.RecoverMS)*time.Millisecond), p.Probes)},
	}
}
