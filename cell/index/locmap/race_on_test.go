//go:build race

package locmap

// raceEnabled shortens the longer tests under the race detector, which
// slows them down about tenfold.
const raceEnabled = true
