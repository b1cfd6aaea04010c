// Command placementd runs one placement node of a cellar cell: it picks storage for new objects.
//
// Run it with --help for its flags. All daemons share their main in cmd/cellctl/cli;
// 'cellctl up' runs the same code as child processes of cellctl.
package main

import (
	"os"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/cmd/cellctl/cli"
)

func main() {
	os.Exit(cli.DaemonMain("placementd", cell.RolePlacement, os.Args[1:]))
}
