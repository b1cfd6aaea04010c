package daemon

import (
	"net"
	"time"
)

// rejoinEvery is how often a node checks that it still sees its seeds (a variable for
// tests).
var rejoinEvery = 5 * time.Second

// maxRejoinDelay is the longest wait between two tries of a seed that does not answer.
const maxRejoinDelay = 30 * time.Second

// rejoin joins again, every period, each seed the node does not see among the live
// members. memberlist alone never heals a node that started before its seeds could be
// reached, nor one cut off for longer than it keeps gossiping to the dead: the node and
// the rest of the cluster would each go on alone. Seeds may be host names (service
// names in containers); a name that does not resolve now is tried again next time.
func (d *Daemon) rejoin(seeds []string, period time.Duration) {
	t := time.NewTicker(period)
	defer t.Stop()
	// A seed that stays unreachable (a node stopped for a drill) is tried less and
	// less often, up to once every maxRejoinDelay, so that nodes do not log about it
	// every period.
	type backoff struct {
		next  time.Time
		delay time.Duration
	}
	failing := map[string]*backoff{}
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
		now := time.Now()
		for _, seed := range seeds {
			for _, a := range resolveSeed(seed) {
				if seen[a] {
					delete(failing, a)
					continue
				}
				b := failing[a]
				if b != nil && now.Before(b.next) {
					continue
				}
				if err := d.Members.Join([]string{a}); err != nil {
					if b == nil {
						b = &backoff{delay: period}
						failing[a] = b
					}
					b.delay = min(2*b.delay, maxRejoinDelay)
					b.next = now.Add(b.delay)
					d.Log.Debug("gossip: seed still unreachable", "seed", a, "retry_in", b.delay, "err", err)
					continue
				}
				delete(failing, a)
				d.Log.Info("gossip: rejoined seed", "seed", a)
			}
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
