// Command storaged runs one storage node of a cellar cell: it keeps object bytes.
//
// Run it with --help for its flags. Every daemon shares its main, internal/daemon.Main;
// 'cellctl up' runs the same code as child processes of cellctl ('cellctl daemon storage').
package main

import (
	"os"

	"github.com/cellarsim/cellar/cell/storage"
	"github.com/cellarsim/cellar/internal/daemon"
)

func main() {
	os.Exit(daemon.Main("storaged", storage.Command()))
}
