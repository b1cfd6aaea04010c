package status

import "github.com/cellarsim/cellar/cell"

// isLeader says whether a node gossips that it leads its cell's index group.
func isLeader(n cell.Node) bool { return n.Role == cell.RoleIndex && n.Leader }
