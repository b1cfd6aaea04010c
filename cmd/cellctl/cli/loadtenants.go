package cli

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"text/tabwriter"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/loadgen"
)

// loadTenants picks the tenants load sends as: the first n of the cluster's (all of
// them when n is negative, none when 0).
func loadTenants(all []cell.Tenant, n int) ([]cell.Tenant, error) {
	switch {
	case n < 0:
		return all, nil
	case n > len(all):
		return nil, usageErrorf("--tenants %d: the cluster has %d tenant%s (start it with 'cellctl up --tenants N')", n, len(all), plural(len(all)))
	}
	return all[:n], nil
}

// printTenantSummary prints how the tenants fared: how many had no error, and a row
// for each tenant that had some.
func printTenantSummary(out io.Writer, res *loadgen.Result) {
	if len(res.Tenants) == 0 {
		return
	}
	names := slices.Sorted(maps.Keys(res.Tenants))
	var hit []string
	down := 0
	for _, n := range names {
		s := res.Tenants[n]
		if s.Errors > 0 {
			hit = append(hit, n)
		}
		if s.Requests > 0 && s.Errors == s.Requests {
			down++
		}
	}
	fmt.Fprintf(out, "\n%d tenants: %d without an error, %d with some, %d with every request failed\n",
		len(names), len(names)-len(hit), len(hit)-down, down)
	if len(hit) == 0 {
		return
	}
	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TENANT\tREQUESTS\tOK\tERRORS\tERROR %\tERROR CODES")
	for _, n := range hit {
		s := res.Tenants[n]
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%.2f\t%s\n", n, s.Requests, s.OK, s.Errors, 100*s.ErrorRate(), codes(s.ErrorCodes))
	}
	tw.Flush()
}
