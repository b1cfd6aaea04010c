package clustertest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/internal/testwait"
)

// withMapGroup is a topology of 2 cells, each with an index group of 3, and a map
// group of 3.
func withMapGroup() cell.Topology {
	t := replicated(2)
	t.StorageNodes, t.Copies = 1, 1
	t.MapNodes = 3
	t.Gateways = 2
	return t
}

// listNames lists the buckets through c.
func listNames(ctx context.Context, c *s3.Client) ([]string, error) {
	out, err := c.ListBuckets(ctx, &s3.ListBucketsInput{})
	if err != nil {
		return nil, err
	}
	var names []string
	for _, b := range out.Buckets {
		names = append(names, aws.ToString(b.Name))
	}
	return names, nil
}

// gatewayS3 is an S3 client of the gateway id.
func (c *Cluster) gatewayS3(id string) *s3.Client {
	return c.S3(func(o *s3.Options) { o.BaseEndpoint = aws.String("http://" + c.Node(id).S3Addr) })
}

// mapVersion is the cellar_gateway_map_version the gateway id exports.
func (c *Cluster) mapVersion(id string) (string, error) {
	resp, err := http.Get("http://" + c.Node(id).AdminAddr + "/metrics")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, "cellar_gateway_map_version") {
			f := strings.Fields(line)
			return f[len(f)-1], nil
		}
	}
	return "", errors.New("no cellar_gateway_map_version")
}

// waitMap waits until every gateway routes by a map of the map group (seeded: it has
// a slot table), so that the group has a leader to register buckets with.
func (c *Cluster) waitMap() {
	c.t.Helper()
	testwait.Succeeds(c.t, patience, "every gateway has the map group's map", func() error {
		for i := range c.Topology.Gateways {
			id := cell.NodeID("", cell.RoleGateway, i)
			if v, err := c.mapVersion(id); err != nil || v == "0" {
				return fmt.Errorf("%s is at map version %q (%v)", id, v, err)
			}
		}
		return nil
	})
}

// ListBuckets is answered from the cell map: with a cell's index out of quorum, every
// gateway still lists every bucket; with the map group away too, and across a
// gateway's restart, the gateways serve with the map they cached (static stability).
func TestListBucketsFromTheMapWhileACellIsDown(t *testing.T) {
	topo := withMapGroup()
	cl := Start(t, topo)
	cl.waitMap()
	ctx := context.Background()
	gw0, gw1 := cell.NodeID("", cell.RoleGateway, 0), cell.NodeID("", cell.RoleGateway, 1)
	c0, c1 := cl.gatewayS3(gw0), cl.gatewayS3(gw1)

	buckets := BucketsPerCell(topo, cellOf(topo), 3)
	var all []string
	for _, names := range buckets {
		for _, b := range names {
			if _, err := c0.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(b)}); err != nil {
				t.Fatalf("create %s: %v", b, err)
			}
			all = append(all, b)
		}
	}
	slices.Sort(all)
	listsAll := func(c *s3.Client, what string) {
		t.Helper()
		testwait.Succeeds(t, patience, what, func() error {
			names, err := listNames(ctx, c)
			if err != nil {
				return err
			}
			if !slices.Equal(names, all) {
				return fmt.Errorf("listed %v, want %v", names, all)
			}
			return nil
		})
	}
	listsAll(c0, "the gateway that created the buckets lists them all")
	listsAll(c1, "the other gateway lists them all, from the map the group pushed to it")
	v, err := cl.mapVersion(gw1)
	if err != nil || v == "0" {
		t.Errorf("gateway-1 exports map version %q (%v), want a version of the group's", v, err)
	}

	// Cell 1's index loses its quorum: its own buckets are down, the listing is not.
	down := cell.ID(1)
	stopped := []string{cell.NodeID(down, cell.RoleIndex, 0), cell.NodeID(down, cell.RoleIndex, 1)}
	for _, id := range stopped {
		cl.StopNode(id)
	}
	cl.WaitGone(stopped...)
	if _, err := c0.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(buckets[down][0])}); err == nil {
		t.Errorf("HEAD of a bucket of %s succeeded with its index out of quorum", down)
	}
	for _, c := range []*s3.Client{c0, c1} {
		names, err := listNames(ctx, c)
		if err != nil {
			t.Fatalf("ListBuckets with %s out of index quorum: %v", down, err)
		}
		if !slices.Equal(names, all) {
			t.Errorf("ListBuckets with %s down listed %v, want %v", down, names, all)
		}
	}

	// The map group away as well, and a gateway restarted meanwhile: it routes and
	// lists by the map in its state directory.
	for i := range topo.MapNodes {
		cl.StopNode(cell.NodeID("", cell.RoleMap, i))
	}
	cl.StopNode(gw1)
	cl.StartNode(gw1)
	cl.WaitReady(gw1)
	names, err := listNames(ctx, c1)
	if err != nil {
		t.Fatalf("ListBuckets from a restarted gateway with the map group away: %v", err)
	}
	if !slices.Equal(names, all) {
		t.Errorf("a restarted gateway listed %v, want %v", names, all)
	}
	up := buckets[cell.ID(0)][0]
	if err := put(ctx, c1, up, "k", []byte("v")); err != nil {
		t.Errorf("PUT in %s (healthy) through the restarted gateway with the map group away: %v", up, err)
	}
}
