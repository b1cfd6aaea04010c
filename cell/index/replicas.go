package index

import (
	"bytes"
	"slices"

	"google.golang.org/protobuf/proto"

	cellarv1 "github.com/cellarsim/cellar/api/proto/cellar/v1"
	"github.com/cellarsim/cellar/internal/errs"
)

// moveReplicas is the commit of a repair: loc names, by its VersionID (want), one
// version of the key whose record is cur, current or older, and says where that
// version's blobs now live. Only the replica lists of that version change: its id,
// its place among the key's versions, its tags and every other version stay as they
// are, so a repair never undoes a write that came in after it read the location. A
// version that is gone (deleted, or replaced for good) fails with PreconditionFailed,
// a key that is gone with NoSuchKey; a location whose blobs are not the version's is
// refused. The caller holds mk's key lock.
func moveReplicas(cur, loc *cellarv1.Location, want []byte) (*cellarv1.Location, error) {
	if cur == nil {
		return nil, errs.New(errs.NoSuchKey, "The specified key does not exist.")
	}
	vs := allVersions(cur)
	i := slices.IndexFunc(vs, func(v *cellarv1.Location) bool { return bytes.Equal(VersionID(v), want) })
	if i < 0 {
		return nil, errs.New(errs.PreconditionFailed, "the version was deleted meanwhile")
	}
	v := proto.Clone(vs[i]).(*cellarv1.Location)
	if !bytes.Equal(v.ObjectId, loc.GetObjectId()) || len(v.Parts) != len(loc.GetParts()) {
		return nil, errs.New(errs.InvalidArgument, "the location's blobs are not those of the version it names")
	}
	for j, p := range v.Parts {
		if !bytes.Equal(p.ObjectId, loc.Parts[j].GetObjectId()) {
			return nil, errs.New(errs.InvalidArgument, "the location's parts are not those of the version it names")
		}
	}
	v.Replicas = slices.Clone(loc.GetReplicas())
	for j, p := range v.Parts {
		p.Replicas = slices.Clone(loc.Parts[j].GetReplicas())
	}
	vs[i] = v
	return fromVersions(loc.Bucket, loc.Key, vs), nil
}
