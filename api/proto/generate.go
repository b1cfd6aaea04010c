// Package proto holds cellar's .proto files; the generated Go code is in cellar/v1.
//
// Regenerate with `go generate ./api/proto/` from the repository root. It runs buf and
// the protoc plugins as Go tools of the separate tools module, so nothing is downloaded
// but Go modules.
package proto

//go:generate go tool -modfile=../../tools/go.mod buf generate
