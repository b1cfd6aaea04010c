// Command placementd runs one placement node of a cellar cell: it picks storage for new objects.
//
// Run it with --help for its flags. Every daemon shares its main, internal/daemon.Main;
// 'cellctl up' runs the same code as child processes of cellctl ('cellctl daemon placement').
package main

import (
	"os"

	"github.com/cellarsim/cellar/cell/placement"
	"github.com/cellarsim/cellar/internal/daemon"
)

func main() {
	os.Exit(daemon.Main("placementd", placement.Command()))
}
