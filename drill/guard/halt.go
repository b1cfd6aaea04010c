package guard

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// HaltFileName is the kill switch in a cluster's data directory: while it exists, no
// drill step runs.
const HaltFileName = "drills.halted"

// ErrHalted is returned when the kill switch is set.
var ErrHalted = errors.New("drills are halted")

// HaltInfo is what the kill switch file says.
type HaltInfo struct {
	Time   time.Time `json:"time"`
	User   string    `json:"user"`
	Reason string    `json:"reason,omitempty"`
}

// Halt sets the kill switch of the data directory dir.
func Halt(dir, reason string) error {
	b, _ := json.Marshal(HaltInfo{Time: time.Now().UTC(), User: CurrentUser(), Reason: reason})
	if err := os.WriteFile(filepath.Join(dir, HaltFileName), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("set the kill switch: %w", err)
	}
	return nil
}

// Resume clears the kill switch; clearing one that is not set is not an error.
func Resume(dir string) error {
	err := os.Remove(filepath.Join(dir, HaltFileName))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("clear the kill switch: %w", err)
	}
	return nil
}

// Halted reports whether the kill switch is set, and what it says. A switch file that
// cannot be read or parsed still counts as set.
func Halted(dir string) (bool, HaltInfo) {
	b, err := os.ReadFile(filepath.Join(dir, HaltFileName))
	if errors.Is(err, fs.ErrNotExist) {
		return false, HaltInfo{}
	}
	var info HaltInfo
	if err == nil {
		_ = json.Unmarshal(b, &info)
	}
	return true, info
}

// CheckHalt returns an error wrapping ErrHalted when the kill switch is set.
func CheckHalt(dir string) error {
	halted, info := Halted(dir)
	if !halted {
		return nil
	}
	var by string
	if info.User != "" {
		by += " by " + info.User
	}
	if !info.Time.IsZero() {
		by += " at " + info.Time.Format(time.RFC3339)
	}
	if info.Reason != "" {
		by += " (" + info.Reason + ")"
	}
	return fmt.Errorf("%w%s; 'cellctl drill resume' clears the kill switch", ErrHalted, by)
}
