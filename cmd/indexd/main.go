// Command indexd runs one index node of a cellar cell: the key-to-location map.
//
// Run it with --help for its flags. Every daemon shares its main, internal/daemon.Main;
// 'cellctl up' runs the same code as child processes of cellctl ('cellctl daemon index').
package main

import (
	"os"

	"github.com/cellarsim/cellar/cell/index"
	"github.com/cellarsim/cellar/internal/daemon"
)

func main() {
	os.Exit(daemon.Main("indexd", index.Command()))
}
