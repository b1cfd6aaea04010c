package localcluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/cellarsim/cellar/cell"
)

// CredentialsFileName is the file in a cluster's data directory that holds its S3
// credentials, readable by its owner only (0600).
const CredentialsFileName = "credentials.json"

// ErrNoCredentials is returned by ReadCredentials for a data directory without them.
var ErrNoCredentials = errors.New("no " + CredentialsFileName)

// Credentials are a cluster's S3 credentials as its data directory keeps them.
type Credentials struct {
	AccessKey string    `json:"access_key"`
	SecretKey string    `json:"secret_key"`
	Created   time.Time `json:"created"`
}

// ReadCredentials reads the credentials of the data directory dir. A directory
// without them gives an error that wraps ErrNoCredentials.
func ReadCredentials(dir string) (Credentials, error) {
	path := filepath.Join(dir, CredentialsFileName)
	var c Credentials
	if err := readJSON(path, ErrNoCredentials, &c); err != nil {
		return Credentials{}, err
	}
	if c.AccessKey == "" || c.SecretKey == "" {
		return Credentials{}, fmt.Errorf("%s does not hold an access key and a secret key", path)
	}
	return c, nil
}

// writeCredentials replaces the credentials of dir, atomically, with a file only its
// owner can read.
func writeCredentials(dir string, c Credentials) error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	return writePrivate(filepath.Join(dir, CredentialsFileName), append(b, '\n'))
}

// writePrivate replaces the file at path, atomically, with b, readable and writable
// by its owner only: an existing file's wider mode does not survive.
func writePrivate(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+"-*") // 0600
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	_, err = tmp.Write(b)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// clusterCredentials gives topology t of the cluster in dir its credentials: the ones
// t gives (a topology file, flags), which then replace the stored ones; else the ones
// stored in dir; else new ones, made with cell.NewCredentials and stored. made says
// whether they are new. With authentication off a cluster has credentials all the
// same, so that clients that always sign keep working and turning it on changes none.
func clusterCredentials(dir string, t *cell.Topology) (made bool, err error) {
	stored, err := ReadCredentials(dir)
	switch {
	case err != nil && !errors.Is(err, ErrNoCredentials):
		return false, err
	case t.AccessKey != "" && t.SecretKey != "":
		if stored.AccessKey == t.AccessKey && stored.SecretKey == t.SecretKey {
			return false, nil
		}
		return false, writeCredentials(dir, Credentials{AccessKey: t.AccessKey, SecretKey: t.SecretKey, Created: time.Now().UTC()})
	case err == nil:
		t.AccessKey, t.SecretKey = stored.AccessKey, stored.SecretKey
		return false, nil
	}
	ak, sk, err := cell.NewCredentials()
	if err != nil {
		return false, err
	}
	if err := writeCredentials(dir, Credentials{AccessKey: ak, SecretKey: sk, Created: time.Now().UTC()}); err != nil {
		return false, err
	}
	t.AccessKey, t.SecretKey = ak, sk
	return true, nil
}
