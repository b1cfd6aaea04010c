package cli

import (
	"encoding/json"
	"io"
)

// printJSON writes v to w as indented JSON: what every --output json prints.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
