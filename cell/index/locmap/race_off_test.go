//go:build !race

package locmap

const raceEnabled = false
