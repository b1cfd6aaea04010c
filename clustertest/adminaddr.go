package clustertest

import "context"

// AdminAddr is the admin address of node id, for drills that read the nodes' own
// figures (drill.AdminAddresser).
func (k *Control) AdminAddr(_ context.Context, id string) (string, error) {
	n, err := k.node(id)
	if err != nil {
		return "", err
	}
	return n.AdminAddr, nil
}
