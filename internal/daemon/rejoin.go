package daemon

import (
	"net"
	"time"
)

// rejoinEvery is how often a node checks that it still sees its seeds (a variable for
// tests).
var rejoinEvery = 5 * time.Second

// rejoin joins again, every period, each seed the node does not see among the live
// members. memberlist alone never heals a node that started before its seeds could be
// reached, nor one cut off for longer than it keeps gossiping to the dead: the node and
// the rest of the cluster would each go on alone. Seeds may be host names (service
// names in containers); a name that does not resolve now is tried again next time.
func (d *Daemon) rejoin(seeds []string, period time.Duration) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-d.quit:
			return
		case <-t.C:
		}
		seen := map[string]bool{}
		for _, n := range d.Members.Nodes() {
			seen[n.Gossip] = true
		}
		var missing []string
		for _, seed := range seeds {
			for _, a := range resolveSeed(seed) {
				if !seen[a] {
					missing = append(missing, a)
				}
			}
		}
		if len(missing) == 0 {
			continue
		}
		if err := d.Members.Join(missing); err != nil {
			d.Log.Debug("gossip: seeds still unreachable", "seeds", missing, "err", err)
		} else {
			d.Log.Info("gossip: rejoined seeds", "seeds", missing)
		}
	}
}

// resolveSeed turns host:port into ip:port addresses, as memberlist names members (the
// IPv4 ones if the name has any); nothing if the host does not resolve.
func resolveSeed(seed string) []string {
	host, port, err := net.SplitHostPort(seed)
	if err != nil {
		return nil
	}
	if net.ParseIP(host) != nil {
		return []string{seed}
	}
	ips, err := net.LookupIP(host)
	if err != nil {
		return nil
	}
	var v4, all []string
	for _, ip := range ips {
		a := net.JoinHostPort(ip.String(), port)
		all = append(all, a)
		if ip.To4() != nil {
			v4 = append(v4, a)
		}
	}
	if len(v4) > 0 {
		return v4
	}
	return all
}
