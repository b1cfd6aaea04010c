package gateway

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// A request for the armed key meets the pill at once (the faults file is read again
// before each request), ends the gateway through its exit and gets no answer; other
// keys are served; with the kill switch set, or the file gone, nothing is armed.
func TestPoisonPillWatch(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "faults.json")
	w := newFaultWatch(path, slog.New(slog.NewTextHandler(io.Discard, nil)))
	var exits atomic.Int32
	w.exit = func(code int) {
		if code != PoisonExitCode {
			t.Errorf("exit code %d, want %d", code, PoisonExitCode)
		}
		exits.Add(1)
	}
	srv := httptest.NewServer(w.wrap(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		io.WriteString(rw, "served")
	})))
	defer srv.Close()
	// A new connection for each request: a client does not send a request again that
	// was lost on a new connection.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	get := func(key string) error {
		resp, err := client.Get(srv.URL + "/bucket/" + key)
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	}
	arm := func(key string) {
		b, _ := json.Marshal(Faults{Poison: &PoisonPill{Key: key, ArmedAt: time.Now()}})
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		// A new modification time, even on a file system with coarse ones.
		later := time.Now().Add(time.Duration(exits.Load()+1) * time.Second)
		if err := os.Chtimes(path, later, later); err != nil {
			t.Fatal(err)
		}
	}

	if err := get("pill"); err != nil || exits.Load() != 0 {
		t.Fatalf("nothing armed: %v, %d exits", err, exits.Load())
	}
	arm("pill")
	if err := get("pill"); err == nil || exits.Load() != 1 {
		t.Errorf("armed pill: answer error %v, %d exits; want no answer and one exit", err, exits.Load())
	}
	if err := get("other"); err != nil || exits.Load() != 1 {
		t.Errorf("another key: %v, %d exits", err, exits.Load())
	}
	if err := os.WriteFile(filepath.Join(dir, haltFileName), []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := get("pill"); err != nil || exits.Load() != 1 {
		t.Errorf("drills halted: %v, %d exits; want the pill disarmed", err, exits.Load())
	}
	os.Remove(filepath.Join(dir, haltFileName))
	arm("pill")
	os.Remove(path)
	if err := get("pill"); err != nil || exits.Load() != 1 {
		t.Errorf("faults file removed: %v, %d exits; want the pill disarmed", err, exits.Load())
	}
}
