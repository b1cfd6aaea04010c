package loadgen

import (
	"errors"
	"testing"
	"time"
)

func TestValidateNamesTheOption(t *testing.T) {
	ok := Config{Rate: 10, Duration: time.Second, MaxInFlight: 8, Timeout: time.Second, Keys: 5, KeyDist: KeysZipf}
	if err := ok.Validate(); err != nil {
		t.Fatalf("a good workload: %v", err)
	}
	for _, tc := range []struct {
		mut    func(*Config)
		option string
		msg    string
	}{
		{func(c *Config) { c.Rate = -5 }, "rate", "rate must be above 0 and at most 5000 requests per second, not -5"},
		{func(c *Config) { c.Duration = 0 }, "duration", "duration must be above 0 and at most 1h0m0s, not 0s"},
		{func(c *Config) { c.Rate, c.Duration = 0.5, time.Second }, "duration", "duration must be long enough for one request at 0.5 per second, not 1s"},
		{func(c *Config) { c.MaxInFlight = 0 }, "max_in_flight", "max in flight must be between 1 and 1024, not 0"},
		{func(c *Config) { c.Timeout = -time.Second }, "timeout", "timeout must be above 0, not -1s"},
		{func(c *Config) { c.Keys = MaxKeys + 1 }, "keys", "keys must be between 1 and 1000000, not 1000001"},
		{func(c *Config) { c.KeyDist = "" }, "key_dist", `key dist must be "uniform" or "zipf", not ""`},
	} {
		c := ok
		tc.mut(&c)
		err := c.Validate()
		var oe *OptionError
		if !errors.As(err, &oe) || oe.Option != tc.option || err.Error() != tc.msg {
			t.Errorf("%+v: %v (%#v); want %s: %s", c, err, oe, tc.option, tc.msg)
		}
	}
	// Seed and Run take zero fields as their defaults, then validate.
	if _, err := (Config{Endpoint: "x", Buckets: []string{"b"}, Rate: 1, Duration: time.Second}).withDefaults(); err != nil {
		t.Errorf("defaults: %v", err)
	}
}
