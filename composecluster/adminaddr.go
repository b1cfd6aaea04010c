package composecluster

import (
	"context"
	"fmt"
	"net"
	"strconv"

	"github.com/cellarsim/cellar/deploy"
)

// AdminAddr is the address at which the host reaches node id's admin server: the
// container's address on the project's front network, at the admin port every node
// listens on in its container. The nodes of a compose cluster serve /status to the
// network (--status-remote), so a drill reads each cell's repair figures from its
// placement nodes through it, as on a cluster of 'cellctl up' (drill.AdminAddresser),
// and its report has the repair section.
func (c *Cluster) AdminAddr(ctx context.Context, id string) (string, error) {
	if _, _, err := c.node(id); err != nil {
		return "", err
	}
	ks, err := c.inspect(ctx)
	if err != nil {
		return "", err
	}
	k, ok := ks[id]
	if !ok || !k.serving() {
		return "", fmt.Errorf("%s is not running in compose project %q", id, c.project)
	}
	ip := k.NetworkSettings.Networks[c.frontNetwork()].IPAddress
	if ip == "" {
		return "", fmt.Errorf("%s has no address on the network %s", id, c.frontNetwork())
	}
	return net.JoinHostPort(ip, strconv.Itoa(c.nodeAdminPort())), nil
}

// nodeAdminPort is the port of the nodes' admin servers in their containers.
func (c *Cluster) nodeAdminPort() int {
	if c.adminPort != 0 {
		return c.adminPort
	}
	return deploy.AdminPort
}
