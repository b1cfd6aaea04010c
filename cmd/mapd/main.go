// Command mapd runs one member of cellar's map group: the cell map (slot and bucket to
// cell), replicated by raft among the group's members and served to the gateways.
//
// Run it with --help for its flags. Every daemon shares its main, internal/daemon.Main;
// 'cellctl up' runs the same code as child processes of cellctl ('cellctl daemon map').
package main

import (
	"os"

	"github.com/cellarsim/cellar/cell/mapgroup"
	"github.com/cellarsim/cellar/internal/daemon"
)

func main() {
	os.Exit(daemon.Main("mapd", mapgroup.Command()))
}
