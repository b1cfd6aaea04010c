package daemon

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"
)

// A connection accepted a moment ago that has sent nothing keeps net/http's Shutdown
// waiting for five seconds; a stop with a shorter timeout still stops, cutting it.
func TestShutdownHTTPCutsWhatIsLeft(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.NotFoundHandler()}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Make sure the server holds the connection before stopping it.
	deadline := time.Now().Add(time.Minute)
	for {
		if r, err := http.Get("http://" + ln.Addr().String() + "/"); err == nil {
			r.Body.Close()
			break
		} else if time.Now().After(deadline) {
			t.Fatal(err)
		}
	}

	d := &Daemon{Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if err := d.ShutdownHTTP(srv, "test", 100*time.Millisecond); err != nil {
		t.Fatalf("ShutdownHTTP: %v, want a stop that cuts the silent connection", err)
	}
	if err := <-served; err != http.ErrServerClosed {
		t.Errorf("Serve returned %v, want ErrServerClosed", err)
	}
	_ = c.SetReadDeadline(time.Now().Add(time.Minute))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Error("the silent connection is still open after the stop")
	}
}
