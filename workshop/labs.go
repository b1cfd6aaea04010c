// Package workshop is cellar's 90-minute workshop as data: the labs, what each starts
// and what to look at (for 'cellctl lab N'), and the claims the labs' pages make under
// "What you should see", which the workshop test checks against a real cluster. The
// pages themselves are in docs/workshop; each holds one block of claims in a fenced
// code block whose info string is "checked":
//
//	```checked
//	typo drain exit code          0
//	requests failed               20% – 70%
//	```
//
// One claim a line: a name, two or more spaces, and a value: a word, a number, or a
// range "low – high" with an optional unit (%, s, ms). ParseClaims reads them.
package workshop

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// Lab is one lab of the workshop.
type Lab struct {
	N     int
	Title string
	// Page is the lab's page, relative to docs/workshop.
	Page string
	// Minutes is how long the lab takes in the room, discussion included.
	Minutes int
	// Coming: the lab's page says what it will be; nothing runs yet.
	Coming bool
	// Up is the arguments of 'cellctl up' the lab needs (none: it starts no cluster).
	Up []string
	// TopologyFile, when set, is the topology file Up names, and Topology its content:
	// 'cellctl lab N' writes it when there is none, and the lab's page shows it.
	TopologyFile string
	Topology     string
	// DataDir is where the lab's cluster keeps its data.
	DataDir string
	// LookAt is what 'cellctl lab N' prints: where to look and the first commands.
	LookAt string
}

// Labs are the workshop's labs, in order.
var Labs = []Lab{
	{N: 1, Title: "Meet the cluster", Page: "lab-1-meet-the-cluster.md", Minutes: 10, DataDir: "./cellar-lab1",
		Up: []string{"--data-dir", "./cellar-lab1", "--fast-gossip"},
		LookAt: `In another terminal:
  cellctl status --data-dir ./cellar-lab1
  cellctl status --data-dir ./cellar-lab1 --serve 127.0.0.1:8080     # then open http://127.0.0.1:8080/
  eval "$(cellctl credentials --data-dir ./cellar-lab1 --output env)"
  aws --endpoint-url http://127.0.0.1:9000 s3 mb s3://photos
  aws --endpoint-url http://127.0.0.1:9000 s3api put-object --bucket photos --key cat.jpg --body /etc/hostname --debug 2>&1 | grep -i x-cellar-cell`},
	{N: 2, Title: "The 2017 outage as it happened", Page: "lab-2-the-2017-outage.md", Minutes: 15, DataDir: "./cellar-lab2",
		Up: []string{"--data-dir", "./cellar-lab2", "--cells", "1", "--guardrails=off", "--fast-gossip"},
		LookAt: `One cell, no guardrails: the whole region is one cell. In another terminal:
  cellctl status --data-dir ./cellar-lab2 --serve 127.0.0.1:8080     # open http://127.0.0.1:8080/
  cellctl load --data-dir ./cellar-lab2 --rate 40 --duration 5m
  cellctl drain --data-dir ./cellar-lab2 --cell cell-0 --tier index --count 2   # the typo; then confirm it`},
	{N: 3, Title: "Restart debt", Page: "lab-3-restart-debt.md", Minutes: 15,
		LookAt: `No cluster to start: the benchmark restarts index nodes itself.
  cellctl bench rebuild --objects 100000,1000000,4000000 --cells 1,16 --runs 1 --together=false --dir ./cellar-lab3
and open ./cellar-lab3/rebuild.svg when it is done.`},
	{N: 4, Title: "Guardrails", Page: "lab-4-guardrails.md", Minutes: 15, DataDir: "./cellar-lab4",
		Up: []string{"--data-dir", "./cellar-lab4", "--cells", "2", "--fast-gossip"},
		LookAt: `In another terminal:
  cellctl drain --data-dir ./cellar-lab4 --cell cell-1 --tier index --count 2   # the typo: refused, exit 3
  cellctl drain --data-dir ./cellar-lab4 --cell cell-1 --tier index --count 1   # a plan and its id
  cellctl audit --data-dir ./cellar-lab4`},
	{N: 5, Title: "Cells bound the blast radius", Page: "lab-5-blast-radius.md", Minutes: 15,
		LookAt: `No cluster to start: compare starts and stops both clusters itself.
  cellctl drill compare s3-2017 --a cells=4 --b cells=8 --rate 60 --report ./cellar-lab5
and open ./cellar-lab5/compare.html when it is done.`},
	{N: 6, Title: "Dependencies and graceful degradation", Page: "lab-6-dependencies.md", Minutes: 15, DataDir: "./cellar-lab6",
		Up: []string{"--data-dir", "./cellar-lab6", "--cells", "2", "--fast-gossip"},
		LookAt: `In another terminal:
  cellctl status --data-dir ./cellar-lab6 --serve 127.0.0.1:8080     # open http://127.0.0.1:8080/
  cellctl drain --data-dir ./cellar-lab6 --cell cell-1 --tier placement --count 1 --override "lab 6"   # then confirm it`},
	{N: 7, Title: "Shuffle sharding and the poison pill", Page: "lab-7-shuffle-sharding.md", Minutes: 15,
		LookAt: `No cluster to start: compare starts and stops both clusters itself.
  cellctl shards --gateways 8 --shard-size 2 --tenants 100 --sharding shuffle
  cellctl drill compare poison-pill --a cells=1,sharding=all --b cells=1,sharding=shuffle --report ./cellar-lab7
and open ./cellar-lab7/compare.html when it is done.`},
	{N: 8, Title: "Moving a tenant between cells", Page: "lab-8-tenant-moves.md", Minutes: 15, DataDir: "./cellar-lab8",
		TopologyFile: "./cellar-lab8.yaml", Topology: lab8Topology,
		Up: []string{"--data-dir", "./cellar-lab8", "--topology", "./cellar-lab8.yaml", "--fast-gossip"},
		LookAt: `Three cells and a cell map (./cellar-lab8.yaml). In a second terminal, the load:
  cellctl load --data-dir ./cellar-lab8 --buckets-per-cell 1 --rate 40 --duration 2m
and in a third, while it runs, move load-000 from cell-1 to cell-2:
  cellctl move --data-dir ./cellar-lab8 --bucket load-000 --to cell-2     # the plan and its id
  cellctl move --data-dir ./cellar-lab8 --bucket load-000 --to cell-2 --confirm <plan id> --reason "noisy tenant"`},
}

// lab8Topology is lab 8's cluster: three cells, so that one is neither the source nor
// the target of the move, and a cell map held by a group of three map nodes.
const lab8Topology = `# Lab 8: three cells, and the cell map held by a raft group of three map nodes.
cells: 3
index_nodes: 3
placement_nodes: 1
storage_nodes: 1
copies: 1
map_nodes: 3
`

// Find returns lab n, or an error that lists the labs.
func Find(n int) (Lab, error) {
	for _, l := range Labs {
		if l.N == n {
			return l, nil
		}
	}
	return Lab{}, fmt.Errorf("no lab %d: the labs are 1 to %d (see docs/workshop/README.md)", n, len(Labs))
}

// Claim is one line of a page's "What you should see" block.
type Claim struct {
	Name  string
	Value string
}

// Range is a claim's value read as "low – high" with a unit ("%", "s", "ms" or "").
type Range struct {
	Low, High float64
	Unit      string
}

// Contains reports whether v, in the range's unit (a share as a percentage for "%"),
// is in the range.
func (r Range) Contains(v float64) bool { return v >= r.Low && v <= r.High }

func (r Range) String() string {
	return fmt.Sprintf("%g – %g%s", r.Low, r.High, r.Unit)
}

// Range reads the claim's value as a range.
func (c Claim) Range() (Range, error) {
	v := strings.ReplaceAll(c.Value, "–", "-")
	lo, hi, ok := strings.Cut(v, " - ")
	if !ok {
		return Range{}, fmt.Errorf("claim %q: %q is not a range \"low – high\"", c.Name, c.Value)
	}
	var r Range
	hi = strings.TrimSpace(hi)
	for _, u := range []string{"%", "ms", "s"} {
		if strings.HasSuffix(hi, u) {
			r.Unit, hi = u, strings.TrimSpace(strings.TrimSuffix(hi, u))
			break
		}
	}
	lo = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(lo), r.Unit))
	var err1, err2 error
	r.Low, err1 = strconv.ParseFloat(lo, 64)
	r.High, err2 = strconv.ParseFloat(hi, 64)
	if err1 != nil || err2 != nil || r.Low > r.High {
		return Range{}, fmt.Errorf("claim %q: %q is not a range \"low – high\"", c.Name, c.Value)
	}
	return r, nil
}

// ParseClaims reads the claims of a page: every line of its "checked" blocks.
func ParseClaims(page []byte) ([]Claim, error) {
	var out []Claim
	in := false
	sc := bufio.NewScanner(bytes.NewReader(page))
	for line := 1; sc.Scan(); line++ {
		t := sc.Text()
		switch {
		case strings.TrimSpace(t) == "```checked":
			in = true
		case in && strings.TrimSpace(t) == "```":
			in = false
		case in && strings.TrimSpace(t) != "":
			i := strings.Index(t, "  ")
			if i < 0 {
				return nil, fmt.Errorf("line %d: %q is not \"name  value\"", line, t)
			}
			out = append(out, Claim{Name: strings.TrimSpace(t[:i]), Value: strings.TrimSpace(t[i:])})
		}
	}
	if in {
		return nil, fmt.Errorf("a checked block is not closed")
	}
	return out, sc.Err()
}
