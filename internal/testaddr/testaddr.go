// Package testaddr hands out 127.0.0.1 addresses for servers that must keep their
// address across restarts (a stopped node comes back where its peers expect it): to
// tests with Free, and to the nodes of a local cluster with a Picker.
//
// Ports come from below the kernel's ephemeral range, so no outgoing connection can
// be given one of them while its node is down, and a Picker never hands one out twice
// (Free shares one Picker across a test process).
package testaddr

// shared is the Picker behind Free.
var shared = NewPicker()

// TB is the part of testing.TB that Free uses (so that this package, which a local
// cluster uses too, does not import testing).
type TB interface {
	Helper()
	Fatal(args ...any)
}

// Free returns a 127.0.0.1 address whose port is free for both TCP and UDP (gossip
// needs both). It fails the test if there is none.
func Free(t TB) string {
	t.Helper()
	addr, err := shared.Pick(true)
	if err != nil {
		t.Fatal(err)
	}
	return addr
}
