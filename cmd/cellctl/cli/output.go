package cli

import (
	"encoding/json"
	"io"

	"github.com/spf13/cobra"
)

// The values of --output. Every command that prints a result takes --output text|json
// (-o); "table", what some commands called text before, is still taken as text.
const (
	outputText = "text"
	outputJSON = "json"
)

// outputFlag adds --output (-o) to cmd, bound to output: text by default, json for
// scripts. The command's RunE checks the value with checkOutput before doing anything.
func outputFlag(cmd *cobra.Command, output *string) {
	cmd.Flags().StringVarP(output, "output", "o", outputText, "output format: text or json")
	_ = cmd.RegisterFlagCompletionFunc("output",
		cobra.FixedCompletions([]string{outputText, outputJSON}, cobra.ShellCompDirectiveNoFileComp))
}

// checkOutput returns a usage error unless *output is text or json, and turns "table"
// into "text", so that the rest of the command only ever sees those two.
func checkOutput(output *string) error {
	switch *output {
	case outputText, outputJSON:
		return nil
	case "table":
		*output = outputText
		return nil
	}
	return usageErrorf("--output %q: want text or json", *output)
}

// printJSON writes v to w as indented JSON: what every --output json prints.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
