package index

import (
	"bytes"

	cellarv1 "github.com/cellarsim/cellar/api/proto/cellar/v1"
	"github.com/cellarsim/cellar/internal/errs"
)

// VersionID is what tells one version of a key from another: the object id of a
// single-part object, the first part's object id of a multipart one. Every PUT, copy
// and completed upload gets new blobs, so a version id is never reused.
func VersionID(loc *cellarv1.Location) []byte {
	if len(loc.GetObjectId()) > 0 {
		return loc.GetObjectId()
	}
	if parts := loc.GetParts(); len(parts) > 0 {
		return parts[0].GetObjectId()
	}
	return nil
}

// checkVersion holds when want is empty, or when the current version of mk has the
// version id want: a commit that only changes where a version's blobs live (repair)
// must not undo an overwrite or a delete that came in after it read the location. The
// caller holds mk's key lock.
func (s *Store) checkVersion(mk, want []byte) error {
	if len(want) == 0 {
		return nil
	}
	payload, exists := s.objects.Get(mk)
	if !exists {
		return errs.New(errs.NoSuchKey, "The specified key does not exist.")
	}
	cur, err := decodeLocation(mk, payload)
	if err != nil {
		return err
	}
	if !bytes.Equal(VersionID(cur), want) {
		return errs.New(errs.PreconditionFailed, "the object was replaced meanwhile")
	}
	return nil
}
