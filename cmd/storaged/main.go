// Command storaged runs one storage node of a cellar cell: it keeps object bytes.
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
	os.Exit(cli.DaemonMain("storaged", cell.RoleStorage, os.Args[1:]))
}
