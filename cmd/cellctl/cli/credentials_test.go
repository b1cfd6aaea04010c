package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/localcluster"
)

// envLines reads export lines into a map, as a shell's eval would set them.
func envLines(t *testing.T, out string) map[string]string {
	t.Helper()
	vars := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		m := regexp.MustCompile(`^export ([A-Z_]+)='([^']*)'$`).FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("not an export line: %q", l)
		}
		vars[m[1]] = m[2]
	}
	return vars
}

func TestCredentialsOfACluster(t *testing.T) {
	dir := t.TempDir()
	if code, _, stderr := run(t, "credentials", "--data-dir", dir); code != ExitError || !strings.Contains(stderr, "cellctl up --data-dir") {
		t.Errorf("no credentials: exit %d, %q", code, stderr)
	}
	b, _ := json.Marshal(localcluster.Credentials{AccessKey: "CELLAK", SecretKey: "s3cr3t"})
	if err := os.WriteFile(filepath.Join(dir, localcluster.CredentialsFileName), b, 0o600); err != nil {
		t.Fatal(err)
	}
	topo := cell.DefaultTopology()
	writeClusterFile(t, dir, topo, "http://127.0.0.1:9123")

	code, out, stderr := run(t, "credentials", "--data-dir", dir, "--output", "env")
	if code != ExitOK || stderr != "" {
		t.Fatalf("env: exit %d, %q", code, stderr)
	}
	want := map[string]string{"AWS_ACCESS_KEY_ID": "CELLAK", "AWS_SECRET_ACCESS_KEY": "s3cr3t", "AWS_DEFAULT_REGION": "us-east-1",
		"AWS_ENDPOINT_URL": "http://127.0.0.1:9123"}
	if got := envLines(t, out); len(got) != len(want) {
		t.Errorf("env lines %v, want %v", got, want)
	} else {
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s=%q, want %q", k, got[k], v)
			}
		}
	}

	code, out, _ = run(t, "credentials", "--data-dir", dir)
	for _, w := range []string{"S3 endpoint: http://127.0.0.1:9123\n", "Access key:  CELLAK\n", "Secret key:  s3cr3t\n", "readable by you only"} {
		if code != ExitOK || !strings.Contains(out, w) {
			t.Errorf("text: exit %d, lacks %q:\n%s", code, w, out)
		}
	}
	var rep credentialsReport
	code, out, _ = run(t, "credentials", "--data-dir", dir, "-o", "json")
	if code != ExitOK || json.Unmarshal([]byte(out), &rep) != nil || rep.AccessKey != "CELLAK" || rep.SecretKey != "s3cr3t" || !rep.Auth {
		t.Errorf("json: exit %d\n%s", code, out)
	}

	// A credentials file others can read is shown, with a warning.
	if err := os.Chmod(filepath.Join(dir, localcluster.CredentialsFileName), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := run(t, "credentials", "--data-dir", dir); code != ExitOK || !strings.Contains(stderr, "chmod 600") {
		t.Errorf("credentials readable by others: exit %d, %q", code, stderr)
	}
}

func TestCredentialsNew(t *testing.T) {
	_, out1, _ := run(t, "credentials", "--new", "--output", "env")
	_, out2, _ := run(t, "credentials", "--new", "--output", "env")
	a, b := envLines(t, out1), envLines(t, out2)
	if len(a["AWS_ACCESS_KEY_ID"]) != 20 || len(a["AWS_SECRET_ACCESS_KEY"]) != 40 || a["AWS_ENDPOINT_URL"] != "" {
		t.Errorf("new credentials %v", a)
	}
	if a["AWS_ACCESS_KEY_ID"] == b["AWS_ACCESS_KEY_ID"] || a["AWS_SECRET_ACCESS_KEY"] == b["AWS_SECRET_ACCESS_KEY"] {
		t.Errorf("two new pairs are the same: %v", a)
	}
	for _, args := range [][]string{{"--output", "yaml"}, {"--new", "--data-dir", t.TempDir()}, {"extra"}} {
		if code, _, _ := run(t, append([]string{"credentials"}, args...)...); code != ExitUsage {
			t.Errorf("credentials %v: exit %d", args, code)
		}
	}
}
